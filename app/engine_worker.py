"""The one thread that owns the torch models.

Why one long-lived thread and a queue: GPU memory and CUDA state have a single owner, a checkpoint loaded once
serves every later job (the compare panel asks for three models in a row), and the GUI thread never waits on
torch. Jobs go in with `submit`; progress, partial results (one per inference window), results, errors and
notices come back as Qt signals carrying plain Python/numpy data, delivered on the GUI thread (queued
connections, because they are emitted from the worker thread). Cancellation is a flag the engine checks
between
windows; a cancelled run still delivers what it finished, with `complete=False`.

torch is imported only in this thread's code paths, so opening the window costs no torch start-up.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

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
    tag: str = "main"          # who asked: "main", "compare:0", ...
    id: int = 0


@dataclass
class QueryMasksJob:
    """The masks of every frame-level query on frames [start, end) (one inference window, re-run exactly as
    the
    run did), for showing the frame queries the aggregation view lists. Result: {frame: [RLE per query]}."""

    video: str
    checkpoint: str
    device: str
    start: int
    end: int
    tag: str = "query_masks"
    id: int = 0


@dataclass
class _State:
    job: InferJob | QueryMasksJob
    cancel: threading.Event = field(default_factory=threading.Event)


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


class _Thread(QThread):
    def __init__(self, owner: EngineWorker):
        super().__init__()
        self.owner = owner
        self.setObjectName("EngineWorker")

    def run(self) -> None:
        self.owner._loop()


class EngineWorker(QObject):
    """Facade living in the GUI thread; the work happens in `_Thread.run`.

    Signals (all queued onto the GUI thread):
      ready(info): torch is up: {"cuda": bool, "gpus": [names], "torch": version}
      started(job_id, text)
      progress(job_id, done, total, eta_seconds)   eta < 0 while unknown
      partial(job_id, VideoPrediction)             the result so far, after each window
      finished(job_id, VideoPrediction)            complete, or cancelled with complete=False
      failed(job_id, message)                      bad checkpoint, bad video, out of memory, a bug
      notice(job_id, message)                      what the engine changed on its own (OOM fallbacks)
      model_loaded(path, meta)                     after a checkpoint is loaded (meta: class names, mode, ...)
    """

    ready = Signal(dict)
    started = Signal(int, str)
    progress = Signal(int, int, int, float)
    partial = Signal(int, object)
    finished = Signal(int, object)
    failed = Signal(int, str)
    notice = Signal(int, str)
    model_loaded = Signal(str, dict)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._queue: queue.Queue[_State | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._states: dict[int, _State] = {}
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str, float], tuple[object, dict]] = {}
        self.info: dict = {}
        self.busy_job: int | None = None
        self._thread = _Thread(self)
        self._thread.start()

    # ------------------------------------------------------------ GUI side
    def submit(self, job: InferJob | QueryMasksJob) -> int:
        job.id = next(self._ids)
        st = _State(job)
        with self._lock:
            self._states[job.id] = st
        self._queue.put(st)
        return job.id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (queued or running), or every job when job_id is None."""
        with self._lock:
            targets = list(self._states.values()) if job_id is None else [self._states.get(job_id)]
        for st in targets:
            if st is not None:
                st.cancel.set()

    def pending(self) -> list[int]:
        with self._lock:
            return sorted(self._states)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._states

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Cancel everything and stop the thread (the window calls it on close)."""
        self.cancel()
        self._queue.put(None)
        self._thread.wait(timeout_ms)

    # ------------------------------------------------------------ worker thread
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
            st = self._queue.get()
            if st is None:
                return
            job = st.job
            try:
                if st.cancel.is_set():
                    self.failed.emit(job.id, "cancelled before it started")
                    continue
                self.busy_job = job.id
                if isinstance(job, QueryMasksJob):
                    self._run_query_masks(job)
                else:
                    self._run_infer(st)
            except InputError as e:
                self.failed.emit(job.id, str(e))
            except MemoryError:
                self.failed.emit(job.id, "out of memory: close other programs, or run on a shorter video")
            except Exception as e:  # noqa: BLE001 - every failure becomes a message, never a crash
                log.error("job %d failed:\n%s", job.id, traceback.format_exc())
                msg = str(e) or type(e).__name__
                if "out of memory" in msg.lower():
                    msg = f"out of memory on {job.device}: {msg.splitlines()[0]}"
                self.failed.emit(job.id, f"{type(e).__name__}: {msg}" if "memory" not in msg else msg)
            finally:
                self.busy_job = None
                with self._lock:
                    self._states.pop(job.id, None)

    def load_model(self, path: str, device: str) -> tuple[object, dict]:
        """Cached by (path, device, mtime): a re-saved checkpoint is reloaded. Worker thread only."""
        from engine.errors import CheckpointError
        from engine.model.checkpoint import load_checkpoint

        p = Path(path)
        if not p.exists():
            raise CheckpointError(p, "no such checkpoint file")
        key = (str(p.resolve()), device, p.stat().st_mtime)
        if key not in self._models:
            # one model per device at a time keeps GPU memory bounded
            for k in [k for k in self._models if k[0] == key[0] or len(self._models) >= 4]:
                del self._models[k]
            model, meta = load_checkpoint(str(p), device=device)
            self._models[key] = (model, dict(meta or {}))
            self.model_loaded.emit(str(p), _plain_meta(meta))
        return self._models[key]

    def _run_query_masks(self, job: QueryMasksJob) -> None:
        self.started.emit(job.id, f"Frame-query masks of frames {job.start}–{job.end - 1}")
        self.finished.emit(job.id, _query_masks(self, job))

    def _run_infer(self, st: _State) -> None:
        from engine.inference import infer, infer_config_for

        job = st.job
        self.started.emit(job.id, f"Loading {Path(job.checkpoint).name}")
        device = "cuda" if job.device.startswith("cuda") or job.device == "gpu" else "cpu"
        model, meta = self.load_model(job.checkpoint, device)
        cfg = infer_config_for(meta)
        cfg.device = device
        cfg.mode = job.mode
        if job.window:
            cfg.window = int(job.window)
        self.started.emit(job.id, f"Running {Path(job.checkpoint).name} on {Path(job.video).name}")
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * (total - done) if done > 0 else -1.0
            self.progress.emit(job.id, int(done), int(total), float(eta))

        result = infer(job.video, model, cfg, class_names=meta.get("class_names"), internals=job.internals,
                       progress=progress, cancel=st.cancel.is_set,
                       on_window=lambda pred: self.partial.emit(job.id, pred),
                       on_notice=lambda msg: self.notice.emit(job.id, msg), checkpoint=str(job.checkpoint))
        self.finished.emit(job.id, result)


def _query_masks(worker: EngineWorker, job: QueryMasksJob) -> dict[int, list[dict]]:
    import torch

    from engine.data.video import VideoReader
    from engine.inference import infer_config_for, run_window

    device = "cuda" if job.device.startswith("cuda") else "cpu"
    model, meta = worker.load_model(job.checkpoint, device)
    cfg = infer_config_for(meta)
    cfg.device = device
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
