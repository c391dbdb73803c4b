"""The Qt views draw exactly what they are given and emit what the user did (offscreen, no torch)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from widgets import (
    PALETTE,
    AggregationView,
    CompareView,
    FrameVideoView,
    Lane,
    MaskOverlay,
    ReviewItem,
    ReviewQueue,
    Timeline,
    TrackList,
    TrackRow,
    VideoCanvas,
    track_color,
)
from widgets.colors import LANE_EMPTY
from widgets.track_list import COL_SCORE, COL_VISIBLE

GREY = 100


def _show(qtbot, w, width, height):
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    qtbot.waitExposed(w)
    return w


def _pt(p: QPointF) -> QPoint:
    return QPoint(round(p.x()), round(p.y()))


def _square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def canvas(qtbot):
    c = _show(qtbot, VideoCanvas(), 640, 400)
    frame = np.full((120, 160, 3), GREY, np.uint8)
    c.set_frame(frame)
    c.set_opacity(0.5)
    c.set_overlays(
        [
            MaskOverlay(7, _square(120, 160, 20, 60, 20, 60), (200, 40, 40), "person 0.90"),
            MaskOverlay(9, _square(120, 160, 40, 100, 40, 120), (40, 40, 200), "car 0.80", selected=True),
        ]
    )
    qtbot.wait(10)
    return c


# --------------------------------------------------------------------------------------------------- colours
def test_track_colors_are_stable_and_distinct():
    assert track_color(3) == track_color(3) == PALETTE[3]
    colors = [track_color(i) for i in range(200)]
    assert all(all(0 <= c <= 255 for c in rgb) for rgb in colors)
    assert len(set(colors[: len(PALETTE)])) == len(PALETTE)
    # Neighbouring ids never share a colour, even past the palette.
    assert all(colors[i] != colors[i + 1] for i in range(199))
    assert track_color(-1) == (128, 128, 128)


# ---------------------------------------------------------------------------------------------------- canvas
def test_canvas_composite_blends_track_colour_at_opacity(canvas):
    rgba = canvas.overlay_rgba()
    assert rgba.shape == (120, 160, 4)
    # Inside track 7 only (not its border): its colour at alpha 0.5.
    assert tuple(rgba[30, 30]) == (200, 40, 40, 128)
    # Selected track 9 is on top where they overlap, with a raised alpha: 0.5 + 0.5 * 0.35.
    assert tuple(rgba[80, 80]) == (40, 40, 200, round((0.5 + 0.5 * 0.35) * 255))
    assert rgba[110, 10, 3] == 0  # no mask
    canvas.set_opacity(0.2)
    assert canvas.overlay_rgba()[30, 30, 3] == round(0.2 * 255)


def test_canvas_outlines_and_selected_highlight(canvas):
    rgba = canvas.overlay_rgba()
    # Unselected track 7: a 1-px opaque outline in its colour on its boundary, fill just inside.
    assert tuple(rgba[20, 30]) == (200, 40, 40, 255)
    assert tuple(rgba[21, 30]) == (200, 40, 40, 128)
    # Selected track 9: white outline, 3 px wide, on its boundary (right edge x=119, bottom y=99).
    for x in (119, 118, 117):
        assert tuple(rgba[70, x]) == (255, 255, 255, 255)
    assert rgba[70, 115, 3] < 255
    canvas.set_show_outlines(False)
    assert tuple(canvas.overlay_rgba()[20, 30]) == (200, 40, 40, 128)


def test_canvas_region_composite_matches_whole_frame_reference(qtbot):
    from widgets.video_canvas import mask_index, outline_code, overlay_lut

    c = _show(qtbot, VideoCanvas(), 320, 240)
    c.set_frame(np.zeros((60, 90, 3), np.uint8))
    rng = np.random.default_rng(1)
    ovs = [
        MaskOverlay(1, _square(60, 90, 0, 25, 0, 30), (250, 0, 0)),  # touches the frame's corner
        MaskOverlay(2, rng.random((60, 90)) > 0.97, (0, 250, 0)),  # speckle
        MaskOverlay(3, np.zeros((60, 90), bool), (0, 0, 250)),  # empty: no label, no pixels
        MaskOverlay(4, _square(60, 90, 40, 60, 70, 90), (250, 250, 0), selected=True),
    ]
    c.set_overlays(ovs)
    index = mask_index(ovs, (60, 90))
    reference = np.take(overlay_lut(ovs, c.opacity), outline_code(index, ovs, True), axis=0)
    assert np.array_equal(c.overlay_rgba(), reference)
    assert len(c.label_texts()) == 3
    assert c.track_at(5, 5) == 1 and c.track_at(80, 50) == 4 and c.track_at(45, 30) in (-1, 2)


def _outline_reference(idx: np.ndarray, overlays, selected: list[int]) -> np.ndarray:
    """outline_code's rule written out in numpy: an edge is a masked pixel with a 4-neighbour of another
    index; the selected masks' edges grow 2 px inwards (a 5x5 square)."""
    import cv2

    edge = np.zeros(idx.shape, bool)
    edge[1:] |= idx[1:] != idx[:-1]
    edge[:-1] |= idx[1:] != idx[:-1]
    edge[:, 1:] |= idx[:, 1:] != idx[:, :-1]
    edge[:, :-1] |= idx[:, 1:] != idx[:, :-1]
    edge &= idx > 0
    if selected:
        in_sel = np.isin(idx, selected)
        edge |= cv2.dilate((edge & in_sel).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & in_sel
    return idx.astype(np.int64) + edge * (len(overlays) + 1)


@pytest.mark.parametrize("n, selected", [(20, [20]), (20, []), (9, [3, 7]), (127, [127]), (200, [5])])
def test_outline_code_matches_the_rule_in_bytes_and_in_uint16(n, selected):
    """Up to 127 overlays the codes are bytes; beyond, uint16: both give the reference's codes, pixel for
    pixel, on a busy index image (touching masks, frame edges)."""
    from widgets.video_canvas import mask_index, outline_code

    rng = np.random.default_rng(n)
    h, w = 90, 130
    ovs = []
    for k in range(n):
        m = np.zeros((h, w), bool)
        y, x = rng.integers(-5, h), rng.integers(-5, w)
        m[max(0, y):y + rng.integers(3, 30), max(0, x):x + rng.integers(3, 30)] = True
        ovs.append(MaskOverlay(k + 1, m, (10, 20, 30), selected=(k + 1) in selected))
    index = mask_index(ovs, (h, w))
    assert index.dtype == (np.uint8 if n <= 255 else np.uint16)
    code = outline_code(index, ovs, True)
    assert code.dtype == (np.uint8 if n <= 127 else np.uint16)
    assert np.array_equal(code.astype(np.int64), _outline_reference(index, ovs, selected))
    assert (code > n + 1).any() and (code == 0).any()


def test_canvas_pixels_on_screen_are_blended(canvas, qtbot):
    img = canvas.grab().toImage()
    p = canvas.map_image_to_widget(30.5, 30.5)
    c = QColor(img.pixel(_pt(p)))
    expected = [0.5 * GREY + 0.5 * v for v in (200, 40, 40)]
    assert np.allclose([c.red(), c.green(), c.blue()], expected, atol=3)
    canvas.set_overlays_visible(False)
    c = QColor(canvas.grab().toImage().pixel(_pt(p)))
    assert np.allclose([c.red(), c.green(), c.blue()], GREY, atol=2)


@pytest.mark.parametrize("native", [True, False])
def test_canvas_shows_the_frames_colours_on_screen(qtbot, monkeypatch, native):
    """Frames and overlays go to Qt in its own byte order (B, G, R, X; premultiplied B, G, R, A), or, where
    that is not the machine's (`native` False), through pyqtgraph as RGBA: on screen every channel is where it
    belongs either way, for an RGB frame, a blended mask over it and a grey frame."""
    import widgets.video_canvas as vc

    monkeypatch.setattr(vc, "NATIVE_BGRA", native)
    c = _show(qtbot, VideoCanvas(), 400, 300)
    frame = np.zeros((60, 90, 3), np.uint8)
    frame[:, :30] = (220, 30, 10)
    frame[:, 30:60] = (10, 200, 40)
    frame[:, 60:] = (20, 50, 230)
    c.set_frame(frame)
    img = c.grab().toImage()
    for x, rgb in ((15, (220, 30, 10)), (45, (10, 200, 40)), (75, (20, 50, 230))):
        px = QColor(img.pixel(_pt(c.map_image_to_widget(x + 0.5, 30.5))))
        assert np.allclose([px.red(), px.green(), px.blue()], rgb, atol=1), (x, px.getRgb())
    c.set_opacity(0.5)
    c.set_show_outlines(False)
    c.set_overlays([MaskOverlay(1, _square(60, 90, 10, 50, 35, 55), (250, 250, 0))])
    px = QColor(c.grab().toImage().pixel(_pt(c.map_image_to_widget(45.5, 30.5))))
    want = [0.5 * a + 0.5 * b for a, b in zip((10, 200, 40), (250, 250, 0), strict=True)]
    assert np.allclose([px.red(), px.green(), px.blue()], want, atol=3), px.getRgb()
    c.set_overlays([])
    c.set_frame(np.full((60, 90), 77, np.uint8))
    px = QColor(c.grab().toImage().pixel(_pt(c.map_image_to_widget(45.5, 30.5))))
    assert np.allclose([px.red(), px.green(), px.blue()], 77, atol=1)


def test_canvas_draws_the_masks_box_where_the_masks_are(qtbot):
    """The overlay image covers only the box around the masks and is placed at it: on screen, a small mask
    far from the frame's corner is coloured exactly over its pixels, and nothing is drawn beside it."""
    c = _show(qtbot, VideoCanvas(), 400, 300)
    c.set_frame(np.zeros((150, 200, 3), np.uint8))
    c.set_opacity(1.0)
    c.set_show_labels(False)
    c.set_overlays([MaskOverlay(1, _square(150, 200, 90, 110, 140, 170), (250, 0, 0))])
    qtbot.wait(10)
    img = c.grab().toImage()

    def red_at(x, y):
        return QColor(img.pixel(_pt(c.map_image_to_widget(x, y)))).red()

    assert red_at(155.5, 100.5) > 200 and red_at(141.5, 91.5) > 200   # inside, near the box's corner
    assert red_at(135.5, 100.5) < 30 and red_at(155.5, 85.5) < 30 and red_at(175.5, 115.5) < 30
    assert c.overlay_rgba().shape == (150, 200, 4) and c.overlay_rgba()[100, 155, 3] == 255


def test_canvas_hover_reports_topmost_track(canvas, qtbot):
    seen = []
    canvas.hovered.connect(lambda t, x, y: seen.append((t, x, y)))
    qtbot.mouseMove(canvas.viewport, _pt(canvas.map_image_to_widget(30.5, 30.5)))
    qtbot.mouseMove(canvas.viewport, _pt(canvas.map_image_to_widget(50.5, 50.5)))  # overlap: 9 on top
    qtbot.mouseMove(canvas.viewport, _pt(canvas.map_image_to_widget(150.5, 10.5)))  # no mask
    tracks = [s[0] for s in seen]
    assert tracks[-3:] == [7, 9, -1]
    x, y = seen[-3][1:]
    assert abs(x - 30) <= 1 and abs(y - 30) <= 1


def test_canvas_click_emits_position_and_track(canvas, qtbot):
    clicks, tracks = [], []
    canvas.clicked.connect(lambda x, y, b: clicks.append((x, y, b)))
    canvas.track_clicked.connect(tracks.append)
    qtbot.mouseClick(
        canvas.viewport, Qt.MouseButton.LeftButton, pos=_pt(canvas.map_image_to_widget(30.5, 30.5))
    )
    qtbot.mouseClick(
        canvas.viewport, Qt.MouseButton.RightButton, pos=_pt(canvas.map_image_to_widget(90.5, 80.5))
    )
    assert [c[2] for c in clicks] == ["left", "right"]
    assert abs(clicks[0][0] - 30.5) < 1 and abs(clicks[0][1] - 30.5) < 1
    assert tracks == [7]  # right clicks are assist clicks, not selection


def test_canvas_labels_and_empty_state(qtbot):
    c = _show(qtbot, VideoCanvas(), 320, 240)
    assert c._message.isVisible() and "Ctrl+O" in c._message.text()
    c.set_frame(np.zeros((50, 80, 3), np.uint8))
    assert not c._message.isVisible()
    c.set_overlays([MaskOverlay(3, _square(50, 80, 10, 20, 30, 40), (0, 200, 0), "dog 0.7")])
    assert c.label_texts() == ["3 dog 0.7"]
    assert c.label_anchors() == [(35.5, 10.0)]  # middle of the mask's top row (pixel 35's centre)
    c.set_overlays([MaskOverlay(-1, _square(50, 80, 10, 20, 30, 40), (255, 255, 255), "frame query 12")])
    assert c.label_texts() == ["frame query 12"]
    c.set_show_labels(False)
    assert c.label_texts() == [] and c.label_rects() == [None]
    with pytest.raises(ValueError, match="80x50"):
        c.set_overlays([MaskOverlay(1, np.zeros((10, 10), bool), (1, 2, 3))])
    c.set_title("sync · AP 41.2")
    assert c.title() == "sync · AP 41.2"


def test_canvas_labels_sit_inside_their_masks_and_do_not_overlap(qtbot):
    c = _show(qtbot, VideoCanvas(), 640, 400)
    h, w = 120, 160
    c.set_frame(np.zeros((h, w, 3), np.uint8))
    full = np.ones((h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    lower_right = xx + yy >= 150  # a triangle: its bounding box's top-left corner is not in the mask
    ring = (np.hypot(xx - 80, yy - 60) < 50) & (np.hypot(xx - 80, yy - 60) > 30)
    overlays = [MaskOverlay(i, full, PALETTE[i], f"whole frame {i}") for i in range(4)]
    overlays += [
        MaskOverlay(4, lower_right, PALETTE[4], "triangle"),
        MaskOverlay(5, ring, PALETTE[5], "ring"),
        MaskOverlay(6, _square(h, w, h - 1, h, 10, 12), PALETTE[6], "bottom row"),
    ]
    c.set_overlays(overlays)
    qtbot.wait(10)
    anchors = c.label_anchors()
    for ov, (x, y) in zip(overlays, anchors, strict=True):
        assert ov.mask[int(y), int(x)], (ov.track_id, x, y)  # each label points into its own mask
    assert anchors[0] == (80.5, 0.0) and anchors[4] == (155.5, 0.0)  # not the bounding box corner (0, 0)
    frame_rect = QRectF(c.map_image_to_widget(0, 0), c.map_image_to_widget(w, h)).normalized()
    rects = c.label_rects()
    assert all(r is not None for r in rects)
    for i, r in enumerate(rects):
        assert frame_rect.adjusted(-0.5, -0.5, 0.5, 0.5).contains(r), (i, r, frame_rect)
        for j in range(i):
            assert not r.intersects(rects[j].adjusted(0.5, 0.5, -0.5, -0.5)), (i, j)
    # The whole-frame masks' labels are stacked at the top centre, one below the other.
    tops = [rects[i].top() for i in range(4)]
    assert tops == sorted(tops) and tops[0] == pytest.approx(frame_rect.top(), abs=1.5)
    assert all(abs(rects[i].center().x() - frame_rect.center().x()) < 2 for i in range(4))


def test_canvas_update_is_fast_for_720p(qtbot):
    c = _show(qtbot, VideoCanvas(), 640, 360)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (720, 1280, 3), np.uint8)
    yy, xx = np.mgrid[:720, :1280]
    ovs = [
        MaskOverlay(i, (xx - 100 - 110 * i) ** 2 + (yy - 200 - 40 * i) ** 2 < 90**2, track_color(i), "x")
        for i in range(10)
    ]
    c.set_frame(frame)
    c.set_overlays(ovs)
    t = time.perf_counter()
    for _ in range(5):
        c.set_frame(frame)
        c.set_overlays(ovs)
    per_frame = (time.perf_counter() - t) / 5
    assert per_frame < 0.25, per_frame  # ~15 ms on an idle core; generous for a loaded shared machine


# -------------------------------------------------------------------------------------------------- timeline
def _lanes(num_frames):
    p1 = np.zeros(num_frames, bool)
    p1[10:40] = True
    s1 = np.linspace(0, 1, num_frames)
    p2 = np.zeros(num_frames, bool)
    p2[50:90] = True
    return [Lane(1, (200, 100, 0), p1, s1, "1 person"), Lane(4, (0, 100, 200), p2, None, "4 car")]


def test_timeline_image_shows_presence_and_score(qtbot):
    tl = _show(qtbot, Timeline(), 600, 160)
    tl.set_lanes(100, _lanes(100))
    img = tl.lane_image()
    assert img.shape == (2, 100, 4)
    assert tuple(img[0, 5, :3]) == LANE_EMPTY
    s = np.linspace(0, 1, 100)[30]
    b = 0.3 + 0.7 * s
    assert np.allclose(img[0, 30, :3], np.array([200, 100, 0]) * b, atol=1)
    assert tuple(img[1, 60, :3]) == (0, 100, 200)  # no scores: full colour
    assert tuple(img[1, 95, :3]) == LANE_EMPTY
    assert (img[0, :, :3] != LANE_EMPTY).any(axis=1).sum() == 30


def test_timeline_click_seeks_and_selects_lane(qtbot):
    tl = _show(qtbot, Timeline(), 600, 160)
    tl.set_lanes(100, _lanes(100))
    qtbot.wait(10)
    frames, tracks = [], []
    tl.frame_requested.connect(frames.append)
    tl.track_selected.connect(tracks.append)
    pos = QPoint(round(tl.frame_to_widget_x(37)), round(tl.lane_to_widget_y(1)))
    qtbot.mouseClick(tl.viewport, Qt.MouseButton.LeftButton, pos=pos)
    assert frames == [37]
    assert tracks == [4]
    qtbot.mouseMove(tl.viewport, QPoint(round(tl.frame_to_widget_x(20)), round(tl.lane_to_widget_y(0))))
    qtbot.wait(15)
    qtbot.mouseMove(tl.viewport, QPoint(round(tl.frame_to_widget_x(30)), round(tl.lane_to_widget_y(0))))
    assert tl.readout() == f"frame 30 · 1 person · score {np.linspace(0, 1, 100)[30]:.2f}"
    tl.set_current_frame(37)
    tl.set_selected(4)
    assert tl.current_frame == 37 and tl.selected == 4
    assert tl._selection.isVisible() and tl._selection.rect().top() == 1


def test_timeline_drag_scrubs_and_wheel_zooms_time_only(qtbot):
    from PySide6.QtCore import QPointF as P
    from PySide6.QtGui import QWheelEvent

    tl = _show(qtbot, Timeline(), 600, 160)
    tl.set_lanes(100, _lanes(100))
    qtbot.wait(10)
    frames = []
    tl.frame_requested.connect(frames.append)
    y = round(tl.lane_to_widget_y(0))
    qtbot.mousePress(tl.viewport, Qt.MouseButton.LeftButton, pos=QPoint(round(tl.frame_to_widget_x(10)), y))
    for f in (20, 40, 60):
        qtbot.mouseMove(tl.viewport, QPoint(round(tl.frame_to_widget_x(f)), y))
        qtbot.wait(15)  # pyqtgraph rate-limits scene move events
    qtbot.mouseRelease(tl.viewport, Qt.MouseButton.LeftButton, pos=QPoint(round(tl.frame_to_widget_x(60)), y))
    assert frames[0] == 10 and frames[-1] == 60 and frames == sorted(frames)
    (x0, x1), (y0, y1) = tl._vb.viewRange()
    pos = P(tl.frame_to_widget_x(50), y)
    wheel = QWheelEvent(
        pos,
        tl.viewport.mapToGlobal(pos),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(tl.viewport, wheel)
    (nx0, nx1), (ny0, ny1) = tl._vb.viewRange()
    assert nx1 - nx0 < (x1 - x0) * 0.9  # zoomed in on time
    assert (ny0, ny1) == pytest.approx((y0, y1))  # lanes untouched


def test_timeline_scales_to_200_tracks_by_10000_frames(qtbot):
    tl = _show(qtbot, Timeline(), 900, 300)
    rng = np.random.default_rng(0)
    n, f = 200, 10_000
    lanes = []
    for i in range(n):
        p = np.zeros(f, bool)
        a = int(rng.integers(0, f - 100))
        p[a : a + int(rng.integers(50, f - a))] = True
        lanes.append(Lane(i, track_color(i), p, rng.random(f).astype(np.float32), f"{i} person"))
    # Best of two: the machine running the suite is shared, and one scheduling hiccup is not the view's cost
    # (about 0.1 s on one idle core).
    elapsed = []
    for _ in range(2):
        t = time.perf_counter()
        tl.set_lanes(f, lanes)
        elapsed.append(time.perf_counter() - t)
    assert min(elapsed) < 0.5, elapsed
    assert tl.lane_image().shape == (n, f, 4)
    # 200 lanes do not fit in 300 px: a scroll bar appears and scrolls the lanes.
    assert tl._scroll.isVisible()
    tl._scroll.setValue(50)
    assert tl._vb.viewRange()[1][0] == pytest.approx(50)
    t = time.perf_counter()
    for i in range(200):
        tl.set_current_frame(i * 50)
    assert (time.perf_counter() - t) / 200 < 0.005
    t = time.perf_counter()
    tl.grab()  # first paint converts the 200 x 10,000 image: ~0.05 s idle
    assert time.perf_counter() - t < 1.0


# ------------------------------------------------------------------------------------------------ track list
def _rows():
    pres = np.zeros(50, bool)
    pres[5:20] = True
    return [
        TrackRow(1, (230, 25, 75), "person", 0.9, pres),
        TrackRow(2, (60, 180, 75), "car", 0.95, pres),
        TrackRow(5, (0, 130, 200), "dog", 0.4, ~pres, visible=False),
    ]


def test_track_list_rows_sorting_and_selection(qtbot):
    tl = _show(qtbot, TrackList(), 420, 200)
    tl.set_tracks(_rows())
    assert tl.track_ids() == [1, 2, 5]
    m = tl.proxy
    assert [m.index(r, 2).data() for r in range(3)] == ["person", "car", "dog"]
    assert Qt.CheckState(m.index(2, COL_VISIBLE).data(Qt.ItemDataRole.CheckStateRole)) == Qt.CheckState.Unchecked
    tl.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert tl.track_ids() == [2, 1, 5]
    selected = []
    tl.track_selected.connect(selected.append)
    tl.set_selected(1)  # silent
    assert selected == [] and tl.selected == 1
    qtbot.mouseClick(tl.view.viewport(), Qt.MouseButton.LeftButton, pos=tl.row_rect(5).center())
    assert selected == [5]
    tl.set_current_frame(25)
    assert tl._strip_delegate.current_fraction == pytest.approx(25.5 / 50)
    assert not tl._empty.isVisible()
    tl.set_tracks([])
    assert tl._empty.isVisible() and "No tracks" in tl._empty.text()


def test_track_list_checkbox_emits_visibility(qtbot):
    tl = _show(qtbot, TrackList(), 420, 200)
    tl.set_tracks(_rows())
    changes = []
    tl.visibility_changed.connect(lambda t, v: changes.append((t, v)))
    r = tl.row_rect(2, COL_VISIBLE)
    qtbot.mouseClick(tl.view.viewport(), Qt.MouseButton.LeftButton, pos=r.center())
    qtbot.mouseClick(tl.view.viewport(), Qt.MouseButton.LeftButton, pos=tl.row_rect(5, COL_VISIBLE).center())
    assert changes == [(2, False), (5, True)]
    tl.set_visible(2, True)  # from the app: silent
    assert changes == [(2, False), (5, True)]


def test_presence_strip_keeps_single_frames_visible():
    from widgets.track_list import presence_strip

    p = np.zeros(10_000, bool)
    p[5000] = True
    img = presence_strip(p, (255, 0, 0), bins=100)
    reds = [x for x in range(100) if QColor(img.pixel(x, 0)).red() == 255]
    assert reds == [50]


def test_presence_strip_short_video_draws_contiguous_blocks(qtbot):
    from widgets.track_list import COL_PRESENCE, presence_pixels

    p = np.ones(12, bool)
    p[5] = False
    for width in (11, 12, 50, 170, 179, 1000):
        px = presence_pixels(p, width)
        runs = np.flatnonzero(np.diff(np.concatenate([[0], px.astype(int), [0]])))
        assert len(runs) == (4 if width >= 12 else 2 * (1 + (not px.all()))), width
        assert px.sum() == pytest.approx(width * 11 / 12, abs=1.0), width
    # Every frame gets the same width (+-1 px) and a lone frame is one block.
    one = np.zeros(12, bool)
    one[7] = True
    assert presence_pixels(one, 170).sum() in (14, 15)
    assert np.array_equal(np.flatnonzero(presence_pixels(one, 120)), np.arange(70, 80))
    # On screen: the red strip of a 12-frame track is two solid blocks with one gap (frame 5).
    tl = _show(qtbot, TrackList(), 420, 200)
    tl.set_tracks([TrackRow(1, (255, 0, 0), "person", 0.9, p)])
    tl.set_current_frame(-1)
    qtbot.wait(10)
    img = tl.view.viewport().grab().toImage()
    r = tl.row_rect(1, COL_PRESENCE)
    y = r.center().y()
    red = np.array([img.pixelColor(x, y).red() > 200 and img.pixelColor(x, y).green() < 60
                    for x in range(r.left(), r.right() + 1)])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], red.astype(int), [0]])))
    assert len(edges) == 4, red.astype(int)
    gap = edges[2] - edges[1]
    assert abs(gap - (r.width() - 8) / 12) <= 1.5  # one frame's width of gap, no dashes
    tl.set_current_frame(5)  # the tick sits inside frame 5's (empty) block
    qtbot.wait(10)
    img = tl.view.viewport().grab().toImage()
    white = [x for x in range(r.left() + 5, r.right() - 4) if img.pixelColor(x, y).lightness() > 220]
    assert len(white) == 1 and r.left() + edges[1] <= white[0] < r.left() + edges[2]


