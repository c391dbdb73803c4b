"""The Compare dock: two or three panes in lockstep with the current frame, each a read-out of this run (its
video-level or frame-level tracks) or another checkpoint run on this video, with AP against the ground truth.

Each pane's source keeps its own document (a copy of what it shows: an edit of the main document never changes
a pane) and, while its checkpoint runs, its own `JobHandle`.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.docks import on_screen
from app.document import TRACKS, Document
from app.engine_worker import EngineWorker, InferJob, JobHandle
from app.presenters import crop_overlay
from app.run_controller import RESOURCES, bundled_checkpoints, same_file
from app.status import Status
from app.view_state import ViewState
from engine.data.masks import MaskCrop, decode_crop
from engine.types import VideoPrediction
from widgets.compare_view import CompareView
from widgets.video_canvas import MaskOverlay, subsample

# Compare sources that are not checkpoints: the two read-outs of the main run.
RUN_VIDEO, RUN_FRAME = "run:video", "run:frame"
OTHER = "__other__"
_PANES = 3
_SMALL_FRAMES = 96   # frames of reduced masks kept per pane (a few seconds of playback back and forth)


@dataclass
class CompareSource:
    key: str                               # RUN_VIDEO, RUN_FRAME or a checkpoint path
    title: str
    doc: Document | None = None            # what the pane shows
    made_from: VideoPrediction | None = None  # the main run a read-out was built from (rebuilt when it changes)
    job: JobHandle | None = None           # its checkpoint running on this video
    ap: float | None = None
    error: str = ""
    # (frame, step) -> [(track id, mask at 1/step)] of `small_of`: masks drawn at the pane's size
    small: OrderedDict = field(default_factory=OrderedDict)
    small_of: Document | None = None

    @property
    def is_readout(self) -> bool:
        return self.key in (RUN_VIDEO, RUN_FRAME)


class Comparison(QObject):
    def __init__(self, window: QMainWindow, doc: Document, view: ViewState, worker: EngineWorker,
                 status: Status, device: Callable[[], str], frame_image: Callable[[int], object],
                 ap_of: Callable[[VideoPrediction], float | None]):
        super().__init__(window)
        self.window, self.doc, self.view, self.worker, self.status = window, doc, view, worker, status
        self.device, self.frame_image, self.ap_of = device, frame_image, ap_of
        self.sources: list[CompareSource] = []
        self.dock: QDockWidget | None = None
        self.timeline_dock: QDockWidget | None = None
        self._bottom_before: int | None = None  # bottom dock height before Compare enlarged it

        self.view_widget = CompareView(num_panes=_PANES)
        for pane in self.view_widget._panes:   # small panes: a label that cannot sit clear of the others goes
            pane.set_drop_colliding_labels(True)
        self.bar = QWidget()
        cb = QHBoxLayout(self.bar)
        cb.setContentsMargins(4, 2, 4, 2)
        self.combos: list[QComboBox] = []
        for i in range(_PANES):
            combo = QComboBox()
            combo.setMinimumWidth(80)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.setToolTip(f"What pane {i + 1} shows: a read-out of this run, "
                             "or a checkpoint run on this video")
            combo.currentIndexChanged.connect(lambda _i, pane=i: self._on_source_changed(pane))
            self.combos.append(combo)
            cb.addWidget(combo, 1)
        self.run_button = QPushButton("Run missing")
        self.run_button.setToolTip("Run the chosen checkpoints on this video (results are kept per video)")
        self.run_button.clicked.connect(self.run)
        cb.addWidget(self.run_button)
        self.widget = QWidget()
        cl = QVBoxLayout(self.widget)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.bar)
        cl.addWidget(self.view_widget, 1)
        self._fill_combos()

        doc.subscribe(lambda name, _p: name == TRACKS and self.update_panes())
        view.events.frame.connect(lambda _f: self.update_panes())
        view.events.selection.connect(lambda _t: self.update_panes())
        view.events.visibility.connect(self._on_visibility)

    def set_docks(self, dock: QDockWidget, timeline: QDockWidget) -> None:
        self.dock, self.timeline_dock = dock, timeline
        dock.visibilityChanged.connect(self._on_visible)

    # ------------------------------------------------------------ choosing sources
    def _fill_combos(self) -> None:
        options = [(RUN_VIDEO, "This run · video-level"), (RUN_FRAME, "This run · frame-level")]
        options += [(str(p), p.name) for p in bundled_checkpoints()]
        defaults = [str(p) for p in bundled_checkpoints()[:3]]
        order = {"tiny-video.pt": 0, "tiny-frame.pt": 1, "tiny-sync.pt": 2}
        defaults.sort(key=lambda p: order.get(Path(p).name, 9))
        if len(defaults) < 2:
            defaults = [RUN_VIDEO, RUN_FRAME]
        for i, combo in enumerate(self.combos):
            combo.blockSignals(True)
            combo.clear()
            if i == 2:
                combo.addItem("(none)", "")
            for key, title in options:
                combo.addItem(title, key)
            combo.addItem("Other checkpoint…", OTHER)
            want = defaults[i] if i < len(defaults) else ""
            combo.setCurrentIndex(max(0, combo.findData(want)))
            combo.blockSignals(False)
        self.sources = [CompareSource(c.currentData(), c.currentText()) for c in self.combos if c.currentData()]
        self.view_widget.set_num_panes(max(1, len(self.sources)))

    def add_checkpoint(self, path: str) -> None:
        for combo in self.combos:
            if combo.findData(str(path)) < 0:
                combo.insertItem(combo.findData(OTHER), Path(path).name, str(path))
                combo.setItemData(combo.findData(str(path)), str(path), Qt.ItemDataRole.ToolTipRole)

    def set_sources(self, keys: list[str]) -> None:
        """Choose what the panes show (RUN_VIDEO, RUN_FRAME or checkpoint paths), 2 or 3 of them."""
        for k in keys:
            if k not in (RUN_VIDEO, RUN_FRAME):
                self.add_checkpoint(k)
        for i, combo in enumerate(self.combos):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(keys[i] if i < len(keys) else "")))
            combo.blockSignals(False)
        self._on_source_changed(None)

    def _on_source_changed(self, pane: int | None) -> None:
        if pane is not None and self.combos[pane].currentData() == OTHER:
            combo = self.combos[pane]
            path, _ = QFileDialog.getOpenFileName(self.window, "Checkpoint for this pane",
                                                  str(RESOURCES / "models"),
                                                  "Checkpoints (*.pt *.pth *.pkl);;All files (*)")
            from app.official_classes import confirm_checkpoint  # an official file: which dataset's classes

            if path and not confirm_checkpoint(self.window, path):
                path = ""   # not a checkpoint (said), or the question was cancelled: the pane keeps its model
            combo.blockSignals(True)
            if path:
                self.add_checkpoint(path)
                combo.setCurrentIndex(combo.findData(path))
            else:
                previous = self.sources[pane].key if pane < len(self.sources) else ""
                combo.setCurrentIndex(max(0, combo.findData(previous)))
            combo.blockSignals(False)
        old = {s.key: s for s in self.sources}
        self.sources = []
        for c in self.combos:
            key = c.currentData()
            if key:
                self.sources.append(old.get(key) or CompareSource(key, c.currentText()))
        self.view_widget.set_num_panes(max(1, len(self.sources)))
        self.update_panes()
        QTimer.singleShot(60, self.view_widget.fit_view)  # pane widths changed

    def _on_visible(self, visible: bool) -> None:
        """Side-by-side panes need room: give the bottom area about 45 % of the height while Compare shows,
        and refit the panes (they were laid out while hidden)."""
        w, dock, timeline = self.window, self.dock, self.timeline_dock
        if not visible:
            before, self._bottom_before = self._bottom_before, None
            if before is not None and timeline.isVisible() and not timeline.isFloating():
                QTimer.singleShot(0, lambda: w.resizeDocks([timeline], [before], Qt.Orientation.Vertical))
            return
        want = self._fill_height()
        if abs(dock.height() - want) > 24 and not dock.isFloating():
            if self._bottom_before is None:
                self._bottom_before = dock.height()
            w.resizeDocks([dock], [want], Qt.Orientation.Vertical)
        self.update_panes()
        QTimer.singleShot(60, self.view_widget.fit_view)

    def _fill_height(self) -> int:
        """The dock height at which the side-by-side panes are filled by the video's frames (its aspect, the
        dock's width shared by the panes, plus the source bar and the dock's title), within 25-55 % of the
        window."""
        w = self.window
        v = self.doc.video
        aspect = (v.width / max(v.height, 1)) if v is not None else 16 / 9
        n = max(1, len(self.sources))
        pane_w = max(120, (self.dock.width() - 4 * (n - 1)) / n)
        want = int(pane_w / aspect) + self.bar.sizeHint().height() + 30
        return int(min(max(want, w.height() * 0.25), w.height() * 0.55))

    def _on_visibility(self, track_id: int | None) -> None:
        if track_id is None:
            self.view_widget.set_overlays_visible(self.view.overlays_visible)
            self.update_panes()

    # ------------------------------------------------------------ results
    def reset(self, keep_checkpoints: bool = False) -> None:
        """Drop results: all of them (a new video), or only the read-outs of the main run (it ran again)."""
        for s in self.sources:
            if not keep_checkpoints or s.is_readout:
                s.doc, s.made_from, s.ap, s.error = None, None, None, ""
                s.small.clear()
                if not keep_checkpoints:
                    if s.job is not None:
                        s.job.cancel()
                    s.job = None

    def rescore(self) -> None:
        for s in self.sources:
            if s.doc is not None and s.doc.prediction is not None:
                s.ap = self.ap_of(s.doc.prediction)
        self.update_panes()

    def jobs(self) -> list[JobHandle]:
        return [s.job for s in self.sources if s.job is not None]

    def cancel(self) -> None:
        for job in self.jobs():
            job.cancel()

    def _doc_of(self, pred: VideoPrediction) -> Document:
        d = Document()
        d.open_video(self.doc.video)
        d.set_prediction(pred)
        return d

    def _source_doc(self, s: CompareSource) -> Document | None:
        pred = self.doc.prediction
        if not s.is_readout:
            if s.doc is None and s.job is None and pred is not None and pred.complete \
                    and same_file(pred.checkpoint, s.key):
                s.doc, s.ap, s.error = self._doc_of(pred), self.ap_of(pred), ""  # the model that just ran
            return s.doc
        if pred is None or self.doc.video is None:
            return None
        if s.made_from is not pred:
            tracks = pred.tracks if s.key == RUN_VIDEO else (pred.frame_tracks or [])
            mode = pred.mode if s.key == RUN_VIDEO else "frame"
            sub = VideoPrediction(mode, pred.num_frames, pred.height, pred.width, pred.categories, tracks,
                                  checkpoint=pred.checkpoint, complete=pred.complete)
            s.doc, s.made_from, s.ap = self._doc_of(sub), pred, self.ap_of(sub)
        return s.doc

    def run(self) -> list[JobHandle]:
        """Run every checkpoint pane that has no result for this video yet. Returns their jobs."""
        if self.doc.video is None:
            self.status.show_message("Compare", "Open a video first.", QMessageBox.Icon.Information)
            return []
        jobs = []
        main = self.doc.prediction
        for i, s in enumerate(self.sources):
            if s.is_readout or s.doc is not None or s.job is not None:
                continue
            if main is not None and main.complete and same_file(main.checkpoint, s.key):
                s.doc, s.ap = self._doc_of(main), self.ap_of(main)  # this checkpoint already ran here
                continue
            s.error = ""
            job = self.worker.submit(InferJob(str(self.doc.video.path), s.key, self.device(), internals=False,
                                              tag=f"compare:{i}"))
            s.job = job
            job.progress.connect(lambda done, total, _eta, s=s: self._on_progress(s, done, total))
            job.finished.connect(lambda pred, s=s, job=job: self._on_result(s, job, pred))
            job.cancelled.connect(lambda pred, s=s, job=job: self._on_result(s, job, pred))
            job.failed.connect(lambda msg, s=s, job=job: self._on_failed(s, job, msg))
            jobs.append(job)
        self.update_panes()
        return jobs

    def _on_progress(self, s: CompareSource, done: int, total: int) -> None:
        if s in self.sources and self.sources.index(s) < self.view_widget.num_panes:
            self.view_widget.pane(self.sources.index(s)).set_title(f"{s.title} · {done}/{total} frames…")

    def _on_result(self, s: CompareSource, job: JobHandle, pred: VideoPrediction | None) -> None:
        """Finished, or cancelled: a cancelled run shows the frames it finished; None: it never started."""
        if s.job is not job:
            return
        s.job = None
        v = self.doc.video
        if pred is None:
            s.error = "cancelled"
        elif v is not None and pred.num_frames == v.num_frames:
            s.doc, s.ap = self._doc_of(pred), self.ap_of(pred)
        self.update_panes()

    def _on_failed(self, s: CompareSource, job: JobHandle, message: str) -> None:
        if s.job is not job:
            return
        s.job = None
        s.error = message
        self.update_panes()
        self.status.show_message("Compare run failed", message)

    # ------------------------------------------------------------ drawing
    def pane_step(self, shape: tuple[int, int]) -> int:
        """Every how many pixels the panes draw the frame and masks (VideoCanvas.draw_step of pane 0)."""
        return self.view_widget.pane(0).draw_step(shape)

    def _small_masks(self, s: CompareSource, d: Document, frame: int, step: int) -> list[tuple[int, MaskCrop]]:
        if s.small_of is not d:
            s.small.clear()
            s.small_of = d
        key = (frame, step)
        hit = s.small.get(key)
        if hit is not None:
            s.small.move_to_end(key)
            return hit
        out = []
        for t in d.tracks:
            rle = t.masks[frame] if frame < len(t.masks) else None
            if rle is not None and rle.get("counts"):
                c = decode_crop(rle, step)
                if c is not None:
                    out.append((t.id, c))
        s.small[key] = out
        while len(s.small) > _SMALL_FRAMES:
            s.small.popitem(last=False)
        return out

    def _overlays(self, s: CompareSource, d: Document, frame: int, step: int) -> list[MaskOverlay]:
        """The pane's masks at 1/step; the main window's selected track is marked (and its label placed first)
        in the panes whose track ids are the main run's (its video-level read-out, or its own checkpoint)."""
        if not self.view.overlays_visible:
            return []
        main = self.doc.prediction
        same_ids = s.key == RUN_VIDEO or (main is not None and d.prediction is main)
        selected = self.view.selected if same_ids else None
        out = [crop_overlay(d, tid, c, frame, tid == selected) for tid, c in self._small_masks(s, d, frame, step)]
        out.sort(key=lambda o: o.selected)
        return out

    def update_panes(self) -> None:
        """Draw the frame on screen in every pane, when the dock is on screen."""
        if not self.sources or not on_screen(self.dock):
            return
        frame = self.view.frame
        img = self.frame_image(frame) if self.doc.video is not None and frame >= 0 else None
        step = 1
        if img is not None:
            img = np.asarray(img)
            step = self.pane_step(img.shape[:2])
            img = subsample(img, step)
        for i, s in enumerate(self.sources[: self.view_widget.num_panes]):
            d = self._source_doc(s)
            if img is None:
                self.view_widget.set_pane(i, s.title, None, [])
                continue
            if d is None:
                if s.job is not None:
                    note = "running…"
                elif s.error:
                    note = "failed"
                elif s.is_readout:
                    note = "run SyncVIS first"
                else:
                    note = "not run on this video yet: press Run missing"
                self.view_widget.set_pane(i, f"{s.title} · {note}", img, [])
                continue
            self.view_widget.set_pane(i, s.title, img, self._overlays(s, d, frame, step), s.ap)
