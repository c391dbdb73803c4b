"""Mask editing tools on the canvas: brush, eraser and polygon. numpy + Qt + pyqtgraph only.

The tools never touch the document. A stroke is painted into a footprint (bool, frame-sized) shown live as a
small preview image over the frame (only the stroke's bounding box is re-uploaded per dab, so a dab costs the
same on a 4K frame as on a small one); on release the footprint is emitted once, and the app turns it into ONE
undoable edit. Zoom (wheel) and pan (middle-button drag) keep working while a tool is active, since the tools
consume only left/right button events.
"""
from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem

from widgets.colors import RGB
from widgets.video_canvas import VideoCanvas

TOOLS = ("select", "brush", "eraser", "polygon", "click")
BOX_MIN_PX = 5  # a left drag longer than this (screen pixels) is a box prompt, shorter is a click
MIN_BRUSH, MAX_BRUSH = 1, 400


class CanvasTools(QObject):
    """The active editing tool of one canvas.

    Signals:
      stroke_finished(footprint, erase): a brush or eraser stroke ended; footprint is a bool (H, W) array.
      polygon_finished(points): the polygon was closed (Enter or a click on its first vertex); (N, 2) float
          array of image (x, y) vertices, N >= 3.
      prompt_point(x, y, positive): the click tool's left (positive) or right (negative) click, image coords.
      prompt_box(x0, y0, x1, y1): the click tool's left drag.
      tool_changed(name), brush_size_changed(size).
    """

    stroke_finished = Signal(object, bool)
    polygon_finished = Signal(object)
    prompt_point = Signal(float, float, bool)
    prompt_box = Signal(float, float, float, float)
    tool_changed = Signal(str)
    brush_size_changed = Signal(int)

    def __init__(self, canvas: VideoCanvas):
        super().__init__(canvas)
        self.canvas = canvas
        self._tool = "select"
        self._size = 12
        self._colour: RGB = (255, 255, 255)
        self._footprint: np.ndarray | None = None
        self._dirty: list[int] | None = None  # x0, y0, x1, y1 of the stroke so far
        self._last: tuple[float, float] | None = None
        self._points: list[tuple[float, float]] = []
        self._preview = pg.ImageItem(axisOrder="row-major")
        self._preview.setZValue(20)
        canvas.view_box.addItem(self._preview, ignoreBounds=True)
        self._cursor = QGraphicsEllipseItem()
        pen = QPen(Qt.GlobalColor.white)
        pen.setCosmetic(True)
        self._cursor.setPen(pen)
        self._cursor.setZValue(25)
        self._cursor.hide()
        canvas.view_box.addItem(self._cursor, ignoreBounds=True)
        self._poly = pg.PlotDataItem(pen=pg.mkPen(255, 255, 255, width=1.5), symbol="o", symbolSize=6,
                                     symbolBrush=(255, 255, 255))
        self._poly.setZValue(26)
        canvas.view_box.addItem(self._poly, ignoreBounds=True)
        self._press: tuple[QPointF, float, float] | None = None  # click tool: where the left button went down
        self._box = QGraphicsRectItem()
        self._box.setPen(pen)
        self._box.setZValue(26)
        self._box.hide()
        canvas.view_box.addItem(self._box, ignoreBounds=True)
        self._prompts = pg.ScatterPlotItem(size=11, pxMode=True)
        self._prompts.setZValue(27)
        canvas.view_box.addItem(self._prompts, ignoreBounds=True)
        self._proposal = pg.ImageItem(axisOrder="row-major")
        self._proposal.setZValue(19)
        canvas.view_box.addItem(self._proposal, ignoreBounds=True)
        canvas.viewport.installEventFilter(self)

    # ------------------------------------------------------------ state
    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}")
        if name != self._tool:
            self.cancel()
            self._tool = name
            self._cursor.setVisible(False)
            cursor = Qt.CursorShape.CrossCursor if name != "select" else Qt.CursorShape.ArrowCursor
            self.canvas.viewport.setCursor(cursor)
            self.tool_changed.emit(name)

    @property
    def brush_size(self) -> int:
        return self._size

    def set_brush_size(self, size: int) -> None:
        size = int(np.clip(size, MIN_BRUSH, MAX_BRUSH))
        if size != self._size:
            self._size = size
            self.brush_size_changed.emit(size)

    def grow_brush(self, factor: float) -> None:
        """`]` and `[`: sizes step by ~20% so small and large brushes are both quick to reach."""
        step = max(1, round(self._size * abs(factor - 1)))
        self.set_brush_size(self._size + (step if factor > 1 else -step))

    def set_colour(self, colour: RGB) -> None:
        """The colour of the track being painted (the stroke preview shows it)."""
        self._colour = tuple(colour)

    @property
    def busy(self) -> bool:
        """A stroke or polygon is in progress."""
        return self._footprint is not None or bool(self._points)

    def polygon_points(self) -> np.ndarray:
        return np.asarray(self._points, float).reshape(-1, 2)

    # ------------------------------------------------------------ brush
    def begin_stroke(self, x: float, y: float) -> None:
        frame = self.canvas.frame
        if frame is None:
            return
        self._footprint = np.zeros(frame.shape[:2], np.uint8)
        self._dirty = None
        self._last = None
        self.dab(x, y)

    def dab(self, x: float, y: float) -> None:
        """Paint a round dab at image point (x, y), joined to the previous one by a thick line."""
        fp = self._footprint
        if fp is None:
            return
        r = max(0, self._size // 2)
        c = (int(np.floor(x)), int(np.floor(y)))
        if self._last is None:
            cv2.circle(fp, c, r, 1, -1)
        else:
            cv2.line(fp, self._last, c, 1, thickness=max(1, self._size), lineType=cv2.LINE_8)
            cv2.circle(fp, c, r, 1, -1)
        lo = (min(c[0], (self._last or c)[0]) - r - 1, min(c[1], (self._last or c)[1]) - r - 1)
        hi = (max(c[0], (self._last or c)[0]) + r + 2, max(c[1], (self._last or c)[1]) + r + 2)
        self._last = c
        h, w = fp.shape
        box = [max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])]
        if self._dirty is None:
            self._dirty = box
        else:
            d = self._dirty
            self._dirty = [min(d[0], box[0]), min(d[1], box[1]), max(d[2], box[2]), max(d[3], box[3])]
        self._show_preview()

    def end_stroke(self) -> None:
        fp = self._footprint
        erase = self._tool == "eraser"
        self._footprint, self._dirty, self._last = None, None, None
        self._preview.clear()
        if fp is not None and fp.any():
            self.stroke_finished.emit(fp.astype(bool), erase)

    def _show_preview(self) -> None:
        x0, y0, x1, y1 = self._dirty
        if x1 <= x0 or y1 <= y0:
            return
        sub = self._footprint[y0:y1, x0:x1].astype(bool)
        rgba = np.zeros((*sub.shape, 4), np.uint8)
        colour = (40, 40, 40) if self._tool == "eraser" else self._colour
        rgba[sub] = (*colour, 170)
        self._preview.setImage(rgba, autoLevels=False, levels=None)
        self._preview.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _show_cursor(self, x: float, y: float) -> None:
        r = self._size / 2
        self._cursor.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
        self._cursor.setVisible(True)

    # ------------------------------------------------------------ polygon
    def add_point(self, x: float, y: float) -> None:
        pts = self._points
        if len(pts) >= 3:
            fx, fy = pts[0]
            near = 6.0 / max(self._pixel_scale(), 1e-6)  # 6 screen pixels in image units
            if abs(x - fx) <= near and abs(y - fy) <= near:
                self.finish_polygon()
                return
        pts.append((float(x), float(y)))
        self._draw_polygon()

    def finish_polygon(self) -> bool:
        """Close the polygon (Enter). False when it has fewer than 3 vertices (nothing emitted)."""
        if len(self._points) < 3:
            return False
        pts = self.polygon_points()
        self._points = []
        self._draw_polygon()
        self.polygon_finished.emit(pts)
        return True

    def cancel(self) -> bool:
        """Esc: drop the stroke or polygon in progress. True when there was one."""
        had = self.busy
        self._points = []
        self._footprint, self._dirty, self._last = None, None, None
        self._preview.clear()
        self._draw_polygon()
        return had

    def _draw_polygon(self) -> None:
        if not self._points:
            self._poly.setData([], [])
            return
        xs = [p[0] for p in self._points]
        ys = [p[1] for p in self._points]
        self._poly.setData(xs, ys)

    def _pixel_scale(self) -> float:
        a = self.canvas.map_image_to_widget(0, 0)
        b = self.canvas.map_image_to_widget(1, 0)
        return abs(b.x() - a.x())

    # ------------------------------------------------------------ click tool: prompts and the proposal
    def show_prompts(self, points: list[tuple[float, float]], labels: list[int],
                     box: tuple[float, float, float, float] | None = None) -> None:
        """Mark the prompts of the object being segmented: green + positive, red x negative, the box."""
        spots = [{"pos": (x, y), "symbol": "+" if lab else "x",
                  "brush": (60, 220, 90) if lab else (240, 70, 70), "pen": pg.mkPen(0, 0, 0)}
                 for (x, y), lab in zip(points, labels, strict=True)]
        self._prompts.setData(spots)
        if box is None:
            self._box.hide()
        else:
            x0, y0, x1, y1 = box
            self._box.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self._box.show()

    def show_proposal(self, mask: np.ndarray | None, colour: RGB | None = None) -> None:
        """Show a proposed mask (not yet accepted) with a hatched look; None clears it."""
        if mask is None or not mask.any():
            self._proposal.clear()
            return
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[mask] = (*(colour or self._colour), 120)
        stripes = (np.add.outer(np.arange(mask.shape[0]), np.arange(mask.shape[1])) // 4) % 2 == 0
        rgba[mask & stripes, 3] = 200
        self._proposal.setImage(rgba, autoLevels=False, levels=None)
        self._proposal.setRect(QRectF(0, 0, mask.shape[1], mask.shape[0]))

    def clear_prompts(self) -> None:
        self._prompts.setData([])
        self._box.hide()
        self._proposal.clear()

    def _click_event(self, t, event, x: float, y: float) -> bool:
        left, right = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
        if t == QEvent.Type.MouseButtonPress and event.button() == right:
            self.prompt_point.emit(x, y, False)
            return True
        if t == QEvent.Type.MouseButtonPress and event.button() == left:
            self._press = (event.position(), x, y)
            return True
        if t == QEvent.Type.MouseMove and self._press is not None and event.buttons() & left:
            _p0, x0, y0 = self._press
            self._box.setRect(QRectF(min(x0, x), min(y0, y), abs(x - x0), abs(y - y0)))
            self._box.setVisible((event.position() - _p0).manhattanLength() > BOX_MIN_PX)
            return True
        if t == QEvent.Type.MouseButtonRelease and event.button() == left and self._press is not None:
            p0, x0, y0 = self._press
            self._press = None
            if (event.position() - p0).manhattanLength() > BOX_MIN_PX:
                self.prompt_box.emit(min(x0, x), min(y0, y), max(x0, x), max(y0, y))
            else:
                self.prompt_point.emit(x, y, True)
            return True
        return t in (QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) and \
            event.button() in (left, right)

    # ------------------------------------------------------------ events
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if self._tool == "select" or self.canvas.frame is None:
            return False
        t = event.type()
        if t not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease,
                     QEvent.Type.MouseButtonDblClick):
            return False
        p: QPointF = self.canvas.map_widget_to_image(event.position())
        x, y = p.x(), p.y()
        left = Qt.MouseButton.LeftButton
        if self._tool == "click":
            return self._click_event(t, event, x, y)
        if self._tool in ("brush", "eraser"):
            if t == QEvent.Type.MouseMove:
                self._show_cursor(x, y)
                if self._footprint is not None and event.buttons() & left:
                    self.dab(x, y)
                    return True
                return False
            if event.button() != left:
                return False
            if t == QEvent.Type.MouseButtonPress:
                self.begin_stroke(x, y)
            elif t == QEvent.Type.MouseButtonRelease:
                self.end_stroke()
            return True
        if self._tool == "polygon":
            if t == QEvent.Type.MouseButtonPress and event.button() == left:
                self.add_point(x, y)
                return True
            if t == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.RightButton:
                if self._points:  # right click removes the last vertex, as in labelme
                    self._points.pop()
                    self._draw_polygon()
                return True
            return t in (QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) and \
                event.button() in (left, Qt.MouseButton.RightButton)
        return False


def polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise image-space vertices (x, y), pixel centres at +0.5, into a bool mask."""
    out = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points, float) - 0.5).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(out, [pts], 1)
    return out.astype(bool)