# ---------------------------------------------------------------------------------------------- review queue
def test_review_queue_ranks_activates_and_walks(qtbot):
    rq = _show(qtbot, ReviewQueue(), 420, 200)
    rq.set_items(
        [
            ReviewItem(12, 0.3, ["mask jump"]),
            ReviewItem(40, 0.9, ["score drop"]),
            ReviewItem(7, 0.6, ["class flip", "track appears"]),
        ]
    )
    assert [it.frame for it in rq.items()] == [40, 7, 12]
    frames = []
    rq.frame_requested.connect(frames.append)
    item = rq.tree.topLevelItem(1)
    assert item.text(1) == "7" and item.text(3) == "class flip, track appears"
    qtbot.mouseClick(rq.tree.viewport(), Qt.MouseButton.LeftButton, pos=rq.tree.visualItemRect(item).center())
    assert frames == [7]
    # U from frame 7 (rank 2) -> rank 3, then wraps to the unvisited rank 1, then all visited: keep walking.
    assert rq.next_item(7) == 12
    assert rq.next_item(12) == 40
    assert rq.visited() == {7, 12, 40}
    assert rq.next_item(40) == 7
    assert frames == [7]  # next_item is silent
    assert "3 frames to review" in rq.status()
    rq.set_items([])
    assert rq.next_item(0) is None
    assert "Nothing to review" in rq.status()


