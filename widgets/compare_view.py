"""Two or three canvases side by side with one shared zoom/pan: the same video through different runs or modes
(e.g. video-only, frame-only and synchronized). Playing in lockstep is the app's job (it sets every pane)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QWidget

from widgets.video_canvas import MaskOverlay, VideoCanvas

MAX_PANES = 3


def pane_title(title: str, ap: float | None) -> str:
    """'tiny-video.pt · AP 41.2': AP given in [0, 1] is shown as a percentage, like YTVIS papers."""
    if ap is None or not math.isfinite(ap):
        return title
    return f"{title} · AP {ap * 100:.1f}"


class CompareView(QWidget):
    """Linked canvases (zoom and pan in one moves all). Pane i shows a title (source, and AP when known).

    Signals:
      hovered(pane, track_id, x, y): as VideoCanvas.hovered, with the pane index.
      track_clicked(pane, track_id): a left click on a mask in a pane.
    """

    hovered = Signal(int, int, int, int)
    track_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None, num_panes: int = 2) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 160)
        self._splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setHandleWidth(3)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._splitter)
        self._panes: list[VideoCanvas] = []
        for i in range(MAX_PANES):
            c = VideoCanvas(empty_message="Nothing to compare yet:\nrun two modes or models on this video")
            c.hovered.connect(lambda t, x, y, i=i: self._on_hovered(i, t, x, y))
            c.track_clicked.connect(lambda t, i=i: self.track_clicked.emit(i, t))
            c.view_box.sigRangeChangedManually.connect(self._on_user_zoom)
            self._splitter.addWidget(c)
            self._panes.append(c)
        self._n = 0
        self.set_num_panes(num_panes)

    def _on_hovered(self, pane: int, track_id: int, x: int, y: int) -> None:
        """Mirror the pointer into the other panes as a cross so the same spot is easy to compare."""
        for j, c in enumerate(self._panes):
            inside = x >= 0 and j != pane
            c.set_pointer_marker(x if inside else None, y if inside else None)
        self.hovered.emit(pane, track_id, x, y)

    def _on_user_zoom(self, *_args) -> None:
        """A zoom/pan in any pane is shared: no pane may snap back to the whole frame on the next resize."""
        for c in self._panes:
            c.keep_fitted(False)

    def set_num_panes(self, n: int) -> None:
        """Show 2 or 3 panes (1 is allowed too); panes past n are hidden, not cleared.

        Only the shown panes share zoom/pan: a hidden pane keeps its old size, so left linked it would impose
        its aspect ratio on the shared range at every resize and shrink the frames in the shown panes."""
        if not 1 <= n <= MAX_PANES:
            raise ValueError(f"CompareView shows 1 to {MAX_PANES} panes, not {n}")
        self._n = n
        lead = self._panes[0].view_box
        for i, c in enumerate(self._panes):
            c.setVisible(i < n)
            if i:
                c.view_box.setXLink(lead if i < n else None)
                c.view_box.setYLink(lead if i < n else None)
                if i >= n:
                    c.set_pointer_marker(None)
        self._splitter.setSizes([1000] * n + [0] * (MAX_PANES - n))
        # Refit once the splitter has laid the panes out at their new widths.
        QTimer.singleShot(0, self.fit_view)

    def linked_panes(self) -> list[VideoCanvas]:
        """The panes whose zoom/pan follows pane 0 (the shown ones after it)."""
        lead = self._panes[0].view_box
        return [c for c in self._panes[1:] if c.view_box.linkedView(0) is lead]

    def set_pane(
        self,
        i: int,
        title: str,
        frame_rgb: np.ndarray | None,
        overlays: list[MaskOverlay],
        ap: float | None = None,
    ) -> None:
        """Show a frame and its masks in pane i, titled with the source and (when given, in [0, 1]) its AP."""
        c = self.pane(i)
        c.set_frame(frame_rgb)
        c.set_overlays(overlays if frame_rgb is not None else [])
        c.set_title(pane_title(title, ap))

    def pane(self, i: int) -> VideoCanvas:
        """The canvas of pane i (for options the app sets per pane)."""
        if not 0 <= i < self._n:
            raise IndexError(f"pane {i} of {self._n}")
        return self._panes[i]

    @property
    def num_panes(self) -> int:
        return self._n

    def panes(self) -> list[VideoCanvas]:
        return self._panes[: self._n]

    def titles(self) -> list[str]:
        return [c.title() for c in self.panes()]

    # Display options apply to every pane so the comparison stays fair.
    def set_opacity(self, opacity: float) -> None:
        for c in self._panes:
            c.set_opacity(opacity)

    def set_show_outlines(self, show: bool) -> None:
        for c in self._panes:
            c.set_show_outlines(show)

    def set_show_labels(self, show: bool) -> None:
        for c in self._panes:
            c.set_show_labels(show)

    def set_overlays_visible(self, visible: bool) -> None:
        for c in self._panes:
            c.set_overlays_visible(visible)

    def fit_view(self) -> None:
        self._panes[0].fit_view()
