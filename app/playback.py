"""Moving through the video: seeking, stepping, playing at the video's rate, track events, and the frame bar
(transport buttons, slider, frame spin box, time) under the canvas.

Seeking checks that the frame can be read (a damaged file stops playback with a message) and then sets the view
state's frame; the slider, the spin box and every other view only follow the view state.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QStyle, QToolButton, QWidget

from app import presenters
from app.actions import TRANSPORT, Actions
from app.document import Document
from app.view_state import ViewState
from engine.errors import InputError
from widgets.colors import MUTED


class Playback(QObject):
    def __init__(self, parent: QWidget, doc: Document, view: ViewState, actions: Actions,
                 frame_image: Callable[[int], object], status: Callable[[str, int], None]):
        super().__init__(parent)
        self.doc, self.view, self.actions = doc, view, actions
        self.frame_image = frame_image   # frame index -> RGB array; raises InputError on a damaged frame
        self.status = status             # (text, ms) -> status bar
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.slider.valueChanged.connect(self.seek)
        self.spin = QSpinBox()
        self.spin.setRange(0, 0)
        self.spin.setKeyboardTracking(False)
        self.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.spin.setToolTip("Frame index (0-based)")
        self.spin.valueChanged.connect(self.seek)
        self.total_label = QLabel("/ 0")
        self.total_label.setMinimumWidth(56)
        self.time_label = QLabel("")
        self.time_label.setStyleSheet(f"color: {MUTED};")
        self.time_label.setMinimumWidth(120)
        self.bar = QHBoxLayout()
        self.bar.setContentsMargins(6, 2, 6, 4)
        for name in TRANSPORT:
            b = QToolButton()
            b.setDefaultAction(actions[name])
            b.setAutoRaise(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.bar.addWidget(b)
        self.bar.addWidget(self.slider, 1)
        self.bar.addWidget(self.spin)
        self.bar.addWidget(self.total_label)
        self.bar.addWidget(self.time_label)

        view.events.frame.connect(self._on_frame)
        view.events.playing.connect(self._on_playing)

    # ------------------------------------------------------------ a new video
    def set_video(self, num_frames: int) -> None:
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setRange(0, max(0, num_frames - 1))
            w.setValue(0)
            w.blockSignals(False)
        self.total_label.setText(f"/ {num_frames - 1}")

    def set_enabled(self, enabled: bool) -> None:
        self.slider.setEnabled(enabled)
        self.spin.setEnabled(enabled)

    # ------------------------------------------------------------ moving
    def seek(self, frame: int, force: bool = False) -> None:
        n = self.doc.num_frames
        if n == 0 or self.doc.video is None:
            return
        frame = max(0, min(int(frame), n - 1))
        if frame == self.view.frame and not force:
            return
        try:
            self.frame_image(frame)   # cached by the reader: the views read it again for free
        except InputError as e:
            self.stop()
            self.status(str(e), 8000)
            return
        except IndexError:
            return
        self.view.set_frame(frame, force=True)

    def step(self, delta: int) -> None:
        self.seek(self.view.frame + delta)

    def jump_event(self, direction: int) -> None:
        f = self.doc.next_event(self.view.frame, direction)
        if f is not None:
            self.seek(f)
        else:
            self.status("No further track event in that direction", 3000)

    # ------------------------------------------------------------ playing
    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.stop()
        elif self.doc.num_frames:
            if self.view.frame >= self.doc.num_frames - 1:
                self.seek(0)
            self.timer.start(max(1, int(round(1000.0 / (self.doc.video.fps or 30.0)))))
            self.view.set_playing(True)

    def stop(self) -> None:
        self.timer.stop()
        self.view.set_playing(False)

    def is_playing(self) -> bool:
        return self.timer.isActive()

    def _tick(self) -> None:
        if self.view.frame >= self.doc.num_frames - 1:
            self.stop()
            return
        self.step(1)

    # ------------------------------------------------------------ view state
    def _on_frame(self, frame: int) -> None:
        for w in (self.slider, self.spin):
            if w.value() != frame:
                w.blockSignals(True)
                w.setValue(frame)
                w.blockSignals(False)
        if self.doc.video is not None:
            self.time_label.setText(presenters.frame_texts(frame, self.doc.num_frames, self.doc.video.fps).time)

    def _on_playing(self, playing: bool) -> None:
        if not playing:
            self.timer.stop()   # someone else stopped playback (a new video)
        a = self.actions["play"]
        a.setChecked(playing)
        pm = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        a.setIcon(a.parent().style().standardIcon(pm))
