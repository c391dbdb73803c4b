"""Aggregation weights of the synchronized decoder for one video-level query.

Forward (frame -> video): how much attention the selected video-level query drew from each frame's selected
frame-level embeddings, per decoder layer (heatmap frames x layers), and which frame queries were selected on
the current frame. Reverse (video -> frame): on the current frame, how much each frame-level query drew from
the selected video-level embeddings, per layer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from widgets.colors import ACCENT, BACKGROUND, CURSOR, FOREGROUND, MUTED

DEFAULT_MESSAGE = "Run SyncVIS in sync mode to see aggregation weights"
FORWARD, REVERSE = "forward", "reverse"


def normalise(weights: np.ndarray, how: str, windows: list[tuple[int, int]] | None = None) -> np.ndarray:
    """'none': as given (f2v mass sums to 1 over the frames of one window, so a 3-frame last window reads 4x
    brighter than a 12-frame one for the same preference); 'even': each frame's mass times the number of frames
    of its window, i.e. as a multiple of an even share (1 = the query spread its attention evenly), which
    compares across windows of any length (needs `windows`, [start, end) each; without them 'none'); 'layer':
    every layer (column) sums to 1 over the whole video. NaN (frames without internals) stays NaN and is drawn
    transparent."""
    w = np.asarray(weights, np.float64)
    if how == "even":
        if windows:
            w = w.copy()
            for a, b in windows:
                w[a:b] *= max(0, min(b, len(w)) - a)
        return w
    if how == "layer":
        total = np.nansum(w, axis=0, keepdims=True)
        w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
        w[np.isnan(weights)] = np.nan
    elif how != "none":
        raise ValueError(f"normalise must be 'even', 'layer' or 'none', not {how!r}")
    return w


class AggregationView(QWidget):
    """Heatmap of aggregation weights (x: frame or frame query, y: decoder layer) with a colour bar, plus the
    list of what was selected on the current frame.

    Signals:
      frame_query_hovered(frame, query): the pointer is on a frame-level query (a row of the selected list in
          forward mode, a heatmap column in reverse mode), or the user clicked it; query -1 when it leaves.
      frame_requested(frame): a click on the forward heatmap.
      direction_changed(direction): the user switched the toggle ("forward" = frame->video, "reverse").
    """

    frame_query_hovered = Signal(int, int)
    frame_requested = Signal(int)
    direction_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, normalise: str = "even") -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self._normalise = normalise
        self._direction = FORWARD
        self._current = 0
        self._forward: tuple[np.ndarray, list[list[int]], str] | None = None
        self._reverse: tuple[np.ndarray, list[int]] | None = None
        self._shown: np.ndarray | None = None
        self._last_hover = (-1, -1)
        self._windows: list[tuple[int, int]] | None = None
        self._highlight: int | None = None      # the selected track's frame query on the current frame

        # Top bar: what is shown, the direction toggle and a readout of the value under the pointer.
        self._title = QLabel("", self)
        self._title.setStyleSheet("font-weight: bold; padding: 0 4px;")
        self._fwd_btn = QToolButton(self)
        self._fwd_btn.setText("frame → video")
        self._fwd_btn.setToolTip(
            "Attention of the selected video-level query over each frame's selected frame-level embeddings"
        )
        self._rev_btn = QToolButton(self)
        self._rev_btn.setText("video → frame")
        self._rev_btn.setToolTip(
            "On the current frame: attention of each frame-level query over the selected "
            "video-level embeddings"
        )
        group = QButtonGroup(self)
        for b in (self._fwd_btn, self._rev_btn):
            b.setCheckable(True)
            b.setAutoRaise(True)
            group.addButton(b)
        self._fwd_btn.setChecked(True)
        self._fwd_btn.clicked.connect(lambda: self.set_direction(FORWARD, emit=True))
        self._rev_btn.clicked.connect(lambda: self.set_direction(REVERSE, emit=True))
        self._readout = QLabel("", self)
        self._readout.setStyleSheet(f"color: {MUTED}; padding: 0 4px;")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self._title)
        bar.addStretch(1)
        bar.addWidget(self._readout)
        bar.addWidget(self._fwd_btn)
        bar.addWidget(self._rev_btn)

        # Heatmap.
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(BACKGROUND)
        self.plot: pg.PlotItem = self._graphics.addPlot()
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.getViewBox().invertY(False)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setTextPen(FOREGROUND)
            ax.setPen(MUTED)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image_item)
        # Hatching behind the heatmap: frames without internals (NaN, drawn transparent) read as "no data",
        # not as "no attention".
        self._no_data = QGraphicsRectItem()
        self._no_data.setBrush(QBrush(QColor(110, 112, 118), Qt.BrushStyle.BDiagPattern))
        self._no_data.setPen(QPen(Qt.PenStyle.NoPen))
        self._no_data.setZValue(-1)
        self.plot.addItem(self._no_data, ignoreBounds=True)
        self.color_bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("inferno"), interactive=False, width=14
        )
        self.color_bar.setImageItem(self.image_item, insert_in=self.plot)
        self.color_bar.getAxis("right").setTextPen(FOREGROUND)
        self.color_bar.getAxis("right").enableAutoSIPrefix(False)
        self.color_bar.getAxis("right").setLabel(color=MUTED)
        # The selected track's own frame query: an outlined column in reverse mode.
        self._mark = QGraphicsRectItem()
        self._mark.setPen(pg.mkPen(CURSOR, width=2))
        self._mark.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self._mark.setZValue(5)
        self._mark.hide()
        self.plot.addItem(self._mark, ignoreBounds=True)
        self._cursor = pg.InfiniteLine(pos=0.5, angle=90, movable=False, pen=pg.mkPen(CURSOR, width=1.2))
        self.plot.addItem(self._cursor, ignoreBounds=True)
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._graphics.scene().sigMouseClicked.connect(self._on_mouse_clicked)

        # Selected list.
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(2)
        self._list_title = QLabel("", side)
        self._list_title.setStyleSheet(f"color: {MUTED};")
        self._list_title.setWordWrap(True)
        self.selected_list = QListWidget(side)
        self.selected_list.setMouseTracking(True)
        self.selected_list.setToolTip("Hover or click a frame query to see its mask on the canvas")
        self.selected_list.itemEntered.connect(self._on_list_item)
        self.selected_list.itemClicked.connect(self._on_list_item)
        self.selected_list.viewport().installEventFilter(self)
        side_layout.addWidget(self._list_title)
        side_layout.addWidget(self.selected_list)
        side.setMinimumWidth(120)

        content = QSplitter(Qt.Orientation.Horizontal, self)
        content.addWidget(self._graphics)
        content.addWidget(side)
        content.setStretchFactor(0, 4)
        content.setStretchFactor(1, 1)
        content.setSizes([600, 150])

        self._message = QLabel(DEFAULT_MESSAGE, self)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self._message.setStyleSheet(f"color: {MUTED}; font-size: 12pt;")
        self._stack = QStackedWidget(self)
        self._stack.addWidget(self._message)
        self._stack.addWidget(content)

        # What the picture shows, in plain words (updated with the data).
        self.caption = QLabel("", self)
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet(f"color: {MUTED}; padding: 0 4px;")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self._stack, 1)
        layout.addWidget(self.caption)
        self.clear()

    # --------------------------------------------------------------------------------------------------- API
    def set_forward(self, weights: np.ndarray, selected: list[list[int]], query_label: str,
                    windows: list[tuple[int, int]] | None = None) -> None:
        """Frame -> video weights of one video query: weights (frames, layers) of attention mass drawn from
        each frame; selected[f] = indices of frame f's selected frame queries; query_label e.g. "video query
        12 · track 3 person"; windows: the inference windows [start, end), so that the 'even' scale compares
        windows of different lengths."""
        w = np.asarray(weights)
        if w.ndim != 2:
            raise ValueError(f"forward weights must be (frames, layers), got shape {w.shape}")
        self._forward = (w, [list(map(int, s)) for s in selected], query_label)
        self._windows = [(int(a), int(b)) for a, b in windows] if windows else None
        if self._direction == FORWARD:
            self._show()

    def set_reverse(self, weights: np.ndarray, selected_video_queries: list[int]) -> None:
        """Video -> frame weights on the current frame: weights (frame_queries, layers) of attention mass each
        frame query drew from the selected video-level embeddings (selected_video_queries)."""
        w = np.asarray(weights)
        if w.ndim != 2:
            raise ValueError(f"reverse weights must be (frame_queries, layers), got shape {w.shape}")
        self._reverse = (w, [int(q) for q in selected_video_queries])
        if self._direction == REVERSE:
            self._show()

    def set_highlight(self, frame_query: int | None) -> None:
        """The selected track's own frame query on the current frame (its linked frame-level track's query),
        marked in the list (forward) and outlined on the heatmap (reverse); None: no mark."""
        self._highlight = None if frame_query is None or frame_query < 0 else int(frame_query)
        if self._shown is not None:
            self._fill_list()
            self._place_mark()

    def _place_mark(self) -> None:
        q = self._highlight
        if self._direction == REVERSE and q is not None and self._shown is not None and q < self._shown.shape[1]:
            self._mark.setRect(QRectF(q, 0, 1, self._shown.shape[0]))
            self._mark.show()
        else:
            self._mark.hide()

    def set_current_frame(self, frame: int) -> None:
        """Moves the cursor on the forward heatmap and lists that frame's selected frame queries. Reverse
        weights belong to one frame: after a seek the app sends the new frame's with set_reverse."""
        self._current = int(frame)
        self._cursor.setValue(self._current + 0.5)
        if self._direction == FORWARD and self._forward is not None:
            self._fill_list()
        elif self._direction == REVERSE and self._reverse is not None:
            self._title.setText(f"frame {self._current}: frame queries ← video queries")

    def set_direction(self, direction: str, emit: bool = False) -> None:
        """Show "forward" (frame -> video) or "reverse" (video -> frame)."""
        if direction not in (FORWARD, REVERSE):
            raise ValueError(f"direction must be 'forward' or 'reverse', not {direction!r}")
        changed = direction != self._direction
        self._direction = direction
        (self._fwd_btn if direction == FORWARD else self._rev_btn).setChecked(True)
        self._show()
        if emit and changed:
            self.direction_changed.emit(direction)

    def clear(self, message: str = DEFAULT_MESSAGE) -> None:
        """Drop all weights and show `message` instead of the heatmap."""
        self._forward = None
        self._reverse = None
        self._shown = None
        self._message.setText(message)
        self._title.setText("Aggregation weights")
        self.caption.setText("")
        self._mark.hide()
        self._stack.setCurrentIndex(0)

    @property
    def direction(self) -> str:
        return self._direction

    def heatmap(self) -> np.ndarray | None:
        """The values on screen, (layers, columns): normalised weights, transposed (rows = layers)."""
        return self._shown

    def cell_to_widget(self, column: float, layer: float):
        """Viewport position of the centre of heatmap cell (column, layer) (tests and tools)."""
        return self._graphics.mapFromScene(
            self.plot.getViewBox().mapViewToScene(pg.Point(column + 0.5, layer + 0.5))
        )

    @property
    def viewport(self) -> QWidget:
        return self._graphics.viewport()

    # --------------------------------------------------------------------------------------------- internals
    def _show(self) -> None:
        data = self._forward if self._direction == FORWARD else self._reverse
        if data is None:
            self._message.setText(
                DEFAULT_MESSAGE if self._direction == FORWARD else "No video → frame weights for this frame"
            )
            self._stack.setCurrentIndex(0)
            self._shown = None
            return
        w = data[0]
        how = self._normalise if self._direction == FORWARD else ("none" if self._normalise == "even"
                                                                  else self._normalise)
        if how == "even" and not self._windows:
            how = "none"
        shown = normalise(w, how, self._windows).T  # (layers, columns)
        self._shown = shown
        n_cols, n_layers = w.shape
        finite = shown[np.isfinite(shown)]
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        self.image_item.setImage(shown, autoLevels=False, levels=(0.0, vmax))
        self.color_bar.setLevels((0.0, vmax))
        self.image_item.setRect(0, 0, max(n_cols, 1), max(n_layers, 1))
        self._no_data.setRect(QRectF(0, 0, max(n_cols, 1), max(n_layers, 1)))
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=0, xMax=max(n_cols, 1), yMin=0, yMax=max(n_layers, 1))
        self.plot.setRange(xRange=(0, max(n_cols, 1)), yRange=(0, max(n_layers, 1)), padding=0)
        step = max(1, n_layers // 8)
        self.plot.getAxis("left").setTicks([[(i + 0.5, str(i)) for i in range(0, n_layers, step)]])
        self.plot.getAxis("left").setLabel("decoder layer", color=MUTED)
        if self._direction == FORWARD:
            self.plot.getAxis("bottom").setLabel("frame", color=MUTED)
            self._title.setText(data[2] or "video query")
            self._cursor.show()
        else:
            self.plot.getAxis("bottom").setLabel("frame query", color=MUTED)
            self._title.setText(f"frame {self._current}: frame queries ← video queries")
            self._cursor.hide()
        label = {"layer": "share of layer's attention", "even": "× even share"}.get(how, "attention mass")
        self.color_bar.getAxis("right").setLabel(label, color=MUTED)
        self.caption.setText(self._describe(how, shown))
        self._fill_list()
        self._place_mark()
        self._stack.setCurrentIndex(1)

    def _describe(self, how: str, shown: np.ndarray) -> str:
        """One or two sentences of what the colours mean and what stands out."""
        finite = shown[np.isfinite(shown)]
        if self._direction == REVERSE:
            return (f"Frame {self._current}: how much each frame query (column) drew from the selected video "
                    "queries at each decoder layer (row); 0 where the video query was not selected."
                    + (" The outlined column is the selected track's frame query." if self._highlight is not None
                       else ""))
        if how == "even":
            text = ("How much of this video query's attention went to each frame (column) at each decoder layer "
                    "(row), as a multiple of an even share over its inference window: 1× = spread evenly.")
            if finite.size:
                hi = float(finite.max())
                last = shown[-1]
                top = int(np.nanargmax(last)) if np.isfinite(last).any() else None
                if hi < 1.25:
                    text += f" The attention is almost even (at most {hi:.2f}×): no frame stands out."
                elif top is not None:
                    text += f" At the last layer it leans most on frame {top} ({last[top]:.1f}×)."
            return text
        if how == "layer":
            return ("Each layer's (row's) attention of this video query over the whole video sums to 1; "
                    "the colour is each frame's share.")
        return ("Attention mass of this video query on each frame (column) per decoder layer (row); it sums to 1 "
                "within each inference window, so short windows look brighter.")

    def _fill_list(self) -> None:
        self.selected_list.clear()
        if self._direction == FORWARD and self._forward is not None:
            sel = self._forward[1]
            queries = sel[self._current] if 0 <= self._current < len(sel) else []
            self._list_title.setText(f"Frame {self._current}: {len(queries)} selected frame queries")
            for q in queries:
                mine = q == self._highlight
                it = QListWidgetItem(("◆ " if mine else "") + f"frame query {q}")
                it.setData(Qt.ItemDataRole.UserRole, q)
                if mine:
                    it.setToolTip("The selected track's own frame query on this frame")
                    font = it.font()
                    font.setBold(True)
                    it.setFont(font)
                    it.setForeground(QColor(ACCENT))
                self.selected_list.addItem(it)
        elif self._direction == REVERSE and self._reverse is not None:
            vq = self._reverse[1]
            self._list_title.setText(f"{len(vq)} selected video queries")
            for q in vq:
                it = QListWidgetItem(f"video query {q}")
                it.setData(Qt.ItemDataRole.UserRole, None)
                self.selected_list.addItem(it)

    def _on_list_item(self, item: QListWidgetItem) -> None:
        q = item.data(Qt.ItemDataRole.UserRole)
        if q is not None:
            self.frame_query_hovered.emit(self._current, int(q))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.selected_list.viewport() and event.type() == event.Type.Leave:
            if self._direction == FORWARD and self.selected_list.count():
                self.frame_query_hovered.emit(self._current, -1)
        return super().eventFilter(obj, event)

    def _cell_at(self, scene_pos) -> tuple[int, int] | None:
        if self._shown is None:
            return None
        p = self.plot.getViewBox().mapSceneToView(scene_pos)
        c, r = int(np.floor(p.x())), int(np.floor(p.y()))
        n_layers, n_cols = self._shown.shape
        if 0 <= c < n_cols and 0 <= r < n_layers and self.plot.sceneBoundingRect().contains(scene_pos):
            return c, r
        return None

    def _on_mouse_moved(self, scene_pos) -> None:
        cell = self._cell_at(scene_pos)
        if cell is None:
            self._readout.setText("")
            return
        c, r = cell
        what = "frame" if self._direction == FORWARD else "frame query"
        v = self._shown[r, c]
        value = f"{v:.3f}" if np.isfinite(v) else "no internals"
        self._readout.setText(f"{what} {c} · layer {r} · {value}")
        if self._direction == REVERSE and (self._current, c) != self._last_hover:
            self._last_hover = (self._current, c)
            self.frame_query_hovered.emit(self._current, c)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self._cell_at(event.scenePos())
        if cell is None:
            return
        if self._direction == FORWARD:
            self.frame_requested.emit(cell[0])
        else:
            self.frame_query_hovered.emit(self._current, cell[0])
