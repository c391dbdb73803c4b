"""Frame-level versus video-level: for the selected track, its video-level mask next to the linked frame-level
mask on the current frame, and over the whole video the two scores and the IoU between the two masks.
Where the curves split is where the synchronized decoder's two query sets disagree."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from widgets.colors import BACKGROUND, CURSOR, FOREGROUND, MUTED, RGB, hex_color
from widgets.video_canvas import MaskOverlay, VideoCanvas, subsample

VIDEO_PEN = (76, 155, 232)  # blue
FRAME_PEN = (245, 166, 35)  # amber
IOU_PEN = (200, 200, 200)  # light grey, dashed
_Y_RANGE = (-0.1, 1.12)


def mask_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """IoU of two bool masks, with the engine's convention (engine/review.py): 0 when exactly one of them is
    missing or empty (the two read-outs disagree), NaN when both are."""
    a_on = a is not None and bool(np.any(a))
    b_on = b is not None and bool(np.any(b))
    if not (a_on or b_on):
        return float("nan")
    if not (a_on and b_on):
        return 0.0
    return float(np.count_nonzero(a & b) / np.count_nonzero(a | b))


class _SeekViewBox(pg.ViewBox):
    def __init__(self, on_seek) -> None:
        super().__init__(enableMenu=False)
        self._on_seek = on_seek
        self.setMouseEnabled(x=True, y=False)

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_seek(self.mapSceneToView(ev.scenePos()).x())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_seek(self.mapSceneToView(ev.scenePos()).x())
        else:
            super().mouseDragEvent(ev, axis)


class FrameVideoView(QWidget):
    """Two linked mask panes (video-level | frame-level) over curves of both scores and their IoU.

    Curves: x is the frame index, y in [0, 1]; NaN leaves a gap (frames where the track or its frame-level
    link is absent). Click or drag on the curves to seek; wheel zooms time.

    Signals:
      frame_requested(frame): the user clicked or dragged on the curves.
    """

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 260)
        self._header = QLabel("Select a track to compare its video-level and frame-level predictions", self)
        self._header.setStyleSheet(f"color: {MUTED}; padding: 2px 4px;")
        self.video_pane = VideoCanvas(empty_message="No video-level mask on this frame")
        self.frame_pane = VideoCanvas(empty_message="No frame-level mask on this frame")
        self.frame_pane.view_box.setXLink(self.video_pane.view_box)
        self.frame_pane.view_box.setYLink(self.video_pane.view_box)
        for pane in (self.video_pane, self.frame_pane):
            pane.set_show_labels(False)  # one track per pane: the title says what it is
        self.video_pane.set_title("video-level")
        self.frame_pane.set_title("frame-level")
        panes = QWidget(self)
        row = QHBoxLayout(panes)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(3)
        row.addWidget(self.video_pane)
        row.addWidget(self.frame_pane)

        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(BACKGROUND)
        self._graphics.setMinimumHeight(110)
        self._vb = _SeekViewBox(self._seek)
        self.plot: pg.PlotItem = self._graphics.addPlot(viewBox=self._vb)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setTextPen(FOREGROUND)
            ax.setPen(MUTED)
        self.plot.getAxis("bottom").setLabel("frame", color=MUTED)
        self.plot.setYRange(*_Y_RANGE, padding=0)
        self.plot.getAxis("left").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")]])
        self.video_curve = self.plot.plot(
            [], [], pen=pg.mkPen(VIDEO_PEN, width=1.6), name="video-level score", connect="finite"
        )
        self.frame_curve = self.plot.plot(
            [], [], pen=pg.mkPen(FRAME_PEN, width=1.6), name="frame-level score", connect="finite"
        )
        self.iou_curve = self.plot.plot(
            [],
            [],
            pen=pg.mkPen(IOU_PEN, width=1.2, style=Qt.PenStyle.DashLine),
            name="IoU(video, frame)",
            connect="finite",
        )
        self._cursor = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen(CURSOR, width=1.2))
        self.plot.addItem(self._cursor, ignoreBounds=True)

        # The legend sits above the plot, never over the curves, and wraps between its three entries (never
        # inside one) so that nothing is clipped at the default dock width (about 400 px).
        entries = [(VIDEO_PEN, "━━", "video-level score"), (FRAME_PEN, "━━", "frame-level score"),
                   (IOU_PEN, "╌╌", "IoU of the two masks")]
        legend = QLabel(" &nbsp; ".join(
            f"<span style='color:{hex_color(pen)}; white-space:nowrap'>{mark}&nbsp;{text.replace(' ', '&nbsp;')}"
            "</span>" for pen, mark, text in entries))
        legend.setWordWrap(True)
        legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend = legend
        legend.setStyleSheet(f"background: {BACKGROUND}; padding: 3px 8px;")
        curves = QWidget(self)
        curves_layout = QVBoxLayout(curves)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.setSpacing(0)
        curves_layout.addWidget(legend)
        curves_layout.addWidget(self._graphics)
        curves.setToolTip("Click or drag to seek; wheel zooms time")

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(panes)
        splitter.addWidget(curves)
        splitter.setSizes([300, 160])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self._header)
        layout.addWidget(splitter)
        self._num_frames = 0
        self._iou = float("nan")

    # --------------------------------------------------------------------------------------------------- API
    def set_track_label(self, text: str) -> None:
        """Header line, e.g. "Track 3 · person · video query 12"."""
        self._header.setText(text)

    def set_frame_pair(
        self,
        frame_rgb: np.ndarray | None,
        video_mask: np.ndarray | None,
        frame_mask: np.ndarray | None,
        color: RGB,
    ) -> None:
        """The current frame twice: with the track's video-level mask (left) and its linked frame-level mask
        (right). A missing mask leaves that pane's frame bare; the IoU of the two is shown in the right
        title."""
        step = self.video_pane.draw_step(frame_rgb.shape[:2]) if frame_rgb is not None else 1
        shown = subsample(frame_rgb, step) if frame_rgb is not None else None
        for pane, mask, name in (
            (self.video_pane, video_mask, "video-level"),
            (self.frame_pane, frame_mask, "frame-level"),
        ):
            pane.set_frame(shown)   # the panes are small: drawn at 1/step, as the compare panes are
            if frame_rgb is not None and mask is not None:
                small = np.asarray(mask, bool)[::step, ::step]
                pane.set_overlays([MaskOverlay(-1, small, color, "", selected=False)])
                pane.set_title(name)
            else:
                pane.set_overlays([])
                pane.set_title(f"{name} · none on this frame" if frame_rgb is not None else name)
        self._iou = mask_iou(video_mask, frame_mask)
        if np.isfinite(self._iou):
            self.frame_pane.set_title(f"{self.frame_pane.title()} · IoU {self._iou:.2f}")

    def set_curves(self, video_scores: np.ndarray, frame_scores: np.ndarray, iou: np.ndarray) -> None:
        """Per-frame curves over the whole video (float arrays of the same length, NaN where absent)."""
        n = max(len(video_scores), len(frame_scores), len(iou))
        self._num_frames = n
        x = np.arange(n, dtype=float)
        for curve, y in (
            (self.video_curve, video_scores),
            (self.frame_curve, frame_scores),
            (self.iou_curve, iou),
        ):
            y = np.asarray(y, float)
            curve.setData(x[: y.size], y)
        self._vb.setLimits(xMin=-0.5, xMax=max(n - 0.5, 1), minXRange=min(10, max(n, 1)))
        self.plot.setXRange(-0.5, max(n - 0.5, 1), padding=0)
        self.plot.setYRange(*_Y_RANGE, padding=0)

    def set_current_frame(self, frame: int) -> None:
        self._cursor.setValue(int(frame))

    def clear(
        self, message: str = "Select a track to compare its video-level and frame-level predictions"
    ) -> None:
        self.set_track_label(message)
        self.set_frame_pair(None, None, None, (0, 0, 0))
        self.set_curves(np.array([]), np.array([]), np.array([]))

    @property
    def iou(self) -> float:
        """IoU of the two masks on screen (NaN when one is missing)."""
        return self._iou

    def frame_to_widget_x(self, frame: float) -> float:
        return self._graphics.mapFromScene(self._vb.mapViewToScene(pg.Point(frame, 0.5))).x()

    @property
    def plot_viewport(self) -> QWidget:
        return self._graphics.viewport()

    def _seek(self, x: float) -> None:
        if self._num_frames:
            self.frame_requested.emit(int(np.clip(round(x), 0, self._num_frames - 1)))
