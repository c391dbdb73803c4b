"""The one thread that owns the torch models.

Why one long-lived thread and a queue: GPU memory and CUDA state have a single owner, a checkpoint loaded once
serves every later job (the compare panel asks for three models in a row), and the GUI thread never waits on
torch. `submit(job)` returns a `JobHandle`: a QObject of its own with that job's signals (started, progress,
partial, finished, cancelled, failed, notice, ended), so whoever asked gets exactly its own results and needs no
table of job ids to route them. Results are plain Python/numpy data.

Delivery: the worker thread emits one internal queued signal carrying (handle, event); the GUI-thread slot
re-emits it on the handle. So every handle signal fires on the GUI thread from the event loop, never during
`submit`: connecting to a handle right after `submit` cannot miss an event.

Cancellation is a typed outcome, not an error text: `handle.cancel()` sets a flag the engine checks between
windows; a cancelled run emits `cancelled(result)` with what it finished (a VideoPrediction with
`complete=False`), or `cancelled(None)` when it never started, and `ended(JobOutcome.CANCELLED)`.

torch and the model code are imported once, on the GUI thread, when the worker is made (`preload_engine`,
before the window shows): importing them from the worker thread held the GIL in single C calls (loading and
initialising libtorch) for up to 360 ms, which froze the window at the start of the first run.
"""
from __future__ import annotations

import enum
import itertools
import logging
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from app.heap import freeze_heap
from engine.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class InferJob:
    """Run a checkpoint over a video. `mode` picks the read-out (None = the model's own: sync/video/frame);
    `internals` asks for frame-level tracks and aggregation weights too (the analysis panels need them)."""

    video: str
    checkpoint: str
    device: str = "cpu"
    mode: str | None = None
    internals: bool = True
    window: int | None = None
    tag: str = "main"          # who asked: "main", "compare:0", ... (for logs)
    max_side: int = 0          # cap on the long side the network sees (0: the checkpoint's own test size)


@dataclass
class QueryMasksJob:
    """The masks of every frame-level query on frames [start, end) (one inference window, re-run exactly as
    the run did), for showing the frame queries the aggregation view lists. Result: {frame: [RLE per query]}."""

    video: str
    checkpoint: str
    device: str
    start: int
    end: int
    tag: str = "query_masks"
    max_side: int = 0          # as the run's InferJob.max_side, so the window is re-run at the same size


@dataclass
class AssistJob:
    """Answer a click / box prompt for object `obj` on `frame` with `tool` ("sam2", "grabcut"). Result: the
    proposed HxW bool mask (not yet in the project: the user accepts it with Enter)."""

    video: str
    tool: str
    frame: int
    obj: int
    points: list[tuple[float, float]]
    labels: list[int]
    box: tuple[float, float, float, float] | None = None
    sam2: dict | None = None     # {"size": ..., "checkpoint": ...} for tool "sam2"
    device: str = "cpu"
    tag: str = "assist"


@dataclass
class PropagateJob:
    """Carry the masks `seeds` (object -> RLE on `start`) through the video in `direction` with `tool` ("sam2",
    "flow"); frames in `locked[obj]` are never touched and end that object's run. Partial results: (frame,
    {obj: RLE}) per frame; the result (finished or cancelled): {obj: {frame: RLE}} of every frame done."""

    video: str
    tool: str
    start: int
    direction: int
    seeds: dict[int, dict]
    locked: dict[int, list[int]]
    sam2: dict | None = None
    device: str = "cpu"
    tag: str = "propagate"


Job = InferJob | QueryMasksJob | AssistJob | PropagateJob


