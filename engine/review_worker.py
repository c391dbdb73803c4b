"""The review queue, ranked in a child process.

Ranking a run (the video's motion evidence, then every frame's cues) is a second or more of Python and
pycocotools work. In a thread of the window's process it shares the GIL with the GUI thread, whose every
call back into Python (a table cell, a paint delegate) then waits for it: a track list that paints in 8 ms
alone took 70-100 ms while the queue ranked. A child process has its own interpreter, so the GUI keeps its
frame budget. The child is started once (spawn: no fork of a threaded Qt/torch process), imports only numpy,
pycocotools and the video reader, and ranks one request at a time; a thread here sends the request and waits
for the answer (both GIL-free waits), then hands it to `on_done` in that thread.
"""
from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Callable
from typing import Any

from engine import review
from engine.types import VideoPrediction

MotionKey = tuple[str, int]   # (video path, frames)


def motion_for_video(path: str, num_frames: int) -> review.MotionEvidence | None:
    """The motion evidence of a video file (its own reader); None when it cannot be read."""
    from engine.data.video import VideoReader

    try:
        with VideoReader(path, cache_size=2) as reader:
            grey = []
            for i, f in enumerate(reader):
                if i >= num_frames:
                    break
                grey.append(review.small_grey(f))
        return review.motion_from_grey(grey)
    except Exception:  # noqa: BLE001 - the queue then ranks on the model's own cues
        return None


def rank(pred: VideoPrediction, key: MotionKey | None, known: review.MotionEvidence | None,
         need_motion: bool) -> tuple[list[review.ReviewItem], review.MotionEvidence | None]:
    """The queue of `pred` and the motion evidence it used (read from the video when `need_motion`)."""
    motion = motion_for_video(*key) if need_motion and key is not None else known
    return review.review_queue(pred, motion), motion


def _serve(conn) -> None:
    """The child's loop: (pred, key, known, need_motion) in, ("ok", (items, motion)) or ("error", text) out."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            conn.send(("ok", rank(*msg)))
        except Exception as e:  # noqa: BLE001 - reported in the panel, never a crash
            conn.send(("error", f"{type(e).__name__}: {e}"))


class QueueRanker:
    """One child process that ranks review queues, one request at a time (callers wait for `on_done`)."""

    def __init__(self) -> None:
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="review-queue", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def start(self) -> None:
        """Start the child now (it takes a moment), so the first ranking does not wait for it. Never waits:
        while a ranking is under way the child is running anyway (the GUI thread calls this)."""
        if self._lock.acquire(blocking=False):
            try:
                self._ensure()
            finally:
                self._lock.release()

    def rank(self, pred: VideoPrediction, key: MotionKey | None, known: review.MotionEvidence | None,
             need_motion: bool, on_done: Callable[[Any], None]) -> None:
        """Rank in the child; `on_done((items, motion))` or `on_done(exception)`, from a background thread."""

        def work() -> None:
            try:
                with self._lock:
                    self._ensure()
                    self._conn.send((pred, key, known, need_motion))
                    status, value = self._conn.recv()
                result = value if status == "ok" else RuntimeError(value)
            except (EOFError, OSError, BrokenPipeError) as e:   # the child died: start afresh next time
                self._drop()
                result = RuntimeError(f"the ranking process stopped ({type(e).__name__})")
            except Exception as e:  # noqa: BLE001 - e.g. a prediction that does not pickle
                result = e
            on_done(result)

        threading.Thread(target=work, name="review-queue-client", daemon=True).start()

    def _drop(self) -> None:
        proc, self._proc, self._conn = self._proc, None, None
        if proc is not None and proc.is_alive():
            proc.kill()

    def close(self) -> None:
        """Stop the child at once (a ranking under way is abandoned: its `on_done` gets an error)."""
        proc, self._proc, self._conn = self._proc, None, None
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(2.0)
