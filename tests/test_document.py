"""app.document without Qt: tracks from a prediction, events, masks on screen and the mask cache (how they are
looked at, visibility and selection, is app.view_state: tests/test_view_state.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.document import TRACKS, Document, MaskCache, VideoRef, track_colour
from app.view_state import ViewState
from engine.data.masks import encode
from engine.types import Track, VideoPrediction, WindowInternals

H, W, N = 12, 16, 5


def masks_for(offset):
    out = []
    for i in range(N):
        m = np.zeros((H, W), bool)
        m[2:6, offset + i: offset + i + 4] = True
        out.append(m)
    return out


def make_pred(complete=True):
    a = masks_for(0)
    b = masks_for(8)
    t1 = Track(4, 1, 0.9, [encode(m) for m in a], [0.9] * N)
    t2 = Track(7, 2, 0.5, [None, encode(b[1]), encode(b[2]), None, None], [None, 0.5, 0.4, None, None])
    return VideoPrediction("sync", N, H, W, ["person", "car"], [t1, t2], checkpoint="x.pt", complete=complete,
                           windows=[WindowInternals(0, 3)]), a, b


def test_document_is_qt_free():
    code = ("import sys, app.document, app.view_state, engine.review; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'torch'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_prediction_fills_document_and_events():
    doc = Document()
    events = []
    doc.subscribe(lambda name, payload: events.append((name, payload)))
    doc.open_video(VideoRef("/v/clip.mp4", N, W, H, 25.0))
    pred, a, b = make_pred()
    doc.set_prediction(pred)
    assert [t.id for t in doc.tracks] == [4, 7]
    assert doc.run.checkpoint == "x.pt" and doc.run.complete and doc.run.frames_done == N
    assert doc.category_name(2) == "car" and doc.category_name(1) == "person"
    assert doc.category_name(9) == "class 9"
    np.testing.assert_array_equal(doc.presence(), [[1] * 5, [0, 1, 1, 0, 0]])
    assert doc.events().tolist() == [0, 1, 2, 4]
    assert doc.next_event(2, +1) == 4 and doc.next_event(1, -1) == 0
    assert (TRACKS, {"partial": False}) in events


def test_partial_prediction_records_frames_done():
    doc = Document()
    doc.open_video(VideoRef("/v/clip.mp4", N, W, H, 25.0))
    pred, _, _ = make_pred(complete=False)
    for t in pred.tracks:  # a cancelled run: masks (maybe empty) on the frames done, None after them
        t.masks[3:] = [None] * (N - 3)
    pred.windows = []
    doc.set_prediction(pred)
    assert not doc.run.complete and doc.run.frames_done == 3


def test_masks_on_screen_visibility_and_label_map():
    doc = Document()
    doc.open_video(VideoRef("/v/clip.mp4", N, W, H, 25.0))
    pred, a, b = make_pred()
    doc.set_prediction(pred)
    got = dict(doc.masks_at(1))
    np.testing.assert_array_equal(got[4].full(), a[1])   # masks come as crops of their bounding boxes
    np.testing.assert_array_equal(got[7].full(), b[1])
    ys, xs = np.nonzero(a[1])
    assert got[4].box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    np.testing.assert_array_equal(doc.mask(4, 1), a[1])
    assert [tid for tid, _ in doc.masks_at(0)] == [4]
    lm = doc.label_map(1)
    assert (lm == 4).sum() == a[1].sum() and (lm == 7).sum() == b[1].sum() and (lm == -1).sum() == H * W - 32
    view = ViewState()
    view.set_tracks(t.id for t in doc.tracks)
    seen = []
    view.events.visibility.connect(seen.append)
    view.set_visible(7, False)
    assert [tid for tid, _ in doc.masks_at(1, view.shows)] == [4]
    assert len(doc.masks_at(1)) == 2
    assert (doc.label_map(1, view.shows) == 7).sum() == 0
    view.set_overlays_visible(False)
    assert doc.masks_at(1, view.shows) == []
    assert seen == [7, None]


def test_selection_and_reset_on_new_video():
    doc = Document()
    view = ViewState()
    doc.subscribe(lambda name, payload: name == TRACKS and view.set_tracks(t.id for t in doc.tracks))
    doc.open_video(VideoRef("/v/a.mp4", N, W, H, 25.0))
    pred, _, _ = make_pred()
    doc.set_prediction(pred)
    view.select(7)
    assert view.selected == 7
    view.select(99)  # unknown id clears the selection
    assert view.selected is None
    view.select(7)
    view.set_visible(7, False)
    doc.open_video(VideoRef("/v/b.mp4", 3, W, H, 30.0))
    assert doc.tracks == [] and view.selected is None and view.hidden == set() and doc.num_frames == 3
    with pytest.raises(ValueError):
        doc.set_prediction(pred)  # 5 frames on a 3-frame video


def test_mask_cache_is_lru_and_bounded():
    m = np.zeros((10, 10), bool)
    m[:5] = True
    rle = encode(m)
    cache = MaskCache(max_bytes=250)  # room for two masks kept as 10x5 crops (50 bytes + 64 of bookkeeping)
    for k in range(3):
        crop = cache.get((k, 0), rle)
        assert crop.box == (0, 0, 10, 5)
        np.testing.assert_array_equal(crop.full(), m)
    assert len(cache) == 2 and cache.nbytes == 2 * (50 + 64)
    cache.get((1, 0), rle)
    assert cache.hits == 1 and cache.misses == 3
    cache.get((3, 0), rle)  # evicts (2, 0), the least recently used
    cache.get((1, 0), rle)
    assert cache.hits == 2


def test_document_decodes_only_what_is_asked():
    doc = Document()
    doc.open_video(VideoRef("/v/clip.mp4", N, W, H, 25.0))
    pred, _, _ = make_pred()
    doc.set_prediction(pred)
    doc.masks_at(2)
    assert len(doc.cache) == 2
    doc.masks_at(2)
    assert doc.cache.hits == 2


def test_track_colours_are_distinct_and_stable():
    cols = [track_colour(i) for i in range(12)]
    assert len(set(cols)) == 12 and track_colour(3) == cols[3]
