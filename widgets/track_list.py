"""The track table: colour, id, class, score, visibility and a presence strip per track, sortable.

A QTableView over a QStandardItemModel (cells in C++, see TrackTableModel) so a few hundred tracks with presence
strips stay cheap: each strip is a one-row QImage built at the cell's pixel width (cached per width) and drawn
unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import (
    QEvent,
    QRect,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from widgets.colors import LANE_EMPTY, MUTED, RGB, qcolor

STRIP_BINS = 160
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
STRIP_ROLE = Qt.ItemDataRole.UserRole + 2
TRACK_ID_ROLE = Qt.ItemDataRole.UserRole + 3

COL_VISIBLE, COL_ID, COL_CLASS, COL_SCORE, COL_PRESENCE = range(5)
HEADERS = ("", "ID", "Class", "Score", "Presence")


@dataclass
class TrackRow:
    """One row. presence: bool (num_frames,) where the track has a mask. score: the track's score in [0,
    1]."""

    track_id: int
    color: RGB
    category: str
    score: float
    presence: np.ndarray
    visible: bool = True


def _round(x: np.ndarray) -> np.ndarray:
    """Half-up rounding (np.round rounds half to even, which would make equal frames unequal in width)."""
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


def presence_pixels(presence: np.ndarray, width: int) -> np.ndarray:
    """bool (width,): which pixel columns of a strip `width` px wide show the track.

    Short videos (frames <= pixels): frame f fills pixels [round(f*w/n), round((f+1)*w/n)), so consecutive
    present frames touch (one block, no dashes) and every frame gets >= 1 px. Long videos: pixel c max-pools
    frames [round(c*n/w), round((c+1)*n/w)), so a one-frame appearance still shows."""
    p = np.asarray(presence, bool).ravel()
    n, w = p.size, int(width)
    out = np.zeros(max(w, 0), bool)
    if n == 0 or w <= 0:
        return out
    if n <= w:
        edges = _round(np.arange(n + 1) * (w / n))
        cover = np.zeros(w + 1, np.int64)  # +1 at each present frame's first pixel, -1 after its last
        np.add.at(cover, edges[:-1][p], 1)
        np.add.at(cover, edges[1:][p], -1)
        return np.cumsum(cover[:w]) > 0
    edges = _round(np.arange(w + 1) * (n / w))
    csum = np.concatenate([[0], np.cumsum(p)])
    return csum[edges[1:]] - csum[edges[:-1]] > 0


def presence_strip(presence: np.ndarray, color: RGB, bins: int = STRIP_BINS) -> QImage:
    """A (1 x bins) image, one column per screen pixel of the strip: the track colour where
    `presence_pixels` says the track is, the empty-lane colour elsewhere. Built at the cell's width (not
    scaled), so blocks have crisp edges at any size."""
    row = np.empty((1, bins, 4), np.uint8)
    row[...] = (*LANE_EMPTY, 255)
    row[0, presence_pixels(presence, bins), :3] = color
    # RGBA8888 reads bytes in R, G, B, A order on every platform.
    return QImage(row.tobytes(), bins, 1, bins * 4, QImage.Format.Format_RGBA8888).copy()


_HEADER_TIPS = ("Visible on the canvas", "Track id", "Class", "Track score (model confidence)",
                "Frames where the track has a mask")


class TrackTableModel(QStandardItemModel):
    """Rows of TrackRow; the visibility checkbox is the only editable cell.

    The cells live in C++ (QStandardItem), not behind a Python `data()`: a view asks a model for about seven
    roles per cell per paint, and with a Python model each of those calls took the GIL, which the engine's
    thread holds between torch operations during a run, so a 10-row list painted in 30 ms instead of 8."""

    visibility_changed = Signal(int, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(HEADERS), parent)
        for c, (text, tip) in enumerate(zip(HEADERS, _HEADER_TIPS, strict=True)):
            h = QStandardItem(text)
            h.setToolTip(tip)
            self.setHorizontalHeaderItem(c, h)
        self._rows: list[TrackRow] = []
        self._strips: dict[tuple[int, int], QImage] = {}  # (row, width) -> strip; cleared by set_rows
        self._quiet = False
        self.itemChanged.connect(self._on_item_changed)

    def set_rows(self, rows: list[TrackRow]) -> None:
        """Replace every row: one model reset (the views and the sort proxy re-read once)."""
        self._rows = list(rows)
        self._strips = {}
        self.beginResetModel()
        blocked = self.blockSignals(True)
        self._quiet = True
        try:
            self.setRowCount(0)
            self.setRowCount(len(self._rows))
            for i, r in enumerate(self._rows):
                for c, item in enumerate(_row_items(i, r)):
                    self.setItem(i, c, item)
        finally:
            self._quiet = False
            self.blockSignals(blocked)
            self.endResetModel()

    def strip(self, row: int, width: int) -> QImage:
        """Row's presence strip at `width` pixels (built on first paint at that width, then cached)."""
        key = (row, width)
        img = self._strips.get(key)
        if img is None:
            if len(self._strips) > 4 * len(self._rows) + 64:  # widths left over from resizing
                self._strips.clear()
            r = self._rows[row]
            img = self._strips[key] = presence_strip(r.presence, r.color, width)
        return img

    def row_of(self, track_id: int) -> int:
        for i, r in enumerate(self._rows):
            if r.track_id == track_id:
                return i
        return -1

    def set_visible(self, track_id: int, visible: bool) -> None:
        """Set a checkbox from the app; does not emit visibility_changed."""
        i = self.row_of(track_id)
        if i < 0 or self._rows[i].visible == visible:
            return
        self._rows[i].visible = visible
        self._quiet = True
        try:
            item = self.item(i, COL_VISIBLE)
            item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            item.setData(int(visible), SORT_ROLE)
        finally:
            self._quiet = False

    def _on_item_changed(self, item: QStandardItem) -> None:
        if self._quiet or item.column() != COL_VISIBLE:
            return
        r = self._rows[item.row()]
        visible = item.checkState() == Qt.CheckState.Checked
        if r.visible != visible:
            r.visible = visible
            self._quiet = True
            try:
                item.setData(int(visible), SORT_ROLE)
            finally:
                self._quiet = False
            self.visibility_changed.emit(r.track_id, visible)