class JobOutcome(enum.Enum):
    """Where a job stands; the last three are final (exactly one of them is reached, then `ended` fires)."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"     # the whole job ran: `result` is complete
    CANCELLED = "cancelled"   # stopped on request: `result` holds what was done (None if it never started)
    FAILED = "failed"         # `error` says why (names the file where there is one)


class Progress(NamedTuple):
    done: int
    total: int
    eta: float   # seconds, < 0 while unknown


class LoadedModel(NamedTuple):
    model: Any   # engine.model.syncvis.SyncVIS (torch)
    meta: dict   # the checkpoint's metadata: class names, mode, ...


class _Event(NamedTuple):
    """One thing a job reports, carried from the worker thread to the GUI thread."""

    kind: str    # "started" | "progress" | "partial" | "notice" | "finished" | "cancelled" | "failed"
    value: Any


class JobHandle(QObject):
    """One submitted job. Lives in the GUI thread; its signals fire there, in order, each at most once for
    the final ones.

      started(text)                 a step began ("Loading tiny-sync.pt", "Running … on …")
      progress(done, total, eta)    frames done; eta in seconds, < 0 while unknown
      partial(result)               the result so far (a VideoPrediction after each inference window)
      notice(message)               what the engine changed on its own (smaller windows, CPU after GPU OOM)
      finished(result)              the job ran to the end
      cancelled(result | None)      it stopped on request; the partial result, or None if it never started
      failed(message)               bad checkpoint, bad video, out of memory, a bug
      ended(JobOutcome)             after finished / cancelled / failed
    """

    started = Signal(str)
    progress = Signal(int, int, float)
    partial = Signal(object)
    notice = Signal(str)
    finished = Signal(object)
    cancelled = Signal(object)
    failed = Signal(str)
    ended = Signal(object)

    def __init__(self, job_id: int, job: Job):
        super().__init__()  # no parent: the asker holds it as long as it cares (the queue holds it till then)
        self.id = job_id
        self.job = job
        self.outcome = JobOutcome.QUEUED
        self.result: Any = None
        self.error = ""
        self.last_progress: Progress | None = None
        self._cancel = threading.Event()   # read by the worker thread

    def cancel(self) -> None:
        """Ask the job to stop (at once when queued, after the current window when running)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def is_done(self) -> bool:
        return self.outcome in (JobOutcome.FINISHED, JobOutcome.CANCELLED, JobOutcome.FAILED)

    def _deliver(self, ev: _Event) -> None:
        """GUI thread: turn one event into this handle's signal (final events also set the outcome)."""
        if self.is_done():
            return
        if ev.kind == "started":
            self.outcome = JobOutcome.RUNNING
            self.started.emit(ev.value)
        elif ev.kind == "progress":
            self.last_progress = ev.value
            self.progress.emit(ev.value.done, ev.value.total, ev.value.eta)
        elif ev.kind == "partial":
            self.result = ev.value
            self.partial.emit(ev.value)
        elif ev.kind == "notice":
            self.notice.emit(ev.value)
        else:
            final = {"finished": JobOutcome.FINISHED, "cancelled": JobOutcome.CANCELLED,
                     "failed": JobOutcome.FAILED}[ev.kind]
            self.outcome = final
            if final is JobOutcome.FAILED:
                self.error = ev.value
                self.failed.emit(ev.value)
            else:
                self.result = ev.value
                (self.finished if final is JobOutcome.FINISHED else self.cancelled).emit(ev.value)
            self.ended.emit(final)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_text() -> str:
    """'RSS 812 MB · GPU 1.3 GB' for the status bar; GPU only when CUDA is already in use."""
    text = f"RSS {_rss_bytes() / 2**20:.0f} MB"
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                text += f" · GPU {torch.cuda.memory_allocated() / 2**30:.2f} GB"
        except Exception:  # noqa: BLE001 - the status bar must never raise
            pass
    return text


SWITCH_INTERVAL_S = 0.001


def preload_engine() -> None:
    """Import torch and the inference and model code on the calling (GUI) thread (a no-op once imported). See
    the module docstring for why not in the worker thread."""
    import timm  # noqa: F401  (the EfficientNet trunk; it pulls torchvision and huggingface_hub in)
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import engine.inference  # noqa: F401
    import engine.model.checkpoint  # noqa: F401
    import engine.model.syncvis  # noqa: F401


class _Thread(QThread):
    def __init__(self, owner: EngineWorker):
        super().__init__()
        self.owner = owner
        self.setObjectName("EngineWorker")
        self.native_id: int | None = None   # the OS thread id, once running

    def run(self) -> None:
        self.native_id = threading.get_native_id()
        lower_thread_priority(WORKER_NICE)
        self.owner._loop()


