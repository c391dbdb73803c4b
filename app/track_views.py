"""The canvas, track list, timeline and properties panel follow the document and the view state.

This is the one place that pushes document changes and view-state changes into those four views: a new frame,
selection or visibility is set once on the view state and each view here redraws itself, instead of every
caller updating every widget by hand. Clicks in the views go back to the view state, never to another view.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from app import presenters
from app.document import TRACKS, Document
from app.turns import Turns
from app.view_state import Hover, ViewState
from widgets.timeline import Timeline
from widgets.track_list import TrackList
from widgets.video_canvas import MaskOverlay, VideoCanvas


class TrackViews:
    def __init__(self, doc: Document, view: ViewState, canvas: VideoCanvas, track_list: TrackList,
                 timeline: Timeline, frame_image: Callable[[int], object], turns: Turns | None = None):
        self.doc, self.view = doc, view
        self.canvas, self.track_list, self.timeline = canvas, track_list, timeline
        self.frame_image = frame_image      # frame index -> RGB array (the window's reader)
        self.run_ap: float | None = None    # AP of the document's run against the loaded ground truth
        self.turns = turns or Turns()   # a run's redraws, one view per event-loop turn (see _on_doc_event)

        self.properties = QWidget()
        form = QFormLayout(self.properties)
        form.setContentsMargins(6, 4, 6, 4)
        self.prop_labels: dict[str, QLabel] = {}
        for key, text in presenters.PROPERTY_FIELDS:
            lab = QLabel("—")
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lab.setWordWrap(True)
            self.prop_labels[key] = lab
            form.addRow(text, lab)
        self.prop_labels["track"].setTextFormat(Qt.TextFormat.RichText)

        canvas.hovered.connect(lambda tid, x, y: view.set_hover(Hover(tid, x, y)))
        canvas.track_clicked.connect(view.select)
        track_list.track_selected.connect(view.select)
        track_list.visibility_changed.connect(view.set_visible)
        timeline.track_selected.connect(view.select)

        doc.subscribe(self._on_doc_event)
        view.events.frame.connect(self._on_frame)
        view.events.selection.connect(self._on_selection)
        view.events.visibility.connect(self._on_visibility)

    # ------------------------------------------------------------ listeners
    def _on_doc_event(self, name: str, payload: dict) -> None:
        if name == TRACKS:
            self.view.set_tracks(t.id for t in self.doc.tracks)
            if payload.get("partial") or payload.get("bulk"):
                # A run's window or its import: every view changes at once, and one turn that redraws (and
                # then paints) them all held the GUI thread past a frame's budget at 720p. One per turn.
                self.turns.schedule("tracks.list", self._refresh_track_list)
                self.turns.schedule("tracks.timeline", self._refresh_timeline)
                # A run's import empties the mask cache: decoding the frame's masks is a turn of its own, so the
                # canvas's turn only composites (together they measured 14-24 ms at 720p after a run).
                self.turns.schedule("tracks.decode", self._decode_frame)
                self.turns.schedule("tracks.canvas", self.refresh_canvas)
                self.turns.schedule("tracks.properties", self.refresh_properties)
                return
            self.turns.cancel("tracks.list", "tracks.timeline", "tracks.decode", "tracks.canvas", "tracks.properties")
            self.refresh_tracks()
            change = payload.get("change")
            # An edit says which frames it touched: the canvas redraws only when the frame on screen is one
            # of them (or labels changed); a whole new set of tracks always redraws.
            if change is None or change.reset or change.tracks_added or change.tracks_removed or \
                    change.fields_changed or change.categories or self.view.frame in change.frames():
                self.refresh_canvas()
            self.refresh_properties()

    def _on_frame(self, frame: int) -> None:
        self.turns.cancel("tracks.decode", "tracks.canvas", "tracks.properties")   # redrawn here
        self.canvas.set_frame(self.frame_image(frame))
        self.refresh_canvas()
        self.timeline.set_current_frame(frame)
        self.track_list.set_current_frame(frame)
        self.refresh_properties()

    def _on_selection(self, tid: int | None) -> None:
        self.track_list.set_selected(-1 if tid is None else tid)
        self.timeline.set_selected(-1 if tid is None else tid)
        self.refresh_canvas()
        self.refresh_properties()

    def _on_visibility(self, tid: int | None) -> None:
        if tid is None:
            self.canvas.set_overlays_visible(self.view.overlays_visible)
        else:
            self.track_list.set_visible(tid, self.view.is_visible(tid))
        self.refresh_canvas()

    # ------------------------------------------------------------ redraws
    def _decode_frame(self) -> None:
        """Fill the document's mask cache for the frame on screen (what refresh_canvas reads next)."""
        frame = self.view.frame
        if self.doc.video is not None and frame >= 0:
            self.doc.masks_at(frame, self.view.shows)

    def refresh_canvas(self, extra: MaskOverlay | None = None) -> None:
        """The current frame's overlays; `extra` (a hovered frame query's mask) goes on top of them, with no
        track highlighted, until the next redraw."""
        frame = self.view.frame
        if self.doc.video is None or frame < 0:
            return
        overlays = presenters.overlays_for(self.doc, frame, self.view.shows, self.view.selected)
        if extra is not None:
            for o in overlays:
                o.selected = False
            overlays.append(extra)
        self.canvas.set_overlays(overlays)

    def refresh_tracks(self) -> None:
        presence = self.doc.presence()   # both views show it: decoded once
        self._refresh_track_list(presence)
        self._refresh_timeline(presence)

    def _refresh_track_list(self, presence: np.ndarray | None = None) -> None:
        self.track_list.set_tracks(presenters.track_rows(self.doc, self.view.is_visible, presence))

    def _refresh_timeline(self, presence: np.ndarray | None = None) -> None:
        self.timeline.set_lanes(self.doc.num_frames, presenters.track_lanes(self.doc, presence))
        self.timeline.set_current_frame(max(self.view.frame, 0))
        sel = self.view.selected
        self.timeline.set_selected(-1 if sel is None else sel)

    def set_run_ap(self, ap: float | None) -> None:
        self.run_ap = ap
        self.refresh_properties()

    def refresh_properties(self) -> None:
        for key, text in presenters.properties(self.doc, self.view.selected, self.run_ap, self.view.frame).items():
            self.prop_labels[key].setText(text)
