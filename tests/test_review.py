"""engine.review on hand-built predictions whose lanes, events and queue ranks can be worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.masks import encode
from engine.review import (
    DISAGREE,
    LOW_SCORE,
    MASK_JUMP,
    SPARSE,
    SWITCH,
    UNCOVERED,
    aggregation_mass,
    frame_cues,
    frame_video_lanes,
    link_frame_track,
    mask_iou,
    motion_evidence,
    next_event,
    presence,
    reverse_weights,
    review_queue,
    selected_frame_queries,
    selected_frame_queries_all,
    track_events,
    track_weights,
    uncovered_motion,
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


def test_track_weights_by_hand():
    pred = make_pred()
    w = track_weights(pred)
    # track 1 is the best (score 0.9, area 100); track 2: score 0.6, the same mean area -> 0.6 / 0.9
    assert w[1] == pytest.approx(1.0) and w[2] == pytest.approx(0.6 / 0.9)


def test_frame_cues_by_hand():
    pred = make_pred()
    c = frame_cues(pred)
    w1, w2 = 1.0, 0.6 / 0.9
    # frame 4: track 1 moves 1 px (IoU 9/11), track 2 jumps to a disjoint box (IoU 0)
    assert c.values[MASK_JUMP][4] == pytest.approx((w1 * (1 - 9 / 11) + w2 * 1.0) / (w1 + w2))
    # track 2 appears on frame 2 and vanishes after frame 4: events, as a share of all track weight, doubled
    assert c.values[SWITCH][2] == pytest.approx(2 * w2 / (w1 + w2))
    assert c.values[SWITCH][5] == pytest.approx(2 * w2 / (w1 + w2)) and c.values[SWITCH][1] == 0
    # frame 5: the frame track is half the video mask (IoU 0.5); track 2 has no frame-level partner
    assert c.values[DISAGREE][5] == pytest.approx(0.5) and c.values[DISAGREE][0] == 0
    # missing tracks: frames 2..4 hold all the weight, the others only track 1's
    np.testing.assert_allclose(c.values[SPARSE], [1 - w1 / (w1 + w2)] * 2 + [0, 0, 0] + [1 - w1 / (w1 + w2)])
    # low score: track 2 on frame 3 is at 0.3 against its best 0.8
    assert c.values[LOW_SCORE][3] > c.values[LOW_SCORE][2]
    assert not c.has_motion and np.all(c.values[UNCOVERED] == 0)


def test_review_queue_lists_every_frame_ranked_with_reasons():
    pred = make_pred()
    q = review_queue(pred)
    assert sorted(it.frame for it in q) == list(range(N))
    scores = [it.score for it in q]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert len(set(np.round(scores, 4))) > 2          # it varies within the video
    by_frame = {it.frame: it for it in q}
    # frame 4 (track 2 jumps) ranks above frame 3 (all tracks there, only a lower score)
    assert by_frame[4].score > by_frame[3].score
    assert any("mask jumps (IoU 0.00 with frame 3)" in r for r in by_frame[4].reasons)
    assert MASK_JUMP in by_frame[4].kinds and 2 in by_frame[4].track_ids
    assert any("track 2 appears" in r for r in by_frame[2].reasons)
    doc = by_frame[4].to_json()
    assert set(doc) >= {"frame", "uncertainty", "reasons"} and doc["frame"] == 4
    assert review_queue(pred, limit=2) == q[:2]


def test_uncovered_motion_flags_the_frame_where_no_track_covers_what_moves():
    n, h, w = 8, 48, 64
    frames = np.full((n, h, w, 3), 40, np.uint8)
    boxes = [(4 + 5 * i, 10, 16 + 5 * i, 22) for i in range(n)]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        frames[i, y0:y1, x0:x1] = 220
    motion = motion_evidence(frames)

    def rle(i):
        m = np.zeros((h, w), bool)
        x0, y0, x1, y1 = boxes[i]
        m[y0:y1, x0:x1] = True
        return encode(m)

    empty = encode(np.zeros((h, w), bool))
    masks_ = [rle(i) if i != 5 else empty for i in range(n)]         # the model misses the square on frame 5
    pred = VideoPrediction("video", n, h, w, ["sq"], [Track(1, 1, 0.9, masks_, [0.9] * n)])
    un = uncovered_motion(pred, motion)
    assert un[5] > 0.9 and np.all(np.delete(un, 5) < 0.2)
    q = review_queue(pred, motion)
    # Frame 5 tops the queue with the uncovered-motion reason (with the weights fitted to the EfficientNet model,
    # "missing tracks" says the same thing about that frame and outweighs it).
    assert q[0].frame == 5 and UNCOVERED in q[0].kinds
    assert any("moving pixels lie under no track" in r for r in q[0].reasons)


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
    assert by_frame[3].kinds[0] == SWITCH


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
