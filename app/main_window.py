"""The main window: wiring only. It owns the document, the view state and the engine worker, lays out the
canvas and the docks, builds the actions from their tables, saves and restores its layout, and opens dialogs;
each concern lives in its own module and talks to the others through the document and the view state:

  app/view_state.py      frame, playing, selection, visibility, hover, tool (Qt-free, evented)
  app/presenters.py      overlays, rows, lanes, property text built from the document
  app/track_views.py     canvas, track list, timeline and properties follow the document and view state
  app/actions.py         actions, menus and toolbars from the keymap and the action tables
  app/playback.py        seeking, stepping, playing; the frame bar under the canvas
  app/run_controller.py  checkpoint and device pickers, the main run's job and progress
  app/analysis.py        review queue, frame vs video, aggregation weights, frame-query masks
  app/compare.py         the Compare dock's panes and their jobs
  app/ground_truth.py    a loaded YTVIS ground truth and AP (Qt-free)
  app/status.py          the status bar and the (non-blocking) messages

Layout as product.md says: canvas in the centre with a frame slider under it, tools on the left, tracks on the
right, timeline at the bottom, analysis panels as docks, a status bar with frame, cursor, device and memory.

Threading: the GUI thread reads single frames (the reader's cache and read-ahead keep scrubbing cheap) and
never touches torch; the engine worker runs the models and sends back plain data through job handles.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import keymap
from app.actions import MAIN_TOOLBAR, Actions
from app.analysis import Analysis
from app.assist import Assist
from app.compare import RUN_FRAME, RUN_VIDEO, Comparison
from app.document import Document, VideoRef
from app.editing import Editing
from app.engine_worker import EngineWorker, JobHandle
from app.finetune import FineTune
from app.ground_truth import GroundTruth, sidecar_for
from app.heap import freeze_heap
from app.playback import Playback
from app.project_files import VIDEO_FILTER, ProjectFiles
from app.run_controller import RunController, default_checkpoint
from app.settings import Settings
from app.status import Message, Status
from app.track_views import TrackViews
from app.turns import Turns
from app.view_state import ViewState
from engine.errors import InputError
from engine.types import VideoPrediction
from widgets.timeline import Timeline
from widgets.track_list import TrackList
from widgets.training_view import TrainingView
from widgets.video_canvas import VideoCanvas

__all__ = ["RUN_FRAME", "RUN_VIDEO", "MainWindow", "ShortcutSheet"]



class ShortcutSheet(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 640)
        self.text = QTextBrowser(self)
        self.text.setHtml(keymap.sheet_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)


class MainWindow(QMainWindow):
    """The studio window. Public entry points used by launch.py and the tests:

    open_video(path) -> bool, run_model(checkpoint=None, window=None) -> JobHandle | None, cancel_run(),
    seek(i), step(n), load_ground_truth(path), set_checkpoint(path), set_compare_sources(keys), run_compare(),
    is_busy(), show_message(title, text), messages (list of (title, text) shown); `doc` (the document) and
    `view` (the view state).
    """

    frame_changed = Signal(int)
    run_finished = Signal(object)     # the final VideoPrediction of a main run (complete or cancelled)
    message_shown = Signal(str, str)  # title, text

    def __init__(self, settings: Settings | None = None, worker: EngineWorker | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.doc = Document()
        self.view = ViewState()
        self.reader = None               # engine.data.video.VideoReader of the open video
        self.gt: GroundTruth | None = None
        self.sheet: ShortcutSheet | None = None
        self.worker = worker or EngineWorker(self)

        self.setWindowTitle("SyncVIS Studio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        # The right column (tracks, analysis) runs the full height; the timeline sits under the canvas only,
        # which keeps the minimum height small enough for a 768-pixel laptop screen.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.resize(1440, 900)

        self.actions_ = Actions(self, self.view)
        self.act = self.actions_.act
        self.status = Status(self, self.doc, self.view)
        self.status.message_shown.connect(self.message_shown)
        status = self.status.show
        self.canvas = VideoCanvas(self)
        self.canvas.files_dropped.connect(lambda paths: paths and self.open_video(str(paths[0])))
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.track_list, self.timeline = TrackList(), Timeline()
        # One queue of deferred work for the whole window, one step per event-loop turn (app/turns.py): a run's
        # windows and its end redraw many views, and two queues would run a step each in the same turn.
        self.turns = Turns(self)
        self.tracks = TrackViews(self.doc, self.view, self.canvas, self.track_list, self.timeline, self.frame,
                                 self.turns)
        self.prop_labels = self.tracks.prop_labels
        self.playback = Playback(self, self.doc, self.view, self.actions_, self.frame, status)
        self.play_timer = self.playback.timer
        self.slider, self.spin = self.playback.slider, self.playback.spin
        self.timeline.frame_requested.connect(self.seek)
        self.runs = RunController(self, self.doc, self.worker, self.settings, self.status)
        self.analysis = Analysis(self, self.doc, self.view, self.worker, self.runs.device, self.frame,
                                 self.tracks, self.seek, status, self.turns)
        self.review, self.frame_video = self.analysis.review, self.analysis.frame_video
        self.aggregation = self.analysis.aggregation
        self.comparison = Comparison(self, self.doc, self.view, self.worker, self.status, self.runs.device,
                                     self.frame, self._ap_of)
        self.compare = self.comparison.view_widget
        self.view.events.frame.connect(self.frame_changed.emit)
        self.view.events.visibility.connect(
            lambda tid: tid is None and self.act["toggle_overlays"].setChecked(self.view.overlays_visible))
        self.runs.state_changed.connect(self._update_enabled)
        self.runs.run_finished.connect(self._on_run_finished)
        self.editing = Editing(self, self.doc, self.view, self.canvas, self.status, self.runs.is_running)
        self.editing.session.saved_changed.connect(lambda ok: self.setWindowModified(not ok))
        self.assist = Assist(self, self.doc, self.view, self.editing, self.worker, self.status, self.settings,
                             self.runs.device)
        self.assist.busy_changed.connect(self._update_enabled)
        self.files = ProjectFiles(self)
        self.training = TrainingView()
        self.finetune = FineTune(self, self.training)

        self._build_central()
        self._build_docks()
        self._build_toolbars()
        self._build_menus()

        ckpt = self.settings.checkpoint()
        if not ckpt or not Path(ckpt).exists():
            d = default_checkpoint()
            ckpt = str(d) if d else ""
        self.set_checkpoint(ckpt, remember=False)
        if self.worker.info:
            self.runs._on_worker_ready(self.worker.info)
        self._restore_state()
        self._refresh_recent()
        self._update_enabled()

    # ============================================================ construction
    def _build_central(self) -> None:
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.canvas, 1)
        lay.addLayout(self.playback.bar)
        self.setCentralWidget(central)

    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(f"dock_{name}")
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, d)
        return d

    def _build_docks(self) -> None:
        R, B = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
        tracks = QSplitter(Qt.Orientation.Vertical)
        tracks.addWidget(self.track_list)
        tracks.addWidget(self.tracks.properties)
        tracks.setSizes([380, 160])
        self.dock_tracks = self._dock("tracks", "Tracks", tracks, R)
        self.dock_timeline = self._dock("timeline", "Timeline", self.timeline, B)
        self.dock_review = self._dock("review", "Review queue", self.review, R)
        self.dock_frame_video = self._dock("frame_video", "Frame vs video", self.frame_video, R)
        self.dock_aggregation = self._dock("aggregation", "Aggregation weights", self.aggregation, R)
        self.dock_compare = self._dock("compare", "Compare", self.comparison.widget, B)
        self.dock_training = self._dock("training", "Training", self.training, R)
        self.finetune.started.connect(lambda: (self.dock_training.show(), self.dock_training.raise_()))
        self.analysis.set_docks(self.dock_frame_video, self.dock_aggregation)
        self.comparison.set_docks(self.dock_compare, self.dock_timeline)
        self.tabifyDockWidget(self.dock_review, self.dock_frame_video)
        self.tabifyDockWidget(self.dock_frame_video, self.dock_aggregation)
        self.tabifyDockWidget(self.dock_aggregation, self.dock_training)
        self.dock_training.hide()  # shown when a fine-tuning run starts (or from View)
        self.dock_review.raise_()
        self.tabifyDockWidget(self.dock_timeline, self.dock_compare)
        self.dock_timeline.raise_()
        self.resizeDocks([self.dock_tracks, self.dock_review], [440, 440], Qt.Orientation.Vertical)
        self.resizeDocks([self.dock_tracks], [460], Qt.Orientation.Horizontal)
        self.resizeDocks([self.dock_timeline], [200], Qt.Orientation.Vertical)
        self._default_state = None

    def analysis_docks(self) -> dict[str, QDockWidget]:
        return {"frame_video": self.dock_frame_video, "compare": self.dock_compare,
                "aggregation": self.dock_aggregation, "review": self.dock_review}

    def _build_toolbars(self) -> None:
        main = QToolBar("Main")
        main.setObjectName("toolbar_main")
        main.setMovable(False)
        main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.actions_.fill(main, MAIN_TOOLBAR, {"engine": self.runs.add_pickers})
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, main)
        self.toolbar_main = main
        self.toolbar_tools = self.actions_.build_tools(self)
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, self.toolbar_tools)
        self.device_combo = self.runs.device_combo

    def _build_menus(self) -> None:
        def recent(menu):
            self.recent_menu = menu.addMenu("Open recent")

        def docks(menu):
            for d in (self.dock_tracks, self.dock_timeline, self.dock_review, self.dock_frame_video,
                      self.dock_aggregation, self.dock_compare, self.dock_training):
                menu.addAction(d.toggleViewAction())

        def finetuned(menu):
            sub = menu.addMenu("Fine-tuned models")

            def fill():
                sub.clear()
                for p in self.settings.models():
                    sub.addAction(f"{Path(p).parent.parent.name}/{Path(p).name}",
                                  lambda p=p: self.set_checkpoint(p)).setToolTip(p)
                if sub.isEmpty():
                    sub.addAction("(none yet: Engine › Fine-tune on this project…)").setEnabled(False)

            sub.aboutToShow.connect(fill)

        self.actions_.build_menus(self.menuBar(), {"recent": recent, "docks": docks, "finetuned": finetuned,
                                                   "bundled": self.runs.fill_bundled_menu})

    # ============================================================ messages (app/status.py keeps them)
    def show_message(self, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        self.status.show_message(title, text, icon)

    @property
    def messages(self) -> list[Message]:
        return self.status.messages

    @property
    def last_message_box(self) -> QMessageBox | None:
        return self.status.last_message_box

    @property
    def show_message_boxes(self) -> bool:
        return self.status.show_message_boxes

    @show_message_boxes.setter
    def show_message_boxes(self, value: bool) -> None:
        self.status.show_message_boxes = value

    # ============================================================ opening
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self.settings.last_dir(), VIDEO_FILTER)
        if path:
            self.open_video(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open frame folder", self.settings.last_dir())
        if path:
            self.open_video(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.open_video(urls[0])

    def frame(self, index: int):
        """Frame `index` of the open video (RGB); the reader's cache makes repeated reads free."""
        return self.reader[index]

    def open_video(self, path: str | Path, project: str | Path | None = None) -> bool:
        """Open a video file or frame folder with its project (`project`, or the video's autosave project, so
        edits are kept either way); on failure show a message naming the file and keep the current video.
        Returns True when the video is open."""
        from engine.data.video import VideoReader

        path = Path(path)
        self.stop()
        self.settle()   # the last run's tracks reach its project before the project closes
        reader = None
        try:
            reader = VideoReader(path, cache_size=256, read_ahead=24, cache_bytes=768 * 2**20)
            reader[0]
        except Exception as e:  # noqa: BLE001 - InputError names file and problem; anything else is a bad file too
            if reader is not None:
                reader.close()
            text = str(e) if isinstance(e, InputError) else f"{path}: {type(e).__name__}: {e}"
            self.show_message("Cannot open video", text)
            return False
        self.runs.abandon()
        self.comparison.cancel()
        self.analysis.abandon()
        self.editing.detach()
        old, self.reader = self.reader, reader
        if old is not None:
            old.close()
        n, fps = len(reader), float(reader.fps or 30.0)
        self.view.reset_video(n)
        self.doc.open_video(VideoRef(str(path), n, reader.width, reader.height, fps))
        self.settings.add_recent(path)
        self.settings.set_last_dir(str(path.parent))
        self._refresh_recent()
        self.playback.set_video(n)
        self.tracks.set_run_ap(None)
        self.comparison.reset()
        self.seek(0, force=True)
        self.canvas.fit_view()
        self.editing.attach(path, self.settings.projects_dir(), project)
        freeze_heap()   # the project's masks live as long as the video is open (app/heap.py)
        self._update_title()
        notes = [f"{path.name}: {n} frames, {reader.width}×{reader.height}, {fps:.2f} fps"]
        if getattr(reader, "variable_frame_rate", False):
            notes.append("variable frame rate (frames are indexed exactly; playback uses the mean rate)")
        if getattr(reader, "rotation", 0):
            notes.append(f"rotated {reader.rotation}° as the file asks")
        self.status.show(" · ".join(notes), 8000)
        if getattr(reader, "damaged_at", None) is not None:
            self.show_message("Damaged video", f"{path}: the video is damaged; decoding stops at frame "
                                               f"{reader.damaged_at}. The {n} frames before it are open.",
                              QMessageBox.Icon.Information)
        sidecar = sidecar_for(path)
        if sidecar is not None and (self.gt is None or self.gt.video_for(self.doc.video) is None):
            if self.load_ground_truth(sidecar, quiet=True):
                self.status.show(f"{path.name}: ground truth {sidecar.name} loaded (AP shown per run)", 8000)
        self._update_enabled()
        self.comparison.update_panes()
        return True

    def _update_title(self) -> None:
        """"<video> — <project> — SyncVIS Studio", with the [*] that Qt shows while a write has failed."""
        p = self.editing.session.project
        parts = [Path(self.doc.video.path).name] if self.doc.video else []
        if p is not None and not self.editing.session.autosave:
            parts.append(p.path.name)
        self.setWindowTitle(" — ".join(parts + ["SyncVIS Studio[*]"]))
        self.setWindowModified(not self.editing.session.saved)

    # ============================================================ projects (app/project_files.py, app/editing.py)
    def open_project(self, path: str | Path, video: str | Path | None = None) -> bool:
        return self.files.open_project(path, video)

    def new_project(self, video: str | Path, path: str | Path) -> bool:
        return self.files.new_project(video, path)

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for f in files:
            self.recent_menu.addAction(Path(f).name, lambda f=f: self.open_video(f)).setToolTip(f)
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: (self.settings.clear_recent(), self._refresh_recent()))
        self.recent_menu.setEnabled(bool(files))

    # ============================================================ navigation (app/playback.py)
    @property
    def current(self) -> int:
        """The frame on screen (the view state's; -1 before a video's first frame)."""
        return self.view.frame

    def seek(self, frame: int, force: bool = False) -> None:
        self.playback.seek(frame, force)

    def step(self, delta: int) -> None:
        self.playback.step(delta)

    def toggle_play(self) -> None:
        self.playback.toggle_play()

    def stop(self) -> None:
        self.playback.stop()

    def is_playing(self) -> bool:
        return self.playback.is_playing()

    def show_shortcuts(self) -> None:
        self.sheet = ShortcutSheet(self)
        self.sheet.show()

    # ============================================================ engine (app/run_controller.py, app/compare.py)
    def set_checkpoint(self, path: str, remember: bool = True) -> None:
        self.runs.set_checkpoint(path, remember)

    @property
    def checkpoint(self) -> str:
        return self.runs.checkpoint

    def device(self) -> str:
        return self.runs.device()

    def run_model(self, checkpoint: str | None = None, window: int | None = None) -> JobHandle | None:
        """Start SyncVIS on the open video (results stream in window by window); None when it cannot start."""
        self.settle()   # the last run is in the project before the next one starts
        return self.runs.run(checkpoint, window)

    def cancel_run(self) -> None:
        self.runs.cancel()
        self.comparison.cancel()
        self.assist.cancel()

    def is_busy(self) -> bool:
        return (self.runs.is_running() or bool(self.comparison.jobs()) or self.analysis.pending()
                or self.turns.pending() or not self.worker.is_idle())

    def set_compare_sources(self, keys: list[str]) -> None:
        self.comparison.set_sources(keys)

    def run_compare(self) -> list[JobHandle]:
        return self.comparison.run()

    def _on_run_finished(self, pred: VideoPrediction) -> None:
        """The end of a run, one step per event-loop turn (app/turns.py): the import into the project (its
        commit and the track views), the ground-truth scores, the compare panes, then `run_finished` once
        everything shows the new tracks. In one turn this held the GUI thread for 100-200 ms at 720p."""
        t = self.turns
        t.schedule("run.import", lambda: self.editing.accept_run(pred))
        t.schedule("run.scores", self._update_ground_truth_scores)
        t.schedule("run.compare", lambda: (self.comparison.reset(keep_checkpoints=True),
                                           self.comparison.update_panes()))

        def announce() -> None:   # last: after the redraws the steps above scheduled
            if t.pending():
                t.schedule("run.announce", announce)
            else:
                freeze_heap()   # the imported masks stay: keep them out of the collector's full passes
                self.run_finished.emit(pred)

        t.schedule("run.announce", announce)

    def settle(self) -> None:
        """Do the work waiting for later turns now: the end of a run and the views' redraws (before anything
        that replaces their state, and for callers that need the end state)."""
        self.turns.flush()

    def _update_enabled(self) -> None:
        has_video = self.doc.video is not None
        running = self.runs.is_running()
        self.actions_.update_enabled(has_video)
        self.playback.set_enabled(has_video)
        self.act["run"].setEnabled(has_video and bool(self.checkpoint) and not running)
        self.act["cancel"].setEnabled(running or bool(self.comparison.jobs()) or self.assist.run is not None)
        tip = "Run the model on the open video"
        if not has_video:
            tip = "Open a video first"
        elif not self.checkpoint:
            tip = "Choose a checkpoint first (Engine → Choose checkpoint…)"
        self.act["run"].setToolTip(f"{tip} (Ctrl+R)")

    # ============================================================ ground truth (app/ground_truth.py)
    def load_gt_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load ground truth", self.settings.last_dir(),
                                              "YouTube-VIS JSON (*.json);;All files (*)")
        if path:
            self.load_ground_truth(path)

    def load_ground_truth(self, path: str | Path, quiet: bool = False) -> bool:
        """Score every run on this video against a YTVIS ground-truth file (AP in the properties and in each
        compare pane). `quiet` (sidecar files found next to a video) reports problems in the status bar
        only."""
        try:
            gt = GroundTruth.load(path)
        except Exception as e:  # noqa: BLE001 - InputError names the file and the JSON location
            text = str(e) if isinstance(e, InputError) else f"{path}: {type(e).__name__}: {e}"
            if quiet:
                self.status.show(f"Ground truth not loaded: {text}", 8000)
            else:
                self.show_message("Cannot load ground truth", text)
            return False
        self.gt = gt
        if gt.video_for(self.doc.video) is None and self.doc.video is not None and not quiet:
            self.show_message("Ground truth", f"{path}: no video in this file matches {self.doc.video.name} "
                                              f"({self.doc.num_frames} frames); AP is not shown.",
                              QMessageBox.Icon.Information)
        self._update_ground_truth_scores()
        self.comparison.rescore()
        self.status.show(f"Ground truth: {Path(path).name}", 5000)
        return True

    @property
    def gt_path(self) -> str:
        return self.gt.path if self.gt is not None else ""

    @property
    def main_ap(self) -> float | None:
        """AP of the document's run against the loaded ground truth (None without one)."""
        return self.tracks.run_ap

    def _ap_of(self, pred: VideoPrediction) -> float | None:
        return self.gt.ap(pred, self.doc.video) if self.gt is not None else None

    def _update_ground_truth_scores(self) -> None:
        self.tracks.set_run_ap(self._ap_of(self.doc.prediction) if self.doc.prediction is not None else None)

    # ============================================================ dialogs, layout, closing
    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "syncvis-studio.png", "PNG (*.png)")
        if path:
            self.grab().save(path)

    def about(self) -> None:
        QMessageBox.about(self, "SyncVIS Studio", "SyncVIS Studio: video instance segmentation with "
                                                  "synchronized video-frame queries. Press F1 for the shortcuts.")

    def reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state)

    def _restore_state(self) -> None:
        self._default_state = self.saveState()
        geom, state = self.settings.window_state()
        if geom is not None:
            self.restoreGeometry(geom)
        if state is not None:
            self.restoreState(state)

    def save_state(self) -> None:
        self.settings.set_window_state(self.saveGeometry(), self.saveState())
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.stop()
        self.settle()
        self.analysis.close()
        self.editing.detach()
        self.save_state()
        self.worker.shutdown()
        if self.reader is not None:
            self.reader.close()
        super().closeEvent(event)