WORKER_NICE = 5   # how much the engine's threads yield the CPU to the GUI thread (Linux nice increment)


def lower_thread_priority(increment: int) -> None:
    """Give the calling thread (and the threads it starts: torch's OpenMP pool, the video reader's) a lower
    CPU priority than the GUI thread. On a 2-core machine the model's threads otherwise take the cores from
    the GUI thread, and a redraw that takes 8 ms alone took 15-40 ms during a run. Linux only (per-thread
    nice values); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        pass


class EngineWorker(QObject):
    """Facade living in the GUI thread; the work happens in `_Thread.run`.

    `submit(job) -> JobHandle`: the job's own signals live on the handle (see JobHandle). The worker itself
    has only what concerns everyone:
      ready(info): torch is up: {"cuda": bool, "gpus": [names], "torch": version}
      submitted(JobHandle)          a job was queued (monitors, tests)
      model_loaded(path, meta)      after a checkpoint is loaded (meta: class names, mode, ...)
    """

    ready = Signal(dict)
    submitted = Signal(object)
    model_loaded = Signal(str, dict)
    _event = Signal(object, object)   # (JobHandle, _Event), emitted by the worker thread, queued

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._queue: queue.Queue[JobHandle | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._pending: set[JobHandle] = set()   # queued or running; guarded by _lock
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str, float], LoadedModel] = {}
        self._assist: tuple[tuple, Any] | None = None  # (key, session): the one open assist session
        self._sam2: tuple[tuple, Any] | None = None    # (key, Sam2Model): the loaded SAM 2
        self.info: dict = {}
        self.busy_job: JobHandle | None = None
        self._event.connect(self._deliver)
        preload_engine()
        freeze_heap()   # torch's, timm's and Qt's module objects: out of the collector's full passes
        # The GUI thread gives up the GIL around Qt calls and may then wait up to one switch interval for the
        # worker (or the video reader's thread) to hand it back. 1 ms instead of Python's 5 ms shortens those
        # waits (bench_gui: longest end-of-run stall 268 -> 233 ms, one run each, so within the noise).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = _Thread(self)
        self._thread.start()

    # ------------------------------------------------------------ GUI side
    def submit(self, job: Job) -> JobHandle:
        handle = JobHandle(next(self._ids), job)
        with self._lock:
            self._pending.add(handle)
        self._queue.put(handle)
        self.submitted.emit(handle)
        return handle

    def cancel_all(self) -> None:
        """Cancel every queued or running job."""
        with self._lock:
            targets = list(self._pending)
        for h in targets:
            h.cancel()

    def pending(self) -> list[JobHandle]:
        with self._lock:
            return sorted(self._pending, key=lambda h: h.id)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._pending

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Cancel everything and stop the thread (the window calls it on close)."""
        self.cancel_all()
        self._queue.put(None)
        self._thread.wait(timeout_ms)

    def _deliver(self, handle: JobHandle, ev: _Event) -> None:
        handle._deliver(ev)

    # ------------------------------------------------------------ worker thread
    def _send(self, handle: JobHandle, kind: str, value: Any = None) -> None:
        self._event.emit(handle, _Event(kind, value))

    def _loop(self) -> None:
        try:
            import torch

            torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
            cuda = bool(torch.cuda.is_available())
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
            self.info = {"cuda": cuda, "gpus": gpus, "torch": torch.__version__}
        except Exception as e:  # noqa: BLE001 - a broken torch install must not kill the window
            self.info = {"cuda": False, "gpus": [], "torch": None, "error": str(e)}
        self.ready.emit(dict(self.info))
        while True:
            handle = self._queue.get()
            if handle is None:
                return
            job = handle.job
            try:
                if handle.cancel_requested:
                    self._send(handle, "cancelled", None)
                    continue
                self.busy_job = handle
                if isinstance(job, QueryMasksJob):
                    self._run_query_masks(handle)
                elif isinstance(job, AssistJob):
                    self._run_assist(handle)
                elif isinstance(job, PropagateJob):
                    self._run_propagate(handle)
                else:
                    self._run_infer(handle)
            except InputError as e:
                self._send(handle, "failed", str(e))
            except MemoryError:
                self._send(handle, "failed", "out of memory: close other programs, or run on a shorter video")
            except Exception as e:  # noqa: BLE001 - every failure becomes a message, never a crash
                log.error("job %d failed:\n%s", handle.id, traceback.format_exc())
                msg = str(e) or type(e).__name__
                if "out of memory" in msg.lower():
                    msg = f"out of memory on {job.device}: {msg.splitlines()[0]}"
                self._send(handle, "failed", f"{type(e).__name__}: {msg}" if "memory" not in msg else msg)
            finally:
                self.busy_job = None
                with self._lock:
                    self._pending.discard(handle)

    def load_model(self, path: str, device: str) -> LoadedModel:
        """Cached by (path, device, mtime, class choice): a re-saved checkpoint is reloaded. Worker thread only.
        An official Mask2Former / VITA / SyncVIS file opens too; the dataset of its classes is the one chosen on
        the GUI thread (app/official_classes.py) when its class count alone does not say."""
        from app.official_classes import chosen_classes
        from engine.data.vocabularies import AmbiguousClassesError
        from engine.errors import CheckpointError
        from engine.model.checkpoint import load_checkpoint

        p = Path(path)
        if not p.exists():
            raise CheckpointError(p, "no such checkpoint file")
        classes = chosen_classes(p)
        key = (str(p.resolve()), device, p.stat().st_mtime, classes)
        if key not in self._models:
            # one model per device at a time keeps GPU memory bounded
            for k in [k for k in self._models if k[0] == key[0] or len(self._models) >= 4]:
                del self._models[k]
            try:
                model, meta = load_checkpoint(str(p), device=device, classes=classes)
            except AmbiguousClassesError as e:
                question = e.problem.split("?")[0]      # "40 classes: YouTube-VIS 2019 or 2021"
                raise CheckpointError(p, f"{question}? Choose the file with Engine › Choose checkpoint… to say "
                                         "which") from None
            self._models[key] = LoadedModel(model, dict(meta or {}))
            self.model_loaded.emit(str(p), _plain_meta(meta))
        return self._models[key]

    # ------------------------------------------------------------ assist (engine/assist)
    def assist_session(self, video: str, tool: str, sam2: dict | None, device: str):
        """The open assist session for (video, tool, SAM 2 settings), made when another is asked for. One at a
        time: a SAM 2 session holds image features and memory, so the old one is closed first. Worker only."""
        from engine.assist import open_session
        from engine.data.video import VideoReader

        key = (video, tool, tuple(sorted((sam2 or {}).items())), device)
        if self._assist is not None and self._assist[0] == key:
            return self._assist[1]
        if self._assist is not None:
            self._assist[1].close()
            self._assist = None
        model = None
        if tool == "sam2":
            from engine.assist.sam2_tool import Sam2Config, Sam2Model

            mkey = (tuple(sorted((sam2 or {}).items())), device)
            if self._sam2 is None or self._sam2[0] != mkey:
                self._sam2 = (mkey, Sam2Model(Sam2Config(device=device, **(sam2 or {}))))
            model = self._sam2[1]
        reader = VideoReader(video, cache_size=8)
        session = open_session(tool, reader, sam2=model)
        self._assist = (key, session)
        return session

    def _run_assist(self, handle: JobHandle) -> None:
        job: AssistJob = handle.job
        self._send(handle, "started", f"{job.tool}: segmenting frame {job.frame}")
        session = self.assist_session(job.video, job.tool, job.sam2, job.device)
        mask = session.add_prompt(job.frame, job.obj, points=job.points or None, labels=job.labels or None,
                                  box=job.box)
        self._send(handle, "finished", np.asarray(mask, bool))

    def _run_propagate(self, handle: JobHandle) -> None:
        from engine.data import masks as rle

        job: PropagateJob = handle.job
        session = self.assist_session(job.video, job.tool, job.sam2, job.device)
        for obj, seed in job.seeds.items():
            session.set_mask(job.start, obj, rle.decode(seed))
            session.unlock(obj, range(session.num_frames))
            session.lock(obj, job.locked.get(obj, []))
        total = (session.num_frames - 1 - job.start) if job.direction > 0 else job.start
        self._send(handle, "started", f"{job.tool}: propagating {'forward' if job.direction > 0 else 'backward'}"
                                      f" from frame {job.start}")
        done: dict[int, dict[int, dict]] = {obj: {} for obj in job.seeds}
        t0 = time.perf_counter()
        run = session.propagate(job.start, job.direction, objects=list(job.seeds))
        n = 0
        for frame, masks in run:
            n += 1
            enc = {obj: rle.encode(m) for obj, m in masks.items()}
            for obj, r in enc.items():
                done[obj][frame] = r
            self._send(handle, "partial", (frame, enc))
            elapsed = time.perf_counter() - t0
            self._send(handle, "progress", Progress(n, max(total, n), elapsed / n * max(total - n, 0)))
            if handle.cancel_requested:
                run.close()  # the session keeps what it yielded; so do we
                self._send(handle, "cancelled", done)
                return
        self._send(handle, "finished", done)

    def _run_query_masks(self, handle: JobHandle) -> None:
        job = handle.job
        self._send(handle, "started", f"Frame-query masks of frames {job.start}–{job.end - 1}")
        self._send(handle, "finished", _query_masks(self, job))

    def _run_infer(self, handle: JobHandle) -> None:
        from engine.inference import infer, infer_config_for

        job = handle.job
        self._send(handle, "started", f"Loading {Path(job.checkpoint).name}")
        device = "cuda" if job.device.startswith("cuda") or job.device == "gpu" else "cpu"
        model, meta = self.load_model(job.checkpoint, device)
        cfg = infer_config_for(meta)
        cfg.device = device
        cfg.mode = job.mode
        if job.window:
            cfg.window = int(job.window)
        if job.max_side > 0 and not 0 < cfg.max_size <= job.max_side:
            cfg.max_size = int(job.max_side)
        self._send(handle, "started", f"Running {Path(job.checkpoint).name} on {Path(job.video).name}")
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * (total - done) if done > 0 else -1.0
            self._send(handle, "progress", Progress(int(done), int(total), float(eta)))

        result = infer(job.video, model, cfg, class_names=meta.get("class_names"), internals=job.internals,
                       progress=progress, cancel=lambda: handle.cancel_requested,
                       on_window=lambda pred: self._send(handle, "partial", pred),
                       on_notice=lambda msg: self._send(handle, "notice", msg), checkpoint=str(job.checkpoint))
        # The engine returns what it finished when the flag stopped it: that is a cancellation, typed as such.
        stopped = handle.cancel_requested and not result.complete
        self._send(handle, "cancelled" if stopped else "finished", result)


def _query_masks(worker: EngineWorker, job: QueryMasksJob) -> dict[int, list[dict]]:
    import torch

    from engine.data.video import VideoReader
    from engine.inference import infer_config_for, run_window

    device = "cuda" if job.device.startswith("cuda") else "cpu"
    model, meta = worker.load_model(job.checkpoint, device)
    cfg = infer_config_for(meta)
    cfg.device = device
    if job.max_side > 0 and not 0 < cfg.max_size <= job.max_side:
        cfg.max_size = int(job.max_side)
    with VideoReader(job.video, cache_size=max(2, job.end - job.start + 1)) as reader:
        chunk = [np.asarray(reader[i]) for i in range(job.start, job.end)]
        size = (int(reader.height), int(reader.width))
    res = run_window(model, chunk, job.start, "frame", cfg, torch.device(device), size, False)
    return {job.start + j: [rles[0] for rles in fr[2]] for j, fr in enumerate(res.frames or [])}


def _plain_meta(meta: dict | None) -> dict:
    out = {}
    for k, v in (meta or {}).items():
        if isinstance(v, (str, int, float, bool, list, tuple, dict)) or v is None:
            out[k] = v
    return out
