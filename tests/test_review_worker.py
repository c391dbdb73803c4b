"""engine.review_worker: the review queue ranked in a child process equals the in-process ranking, reads
the video's motion itself, survives a killed child, and stops with the window."""
from __future__ import annotations

import threading

import numpy as np

from engine.data.masks import encode
from engine.data.synthetic import generate_video, write_mp4
from engine.review import review_queue
from engine.review_worker import QueueRanker, motion_for_video
from engine.types import Track, VideoPrediction
from tests.test_review import make_pred

TIMEOUT = 60.0


def ask(ranker: QueueRanker, pred, key=None, known=None, need_motion=False):
    box: list = []
    got = threading.Event()
    ranker.rank(pred, key, known, need_motion, lambda r: (box.append(r), got.set()))
    assert got.wait(TIMEOUT), "no answer from the ranking process"
    return box[0]


def test_child_ranks_as_the_engine_does_and_restarts_after_a_kill():
    pred = make_pred()
    ranker = QueueRanker()
    try:
        items, motion = ask(ranker, pred)
        assert motion is None
        assert items == review_queue(pred)               # same frames, scores and reasons, in the same order
        first = ranker._proc.pid
        assert first is not None and ranker._proc.is_alive()
        ranker._proc.kill()                               # the child dies (OOM killer, a crash)
        ranker._proc.join(5)
        again = ask(ranker, pred)
        if isinstance(again, Exception):                  # the request in flight may see the death ...
            again = ask(ranker, pred)
        items2, _ = again                                 # ... the next one gets a fresh child
        assert items2 == items and ranker._proc.pid != first
    finally:
        ranker.close()
    assert ranker._proc is None


def test_child_reads_the_motion_of_the_video(tmp_path):
    v = generate_video("default", 3, (96, 64))
    path = tmp_path / "clip.mp4"
    write_mp4(path, v.frames, fps=10)
    n, h, w = len(v.frames), 64, 96
    empty = encode(np.zeros((h, w), bool))
    pred = VideoPrediction("video", n, h, w, ["x"], [Track(1, 1, 0.9, [empty] * n, [0.9] * n)])
    ranker = QueueRanker()
    try:
        items, motion = ask(ranker, pred, (str(path), n), None, True)
    finally:
        ranker.close()
    here = motion_for_video(str(path), n)
    assert motion is not None and here is not None
    for a, b in zip(vars(motion).values(), vars(here).values(), strict=True):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float))
    assert items == review_queue(pred, here)


def test_a_ranking_error_comes_back_as_an_exception():
    ranker = QueueRanker()
    try:
        out = ask(ranker, "not a prediction")
    finally:
        ranker.close()
    assert isinstance(out, Exception) and "Error" in str(out)


def test_start_never_waits_for_a_ranking_under_way():
    import time

    ranker = QueueRanker()
    try:
        ranker.start()
        with ranker._lock:                        # as while a request is in flight in the client thread
            t0 = time.perf_counter()
            ranker.start()
            assert time.perf_counter() - t0 < 0.5
        assert ranker._proc.is_alive()
    finally:
        ranker.close()
