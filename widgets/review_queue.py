"""The uncertain-frame queue: frames ranked by how unsure the model is, with the reasons, walked with U."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from widgets.colors import MUTED

REASON_TIPS = {
    "uncovered motion": "Pixels that differ from the background (something moves or entered) lie under no track",
    "identity switch": "A track starts, ends or changes class here: the object may have been lost or swapped",
    "low score": "A track's score is low here, or below its own best",
    "missing tracks": "Tracks seen elsewhere in the video are absent here",
    "score drop": "A track's score falls sharply on this frame",
    "frame/video disagreement": "The frame-level and video-level masks of a track disagree (low IoU)",
    "mask jump": "A track's mask moves or changes shape abruptly",
    "class flip": "A track's most likely class changes",
    "track appears": "A track starts on this frame",
    "track vanishes": "A track ends on this frame",
}


NOT_RUN = "No review queue yet: run SyncVIS to rank uncertain frames"


@dataclass
class ReviewItem:
    """A frame to review. score: uncertainty, higher = review first. reasons: short cue names (see
    REASON_TIPS). details: the reasons in words, strongest first ("track 3: mask jumps (IoU 0.12 with frame
    14)"), shown in the Why column and, for the current row, in full under the list."""

    frame: int
    score: float
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


class _Item(QTreeWidgetItem):
    def __lt__(self, other: QTreeWidgetItem) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else 0
        a, b = self.data(col, Qt.ItemDataRole.UserRole), other.data(col, Qt.ItemDataRole.UserRole)
        if a is not None and b is not None:
            return a < b
        return super().__lt__(other)