def _row_items(row: int, r: TrackRow) -> list[QStandardItem]:
    """The five cells of a row, with every role the view and the sort proxy ask for."""
    n = int(np.count_nonzero(r.presence))
    span = np.flatnonzero(r.presence)
    where = f"frames {span[0]}–{span[-1]}" if span.size else "no frames"
    tip = f"Track {r.track_id} · {r.category} · score {r.score:.3f}\n{n} frames with a mask ({where})"
    finite = bool(np.isfinite(r.score))
    right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    cells = [QStandardItem(), QStandardItem(str(r.track_id)), QStandardItem(r.category),
             QStandardItem(f"{r.score:.2f}" if finite else "–"), QStandardItem()]
    sort = (int(r.visible), r.track_id, r.category, float(r.score) if finite else -1.0, n)
    for item, key in zip(cells, sort, strict=True):
        item.setEditable(False)
        item.setData(key, SORT_ROLE)
        item.setData(r.track_id, TRACK_ID_ROLE)
        item.setToolTip(tip)
    vis = cells[COL_VISIBLE]
    vis.setCheckable(True)
    vis.setCheckState(Qt.CheckState.Checked if r.visible else Qt.CheckState.Unchecked)
    cells[COL_ID].setData(qcolor(r.color), Qt.ItemDataRole.DecorationRole)
    cells[COL_ID].setTextAlignment(right)
    cells[COL_SCORE].setTextAlignment(right)
    cells[COL_PRESENCE].setData(row, STRIP_ROLE)
    return cells


_STRIP_MX, _STRIP_MY = 4, 5   # the presence strip's margins inside its cell, px


class _PresenceDelegate(QStyledItemDelegate):
    """Draws the presence strip pixel for pixel (no scaling), and the current frame as a white tick."""

    def __init__(self, model: TrackTableModel, parent=None) -> None:
        super().__init__(parent)
        self._model = model
        self.current_fraction: float | None = None  # (frame + 0.5) / num_frames

    def paint(self, painter: QPainter, option, index) -> None:
        super().paint(painter, option, index)  # selection background
        src = index.model().mapToSource(index) if hasattr(index.model(), "mapToSource") else index
        row = src.data(STRIP_ROLE)
        if row is None:
            return
        r: QRect = option.rect.adjusted(_STRIP_MX, _STRIP_MY, -_STRIP_MX, -_STRIP_MY)
        if r.width() <= 0 or r.height() <= 0:
            return
        painter.save()
        painter.drawImage(r, self._model.strip(row, r.width()))
        painter.setPen(QColor(0, 0, 0, 90))
        painter.drawRect(r.adjusted(0, 0, -1, -1))
        if self.current_fraction is not None:
            x = r.left() + min(r.width() - 1, int(np.floor(self.current_fraction * r.width())))
            painter.setPen(QColor(255, 255, 255, 230))
            painter.drawLine(x, r.top() - 2, x, r.bottom() + 2)
        painter.restore()


