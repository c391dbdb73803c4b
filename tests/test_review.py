"""engine.review on hand-built predictions whose lanes, events and queue ranks can be worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.masks import encode
from engine.review import (
    aggregation_mass,
    frame_video_lanes,
    link_frame_track,
    mask_iou,
    next_event,
    presence,
    reverse_weights,
    review_queue,
    selected_frame_queries,
    selected_frame_queries_all,
    track_events,
)
from engine.types import Track, VideoPrediction, WindowInternals

H, W, N = 20, 30, 6


def box(x0, y0, x1, y1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return encode(m)


def make_pred(frame_tracks=True, windows=()):
    # track 1: a 10x10 box moving right by 1 px per frame, present on every frame, steady score
    t1 = Track(1, 1, 0.9, [box(i, 0, i + 10, 10) for i in range(N)], [0.9] * N, query=3)
    # track 2: present on frames 2..4, score drops from 0.8 to 0.3 on frame 3, jumps position on frame 4
    m2 = [None, None, box(0, 10, 10, 20), box(0, 10, 10, 20), box(20, 10, 30, 20), None]
    t2 = Track(2, 2, 0.6, m2, [None, None, 0.8, 0.3, 0.7, None], query=5)
    fts = None
    if frame_tracks:
        # frame-level version of track 1: identical except frame 5 where it is half the size
        fm = [box(i, 0, i + 10, 10) for i in range(N)]
        fm[5] = box(5, 0, 10, 10)
        fts = [Track(1, 1, 0.8, fm, [0.8] * N)]
    return VideoPrediction("sync", N, H, W, ["cat", "dog"], [t1, t2], frame_tracks=fts, windows=list(windows))


def test_mask_iou_by_hand():
    assert mask_iou(box(0, 0, 10, 10), box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert mask_iou(box(0, 0, 10, 10), None) == 0.0
    assert np.isnan(mask_iou(None, None))


def test_frame_video_lanes():
    pred = make_pred()
    lanes = frame_video_lanes(pred, 1)
    assert lanes.frame_track_id == 1
    np.testing.assert_allclose(lanes.video_scores, [0.9] * N)
    np.testing.assert_allclose(lanes.frame_scores, [0.8] * N)
    np.testing.assert_allclose(lanes.iou, [1, 1, 1, 1, 1, 0.5])
    lanes2 = frame_video_lanes(pred, 2)
    assert lanes2.frame_track_id is None or lanes2.frame_track_id == 1
    assert np.isnan(lanes2.video_scores[0]) and lanes2.video_scores[3] == pytest.approx(0.3)


def test_link_by_iou_when_ids_differ():
    pred = make_pred()
    pred.frame_tracks[0].id = 77
    assert link_frame_track(pred, pred.tracks[0]).id == 77
    # track 2 never overlaps the frame track: no link
    assert link_frame_track(pred, pred.tracks[1]) is None


def test_empty_masks_count_as_absent():
    # the engine writes empty RLEs on processed frames where an object is not predicted
    empty = encode(np.zeros((H, W), bool))
    t = Track(9, 1, 0.5, [empty, box(0, 0, 4, 4), empty, None], [0.5, 0.5, 0.5, None])
    assert presence(t).tolist() == [False, True, False, False]
    assert track_events([t]).tolist() == [1]
    assert np.isnan(mask_iou(empty, None)) and mask_iou(empty, box(0, 0, 4, 4)) == 0.0


def test_track_events_and_navigation():
    pred = make_pred()
    ev = track_events(pred.tracks)
    # track 1: 0 and 5; track 2: 2 and 4
    assert ev.tolist() == [0, 2, 4, 5]
    assert next_event(ev, 0, +1) == 2
    assert next_event(ev, 2, +1) == 4
    assert next_event(ev, 5, +1) is None
    assert next_event(ev, 4, -1) == 2
    assert next_event(ev, 0, -1) is None


def test_review_queue_ranks_the_by_hand_cues():
    pred = make_pred()
    q = review_queue(pred)
    by_frame = {it.frame: it for it in q}
    # frame 4: track 2 jumps to a disjoint box -> IoU 0 -> cue 1.0 (strongest)
    assert by_frame[4].score == pytest.approx(1.0)
    assert any("mask changes" in r for r in by_frame[4].reasons)
    assert by_frame[4].kinds[0] == "mask jump" and by_frame[4].track_ids == [2]
    # frame 3: score drop 0.5 -> cue min(1, 2*0.5) = 1.0
    assert by_frame[3].score == pytest.approx(1.0)
    assert any("score drops 0.80 → 0.30" in r for r in by_frame[3].reasons)
    # frame 5: frame/video IoU 0.5 -> 0.5 disagreement; track 2 vanishes with last score 0.7 -> 0.85
    assert by_frame[5].score == pytest.approx(0.85)
    assert any("vanishes" in r for r in by_frame[5].reasons)
    assert any("disagree" in r for r in by_frame[5].reasons)
    # frame 2: track 2 appears with score 0.8 -> 0.9
    assert by_frame[2].score == pytest.approx(0.9)
    # frames 0 and 1 have nothing worth a look (track 1 moves 1 px: IoU 9/11 -> 0.18 < 0.3)
    assert 0 not in by_frame and 1 not in by_frame
    scores = [it.score for it in q]
    assert scores == sorted(scores, reverse=True)
    assert q[0].frame in (3, 4)


def test_frame_video_class_disagreement_is_flagged_once():
    pred = make_pred()
    pred.frame_tracks[0].category_id = 2  # frame level says dog for the whole of track 1
    flagged = [it for it in review_queue(pred) if any("frame level says dog" in r for r in it.reasons)]
    assert [it.frame for it in flagged] == [0] and "frame/video disagreement" in flagged[0].kinds


def test_class_flip_between_windows():
    K = 2
    vp0 = np.zeros((2, 8, K + 1))
    vp0[-1, 3] = [0.9, 0.05, 0.05]
    vp1 = np.zeros((2, 8, K + 1))
    vp1[-1, 3] = [0.1, 0.85, 0.05]
    wins = [WindowInternals(0, 3, video_probs=vp0, track_queries={1: 3}),
            WindowInternals(3, 6, video_probs=vp1, track_queries={1: 3})]
    pred = make_pred(frame_tracks=False, windows=wins)
    by_frame = {it.frame: it for it in review_queue(pred)}
    assert any("class flips cat → dog" in r for r in by_frame[3].reasons)


def test_aggregation_mass_both_directions():
    L, T, Nk, Nv, Nf = 2, 3, 2, 4, 5
    rng = np.random.default_rng(0)
    f2v = rng.random((L, Nv, T * Nk))
    f2v /= f2v.sum(-1, keepdims=True)
    v2f_sel = np.array([[3, 0], [1, 2]])  # layer 0 selects query 3; layer 1 does not
    v2f = rng.random((L, T, Nf, Nk))
    v2f /= v2f.sum(-1, keepdims=True)
    f2v_sel = np.arange(L * T * Nk).reshape(L, T, Nk) % Nf
    w = WindowInternals(0, 3, f2v_selected=f2v_sel, f2v_weights=f2v, v2f_selected=v2f_sel, v2f_weights=v2f,
                        track_queries={1: 3})
    pred = make_pred(frame_tracks=False, windows=[w])
    pred.num_frames = N
    m = aggregation_mass(pred, 1, "f2v")
    assert m.shape == (N, L)
    np.testing.assert_allclose(m[:3].sum(0), [1.0, 1.0])  # softmax over the window's keys
    np.testing.assert_allclose(m[1, 0], f2v[0, 3, 2:4].sum())
    assert np.isnan(m[3:]).all()
    r = aggregation_mass(pred, 1, "v2f")
    np.testing.assert_allclose(r[:3, 0], v2f[0, :, :, 0].mean(-1))
    np.testing.assert_allclose(r[:3, 1], 0.0)
    assert selected_frame_queries(pred, 2, 1).tolist() == f2v_sel[1, 2].tolist()
    assert selected_frame_queries(pred, 5, 0).size == 0


def test_reverse_weights_on_one_frame():
    L, T, Nk, Nf = 2, 3, 2, 5
    rng = np.random.default_rng(1)
    v2f = rng.random((L, T, Nf, Nk))
    v2f /= v2f.sum(-1, keepdims=True)
    sel = np.array([[3, 0], [1, 2]])
    f2v_sel = np.zeros((L, T, Nk), int)
    f2v_sel[-1, 1] = [4, 2]
    w = WindowInternals(0, 3, v2f_selected=sel, v2f_weights=v2f, f2v_selected=f2v_sel, track_queries={1: 3})
    pred = make_pred(frame_tracks=False, windows=[w])
    out, vq = reverse_weights(pred, 1, 1)
    np.testing.assert_allclose(out[:, 0], v2f[0, 1, :, 0])
    np.testing.assert_allclose(out[:, 1], 0.0)
    assert vq == [1, 2]
    assert reverse_weights(pred, 1, 4) is None
    per_frame = selected_frame_queries_all(pred)
    assert per_frame[1] == [4, 2] and per_frame[4] == []
