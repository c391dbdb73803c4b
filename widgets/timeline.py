"""Track lanes across the whole video: where each track is present and how sure the model is, frame by frame.

All lanes are ONE RGBA image (lanes x frames) in an ImageItem, so 200 tracks over 10,000 frames is one texture
and seeking only moves a line. Score is shown as brightness of the lane colour (dim = unsure), so a score drop
reads as a dark stretch inside a lane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QScrollBar, QWidget

from widgets.colors import BACKGROUND, CURSOR, FOREGROUND, LANE_EMPTY, MUTED, RGB

_MIN_BRIGHTNESS = 0.3  # brightness of a present frame with score 0; score 1 is the full lane colour
_MAX_VISIBLE_LANES_PX = 16  # lanes never get shorter than the font when there is room to scroll


@dataclass
class Lane:
    """One track's lane. presence: bool (N,); scores: float (N,) in [0, 1] or None (present frames drawn at
    full colour); label: text on the left axis (e.g. "3 person"); marks: uint8 (N,) or None, MARK_EDITED where a
    human made the mask, MARK_ASSIST where an assist tool did, MARK_LOCKED where the frame is locked (drawn as a
    strip along the lane's bottom edge: white, cyan, amber)."""

    track_id: int
    color: RGB
    presence: np.ndarray
    scores: np.ndarray | None = None
    label: str = ""
    marks: np.ndarray | None = None


MARK_NONE, MARK_EDITED, MARK_ASSIST, MARK_LOCKED = 0, 1, 2, 3
_MARK_RGBA = np.array([(0, 0, 0, 0), (255, 255, 255, 235), (80, 220, 255, 235), (255, 190, 40, 255)], np.uint8)
_MARK_NAMES = {MARK_EDITED: "human-edited", MARK_ASSIST: "assisted", MARK_LOCKED: "locked"}
_MARK_ROWS = 4  # each lane is drawn 4 rows high in the marks image; the bottom row carries the marks


def marks_image(num_frames: int, lanes: list[Lane]) -> np.ndarray | None:
    """uint8 RGBA (len(lanes) * 4, num_frames, 4), transparent but for the marks strip; None when no lane has
    marks (then nothing is uploaded)."""
    if not any(ln.marks is not None and np.any(ln.marks) for ln in lanes):
        return None
    codes = np.zeros((len(lanes) * _MARK_ROWS, num_frames), np.uint8)
    for i, ln in enumerate(lanes):
        if ln.marks is not None:
            m = np.asarray(ln.marks, np.uint8)[:num_frames]
            codes[i * _MARK_ROWS + _MARK_ROWS - 1, : m.size] = m
    return _MARK_RGBA[codes]


def lanes_image(num_frames: int, lanes: list[Lane]) -> np.ndarray:
    """uint8 RGBA (len(lanes), num_frames, 4): lane colour x brightness(score) where present, dark where not.

    Built as one look-up: code = lane * 256 + quantised score (256 levels, invisible steps), absent frames
    point at the empty colour; gathering 32-bit RGBA words keeps 200 x 10,000 lanes well under 0.1 s."""
    n = len(lanes)
    if n == 0 or num_frames == 0:
        img = np.empty((n, num_frames, 4), np.uint8)
        img[...] = (*LANE_EMPTY, 255)
        return img
    presence = np.zeros((n, num_frames), bool)
    scores = np.ones((n, num_frames), np.float32)
    for i, ln in enumerate(lanes):
        p = np.asarray(ln.presence, bool)[:num_frames]
        presence[i, : p.size] = p
        if ln.scores is not None:
            sc = np.asarray(ln.scores, np.float32)[:num_frames]
            scores[i, : sc.size] = sc
    np.copyto(scores, 1.0, where=np.isnan(scores))  # (np.nan_to_num is ~15x slower here)
    np.clip(scores, 0.0, 1.0, out=scores)
    scores *= 255.0
    scores += 0.5
    code = scores.astype(np.int32)  # rounded level 0..255
    code += (np.arange(n, dtype=np.int32) * 256)[:, None]
    np.putmask(code, ~presence, n * 256)
    bright = _MIN_BRIGHTNESS + (1.0 - _MIN_BRIGHTNESS) * np.arange(256, dtype=np.float32) / 255.0
    colors = np.array([ln.color for ln in lanes], np.float32)
    lut = np.empty((n * 256 + 1, 4), np.uint8)
    lut[:-1, :3] = np.rint(colors[:, None, :] * bright[None, :, None]).reshape(-1, 3)
    lut[-1, :3] = LANE_EMPTY
    lut[:, 3] = 255
    words = np.take(lut.view(np.uint32).ravel(), code, mode="clip")
    return words.view(np.uint8).reshape(n, num_frames, 4)


class _LaneAxis(pg.AxisItem):
    """Left axis that names lanes, thinning the names when lanes are shorter than a line of text."""

    def __init__(self) -> None:
        super().__init__("left")
        self.labels: list[str] = []
        # pyqtgraph drops all labels of a level whose text fills > 80 % of the axis; the thinning below
        # already keeps one line of text per label, so allow the full length.
        self.setStyle(textFillLimits=[(0, 1.0)], autoExpandTextSpace=False)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph API)
        n = len(self.labels)
        if n == 0 or size <= 0:
            return []
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)  # the axis is inverted (lane 0 on top)
        lo, hi = max(0, math.floor(minVal)), min(n, math.ceil(maxVal))
        visible = max(1, hi - lo)
        step = max(1, math.ceil(visible * 15 / size))
        return [(step, [i + 0.5 for i in range(lo - lo % step, hi, step) if 0 <= i < n])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [self.labels[int(v)] if 0 <= int(v) < len(self.labels) else "" for v in values]


class _LaneViewBox(pg.ViewBox):
    """Left click/drag seeks (and a click selects the lane); wheel zooms time; Shift+wheel scrolls lanes;
    right or middle drag pans time."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(enableMenu=False, invertY=True)
        self._timeline = timeline
        self.setMouseEnabled(x=True, y=False)

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self._timeline._seek(p.x(), force=True)
            self._timeline._select_at(p.y())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            if ev.isStart():  # scrubbing starts where the button went down
                self._timeline._seek(self.mapSceneToView(ev.buttonDownScenePos()).x(), force=True)
            self._timeline._seek(self.mapSceneToView(ev.scenePos()).x())
        else:
            super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev, axis=None):  # noqa: N802
        if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            ev.accept()
            (y0, y1) = self.viewRange()[1]
            step = max(1.0, (y1 - y0) * 0.1) * (-1 if ev.delta() > 0 else 1)
            self.translateBy(y=step)
        else:
            super().wheelEvent(ev, axis=0)


class Timeline(QWidget):
    """One lane per track over the whole video, with the current-frame cursor.

    Mouse: click or drag (left button) seeks; a click on a lane also selects its track; wheel zooms the time
    axis around the cursor; Shift+wheel scrolls lanes when they do not all fit; right/middle drag pans time.

    Signals:
      frame_requested(frame): the user clicked or dragged to this frame (0 .. num_frames-1).
      track_selected(track_id): the user clicked this track's lane.
    """

    frame_requested = Signal(int)
    track_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 90)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(BACKGROUND)
        self._graphics.ci.setContentsMargins(2, 4, 8, 2)
        self._axis = _LaneAxis()
        self._vb = _LaneViewBox(self)
        self.plot: pg.PlotItem = self._graphics.addPlot(viewBox=self._vb, axisItems={"left": self._axis})
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setTextPen(FOREGROUND)
            ax.setPen(MUTED)
        self.plot.getAxis("bottom").setLabel("frame", color=MUTED)
        self._axis.setWidth(84)
        self._axis.setStyle(tickLength=0)

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image_item)
        self.marks_item = pg.ImageItem(axisOrder="row-major")
        self.marks_item.setZValue(3)
        self.plot.addItem(self.marks_item)
        self._separators = pg.PlotCurveItem(pen=pg.mkPen(BACKGROUND, width=2), connect="pairs")
        self._separators.setZValue(5)
        self.plot.addItem(self._separators)
        self._selection = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 255))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        self._selection.setPen(pen)
        self._selection.setBrush(QColor(255, 255, 255, 40))
        self._selection.setZValue(8)
        self._selection.hide()
        self.plot.addItem(self._selection, ignoreBounds=True)
        self._cursor = pg.InfiniteLine(pos=0.5, angle=90, movable=False, pen=pg.mkPen(CURSOR, width=1.5))
        self._cursor.setZValue(10)
        self.plot.addItem(self._cursor, ignoreBounds=True)
        self._empty = pg.TextItem(
            "No tracks yet: run SyncVIS or add a track (N)", color=MUTED, anchor=(0.5, 0.5)
        )
        self.plot.addItem(self._empty, ignoreBounds=True)
        # Readout of what is under the pointer (frame, track, score), top right over the lanes.
        self._readout = QLabel(self)
        self._readout.setStyleSheet(
            "color: #e8e8e8; background: rgba(16, 17, 19, 210); padding: 1px 6px; border-radius: 3px;"
        )
        self._readout.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._readout.hide()
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

        # A scroll bar for the lanes, shown only when they do not all fit (Shift+wheel scrolls too).
        self._scroll = QScrollBar(Qt.Orientation.Vertical, self)
        self._scroll.setToolTip("Scroll lanes (Shift+wheel)")
        self._scroll.hide()
        self._scroll.valueChanged.connect(self._on_scroll)
        self._vb.sigYRangeChanged.connect(self._sync_scroll)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._graphics)
        layout.addWidget(self._scroll)

        self._num_frames = 0
        self._lanes: list[Lane] = []
        self._row_of: dict[int, int] = {}
        self._current = 0
        self._selected = -1
        self._last_sought = -1
        self.set_lanes(0, [])

    # --------------------------------------------------------------------------------------------------- API
    def set_lanes(self, num_frames: int, lanes: list[Lane]) -> None:
        """Replace all lanes (top to bottom in the given order). Keeps the time zoom when the length is
        unchanged."""
        same_length = num_frames == self._num_frames and num_frames > 0
        self._num_frames = int(num_frames)
        self._lanes = list(lanes)
        self._row_of = {ln.track_id: i for i, ln in enumerate(self._lanes)}
        n = len(self._lanes)
        if n and self._num_frames:
            self.image_item.setImage(
                lanes_image(self._num_frames, self._lanes), autoLevels=False, levels=None
            )
            self.image_item.setRect(QRectF(0, 0, self._num_frames, n))
            marks = marks_image(self._num_frames, self._lanes)
            if marks is None:
                self.marks_item.clear()
            else:
                self.marks_item.setImage(marks, autoLevels=False, levels=None)
                self.marks_item.setRect(QRectF(0, 0, self._num_frames, n))
        else:
            self.image_item.clear()
            self.marks_item.clear()
        self._axis.labels = [ln.label or str(ln.track_id) for ln in self._lanes]
        self._axis.picture = None
        self._axis.update()
        if 0 < n <= 400:
            ys = np.repeat(np.arange(1, n, dtype=float), 2)
            xs = np.tile([0.0, float(max(self._num_frames, 1))], max(n - 1, 0))
            self._separators.setData(xs, ys)
        else:
            self._separators.setData([], [])
        self._empty.setVisible(n == 0)
        self._empty.setPos(max(self._num_frames, 1) / 2, 0.5)
        self._vb.setLimits(
            xMin=0,
            xMax=max(self._num_frames, 1),
            yMin=0,
            yMax=max(n, 1),
            minXRange=min(10, max(self._num_frames, 1)),
            maxXRange=max(self._num_frames, 1),
        )
        if not same_length:
            self._vb.setXRange(0, max(self._num_frames, 1), padding=0)
        self._fit_lanes()
        self._sync_scroll()
        self._place_selection()

    def set_current_frame(self, frame: int) -> None:
        """Move the cursor; when zoomed in, the view follows so the cursor stays visible."""
        self._current = int(frame)
        x = self._current + 0.5
        self._cursor.setValue(x)
        (x0, x1) = self._vb.viewRange()[0]
        if self._num_frames and not (x0 <= x <= x1):
            width = x1 - x0
            self._vb.setXRange(x - width * 0.1, x + width * 0.9, padding=0)

    def set_selected(self, track_id: int) -> None:
        """Highlight a track's lane (-1 for none); scrolls it into view. Does not emit track_selected."""
        self._selected = int(track_id)
        self._place_selection()
        row = self._row_of.get(self._selected)
        if row is not None:
            (y0, y1) = self._vb.viewRange()[1]
            if not (y0 <= row and row + 1 <= y1):
                h = y1 - y0
                self._vb.setYRange(row + 0.5 - h / 2, row + 0.5 + h / 2, padding=0)

    def set_time_range(self, first: int, last: int) -> None:
        """Show frames first..last (zoom the time axis)."""
        self._vb.setXRange(first, last + 1, padding=0)

    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def current_frame(self) -> int:
        return self._current

    @property
    def selected(self) -> int:
        return self._selected

    def lane_image(self) -> np.ndarray | None:
        """The RGBA lanes image on screen (lanes, frames, 4); None when there are no lanes."""
        return self.image_item.image

    def frame_to_widget_x(self, frame: float) -> float:
        """Viewport x (pixels) of the centre of `frame`; used by tests and tools."""
        return self._graphics.mapFromScene(self._vb.mapViewToScene(pg.Point(frame + 0.5, 0))).x()

    def lane_to_widget_y(self, row: int) -> float:
        return self._graphics.mapFromScene(self._vb.mapViewToScene(pg.Point(0, row + 0.5))).y()

    @property
    def viewport(self) -> QWidget:
        return self._graphics.viewport()

    # --------------------------------------------------------------------------------------------- internals
    def _fit_lanes(self) -> None:
        n = max(len(self._lanes), 1)
        height = max(self._vb.height(), 1.0)
        fit = max(1.0, height / _MAX_VISIBLE_LANES_PX)
        self._vb.setYRange(0, min(n, fit) if len(self._lanes) > fit else n, padding=0)

    def _sync_scroll(self, *_args) -> None:
        n = len(self._lanes)
        (y0, y1) = self._vb.viewRange()[1]
        visible = max(1, round(y1 - y0))
        self._scroll.blockSignals(True)
        self._scroll.setRange(0, max(0, n - visible))
        self._scroll.setPageStep(visible)
        self._scroll.setValue(round(y0))
        self._scroll.blockSignals(False)
        self._scroll.setVisible(n > visible)

    def _on_scroll(self, value: int) -> None:
        (y0, y1) = self._vb.viewRange()[1]
        self._vb.setYRange(value, value + (y1 - y0), padding=0)

    def _place_selection(self) -> None:
        row = self._row_of.get(self._selected)
        if row is None:
            self._selection.hide()
            return
        self._selection.setRect(QRectF(0, row, max(self._num_frames, 1), 1))
        self._selection.show()

    def _seek(self, x: float, force: bool = False) -> None:
        """Emit frame_requested; while scrubbing, only when the frame under the pointer changes."""
        if self._num_frames <= 0:
            return
        frame = int(np.clip(np.floor(x), 0, self._num_frames - 1))
        if force or frame != self._last_sought:
            self._last_sought = frame
            self.frame_requested.emit(frame)

    def _select_at(self, y: float) -> None:
        row = int(np.floor(y))
        if 0 <= row < len(self._lanes):
            self.track_selected.emit(self._lanes[row].track_id)

    def readout(self) -> str:
        """The pointer readout text ("" when hidden)."""
        return self._readout.text() if self._readout.isVisible() else ""

    def _on_mouse_moved(self, scene_pos) -> None:
        if not self._lanes or not self._vb.sceneBoundingRect().contains(scene_pos):
            self._readout.hide()
            return
        p = self._vb.mapSceneToView(scene_pos)
        frame, row = int(np.floor(p.x())), int(np.floor(p.y()))
        if not (0 <= frame < self._num_frames and 0 <= row < len(self._lanes)):
            self._readout.hide()
            return
        lane = self._lanes[row]
        name = lane.label or str(lane.track_id)
        present = frame < len(lane.presence) and bool(lane.presence[frame])
        if not present:
            what = "absent"
        elif lane.scores is not None and frame < len(lane.scores) and np.isfinite(lane.scores[frame]):
            what = f"score {float(lane.scores[frame]):.2f}"
        else:
            what = "present"
        if lane.marks is not None and frame < len(lane.marks) and lane.marks[frame] in _MARK_NAMES:
            what += f" · {_MARK_NAMES[int(lane.marks[frame])]}"
        self._readout.setText(f"frame {frame} · {name} · {what}")
        self._readout.adjustSize()
        self._readout.move(self.width() - self._readout.width() - 24, 4)
        self._readout.show()
        self._readout.raise_()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._readout.hide()
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_lanes()