class TrackList(QWidget):
    """The tracks of the document, one row each: visible checkbox, colour + id, class, score, presence strip.

    Click a header to sort (by id, class, score or number of frames); the order is kept across set_tracks.

    Signals:
      track_selected(track_id): the user selected this row (click or arrow keys).
      visibility_changed(track_id, visible): the user toggled the checkbox.
    """

    track_selected = Signal(int)
    visibility_changed = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 120)
        self.model = TrackTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL_ID, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(24)
        self._strip_delegate = _PresenceDelegate(self.model, self.view)
        self.view.setItemDelegateForColumn(COL_PRESENCE, self._strip_delegate)
        header = self.view.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(COL_VISIBLE, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_ID, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_CLASS, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_SCORE, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_PRESENCE, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(COL_VISIBLE, 28)
        header.resizeSection(COL_ID, 56)
        header.resizeSection(COL_CLASS, 96)
        header.resizeSection(COL_SCORE, 52)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self._empty = QLabel("No tracks yet:\nrun SyncVIS (or add one with N)", self.view.viewport())
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setStyleSheet(f"color: {MUTED}; background: transparent;")
        self._empty.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.view.viewport().installEventFilter(self)

        self._num_frames = 0
        self._selected = -1
        self._quiet = False
        self.model.visibility_changed.connect(self.visibility_changed)
        self.view.selectionModel().currentRowChanged.connect(self._on_current_changed)

    # --------------------------------------------------------------------------------------------------- API
    def set_tracks(self, rows: list[TrackRow]) -> None:
        """Replace all rows; keeps the sort order and re-selects the selected track if it is still there."""
        self._quiet = True
        try:
            self.model.set_rows(rows)
            self._select_row(self._selected)
        finally:
            self._quiet = False
        self._num_frames = max((len(r.presence) for r in rows), default=0)
        self._empty.setVisible(not rows)

    def set_current_frame(self, frame: int) -> None:
        """Mark the current frame on every presence strip (a white tick); -1 hides it."""
        n = self._num_frames
        frac = (int(frame) + 0.5) / n if n and 0 <= frame < n else None
        old = self._strip_delegate.current_fraction
        if frac != old:
            self._strip_delegate.current_fraction = frac
            # Repaint only thin columns where the tick was and is: Qt clips every row's strip to them, so a
            # frame change does not redraw the whole list (a few ms at 20 rows in the offscreen raster).
            x0, w = self.view.columnViewportPosition(COL_PRESENCE), self.view.columnWidth(COL_PRESENCE)
            height = self.view.viewport().height()
            inner = w - 2 * _STRIP_MX   # the strip's width inside the cell, as the delegate draws it
            for f in (old, frac):
                if f is None or inner <= 0:
                    continue
                x = x0 + _STRIP_MX + min(inner - 1, int(np.floor(f * inner)))
                self.view.viewport().update(QRect(x - 2, 0, 5, height))

    def set_selected(self, track_id: int) -> None:
        """Select and scroll to a track's row (-1 clears). Does not emit track_selected."""
        self._selected = int(track_id)
        self._quiet = True
        try:
            self._select_row(self._selected)
        finally:
            self._quiet = False

    def set_visible(self, track_id: int, visible: bool) -> None:
        """Set a checkbox from the app (e.g. after undo). Does not emit visibility_changed."""
        self.model.set_visible(track_id, visible)

    @property
    def selected(self) -> int:
        return self._selected

    def track_ids(self) -> list[int]:
        """Track ids in the order shown (after sorting)."""
        return [int(self.proxy.index(r, 0).data(TRACK_ID_ROLE)) for r in range(self.proxy.rowCount())]

    def row_rect(self, track_id: int, column: int = COL_ID) -> QRect:
        """Viewport rectangle of a track's cell (tests and tools)."""
        src = self.model.row_of(track_id)
        if src < 0:
            return QRect()
        return self.view.visualRect(self.proxy.mapFromSource(self.model.index(src, column)))

    # --------------------------------------------------------------------------------------------- internals
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if obj is self.view.viewport() and event.type() == QEvent.Type.Resize:
            self._empty.setGeometry(self.view.viewport().rect())
        return super().eventFilter(obj, event)

    def _select_row(self, track_id: int) -> None:
        src = self.model.row_of(track_id)
        sel = self.view.selectionModel()
        if src < 0:
            sel.clearSelection()
            return
        idx = self.proxy.mapFromSource(self.model.index(src, COL_ID))
        sel.setCurrentIndex(idx, sel.SelectionFlag.ClearAndSelect | sel.SelectionFlag.Rows)
        self.view.scrollTo(idx)

    def _on_current_changed(self, current, _previous) -> None:
        if self._quiet or not current.isValid():
            return
        tid = int(current.data(TRACK_ID_ROLE))
        if tid != self._selected:
            self._selected = tid
            self.track_selected.emit(tid)