def test_review_queue_not_run_status(qtbot):
    rq = _show(qtbot, ReviewQueue(), 420, 200)
    assert "run SyncVIS" in rq.status()  # before any run
    rq.set_items([ReviewItem(3, 0.5, ["mask jump"])])
    assert rq.status() == "1 frame to review · 1 not visited · U jumps to the next"
    rq.set_items([])
    rq.set_status("No review queue yet: run SyncVIS to rank uncertain frames")
    assert rq.status() == "No review queue yet: run SyncVIS to rank uncertain frames"
    rq.set_items([ReviewItem(3, 0.5, ["mask jump"]), ReviewItem(9, 0.4, [])])
    assert rq.status() == "2 frames to review · 2 not visited · U jumps to the next"


# ----------------------------------------------------------------------------------------------- aggregation
def test_aggregation_heatmap_equals_normalised_weights(qtbot):
    ag = _show(qtbot, AggregationView(normalise="layer"), 700, 300)
    assert ag._stack.currentIndex() == 0 and "sync mode" in ag._message.text()
    rng = np.random.default_rng(0)
    w = rng.random((20, 6))
    sel = [[f, f + 1, 50] for f in range(20)]
    ag.set_forward(w, sel, "video query 3")
    assert ag._stack.currentIndex() == 1
    shown = ag.heatmap()
    assert shown.shape == (6, 20)
    assert np.allclose(shown, (w / w.sum(axis=0)).T)
    assert np.allclose(ag.image_item.image, shown)
    ag.set_current_frame(4)
    assert [ag.selected_list.item(i).text() for i in range(ag.selected_list.count())] == [
        "frame query 4",
        "frame query 5",
        "frame query 50",
    ]
    # Frames without internals (NaN) stay NaN (drawn transparent), the others still sum to 1 per layer.
    w[15:] = np.nan
    ag.set_forward(w, sel, "video query 3")
    shown = ag.heatmap()
    assert np.isnan(shown[:, 15:]).all() and np.allclose(shown[:, :15].sum(axis=1), 1.0)
    ag.clear("nothing here")
    assert ag._stack.currentIndex() == 0 and ag._message.text() == "nothing here"