class ReviewQueue(QWidget):
    """Frames ranked by uncertainty (most uncertain first). Columns: rank, frame, uncertainty, reasons.

    Visited frames are ticked and dimmed (visiting = activating a row, or the app calling mark_visited /
    next_item). Signals:
      frame_requested(frame): the user clicked a row or pressed Enter on it.
    """

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 120)
        self._summary = QLabel(NOT_RUN, self)
        self._summary.setStyleSheet(f"color: {MUTED}; padding: 2px 4px;")
        self._summary.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["#", "Frame", "Uncertainty", "Why"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSortingEnabled(True)
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(0, 36)
        self.tree.setColumnWidth(1, 60)
        self.tree.setColumnWidth(2, 84)
        self.tree.headerItem().setToolTip(2, "How unsure the model is on this frame (higher = review first)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self._summary)
        layout.addWidget(self.tree, 1)
        # The current row's reasons in full words: the Why column only has room for the first.
        self.why = QLabel("", self)
        self.why.setWordWrap(True)
        self.why.setTextFormat(Qt.TextFormat.PlainText)
        self.why.setStyleSheet("padding: 2px 4px;")
        self.why.hide()
        layout.addWidget(self.why)

        self._items: list[ReviewItem] = []
        self._widgets: dict[int, QTreeWidgetItem] = {}
        self._visited: set[int] = set()
        self._cursor = -1  # rank of the last item visited through the queue
        self.tree.itemClicked.connect(self._on_activated)
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.currentItemChanged.connect(lambda cur, _prev: self._show_why(cur))

    # --------------------------------------------------------------------------------------------------- API
    def set_items(self, items: list[ReviewItem]) -> None:
        """Replace the queue. Items are ranked by score, highest first; visited marks are kept per frame."""
        self._items = sorted(items, key=lambda it: (-it.score, it.frame))
        self._cursor = -1
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        self._widgets = {}
        for rank, it in enumerate(self._items):
            why = it.details[0] if it.details else ", ".join(it.reasons)
            if len(it.details) > 1:
                why += f"  (+{len(it.details) - 1} more)"
            w = _Item([str(rank + 1), str(it.frame), f"{it.score:.2f}", why])
            for col, key in enumerate((rank, it.frame, it.score, why)):
                w.setData(col, Qt.ItemDataRole.UserRole, key)
            for col in (0, 1, 2):
                w.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tips = list(it.details) or [REASON_TIPS.get(r, r) for r in it.reasons]
            w.setToolTip(3, "\n".join(tips))
            w.setToolTip(1, f"Frame {it.frame}: click to go there")
            self.tree.addTopLevelItem(w)
            self._widgets[it.frame] = w
            self._style(it.frame)
        self.tree.setSortingEnabled(True)
        self.tree.sortItems(0, Qt.SortOrder.AscendingOrder)
        self._update_summary()
        self._show_why(self.tree.currentItem())

    def items(self) -> list[ReviewItem]:
        """The queue in rank order."""
        return list(self._items)

    def next_item(self, current_frame: int) -> int | None:
        """The next frame to visit (the U key): the item ranked after the current frame when the current frame
        is in the queue, else after the last one visited through the queue; unvisited items first, wrapping
        round. Marks it visited and selects its row (without emitting). None when the queue is empty."""
        if not self._items:
            return None
        ranks = {it.frame: r for r, it in enumerate(self._items)}
        start = ranks.get(int(current_frame), self._cursor)
        n = len(self._items)
        order = [(start + 1 + k) % n for k in range(n)]
        pick = next((r for r in order if self._items[r].frame not in self._visited), order[0])
        frame = self._items[pick].frame
        self._cursor = pick
        self.mark_visited(frame)
        w = self._widgets[frame]
        self.tree.blockSignals(True)
        self.tree.setCurrentItem(w)
        self.tree.blockSignals(False)
        self.tree.scrollToItem(w)
        self._show_why(w)
        return frame

    def mark_visited(self, frame: int) -> None:
        if frame in self._widgets and frame not in self._visited:
            self._visited.add(frame)
            self._style(frame)
            self._update_summary()

    def visited(self) -> set[int]:
        return set(self._visited)

    def set_status(self, text: str) -> None:
        """Show `text` in the line above the queue instead of the counts, e.g. the "not run yet" state after
        `set_items([])` (the default text). The next set_items or visit shows the counts again."""
        self._summary.setText(text)

    def status(self) -> str:
        """The line above the queue as shown."""
        return self._summary.text()

    def reasons_text(self) -> str:
        """The reasons shown under the list (the current row's)."""
        return self.why.text() if self.why.isVisible() or self.why.text() else ""

    # --------------------------------------------------------------------------------------------- internals
    def _show_why(self, w: QTreeWidgetItem | None) -> None:
        item = None
        if w is not None:
            frame = w.data(1, Qt.ItemDataRole.UserRole)
            item = next((it for it in self._items if it.frame == frame), None)
        if item is None:
            self.why.setText("")
            self.why.hide()
            return
        lines = item.details or [REASON_TIPS.get(r, r) for r in item.reasons] or ["no single cue stands out"]
        self.why.setText(f"Frame {item.frame} · U {item.score:.2f}\n" + "\n".join(f"• {t}" for t in lines))
        self.why.show()

    def _style(self, frame: int) -> None:
        w = self._widgets[frame]
        done = frame in self._visited
        brush = QBrush(QColor(MUTED)) if done else QBrush()
        for col in range(4):
            w.setForeground(col, brush)
        rank = w.data(0, Qt.ItemDataRole.UserRole)
        w.setText(0, ("✓ " if done else "") + str(rank + 1))

    def _update_summary(self) -> None:
        n = len(self._items)
        if n == 0:
            self._summary.setText("Nothing to review: no uncertain frames")
            return
        left = n - len(self._visited & set(self._widgets))
        frames = "frame" if n == 1 else "frames"
        self._summary.setText(f"{n} {frames} to review · {left} not visited · U jumps to the next")

    def _on_activated(self, w: QTreeWidgetItem, _column: int = 0) -> None:
        frame = int(w.data(1, Qt.ItemDataRole.UserRole))
        self._cursor = next((r for r, it in enumerate(self._items) if it.frame == frame), self._cursor)
        self.mark_visited(frame)
        self.frame_requested.emit(frame)
