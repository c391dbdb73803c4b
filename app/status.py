"""The status bar and the messages: frame i/N, cursor, device, memory, the running job's progress, and message
boxes that never block.

Messages live here because every controller reports through them (a failed job, a bad file) and the screenshot
mode and the tests read them back from one list.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton, QWidget

from app import presenters
from app.document import Document
from app.engine_worker import memory_text
from app.view_state import Hover, ViewState

log = logging.getLogger(__name__)


class Message(NamedTuple):
    title: str
    text: str


class Banner(QLabel):
    """A note across the bottom of a widget (the canvas): visible, never modal, closed with its × link or when
    the reason goes (a new video)."""

    def __init__(self, host: QWidget):
        super().__init__(host)
        self.host = host
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setStyleSheet("QLabel { background: rgba(58, 44, 12, 235); color: #ffe3a3; border: 1px solid #c99a2e;"
                           " border-radius: 4px; padding: 6px 10px; } a { color: #ffd36b; }")
        self.linkActivated.connect(lambda _l: self.hide())
        host.installEventFilter(self)
        self.hide()

    def set_note(self, html: str) -> None:
        self.setText(f"{html} &nbsp;<a href='#close'>×&nbsp;close</a>")
        self.setToolTip("")
        self._place()
        self.show()
        self.raise_()

    def _place(self) -> None:
        w = max(120, self.host.width() - 24)
        self.setFixedWidth(w)
        self.setFixedHeight(self.heightForWidth(w))
        self.move(12, max(0, self.host.height() - self.height() - 40))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt name
        if obj is self.host and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False


class Status(QObject):
    message_shown = Signal(str, str)  # title, text

    def __init__(self, window: QMainWindow, doc: Document, view: ViewState):
        super().__init__(window)
        self.window, self.doc, self.view = window, doc, view
        self.messages: list[Message] = []
        self.last_message_box: QMessageBox | None = None
        self.show_message_boxes = True

        sb = window.statusBar()
        self.job_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.frame_label = QLabel("Frame – / –")
        self.cursor_label = QLabel("x –, y –")
        self.device_label = QLabel("CPU")
        self.memory_label = QLabel("")
        for w in (self.frame_label, self.cursor_label, self.device_label, self.memory_label):
            w.setStyleSheet("padding: 0 6px;")
        self.cursor_label.setMinimumWidth(110)
        self.frame_label.setMinimumWidth(110)
        for w in (self.job_label, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
            w.hide()
        for w in (self.frame_label, self.cursor_label, self.device_label, self.memory_label):
            sb.addPermanentWidget(w)
        sb.showMessage("Open a video (Ctrl+O) or drop one on the window", 0)
        self._banner: Banner | None = None

        self.mem_timer = QTimer(self)
        self.mem_timer.timeout.connect(self.update_memory)
        self.mem_timer.start(2000)
        self.update_memory()
        view.events.frame.connect(self._on_frame)
        view.events.hover.connect(self._on_hover)

    # ------------------------------------------------------------ messages
    def show(self, text: str, ms: int = 0) -> None:
        """A transient status-bar message."""
        self.window.statusBar().showMessage(text, ms)

    def show_message(self, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        """A message box that does not block (window-modal, opened with open()), so a failed job never stalls
        the event loop; every message is also kept in `messages` and emitted as `message_shown`."""
        self.messages.append(Message(title, text))
        log.warning("%s: %s", title, text)
        self.message_shown.emit(title, text)
        if not self.show_message_boxes:
            self.show(f"{title}: {text}", 10000)
            return
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.last_message_box = box
        box.open()

    def show_banner(self, html: str) -> None:
        """A standing, non-blocking note over the bottom of the canvas (the status bar when there is none)."""
        host = getattr(self.window, "canvas", None)
        if host is None:
            self.show(html, 30000)
            return
        if self._banner is None or self._banner.host is not host:
            self._banner = Banner(host)
        self._banner.set_note(html)

    def hide_banner(self) -> None:
        if self._banner is not None:
            self._banner.hide()

    def banner_text(self) -> str:
        """The banner's text when it shows, else ''."""
        return self._banner.text() if self._banner is not None and self._banner.isVisible() else ""

    # ------------------------------------------------------------ the running job
    def show_job(self, text: str) -> None:
        """Show the job widgets with an indeterminate bar until the first progress."""
        self.job_label.setText(text)
        self.progress.setRange(0, 0)
        for w in (self.job_label, self.progress, self.cancel_button):
            w.show()

    def job_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} frames")
        self.job_label.setText(text)

    def hide_job(self) -> None:
        for w in (self.job_label, self.progress, self.cancel_button):
            w.hide()

    # ------------------------------------------------------------ view state
    def _on_frame(self, frame: int) -> None:
        if self.doc.video is not None:
            self.frame_label.setText(presenters.frame_texts(frame, self.doc.num_frames, self.doc.video.fps).status)

    def _on_hover(self, hover: Hover) -> None:
        if hover.x < 0:
            self.cursor_label.setText("x –, y –")
            return
        text = f"x {hover.x}, y {hover.y}"
        if hover.track_id >= 0:
            t = self.doc.track(hover.track_id)
            text += f" · track {hover.track_id}" + (f" {self.doc.category_name(t.category_id)}" if t else "")
        self.cursor_label.setText(text)

    def update_memory(self) -> None:
        self.memory_label.setText(memory_text())