def test_aggregation_interaction(qtbot):
    ag = _show(qtbot, AggregationView(), 700, 300)  # default: weights as given
    w = np.arange(60, dtype=float).reshape(10, 6)
    ag.set_forward(w, [[f * 2, 99] for f in range(10)], "video query 1")
    ag.set_current_frame(3)
    qtbot.wait(10)
    assert np.allclose(ag.heatmap(), w.T)
    hovered, frames, directions = [], [], []
    ag.frame_query_hovered.connect(lambda f, q: hovered.append((f, q)))
    ag.frame_requested.connect(frames.append)
    ag.direction_changed.connect(directions.append)
    rect = ag.selected_list.visualItemRect(ag.selected_list.item(1))
    qtbot.mouseMove(ag.selected_list.viewport(), rect.center())
    qtbot.mouseClick(ag.selected_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert (3, 99) in hovered
    qtbot.mouseClick(ag.viewport, Qt.MouseButton.LeftButton, pos=_pt(ag.cell_to_widget(7, 2)))
    assert frames == [7]
    # Reverse direction: frame queries x layers on the current frame; a click on a column names that query.
    qtbot.mouseClick(ag._rev_btn, Qt.MouseButton.LeftButton)
    assert directions == ["reverse"] and ag.direction == "reverse"
    assert ag._stack.currentIndex() == 0  # no reverse weights yet
    rw = np.ones((100, 6))
    ag.set_reverse(rw, [1, 5])
    assert ag.heatmap().shape == (6, 100)
    qtbot.wait(10)
    hovered.clear()
    qtbot.mouseClick(ag.viewport, Qt.MouseButton.LeftButton, pos=_pt(ag.cell_to_widget(42, 1)))
    assert hovered[-1] == (3, 42)


# ------------------------------------------------------------------------------------- compare / frame-video
def test_compare_view_panes_titles_and_linked_zoom(qtbot):
    cv = _show(qtbot, CompareView(num_panes=2), 900, 300)
    frame = np.full((60, 80, 3), 50, np.uint8)
    ov = [MaskOverlay(1, _square(60, 80, 5, 25, 5, 25), (200, 0, 0))]
    cv.set_num_panes(3)
    cv.set_pane(0, "video-only · tiny-video.pt", frame, ov, 0.384)
    cv.set_pane(1, "frame-only", frame, [], None)
    cv.set_pane(2, "sync · frame-level", frame, ov, 0.4123)
    assert cv.num_panes == 3 and sum(p.isVisible() for p in cv.panes()) == 3
    assert cv.titles() == [
        "video-only · tiny-video.pt · AP 38.4",
        "frame-only",
        "sync · frame-level · AP 41.2",
    ]
    assert (
        cv.pane(1).overlay_rgba() is None
        or cv.pane(1).overlay_rgba().size == 0
        or not cv.pane(1).overlay_rgba()[..., 3].any()
    )
    cv.pane(0).view_box.setRange(xRange=(10, 30), yRange=(10, 25), padding=0)
    qtbot.wait(10)
    r0, r2 = cv.pane(0).view_box.viewRange(), cv.pane(2).view_box.viewRange()
    assert np.allclose(r0[0], r2[0], atol=0.5)
    hovers = []
    cv.hovered.connect(lambda *a: hovers.append(a))
    p0 = cv.pane(0)
    qtbot.mouseMove(p0.viewport, _pt(p0.map_image_to_widget(10.5, 10.5)))
    assert hovers[-1] == (0, 1, 10, 10)
    # The pointer is mirrored as a cross in the other panes, not in its own.
    assert cv.pane(2)._marker.isVisible() and not p0._marker.isVisible()
    xs, ys = cv.pane(2)._marker.getData()
    assert (xs[0], ys[0]) == (10.5, 10.5)
    cv.set_num_panes(2)
    assert not cv._panes[2].isVisible()
    with pytest.raises(ValueError):
        cv.set_num_panes(4)


def test_compare_view_hidden_pane_is_unlinked_and_frames_stay_large(qtbot):
    cv = _show(qtbot, CompareView(num_panes=3), 1200, 300)
    h, w = 360, 640
    frame = np.full((h, w, 3), 50, np.uint8)
    for i in range(3):
        cv.set_pane(i, f"pane {i}", frame, [])
    cv.set_num_panes(2)
    qtbot.wait(20)
    hidden = cv._panes[2].view_box
    assert hidden.linkedView(0) is None and hidden.linkedView(1) is None
    assert cv.linked_panes() == [cv.pane(1)]
    for size in ((1200, 500), (1000, 400), (1200, 600), (1300, 600)):
        cv.resize(*size)
        qtbot.wait(10)
        for p in cv.panes():
            (x0, x1), (y0, y1) = p.view_box.viewRange()
            # The frame fills the pane along one axis (a linked hidden pane used to blow the range up).
            assert min((x1 - x0) / w, (y1 - y0) / h) < 1.1, (size, p.view_box.viewRange())
    assert not cv._panes[2]._marker.isVisible()
    assert all(p.fitted for p in cv.panes())
    cv.pane(1).view_box.sigRangeChangedManually.emit([True, True])  # what a wheel zoom in pane 1 emits
    assert not any(p.fitted for p in cv.panes())  # so no pane snaps back to the whole frame on resize
    cv.set_num_panes(3)
    assert cv.linked_panes() == [cv.pane(1), cv.pane(2)]
    cv.pane(0).view_box.setRange(xRange=(100, 300), yRange=(50, 150), padding=0)
    qtbot.wait(10)
    assert np.allclose(cv.pane(2).view_box.viewRange()[0], cv.pane(0).view_box.viewRange()[0], atol=0.5)


def test_frame_video_panes_draw_a_big_frame_at_their_own_size(qtbot):
    """A 1280x720 frame in a pane a few hundred pixels wide is drawn at 1/step (as the compare panes are),
    its mask at the same step, so frame and mask still line up; the IoU is the full-resolution one."""
    fv = _show(qtbot, FrameVideoView(), 700, 450)
    frame = np.zeros((720, 1280, 3), np.uint8)
    a = _square(720, 1280, 100, 300, 200, 500)
    b = _square(720, 1280, 100, 300, 350, 650)
    step = fv.video_pane.draw_step((720, 1280))
    assert step >= 2 and fv.video_pane.width() * step >= 1280 / 2
    fv.set_frame_pair(frame, a, b, (255, 0, 0))
    shape = (len(range(0, 720, step)), len(range(0, 1280, step)))
    for pane in (fv.video_pane, fv.frame_pane):
        assert pane.frame.shape[:2] == shape and pane.overlay_rgba().shape[:2] == shape
    rgba = fv.video_pane.overlay_rgba()
    assert rgba[200 // step, 300 // step, 3] > 0 and rgba[50 // step, 300 // step, 3] == 0
    assert fv.iou == pytest.approx(float((a & b).sum() / (a | b).sum()))


def test_frame_video_view_pair_curves_and_seek(qtbot):
    fv = _show(qtbot, FrameVideoView(), 700, 450)
    frame = np.zeros((40, 40, 3), np.uint8)
    a = _square(40, 40, 0, 20, 0, 20)
    b = _square(40, 40, 0, 20, 10, 30)
    fv.set_frame_pair(frame, a, b, (255, 0, 0))
    assert fv.iou == pytest.approx(200 / 600)
    assert "IoU 0.33" in fv.frame_pane.title()
    assert fv.video_pane.overlay_rgba()[5, 5, 0] == 255 and fv.frame_pane.overlay_rgba()[5, 5, 3] == 0
    fv.set_frame_pair(frame, a, None, (255, 0, 0))  # the read-outs disagree: IoU 0, as engine/review.py says
    assert fv.iou == 0.0 and "none on this frame" in fv.frame_pane.title()
    fv.set_frame_pair(frame, None, None, (255, 0, 0))
    assert np.isnan(fv.iou)
    n = 80
    vs = np.full(n, 0.9)
    fs = np.full(n, 0.7)
    fs[10:20] = np.nan
    fv.set_curves(vs, fs, np.full(n, 0.5))
    x, y = fv.frame_curve.getData()
    assert len(x) == n and np.isnan(y[15]) and y[5] == 0.7
    fv.set_current_frame(33)
    assert fv._cursor.value() == 33
    qtbot.wait(10)
    frames = []
    fv.frame_requested.connect(frames.append)
    qtbot.mouseClick(
        fv.plot_viewport, Qt.MouseButton.LeftButton, pos=QPoint(round(fv.frame_to_widget_x(52)), 40)
    )
    assert frames == [52]


# ----------------------------------------------------------------------------------------------- screenshots
def test_screenshots_of_every_view(qtbot, tmp_path):
    from tests.widget_shots import save_shots

    paths = save_shots(tmp_path / "shots")
    assert {p.stem for p in paths} >= {
        "canvas",
        "timeline",
        "track_list",
        "frame_video",
        "compare",
        "aggregation",
        "review_queue",
    }
    from PySide6.QtGui import QImage

    for p in paths:
        img = QImage(str(p))
        assert img.width() > 200 and img.height() > 100, p
        # Not a blank widget: many distinct colours.
        small = img.scaled(64, 32)
        colours = {small.pixel(x, y) for x in range(64) for y in range(32)}
        assert len(colours) > 3, p


def test_canvas_draws_cropped_masks_as_it_draws_full_ones(qtbot):
    """A mask given as its box and crop (how the document hands them out) composites, labels and hit-tests
    exactly as the same mask at full size."""
    from engine.data.masks import decode_crop, encode

    rng = np.random.default_rng(4)
    h, w = 90, 140
    yy, xx = np.mgrid[:h, :w]
    masks = [((yy - rng.uniform(0, h)) / rng.uniform(5, 30)) ** 2 + ((xx - rng.uniform(0, w)) / rng.uniform(5, 40))
             ** 2 <= 1 for _ in range(6)]
    masks.append(_square(h, w, 0, 1, w - 3, w))   # a corner sliver
    full = [MaskOverlay(i + 1, m, PALETTE[i], f"t{i}", selected=i == 2) for i, m in enumerate(masks)]
    crops = [decode_crop(encode(m)) for m in masks]
    cropped = [MaskOverlay(i + 1, c.mask, PALETTE[i], f"t{i}", selected=i == 2, box=c.box)
               for i, c in enumerate(crops)]
    a = _show(qtbot, VideoCanvas(), 400, 300)
    b = _show(qtbot, VideoCanvas(), 400, 300)
    for c, ovs in ((a, full), (b, cropped)):
        c.set_frame(np.zeros((h, w, 3), np.uint8))
        c.set_overlays(ovs)
    np.testing.assert_array_equal(a.overlay_rgba(), b.overlay_rgba())
    assert a.label_anchors() == b.label_anchors() and a.label_texts() == b.label_texts()
    assert all(a.track_at(x, y) == b.track_at(x, y) for x, y in zip(rng.integers(0, w, 200), rng.integers(0, h, 200),
                                                                     strict=True))
    with pytest.raises(ValueError, match="does not fit"):
        b.set_overlays([MaskOverlay(1, np.ones((5, 5), bool), (1, 2, 3), box=(w - 2, 0, w + 3, 5))])


def test_small_pane_labels_keep_off_each_other_and_the_title(qtbot):
    """A compare pane (350x185 px) with 20 tracks: labels that fit are drawn clear of each other and of the
    pane's title; the selected track's label always shows; the rest are left out, not stacked over the frame."""
    h, w = 720, 1280
    rng = np.random.default_rng(7)
    c = _show(qtbot, VideoCanvas(), 352, 185)
    c.set_drop_colliding_labels(True)
    c.set_frame(np.zeros((h, w, 3), np.uint8))
    c.set_title("sync · video-level · AP 41.2")
    ovs = []
    for i in range(20):
        x, y = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 60))
        ovs.append(MaskOverlay(i + 1, _square(h, w, y, y + 60, x, x + 80), PALETTE[i % len(PALETTE)],
                               f"hexagon 0.{i:02d}", selected=i == 11))
    ovs.append(MaskOverlay(30, _square(h, w, 0, 40, 0, 200), (9, 9, 9), "under the title"))
    c.set_overlays(ovs)
    qtbot.wait(10)
    rects = c.label_rects()
    shown = [r for r in rects if r is not None]
    assert rects[11] is not None and 3 <= len(shown) < len(ovs)
    title = QRectF(c._title.geometry())
    for i, r in enumerate(shown):
        assert not r.intersects(title), (i, r, title)
        for j in range(i):
            assert not r.intersects(shown[j]), (i, j)
