"""Canvas edit tools: a brush drag, an eraser stroke and a polygon, driven by real mouse events."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from widgets.edit_tools import CanvasTools, polygon_mask
from widgets.video_canvas import VideoCanvas


def send(canvas: VideoCanvas, kind: QEvent.Type, x: float, y: float, button=Qt.MouseButton.LeftButton,
         held=Qt.MouseButton.LeftButton) -> None:
    pos = canvas.map_image_to_widget(x, y)
    glob = canvas.viewport.mapToGlobal(pos.toPoint())
    ev = QMouseEvent(kind, pos, QPointF(glob), button if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton,
                     held, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas.viewport, ev)


@pytest.fixture
def tools(qtbot):
    canvas = VideoCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(640, 400)
    canvas.show()
    canvas.set_frame(np.zeros((100, 160, 3), np.uint8))
    canvas.fit_view()
    qtbot.wait(10)
    return CanvasTools(canvas)


def test_brush_drag_emits_one_footprint_covering_the_path(tools, qtbot):
    tools.set_tool("brush")
    tools.set_brush_size(10)
    got = []
    tools.stroke_finished.connect(lambda fp, erase: got.append((fp, erase)))
    send(tools.canvas, QEvent.Type.MouseButtonPress, 20.5, 50.5)
    for x in range(22, 120, 4):
        send(tools.canvas, QEvent.Type.MouseMove, x + 0.5, 50.5)
        assert tools.busy
    send(tools.canvas, QEvent.Type.MouseButtonRelease, 120.5, 50.5)
    assert len(got) == 1 and got[0][1] is False
    fp = got[0][0]
    assert fp.shape == (100, 160) and fp.dtype == bool
    assert fp[50, 20:121].all() and not fp[50, 130:].any() and not fp[30].any() and fp[46:55, 70].all()
    assert not tools.busy


def test_eraser_and_brush_size_keys(tools):
    tools.set_tool("eraser")
    tools.set_brush_size(4)
    tools.grow_brush(1.2)
    assert tools.brush_size == 5
    tools.grow_brush(1 / 1.2)
    assert tools.brush_size == 4
    got = []
    tools.stroke_finished.connect(lambda fp, erase: got.append(erase))
    send(tools.canvas, QEvent.Type.MouseButtonPress, 50.5, 50.5)
    send(tools.canvas, QEvent.Type.MouseButtonRelease, 50.5, 50.5)
    assert got == [True]


def test_polygon_clicks_enter_closes_esc_cancels(tools):
    tools.set_tool("polygon")
    got = []
    tools.polygon_finished.connect(got.append)
    for x, y in ((10, 10), (60, 10), (60, 40)):
        send(tools.canvas, QEvent.Type.MouseButtonPress, x, y)
        send(tools.canvas, QEvent.Type.MouseButtonRelease, x, y)
    assert tools.polygon_points().shape == (3, 2) and not got
    assert tools.cancel() and tools.polygon_points().shape == (0, 2)
    for x, y in ((10, 10), (60, 10), (60, 40), (10, 40)):
        send(tools.canvas, QEvent.Type.MouseButtonPress, x, y)
    assert tools.finish_polygon() and len(got) == 1
    m = polygon_mask(got[0], (100, 160))
    assert m[11:39, 11:59].all() and not m[45:].any() and not m[:, 65:].any()
    assert 50 * 30 <= m.sum() <= 52 * 32  # vertices came through the mouse: within a pixel of where they were
    exact = polygon_mask(np.array([(10, 10), (60, 10), (60, 40), (10, 40)], float), (100, 160))
    assert 50 * 30 <= exact.sum() <= 51 * 31 and exact[10:40, 10:60].all()


def test_select_tool_leaves_clicks_to_the_canvas(tools):
    tools.set_tool("select")
    clicks = []
    tools.canvas.clicked.connect(lambda x, y, b: clicks.append(b))
    got = []
    tools.stroke_finished.connect(lambda *a: got.append(a))
    send(tools.canvas, QEvent.Type.MouseButtonPress, 50, 50)
    send(tools.canvas, QEvent.Type.MouseButtonRelease, 50, 50)
    assert not got
