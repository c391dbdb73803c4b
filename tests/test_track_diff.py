"""Per-track diff of two runs: matched by video IoU, read as same / relabelled / reshaped / new / gone."""
from __future__ import annotations

import numpy as np

from engine.data.masks import encode
from engine.track_diff import diff_tracks, video_iou
from engine.types import Track, VideoPrediction

H, W, N = 20, 30, 4


def box(x0, x1):
    m = np.zeros((H, W), bool)
    m[5:15, x0:x1] = True
    return encode(m)


def test_video_iou_by_hand():
    a = [box(0, 10), box(0, 10), None]
    b = [box(5, 15), None, None]
    # frame 0: inter 50, union 150; frame 1: inter 0, union 100 -> 50 / 250
    assert abs(video_iou(a, b) - 50 / 250) < 1e-9


def test_diff_reads_each_kind():
    old = VideoPrediction("sync", N, H, W, ["car", "dog"], [
        Track(1, 1, 0.9, [box(0, 10)] * N, [0.9] * N),
        Track(2, 1, 0.8, [box(12, 20)] * N, [0.8] * N),
        Track(3, 2, 0.7, [box(22, 30)] * N, [0.7] * N)])
    new = VideoPrediction("sync", N, H, W, ["car", "dog"], [
        Track(7, 1, 0.9, [box(0, 10)] * N, [0.9] * N),      # same
        Track(8, 2, 0.8, [box(12, 20)] * N, [0.8] * N),     # relabelled car -> dog
        Track(9, 1, 0.5, [box(0, 2)] * N, [0.5] * N)])      # new (too small to match anything)
    kinds = {(c.kind, c.old_id, c.new_id) for c in diff_tracks(old, new)}
    assert kinds == {("same", 1, 7), ("relabelled", 2, 8), ("gone", 3, None), ("new", None, 9)}
    text = [c.text for c in diff_tracks(old, new)]
    assert text[0] == "track 2 → 8: car → dog (masks IoU 1.00)"
