"""The analysis widgets of issue 12 (aggregation weights that compare across windows, review reasons, compare
panes that fill the dock with labels that never overlap). Grabs go to $SHOTS_DIR when it is set."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from widgets.aggregation_view import AggregationView, normalise


def _show(qtbot, w, width, height):
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    qtbot.waitExposed(w)
    return w


def _shot(w, name):
    d = os.environ.get("SHOTS_DIR")
    if d:
        w.grab().save(str(Path(d) / f"{name}.png"))


def _windowed(n=39, t=12, layers=3, seed=0):
    """f2v-like mass: sums to 1 over the frames of each window (the last one short)."""
    rng = np.random.default_rng(seed)
    w = np.zeros((n, layers))
    wins = [(a, min(n, a + t)) for a in range(0, n, t)]
    for a, b in wins:
        x = rng.random((b - a, layers)) + 0.5
        w[a:b] = x / x.sum(0)
    return w, wins


def test_even_share_compares_windows_of_any_length():
    w, wins = _windowed()
    assert wins[-1] == (36, 39)
    raw = normalise(w, "none")
    # as given, the 3-frame last window is about 4x brighter than a 12-frame one
    assert raw[36:].mean() / raw[:36].mean() == pytest.approx(4.0, rel=0.05)
    even = normalise(w, "even", wins)
    # as a multiple of an even share every window averages 1, whatever its length
    for a, b in wins:
        np.testing.assert_allclose(even[a:b].mean(0), 1.0)
    # NaN stays NaN; without windows 'even' leaves the weights as given
    w[5] = np.nan
    assert np.isnan(normalise(w, "even", wins)[5]).all()
    np.testing.assert_allclose(normalise(w, "even"), w)


def test_view_shows_even_share_caption_and_highlight(qtbot):
    ag = _show(qtbot, AggregationView(), 760, 320)
    w, wins = _windowed()
    w[20, :] = w[20, :] * 6      # the query leans on frame 20
    sel = [[f % 16, (f + 3) % 16] for f in range(39)]
    ag.set_forward(w, sel, "track 3 · video query 7", windows=wins)
    shown = ag.heatmap()
    np.testing.assert_allclose(shown, normalise(w, "even", wins).T)
    assert "even share" in ag.caption.text() and "frame 20" in ag.caption.text()
    assert "× even share" in ag.color_bar.getAxis("right").labelText
    ag.set_current_frame(4)
    ag.set_highlight(7)
    texts = [ag.selected_list.item(i).text() for i in range(ag.selected_list.count())]
    assert texts == ["frame query 4", "◆ frame query 7"]
    assert ag.selected_list.item(1).font().bold()
    _shot(ag, "aggregation_forward")
    # uniform attention says so in words
    flat = np.zeros((24, 3))
    flat[:12], flat[12:] = 1 / 12, 1 / 12
    ag.set_forward(flat, [[] for _ in range(24)], "track 1", windows=[(0, 12), (12, 24)])
    assert "almost even" in ag.caption.text()
    # reverse: the selected track's frame query is an outlined column
    ag.set_direction("reverse")
    ag.set_reverse(np.random.default_rng(1).random((16, 3)), [2, 7])
    ag.set_highlight(5)
    assert ag._mark.isVisible() and ag._mark.rect().x() == 5
    assert "outlined column" in ag.caption.text()
    _shot(ag, "aggregation_reverse")
    ag.set_highlight(None)
    assert not ag._mark.isVisible()


def test_review_queue_shows_the_reasons_in_words(qtbot):
    from widgets.review_queue import ReviewItem, ReviewQueue

    rq = _show(qtbot, ReviewQueue(), 520, 360)
    items = [ReviewItem(5, 0.74, ["uncovered motion", "frame/video disagreement"],
                        ["85% of the moving pixels lie under no track (a missed or cut object?)",
                         "track 2: frame and video masks disagree (IoU 0.21)"]),
             ReviewItem(18, 0.57, ["mask jump"], ["track 1: mask jumps (IoU 0.07 with frame 17)"]),
             ReviewItem(9, 0.41, [], [])]
    rq.set_items(items)
    top = rq.tree.topLevelItem(0)
    assert top.text(3).startswith(items[0].details[0])
    assert rq.next_item(-1) == items[0].frame
    assert items[0].details[0] in rq.why.text() and items[0].details[1] in rq.why.text()
    _shot(rq, "review_queue")
    rq.tree.setCurrentItem(rq.tree.topLevelItem(2))
    assert "no single cue" in rq.why.text()
