"""The main window: wires the document, the engine worker and the views.

Layout as product.md says: canvas in the centre with a frame slider under it, tools on the left, tracks on the
right, timeline at the bottom, analysis panels as docks, a status bar with frame, cursor, device and memory.
Every action comes from the one keymap table (app/keymap.py).

Threading: the GUI thread reads single frames (the reader's cache and read-ahead keep scrubbing cheap) and
never touches torch; the engine worker runs the models and sends back plain data through queued signals.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStyle,
    QTextBrowser,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import keymap
from app.document import SELECTION, TRACKS, VIDEO, VISIBILITY, Document, VideoRef
from app.engine_worker import EngineWorker, InferJob, JobHandle, QueryMasksJob, memory_text
from app.settings import Settings
from engine import review
from engine.errors import InputError
from engine.types import Track, VideoPrediction
from widgets.aggregation_view import AggregationView
from widgets.colors import MUTED, track_color
from widgets.compare_view import CompareView
from widgets.frame_video_view import FrameVideoView
from widgets.review_queue import ReviewItem as QueueItem
from widgets.review_queue import ReviewQueue
from widgets.timeline import Lane, Timeline
from widgets.track_list import TrackList, TrackRow
from widgets.video_canvas import MaskOverlay, VideoCanvas

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
BUNDLED_MODELS = ("tiny-sync.pt", "tiny-video.pt", "tiny-frame.pt")
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v *.ts *.mpg *.mpeg);;All files (*)"
JUMP = 10

# Compare sources that are not checkpoints: the two read-outs of the main run.
RUN_VIDEO, RUN_FRAME = "run:video", "run:frame"
OTHER = "__other__"


def bundled_checkpoints(folder: Path | None = None) -> list[Path]:
    folder = folder or RESOURCES / "models"
    ordered = [folder / n for n in BUNDLED_MODELS if (folder / n).exists()]
    others = sorted(p for p in folder.glob("*.pt") if p not in ordered) if folder.is_dir() else []
    return ordered + others


def default_checkpoint() -> Path | None:
    p = RESOURCES / "models" / "tiny-sync.pt"
    return p if p.exists() else None


# ------------------------------------------------------------------------------------------------ helpers
def overlays_for(doc: Document, frame: int) -> list[MaskOverlay]:
    """The document's visible masks on `frame` as canvas overlays (selected track last, so it is on top)."""
    out = []
    for tid, m in doc.masks_at(frame):
        t = doc.track(tid)
        label = f"{doc.category_name(t.category_id)} {_frame_score(t, frame):.2f}"
        out.append(MaskOverlay(tid, m, track_color(tid), label, selected=tid == doc.selected))
    out.sort(key=lambda o: o.selected)
    return out


def _frame_score(t: Track, frame: int) -> float:
    s = t.scores[frame] if frame < len(t.scores) else None
    return float(t.score if s is None else s)


@dataclass
class CompareSource:
    key: str            # RUN_VIDEO, RUN_FRAME or a checkpoint path
    title: str
    doc: Document | None = None
    job: JobHandle | None = None
    ap: float | None = None
    error: str = ""


class ShortcutSheet(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 640)
        text = QTextBrowser(self)
        text.setHtml(keymap.sheet_html())
        self.text = text
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addWidget(buttons)


# ------------------------------------------------------------------------------------------------ window
class MainWindow(QMainWindow):
    """The studio window. Public entry points used by launch.py and the tests:

    open_video(path) -> bool, run_model(checkpoint=None) -> job id | None, cancel_run(), seek(i),
    load_ground_truth(path), set_checkpoint(path), is_busy(), messages (list of (title, text) shown).
    """

    frame_changed = Signal(int)
    run_finished = Signal(object)     # the final VideoPrediction of a main run (complete or cancelled)
    message_shown = Signal(str, str)  # title, text

    def __init__(self, settings: Settings | None = None, worker: EngineWorker | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.doc = Document()
        self.reader = None
        self.current = 0
        self.messages: list[tuple[str, str]] = []
        self.last_message_box: QMessageBox | None = None
        self.show_message_boxes = True
        self.checkpoint: str = ""
        self.gt = None              # engine.data.ytvis.Dataset
        self.gt_path = ""
        self.main_ap: float | None = None
        self._main_job: JobHandle | None = None
        self._job_started = 0.0
        self._queue_items: list[review.ReviewItem] = []
        self._lanes_cache: dict[tuple[int, int], review.FrameVideoLanes] = {}
        self._compare: list[CompareSource] = []
        self._hover_query: tuple[int, int] | None = None
        self._fv_key: tuple[int, int] | None = None   # what the frame-vs-video curves show
        self._agg_key: tuple | None = None            # what the aggregation heatmap shows
        self._agg_reverse_at: tuple | None = None
        self._bottom_before_compare: int | None = None  # bottom dock height before Compare enlarged it
        # (id(prediction), window start) -> {frame: [RLE per frame query]}
        self._query_masks: dict[tuple[int, int], dict[int, list[dict]]] = {}
        self._query_jobs: dict[tuple[int, int], JobHandle] = {}

        self.setWindowTitle("SyncVIS Studio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        # The right column (tracks, analysis) runs the full height; the timeline sits under the canvas only,
        # which keeps the minimum height small enough for a 768-pixel laptop screen.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.resize(1440, 900)
        self.act: dict[str, QAction] = {}
        self._build_actions()
        self._build_central()
        self._build_docks()
        self._build_toolbars()
        self._build_menus()
        self._build_status()

        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._tick)
        self.mem_timer = QTimer(self)
        self.mem_timer.timeout.connect(self._update_memory)
        self.mem_timer.start(2000)
        self._update_memory()

        self.doc.subscribe(self._on_doc_event)
        self.worker = worker or EngineWorker(self)
        self.worker.ready.connect(self._on_worker_ready)
        if self.worker.info:
            self._on_worker_ready(self.worker.info)

        ckpt = self.settings.checkpoint()
        if not ckpt or not Path(ckpt).exists():
            d = default_checkpoint()
            ckpt = str(d) if d else ""
        self.set_checkpoint(ckpt, remember=False)
        self._restore_state()
        self._refresh_recent()
        self._update_enabled()

    # ============================================================ construction
    def _build_actions(self) -> None:
        handlers = {
            "open": self.open_dialog, "quit": self.close,
            "next_frame": lambda: self.step(1), "prev_frame": lambda: self.step(-1),
            "jump_forward": lambda: self.step(JUMP), "jump_back": lambda: self.step(-JUMP),
            "first_frame": lambda: self.seek(0), "last_frame": lambda: self.seek(self.doc.num_frames - 1),
            "play": self.toggle_play, "prev_event": lambda: self.jump_event(-1),
            "next_event": lambda: self.jump_event(+1), "next_uncertain": self.next_uncertain,
            "toggle_overlays": self.toggle_overlays, "fit_view": lambda: self.canvas.fit_view(),
            "shortcuts": self.show_shortcuts, "run": lambda: self.run_model(), "cancel": self.cancel_run,
        }
        for b in keymap.KEYMAP:
            a = QAction(b.text, self)
            a.setObjectName(f"action_{b.action}")
            a.setShortcuts([QKeySequence(k) for k in b.keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            native = QKeySequence.SequenceFormat.NativeText
            keys = " / ".join(QKeySequence(k).toString(native) for k in b.keys)
            later = "" if b.available else " — coming in a later version"
            a.setToolTip(f"{b.text} ({keys}){later}")
            a.setEnabled(b.available)
            if b.action in handlers:
                a.triggered.connect(handlers[b.action])
            self.addAction(a)
            self.act[b.action] = a
        self.act["play"].setCheckable(True)
        self.act["toggle_overlays"].setCheckable(True)
        self.act["toggle_overlays"].setChecked(True)
        st = self.style()
        sp = QStyle.StandardPixmap
        icons = {"open": sp.SP_DialogOpenButton, "run": sp.SP_MediaSeekForward, "cancel": sp.SP_BrowserStop,
                 "play": sp.SP_MediaPlay, "first_frame": sp.SP_MediaSkipBackward,
                 "last_frame": sp.SP_MediaSkipForward, "prev_frame": sp.SP_ArrowLeft,
                 "next_frame": sp.SP_ArrowRight}
        for name, pm in icons.items():
            self.act[name].setIcon(st.standardIcon(pm))
        self.act["run"].setText("Run SyncVIS")
        self.act["open_folder"] = QAction("Open frame folder…", self, triggered=self.open_folder_dialog)
        self.act["load_gt"] = QAction("Load ground truth (YTVIS JSON)…", self, triggered=self.load_gt_dialog)
        self.act["save_screenshot"] = QAction("Save window screenshot…", self,
                                              triggered=self.screenshot_dialog)
        self.act["choose_checkpoint"] = QAction("Choose checkpoint…", self,
                                                triggered=self.choose_checkpoint_dialog)
        self.act["reset_layout"] = QAction("Reset layout", self, triggered=self.reset_layout)
        self.act["about"] = QAction("About SyncVIS Studio", self, triggered=self._about)

    def _build_central(self) -> None:
        self.canvas = VideoCanvas(self)
        self.canvas.hovered.connect(self._on_hover)
        self.canvas.track_clicked.connect(lambda tid: self.doc.select(tid))
        self.canvas.files_dropped.connect(self._open_dropped)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

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
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 4)
        for name in ("first_frame", "prev_frame", "play", "next_frame", "last_frame"):
            b = QToolButton()
            b.setDefaultAction(self.act[name])
            b.setAutoRaise(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            bar.addWidget(b)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.spin)
        bar.addWidget(self.total_label)
        bar.addWidget(self.time_label)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.canvas, 1)
        lay.addLayout(bar)
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
        # Tracks + properties
        self.track_list = TrackList()
        self.track_list.track_selected.connect(lambda tid: self.doc.select(tid))
        self.track_list.visibility_changed.connect(lambda tid, v: self.doc.set_visible(tid, v))
        props = QWidget()
        form = QFormLayout(props)
        form.setContentsMargins(6, 4, 6, 4)
        self.prop_labels: dict[str, QLabel] = {}
        for key, text in (("track", "Track"), ("class", "Class"), ("score", "Score"), ("frames", "Frames"),
                          ("source", "Source"), ("query", "Video query"), ("run", "Run")):
            lab = QLabel("—")
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lab.setWordWrap(True)
            self.prop_labels[key] = lab
            form.addRow(text, lab)
        tracks = QSplitter(Qt.Orientation.Vertical)
        tracks.addWidget(self.track_list)
        tracks.addWidget(props)
        tracks.setSizes([380, 160])
        self.dock_tracks = self._dock("tracks", "Tracks", tracks, R)

        self.timeline = Timeline()
        self.timeline.frame_requested.connect(self.seek)
        self.timeline.track_selected.connect(lambda tid: self.doc.select(tid))
        self.dock_timeline = self._dock("timeline", "Timeline", self.timeline, B)

        self.review = ReviewQueue()
        self.review.frame_requested.connect(self.seek)
        self.dock_review = self._dock("review", "Review queue", self.review, R)

        self.frame_video = FrameVideoView()
        self.frame_video.frame_requested.connect(self.seek)
        self.dock_frame_video = self._dock("frame_video", "Frame vs video", self.frame_video, R)

        self.aggregation = AggregationView()
        self.aggregation.frame_requested.connect(self.seek)
        self.aggregation.frame_query_hovered.connect(self._on_frame_query_hovered)
        self.aggregation.direction_changed.connect(lambda _d: self._update_aggregation())
        self.dock_aggregation = self._dock("aggregation", "Aggregation weights", self.aggregation, R)

        self.compare = CompareView(num_panes=3)
        self.compare.track_clicked.connect(lambda _pane, tid: None)
        self.compare_bar = QWidget()
        cb = QHBoxLayout(self.compare_bar)
        cb.setContentsMargins(4, 2, 4, 2)
        self.compare_combos: list[QComboBox] = []
        for i in range(3):
            combo = QComboBox()
            combo.setMinimumWidth(80)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.setToolTip(f"What pane {i + 1} shows: a read-out of this run, "
                             "or a checkpoint run on this video")
            combo.currentIndexChanged.connect(lambda _i, pane=i: self._on_compare_source_changed(pane))
            self.compare_combos.append(combo)
            cb.addWidget(combo, 1)
        self.compare_run = QPushButton("Run missing")
        self.compare_run.setToolTip("Run the chosen checkpoints on this video (results are kept per video)")
        self.compare_run.clicked.connect(self.run_compare)
        cb.addWidget(self.compare_run)
        compare_box = QWidget()
        cl = QVBoxLayout(compare_box)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.compare_bar)
        cl.addWidget(self.compare, 1)
        self.dock_compare = self._dock("compare", "Compare", compare_box, B)
        self._fill_compare_combos()

        self.dock_compare.visibilityChanged.connect(self._on_compare_visible)
        self.dock_frame_video.visibilityChanged.connect(lambda v: v and self._update_frame_video())
        self.dock_aggregation.visibilityChanged.connect(lambda v: v and self._update_aggregation())
        self.tabifyDockWidget(self.dock_review, self.dock_frame_video)
        self.tabifyDockWidget(self.dock_frame_video, self.dock_aggregation)
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
        main.addAction(self.act["open"])
        main.addSeparator()
        main.addAction(self.act["run"])
        main.addAction(self.act["cancel"])
        main.addSeparator()
        main.addWidget(QLabel(" Model "))
        self.ckpt_combo = QComboBox()
        self.ckpt_combo.setMinimumWidth(180)
        self.ckpt_combo.setToolTip("Checkpoint to run (Engine → Choose checkpoint… for others)")
        self.ckpt_combo.activated.connect(self._on_ckpt_combo)
        main.addWidget(self.ckpt_combo)
        main.addWidget(QLabel("  Device "))
        self.device_combo = QComboBox()
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("GPU (CUDA)", "cuda")
        self.device_combo.setToolTip("Where the model runs; GPU needs CUDA")
        self._set_gpu_enabled(False, "checking for a GPU…")
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        main.addWidget(self.device_combo)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, main)
        self.toolbar_main = main

        tools = QToolBar("Tools")
        tools.setObjectName("toolbar_tools")
        tools.setOrientation(Qt.Orientation.Vertical)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tools.setMovable(False)
        group = QActionGroup(self)
        select = QAction("Select", self, checkable=True, checked=True)
        select.setToolTip("Select tracks (click a mask) · wheel zooms, drag pans")
        group.addAction(select)
        tools.addAction(select)
        self.act["select_tool"] = select
        for name in ("brush", "eraser", "polygon"):
            a = self.act[name]
            a.setCheckable(True)
            group.addAction(a)
            tools.addAction(a)
        click = QAction("Click", self, checkable=True, enabled=False)
        click.setToolTip("Click to segment (SAM 2 / GrabCut) — coming in a later version")
        group.addAction(click)
        tools.addAction(click)
        self.act["click_tool"] = click
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, tools)
        self.toolbar_tools = tools

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction(self.act["open"])
        f.addAction(self.act["open_folder"])
        self.recent_menu = f.addMenu("Open recent")
        f.addSeparator()
        f.addAction(self.act["load_gt"])
        f.addAction(self.act["save"])
        f.addAction(self.act["save_screenshot"])
        f.addSeparator()
        f.addAction(self.act["quit"])
        e = mb.addMenu("&Edit")
        for name in ("undo", "redo", None, "new_track", "merge", "split", "lock_frame", "delete_mask",
                     "delete_track", None, "propagate_forward", "propagate_back", "accept", "reject"):
            e.addSeparator() if name is None else e.addAction(self.act[name])
        v = mb.addMenu("&View")
        v.addAction(self.act["toggle_overlays"])
        v.addAction(self.act["fit_view"])
        v.addSeparator()
        for d in (self.dock_tracks, self.dock_timeline, self.dock_review, self.dock_frame_video,
                  self.dock_aggregation, self.dock_compare):
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        v.addAction(self.act["reset_layout"])
        n = mb.addMenu("&Navigate")
        for name in ("play", None, "next_frame", "prev_frame", "jump_forward", "jump_back", "first_frame",
                     "last_frame", None, "next_event", "prev_event", "next_uncertain"):
            n.addSeparator() if name is None else n.addAction(self.act[name])
        en = mb.addMenu("&Engine")
        en.addAction(self.act["run"])
        en.addAction(self.act["cancel"])
        en.addSeparator()
        en.addAction(self.act["choose_checkpoint"])
        self.bundled_menu = en.addMenu("Bundled models")
        for p in bundled_checkpoints():
            self.bundled_menu.addAction(p.name, lambda p=p: self.set_checkpoint(str(p)))
        self.bundled_menu.setEnabled(bool(bundled_checkpoints()))
        h = mb.addMenu("&Help")
        h.addAction(self.act["shortcuts"])
        h.addAction(self.act["about"])

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.job_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_run)
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

    # ============================================================ messages
    def show_message(self, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        """A message box that does not block (window-modal, opened with open()), so a failed job never stalls
        the event loop; every message is also kept in `messages` and emitted as `message_shown`."""
        self.messages.append((title, text))
        log.warning("%s: %s", title, text)
        self.message_shown.emit(title, text)
        if not self.show_message_boxes:
            self.statusBar().showMessage(f"{title}: {text}", 10000)
            return
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.last_message_box = box
        box.open()

    # ============================================================ opening
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self.settings.last_dir(), VIDEO_FILTER)
        if path:
            self.open_video(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open frame folder", self.settings.last_dir())
        if path:
            self.open_video(path)

    def _open_dropped(self, paths: list) -> None:
        if paths:
            self.open_video(str(paths[0]))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.open_video(urls[0])

    def open_video(self, path: str | Path) -> bool:
        """Open a video file or frame folder; on failure show a message naming the file and keep the current
        video. Returns True when the video is open."""
        from engine.data.video import VideoReader

        path = Path(path)
        self.stop()
        reader = None
        try:
            reader = VideoReader(path, cache_size=256, read_ahead=24, cache_bytes=768 * 2**20)
            first = reader[0]
        except Exception as e:  # noqa: BLE001 - InputError names file and problem; anything else is a bad file too
            if reader is not None:
                reader.close()
            text = str(e) if isinstance(e, InputError) else f"{path}: {type(e).__name__}: {e}"
            self.show_message("Cannot open video", text)
            return False
        if self._main_job is not None:
            self._main_job.cancel()
            self._main_job = None
            self._hide_progress()
        for job in self._compare_jobs() + list(self._query_jobs.values()):
            job.cancel()
        for s in self._compare:
            s.job = None
        self._query_jobs.clear()
        self._query_masks.clear()
        old = self.reader
        self.reader = reader
        if old is not None:
            old.close()
        fps = float(reader.fps or 30.0)
        self.doc.open_video(VideoRef(str(path), len(reader), reader.width, reader.height, fps))
        self.settings.add_recent(path)
        self.settings.set_last_dir(str(path.parent))
        self._refresh_recent()
        self.setWindowTitle(f"{path.name} — SyncVIS Studio")
        n = len(reader)
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setRange(0, max(0, n - 1))
            w.setValue(0)
            w.blockSignals(False)
        self.total_label.setText(f"/ {n - 1}")
        self.current = -1
        self.canvas.set_frame(first)
        self.main_ap = None
        self._reset_compare_results()
        self.seek(0, force=True)
        self.canvas.fit_view()
        notes = [f"{path.name}: {n} frames, {reader.width}×{reader.height}, {fps:.2f} fps"]
        if getattr(reader, "variable_frame_rate", False):
            notes.append("variable frame rate (frames are indexed exactly; playback uses the mean rate)")
        if getattr(reader, "rotation", 0):
            notes.append(f"rotated {reader.rotation}° as the file asks")
        self.statusBar().showMessage(" · ".join(notes), 8000)
        if getattr(reader, "damaged_at", None) is not None:
            self.show_message("Damaged video", f"{path}: the video is damaged; decoding stops at frame "
                                               f"{reader.damaged_at}. The {n} frames before it are open.",
                              QMessageBox.Icon.Information)
        sidecar = _sidecar_ground_truth(path)
        if sidecar is not None and (self.gt is None or self._gt_video() is None):
            if self.load_ground_truth(sidecar, quiet=True):
                self.statusBar().showMessage(
                    f"{path.name}: ground truth {sidecar.name} loaded (AP shown per run)", 8000)
        self._update_enabled()
        self._update_compare_panes()
        return True

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for f in files:
            self.recent_menu.addAction(Path(f).name, lambda f=f: self.open_video(f)).setToolTip(f)
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(files))

    # ============================================================ navigation
    def seek(self, frame: int, force: bool = False) -> None:
        n = self.doc.num_frames
        if n == 0 or self.reader is None:
            return
        frame = int(np.clip(frame, 0, n - 1))
        if frame == self.current and not force:
            return
        try:
            img = self.reader[frame]
        except InputError as e:
            self.stop()
            self.statusBar().showMessage(str(e), 8000)
            return
        except IndexError:
            return
        self.current = frame
        self.canvas.set_frame(img)
        self.canvas.set_overlays(overlays_for(self.doc, frame))
        for w in (self.slider, self.spin):
            if w.value() != frame:
                w.blockSignals(True)
                w.setValue(frame)
                w.blockSignals(False)
        self.timeline.set_current_frame(frame)
        if hasattr(self.track_list, "set_current_frame"):
            self.track_list.set_current_frame(frame)
        fps = self.doc.video.fps or 30.0
        secs = frame / fps
        self.time_label.setText(f"{int(secs // 60):d}:{secs % 60:05.2f} · {fps:.3g} fps")
        self.frame_label.setText(f"Frame {frame} / {n - 1}")
        self._update_frame_panels()
        self.frame_changed.emit(frame)

    def step(self, delta: int) -> None:
        self.seek(self.current + delta)

    def jump_event(self, direction: int) -> None:
        f = self.doc.next_event(self.current, direction)
        if f is not None:
            self.seek(f)
        else:
            self.statusBar().showMessage("No further track event in that direction", 3000)

    def next_uncertain(self) -> None:
        f = self.review.next_item(self.current)
        if f is None:
            self.statusBar().showMessage("The review queue is empty: run SyncVIS first", 4000)
            return
        self.seek(f)
        item = next((it for it in self._queue_items if it.frame == f), None)
        if item is not None:
            self.statusBar().showMessage(f"Frame {f}: " + "; ".join(item.reasons[:3]), 8000)
            if item.track_ids:
                self.doc.select(item.track_ids[0])

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.stop()
        elif self.doc.num_frames:
            if self.current >= self.doc.num_frames - 1:
                self.seek(0)
            self.play_timer.start(max(1, int(round(1000.0 / (self.doc.video.fps or 30.0)))))
            self.act["play"].setChecked(True)
            self.act["play"].setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    def stop(self) -> None:
        self.play_timer.stop()
        self.act["play"].setChecked(False)
        self.act["play"].setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def is_playing(self) -> bool:
        return self.play_timer.isActive()

    def _tick(self) -> None:
        if self.current >= self.doc.num_frames - 1:
            self.stop()
            return
        self.step(1)

    def toggle_overlays(self) -> None:
        visible = not self.doc.overlays_visible
        self.doc.set_overlays_visible(visible)
        self.act["toggle_overlays"].setChecked(visible)
        self.canvas.set_overlays_visible(visible)
        self.compare.set_overlays_visible(visible)

    def show_shortcuts(self) -> None:
        self.sheet = ShortcutSheet(self)
        self.sheet.show()

    def _on_hover(self, track_id: int, x: int, y: int) -> None:
        if x < 0:
            self.cursor_label.setText("x –, y –")
            return
        text = f"x {x}, y {y}"
        if track_id >= 0:
            t = self.doc.track(track_id)
            text += f" · track {track_id}" + (f" {self.doc.category_name(t.category_id)}" if t else "")
        self.cursor_label.setText(text)

    # ============================================================ engine
    def set_checkpoint(self, path: str, remember: bool = True) -> None:
        self.checkpoint = str(path or "")
        if remember and path:
            self.settings.set_checkpoint(self.checkpoint)
        self._fill_ckpt_combo()
        self._update_enabled()

    def _fill_ckpt_combo(self) -> None:
        c = self.ckpt_combo
        c.blockSignals(True)
        c.clear()
        paths = [str(p) for p in bundled_checkpoints()]
        if self.checkpoint and self.checkpoint not in paths:
            paths.append(self.checkpoint)
        for p in paths:
            c.addItem(Path(p).name, p)
            c.setItemData(c.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
        if not paths:
            c.addItem("no checkpoint", "")
        c.addItem("Other…", "__other__")
        idx = c.findData(self.checkpoint)
        c.setCurrentIndex(max(0, idx))
        c.blockSignals(False)

    def _on_ckpt_combo(self, index: int) -> None:
        data = self.ckpt_combo.itemData(index)
        if data == "__other__":
            self.choose_checkpoint_dialog()
            self._fill_ckpt_combo()
        elif data:
            self.set_checkpoint(data)

    def choose_checkpoint_dialog(self) -> None:
        start = str(Path(self.checkpoint).parent) if self.checkpoint else str(RESOURCES / "models")
        path, _ = QFileDialog.getOpenFileName(self, "Choose checkpoint", start,
                                              "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.set_checkpoint(path)

    def device(self) -> str:
        return self.device_combo.currentData() or "cpu"

    def _set_gpu_enabled(self, enabled: bool, why: str = "") -> None:
        item = self.device_combo.model().item(1)
        item.setEnabled(enabled)
        item.setToolTip("" if enabled else f"No CUDA GPU ({why})" if why else "No CUDA GPU")
        if not enabled and self.device_combo.currentIndex() == 1:
            self.device_combo.setCurrentIndex(0)

    def _on_worker_ready(self, info: dict) -> None:
        cuda = bool(info.get("cuda"))
        self._set_gpu_enabled(cuda, "torch.cuda is not available")
        want = self.settings.device()
        if want == "cuda" and cuda:
            self.device_combo.setCurrentIndex(1)
        self._update_device_label()

    def _on_device_changed(self, _i: int) -> None:
        self.settings.set_device(self.device())
        self._update_device_label()

    def _update_device_label(self) -> None:
        info = self.worker.info if hasattr(self, "worker") else {}
        if self.device() == "cuda" and info.get("gpus"):
            self.device_label.setText(f"GPU: {info['gpus'][0]}")
        else:
            self.device_label.setText("CPU")

    def _update_memory(self) -> None:
        self.memory_label.setText(memory_text())

    def run_model(self, checkpoint: str | None = None, window: int | None = None) -> int | None:
        """Start SyncVIS on the open video; results stream in window by window. Returns the job id.
        `window` overrides the checkpoint's frames per inference window."""
        if self.reader is None:
            self.show_message("Run SyncVIS", "Open a video first (File → Open, Ctrl+O).",
                              QMessageBox.Icon.Information)
            return None
        ckpt = checkpoint or self.checkpoint
        if not ckpt:
            self.show_message("Run SyncVIS", "No checkpoint chosen: Engine → Choose checkpoint…",
                              QMessageBox.Icon.Information)
            return None
        if self._main_job is not None:
            self._main_job.cancel()
        job = self.worker.submit(InferJob(str(self.doc.video.path), str(ckpt), self.device(), internals=True,
                                          window=window, tag="main"))
        job.started.connect(lambda text: job is self._main_job and self.job_label.setText(text))
        job.progress.connect(lambda d, t, eta: job is self._main_job and self._on_main_progress(d, t, eta))
        job.partial.connect(lambda pred: job is self._main_job and self._on_main_partial(pred))
        job.finished.connect(lambda pred: job is self._main_job and self._on_main_done(pred))
        job.cancelled.connect(lambda pred: job is self._main_job and self._on_main_done(pred))
        job.failed.connect(lambda msg: job is self._main_job and self._on_main_failed(msg))
        job.notice.connect(self._on_job_notice)
        self._main_job = job
        self._job_started = time.perf_counter()
        self.job_label.setText(f"{Path(ckpt).name}: starting…")
        self.progress.setRange(0, 0)
        for w in (self.job_label, self.progress, self.cancel_button):
            w.show()
        self._update_enabled()
        return self._main_job

    def cancel_run(self) -> None:
        if self._main_job is not None:
            self._main_job.cancel()
            self.job_label.setText("cancelling after this window…")
        for job in self._compare_jobs():
            job.cancel()

    def _compare_jobs(self) -> list[JobHandle]:
        return [s.job for s in self._compare if s.job is not None]

    def is_busy(self) -> bool:
        return (self._main_job is not None or bool(self._compare_jobs()) or bool(self._query_jobs)
                or not self.worker.is_idle())

    def _hide_progress(self) -> None:
        for w in (self.job_label, self.progress, self.cancel_button):
            w.hide()

    def _on_main_progress(self, done: int, total: int, eta: float) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} frames")
        eta_text = "" if eta < 0 else f" · ETA {_duration(eta)}"
        self.job_label.setText(f"{Path(self.checkpoint).name}: {done}/{total} frames{eta_text}")

    def _accept(self, pred: VideoPrediction) -> bool:
        v = self.doc.video
        return v is not None and pred.num_frames == v.num_frames

    def _on_main_partial(self, pred: VideoPrediction) -> None:
        if self._accept(pred):
            pred.complete = False
            self.doc.set_prediction(pred)

    def _on_main_done(self, pred: VideoPrediction | None) -> None:
        """The main run ended, complete or cancelled (None: cancelled before it started)."""
        self._main_job = None
        self._hide_progress()
        self._update_enabled()
        if pred is None or not self._accept(pred):
            return
        self.doc.set_prediction(pred)
        secs = time.perf_counter() - self._job_started
        if pred.complete:
            msg = f"Done: {len(pred.tracks)} tracks over {pred.num_frames} frames in {_duration(secs)}"
        else:
            done = self.doc.run.frames_done
            msg = f"Cancelled: kept the first {done} of {pred.num_frames} frames ({len(pred.tracks)} tracks)"
        if pred.device:
            msg += f" on {pred.device}"
        self.statusBar().showMessage(msg, 15000)
        if pred.notices:
            self.show_message("SyncVIS adjusted the run", "\n".join(dict.fromkeys(pred.notices)),
                              QMessageBox.Icon.Information)
        self._update_ground_truth_scores()
        self._reset_compare_results(keep_checkpoints=True)
        self._update_compare_panes()
        self.run_finished.emit(pred)

    def _on_main_failed(self, message: str) -> None:
        self._main_job = None
        self._hide_progress()
        self._update_enabled()
        self.show_message("SyncVIS run failed", message)

    def _on_job_notice(self, message: str) -> None:
        """Fallbacks (smaller windows, CPU after GPU out-of-memory) show at once in the status bar and are
        listed in one message when the run ends."""
        self.statusBar().showMessage(message, 15000)

    # ============================================================ document → views
    def _on_doc_event(self, name: str, payload: dict) -> None:
        if name == TRACKS:
            self._lanes_cache.clear()
            self._fv_key = self._agg_key = self._agg_reverse_at = None  # ids of freed runs can be reused
            self._refresh_tracks()
            if not payload.get("partial"):
                self._refresh_review_queue()
            self._refresh_canvas()
            self._update_properties()
            self._update_frame_panels()
        elif name == VISIBILITY:
            self._refresh_canvas()
            tid = payload.get("track_id")
            if tid is not None:
                self.track_list.set_visible(tid, self.doc.is_visible(tid))
        elif name == SELECTION:
            tid = payload.get("track_id")
            self.track_list.set_selected(-1 if tid is None else tid)
            self.timeline.set_selected(-1 if tid is None else tid)
            self._refresh_canvas()
            self._update_properties()
            self._update_frame_panels()
        elif name == VIDEO:
            self._lanes_cache.clear()

    def _refresh_canvas(self) -> None:
        if self.reader is not None and self.current >= 0:
            self.canvas.set_overlays(overlays_for(self.doc, self.current))

    def _refresh_tracks(self) -> None:
        presence = self.doc.presence()
        n = self.doc.num_frames
        rows, lanes = [], []
        for r, t in enumerate(self.doc.tracks):
            col = track_color(t.id)
            name = self.doc.category_name(t.category_id)
            scores = np.array([np.nan if s is None else float(s) for s in t.scores[:n]], dtype=float)
            rows.append(TrackRow(t.id, col, name, float(t.score), presence[r], self.doc.is_visible(t.id)))
            lanes.append(Lane(t.id, col, presence[r], scores, f"{t.id} {name}"))
        self.track_list.set_tracks(rows)
        self.timeline.set_lanes(n, lanes)
        self.timeline.set_current_frame(max(self.current, 0))
        sel = self.doc.selected
        self.timeline.set_selected(-1 if sel is None else sel)

    def _refresh_review_queue(self) -> None:
        pred = self.doc.prediction
        self._queue_items = review.review_queue(pred) if pred is not None else []
        self.review.set_items([QueueItem(it.frame, it.score, list(it.kinds)) for it in self._queue_items])
        if pred is None:
            self.review.set_status("No review queue yet: run SyncVIS to rank uncertain frames")

    def _update_properties(self) -> None:
        t = self.doc.track(self.doc.selected) if self.doc.selected is not None else None
        run = self.doc.run
        run_text = "—"
        if run is not None:
            run_text = f"{Path(run.checkpoint).name or 'model'} · {run.mode} mode"
            if not run.complete:
                run_text += f" · partial ({run.frames_done}/{self.doc.num_frames} frames)"
            if self.main_ap is not None:
                run_text += f" · AP {self.main_ap * 100:.1f}"
        self.prop_labels["run"].setText(run_text)
        if t is None:
            for k in ("track", "class", "score", "frames", "source", "query"):
                self.prop_labels[k].setText("—")
            if self.doc.tracks:
                self.prop_labels["track"].setText("click a track or a mask")
            return
        pres = review.presence(t)
        rng = np.flatnonzero(pres)
        self.prop_labels["track"].setText(f"<span style='color:rgb{track_color(t.id)}'>■</span> {t.id}")
        self.prop_labels["track"].setTextFormat(Qt.TextFormat.RichText)
        self.prop_labels["class"].setText(self.doc.category_name(t.category_id))
        self.prop_labels["score"].setText(f"{t.score:.3f}")
        self.prop_labels["frames"].setText(
            f"{rng.size} frames ({rng[0]}–{rng[-1]})" if rng.size else "none")
        kinds = sorted({s for s, p in zip(t.sources, pres, strict=False) if p and s})
        self.prop_labels["source"].setText(", ".join(kinds) or "—")
        self.prop_labels["query"].setText(str(t.query) if t.query >= 0 else "—")

    # ------------------------------------------------------------ analysis panels
    def _update_frame_panels(self) -> None:
        if self.reader is None or self.current < 0:
            return
        self._update_frame_video()
        self._update_aggregation()
        if any(it.frame == self.current for it in self._queue_items):
            self.review.mark_visited(self.current)
        self._update_compare_panes()

    def _lanes(self, tid: int) -> review.FrameVideoLanes | None:
        pred = self.doc.prediction
        if pred is None:
            return None
        key = (id(pred), tid)
        if key not in self._lanes_cache:
            self._lanes_cache[key] = review.frame_video_lanes(pred, tid)
        return self._lanes_cache[key]

    def _update_frame_video(self) -> None:
        view = self.frame_video
        if not self.dock_frame_video.isVisible() and not getattr(self, "_force_panels", False):
            return
        pred = self.doc.prediction
        tid = self.doc.selected
        if pred is None or tid is None or not pred.frame_tracks:
            self._fv_key = None
        if pred is None or tid is None:
            view.clear("Select a track to compare its video-level and frame-level predictions" if pred else
                       "Run SyncVIS, then select a track to compare its video-level and frame-level masks")
            return
        if not pred.frame_tracks:
            view.clear(f"This run ({pred.mode} mode) has no frame-level tracks: run a sync model")
            return
        lanes = self._lanes(tid)
        t = self.doc.track(tid)
        ft = next((f for f in pred.frame_tracks if f.id == lanes.frame_track_id), None)
        if self._fv_key != (id(pred), tid):  # curves and header only change with the run or the track
            self._fv_key = (id(pred), tid)
            name = self.doc.category_name(t.category_id)
            link = f"frame track {ft.id}" if ft is not None else "no frame-level link"
            mean = lanes.mean_iou
            mean_text = f" · mean IoU {mean:.2f}" if math.isfinite(mean) else ""
            view.set_track_label(f"Track {tid} {name} ↔ {link}{mean_text}")
            view.setToolTip(f"Video-level track {tid} (video query {t.query}) and the frame-level track "
                            f"of the same run whose masks overlap it most ({link})")
            view.set_curves(lanes.video_scores, lanes.frame_scores, lanes.iou)
        vm = self.doc.mask(tid, self.current)
        fm = None
        if ft is not None and self.current < len(ft.masks) and ft.masks[self.current] is not None:
            from engine.data.masks import decode

            fm = decode(ft.masks[self.current])
            fm = fm if fm.any() else None
        view.set_frame_pair(self.reader[self.current], vm, fm, track_color(tid))
        view.set_current_frame(self.current)

    def _update_aggregation(self) -> None:
        view = self.aggregation
        if not self.dock_aggregation.isVisible() and not getattr(self, "_force_panels", False):
            return
        pred = self.doc.prediction
        tid = self.doc.selected
        if pred is None or not pred.windows or all(w.f2v_weights is None for w in pred.windows):
            self._agg_key = None
            view.clear("Run SyncVIS with a sync model to see its aggregation weights" if pred is None else
                       f"This run ({pred.mode} mode) has no aggregation weights: run a sync model")
            return
        if tid is None:
            self._agg_key = None
            view.clear("Select a track to see how its video query aggregated the frames")
            return
        key = (id(pred), tid)
        if self._agg_key != key:  # the heatmap changes with the run or the track, not with the frame
            t = self.doc.track(tid)
            mass = review.aggregation_mass(pred, tid, "f2v")
            selected = review.selected_frame_queries_all(pred)
            view.set_forward(mass, selected, f"track {tid} · video query {t.query}")
            self._agg_key = key
            self._agg_reverse_at = None
        if view.direction == "reverse" and self._agg_reverse_at != (key, self.current):
            rev = review.reverse_weights(pred, tid, self.current)  # reverse weights belong to one frame
            if rev is not None:
                view.set_reverse(rev[0], rev[1])
            self._agg_reverse_at = (key, self.current)
        view.set_current_frame(self.current)

    def _on_frame_query_hovered(self, frame: int, query: int) -> None:
        """Show the hovered frame query's mask on the canvas. Runs don't keep every frame query's masks (only
        the linked frame tracks), so the window holding the frame is re-run once in the worker and cached."""
        pred = self.doc.prediction
        self._hover_query = None if query < 0 else (frame, query)
        if query < 0 or pred is None:
            self._refresh_canvas()
            return
        if frame != self.current:
            self.seek(frame)
        win = next((w for w in pred.windows if w.start <= frame < w.end), None)
        if win is None:
            return
        key = (id(pred), win.start)
        masks = self._query_masks.get(key)
        if masks is not None:
            self._show_query_mask(frame, query, masks)
            return
        if key in self._query_jobs or not pred.checkpoint:
            return
        job = self.worker.submit(QueryMasksJob(str(self.doc.video.path), pred.checkpoint, self.device(),
                                               win.start, win.end))
        job.finished.connect(lambda masks: self._query_masks_done(key, masks))
        job.failed.connect(lambda msg: self._query_jobs.pop(key, None) and self.statusBar().showMessage(
            f"Frame-query masks unavailable: {msg}", 8000))
        job.cancelled.connect(lambda _r: self._query_jobs.pop(key, None))
        self._query_jobs[key] = job
        self.statusBar().showMessage(
            f"Computing the frame-query masks of frames {win.start}–{win.end - 1}…", 5000)

    def _show_query_mask(self, frame: int, query: int, masks: dict[int, list[dict]]) -> None:
        from engine.data.masks import decode

        rles = masks.get(frame)
        if rles is None or not 0 <= query < len(rles) or frame != self.current:
            return
        overlays = overlays_for(self.doc, self.current)
        for o in overlays:
            o.selected = False
        overlays.append(MaskOverlay(-1, decode(rles[query]), (255, 255, 255), f"frame query {query}", True))
        self.canvas.set_overlays(overlays)
        self.statusBar().showMessage(f"Frame {frame}: mask of frame query {query} (white)", 4000)

    def _query_masks_done(self, key: tuple[int, int], masks: dict) -> None:
        self._query_jobs.pop(key, None)
        if self.doc.prediction is not None and key[0] == id(self.doc.prediction):
            self._query_masks[key] = masks
            if self._hover_query is not None:
                self._show_query_mask(*self._hover_query, masks)

    # ------------------------------------------------------------ compare
    def _fill_compare_combos(self) -> None:
        options = [(RUN_VIDEO, "This run · video-level"), (RUN_FRAME, "This run · frame-level")]
        options += [(str(p), p.name) for p in bundled_checkpoints()]
        defaults = [str(p) for p in bundled_checkpoints()[:3]]
        order = {"tiny-video.pt": 0, "tiny-frame.pt": 1, "tiny-sync.pt": 2}
        defaults.sort(key=lambda p: order.get(Path(p).name, 9))
        if len(defaults) < 2:
            defaults = [RUN_VIDEO, RUN_FRAME]
        for i, combo in enumerate(self.compare_combos):
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
        self._compare = [CompareSource(c.currentData(), c.currentText()) for c in self.compare_combos
                         if c.currentData()]
        self.compare.set_num_panes(max(1, len(self._compare)))

    def add_compare_checkpoint(self, path: str) -> None:
        for combo in self.compare_combos:
            if combo.findData(str(path)) < 0:
                combo.insertItem(combo.findData(OTHER), Path(path).name, str(path))
                combo.setItemData(combo.findData(str(path)), str(path), Qt.ItemDataRole.ToolTipRole)

    def set_compare_sources(self, keys: list[str]) -> None:
        """Choose what the panes show (RUN_VIDEO, RUN_FRAME or checkpoint paths), 2 or 3 of them."""
        for k in keys:
            if k not in (RUN_VIDEO, RUN_FRAME):
                self.add_compare_checkpoint(k)
        for i, combo in enumerate(self.compare_combos):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(keys[i] if i < len(keys) else "")))
            combo.blockSignals(False)
        self._on_compare_source_changed(None)

    def _on_compare_source_changed(self, pane) -> None:
        if pane is not None and self.compare_combos[pane].currentData() == OTHER:
            combo = self.compare_combos[pane]
            path, _ = QFileDialog.getOpenFileName(self, "Checkpoint for this pane", str(RESOURCES / "models"),
                                                  "Checkpoints (*.pt *.pth);;All files (*)")
            combo.blockSignals(True)
            if path:
                self.add_compare_checkpoint(path)
                combo.setCurrentIndex(combo.findData(path))
            else:
                previous = self._compare[pane].key if pane < len(self._compare) else ""
                combo.setCurrentIndex(max(0, combo.findData(previous)))
            combo.blockSignals(False)
        old = {s.key: s for s in self._compare}
        self._compare = []
        for c in self.compare_combos:
            key = c.currentData()
            if key:
                self._compare.append(old.get(key) or CompareSource(key, c.currentText()))
        self.compare.set_num_panes(max(1, len(self._compare)))
        self._update_compare_panes()
        QTimer.singleShot(60, self.compare.fit_view)  # pane widths changed

    def _on_compare_visible(self, visible: bool) -> None:
        """Side-by-side panes need room: give the bottom area about 45 % of the height while Compare shows,
        and refit the panes (they were laid out while hidden)."""
        if not visible:
            before, self._bottom_before_compare = self._bottom_before_compare, None
            if before is not None and self.dock_timeline.isVisible() and not self.dock_timeline.isFloating():
                QTimer.singleShot(0, lambda: self.resizeDocks([self.dock_timeline], [before],
                                                              Qt.Orientation.Vertical))
            return
        if self.dock_compare.height() < self.height() * 0.35 and not self.dock_compare.isFloating():
            self._bottom_before_compare = self.dock_compare.height()
            self.resizeDocks([self.dock_compare], [int(self.height() * 0.45)], Qt.Orientation.Vertical)
        self._update_compare_panes()
        QTimer.singleShot(60, self.compare.fit_view)

    def _reset_compare_results(self, keep_checkpoints: bool = False) -> None:
        for s in self._compare:
            if not keep_checkpoints or s.key in (RUN_VIDEO, RUN_FRAME):
                s.doc, s.ap, s.error = None, None, ""
                if not keep_checkpoints:
                    s.job = None

    def _source_doc(self, s: CompareSource) -> Document | None:
        pred = self.doc.prediction
        if s.key in (RUN_VIDEO, RUN_FRAME):
            if pred is None or self.doc.video is None:
                return None
            if s.doc is None or s.doc.prediction is None or s.doc.prediction.checkpoint != pred.checkpoint \
                    or s.doc.run.complete != pred.complete or getattr(s, "_pred_id", None) != id(pred):
                tracks = pred.tracks if s.key == RUN_VIDEO else (pred.frame_tracks or [])
                mode = pred.mode if s.key == RUN_VIDEO else "frame"
                sub = VideoPrediction(mode, pred.num_frames, pred.height, pred.width, pred.categories, tracks,
                                      checkpoint=pred.checkpoint, complete=pred.complete)
                d = Document()
                d.open_video(self.doc.video)
                d.set_prediction(sub)
                s.doc = d
                s._pred_id = id(pred)  # type: ignore[attr-defined]
                s.ap = self._ap_of(sub)
            return s.doc
        return s.doc

    def run_compare(self) -> list[int]:
        """Run every checkpoint pane that has no result for this video yet. Returns the job ids."""
        if self.reader is None:
            self.show_message("Compare", "Open a video first.", QMessageBox.Icon.Information)
            return []
        jobs = []
        main = self.doc.prediction
        for i, s in enumerate(self._compare):
            if s.key in (RUN_VIDEO, RUN_FRAME) or s.doc is not None or s.job is not None:
                continue
            if main is not None and main.complete and _same_file(main.checkpoint, s.key):
                d = Document()  # this checkpoint already ran on this video: show that run
                d.open_video(self.doc.video)
                d.set_prediction(main)
                s.doc, s.ap = d, self._ap_of(main)
                continue
            s.error = ""
            job = self.worker.submit(InferJob(str(self.doc.video.path), s.key, self.device(), internals=False,
                                              tag=f"compare:{i}"))
            s.job = job
            job.progress.connect(lambda d, t, _eta, s=s: self._compare_progress(s, d, t))
            job.finished.connect(lambda pred, s=s, job=job: self._compare_done(s, job, pred))
            job.failed.connect(lambda msg, s=s, job=job: self._compare_failed(s, job, msg))
            job.cancelled.connect(lambda pred, s=s, job=job: self._compare_done(s, job, pred) if pred is not None
                                  else self._compare_failed(s, job, ""))
            jobs.append(job)
        self._update_compare_panes()
        return jobs

    def _compare_progress(self, s: CompareSource, done: int, total: int) -> None:
        if s in self._compare and self._compare.index(s) < self.compare.num_panes:
            self.compare.pane(self._compare.index(s)).set_title(f"{s.title} · {done}/{total} frames…")

    def _compare_done(self, s: CompareSource, job: JobHandle, pred: VideoPrediction) -> None:
        if s.job is not job:
            return
        s.job = None
        if not self._accept(pred):
            return
        d = Document()
        d.open_video(self.doc.video)
        d.set_prediction(pred)
        s.doc = d
        s.ap = self._ap_of(pred)
        self._update_compare_panes()

    def _compare_failed(self, s: CompareSource, job: JobHandle, message: str) -> None:
        """`message` is empty for a cancelled job: that is the user's choice, not a failure to report."""
        if s.job is not job:
            return
        s.job = None
        s.error = message or "cancelled"
        self._update_compare_panes()
        if message:
            self.show_message("Compare run failed", message)

    def _update_compare_panes(self) -> None:
        hidden = not self.dock_compare.isVisible() and not getattr(self, "_force_panels", False)
        if not self._compare or hidden:
            return
        img = self.reader[self.current] if self.reader is not None and self.current >= 0 else None
        for i, s in enumerate(self._compare[: self.compare.num_panes]):
            d = self._source_doc(s)
            title = s.title
            if img is None:
                self.compare.set_pane(i, title, None, [])
                continue
            if d is None:
                if s.job is not None:
                    note = "running…"
                elif s.error:
                    note = "failed"
                elif s.key in (RUN_VIDEO, RUN_FRAME):
                    note = "run SyncVIS first"
                else:
                    note = "press Run missing"
                self.compare.set_pane(i, f"{title} · {note}", img, [])
                continue
            d.set_overlays_visible(self.doc.overlays_visible)
            self.compare.set_pane(i, title, img, overlays_for(d, self.current), s.ap)

    # ------------------------------------------------------------ ground truth
    def load_gt_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load ground truth", self.settings.last_dir(),
                                              "YouTube-VIS JSON (*.json);;All files (*)")
        if path:
            self.load_ground_truth(path)

    def load_ground_truth(self, path: str | Path, quiet: bool = False) -> bool:
        """Score every run on this video against a YTVIS ground-truth file (AP in the properties and in each
        compare pane). `quiet` (sidecar files found next to a video) reports problems in the status bar
        only."""
        from engine.data.ytvis import Dataset

        try:
            gt = Dataset.load(path)
        except Exception as e:  # noqa: BLE001 - InputError names the file and the JSON location
            text = str(e) if isinstance(e, InputError) else f"{path}: {type(e).__name__}: {e}"
            if quiet:
                self.statusBar().showMessage(f"Ground truth not loaded: {text}", 8000)
            else:
                self.show_message("Cannot load ground truth", text)
            return False
        self.gt = gt
        self.gt_path = str(path)
        if self._gt_video() is None and self.doc.video is not None and not quiet:
            self.show_message("Ground truth", f"{path}: no video in this file matches {self.doc.video.name} "
                                              f"({self.doc.num_frames} frames); AP is not shown.",
                              QMessageBox.Icon.Information)
        self._update_ground_truth_scores()
        for s in self._compare:
            if s.doc is not None and s.doc.prediction is not None:
                s.ap = self._ap_of(s.doc.prediction)
        self._update_compare_panes()
        self.statusBar().showMessage(f"Ground truth: {Path(path).name}", 5000)
        return True

    def _gt_video(self):
        if self.gt is None or self.doc.video is None:
            return None
        stem = Path(self.doc.video.path).stem
        same_len = [v for v in self.gt.videos if v.length == self.doc.num_frames]
        for v in same_len:
            if v.name == stem or Path(self.doc.video.path).name == v.name:
                return v
        return same_len[0] if len(same_len) == 1 else None

    def _ap_of(self, pred: VideoPrediction) -> float | None:
        v = self._gt_video()
        if v is None or not pred.tracks:
            return None
        from engine.evaluation import evaluate

        cat_of = self.gt.category_ids_for(list(pred.categories))
        results = []
        for r in pred.to_ytvis_results(v.id):
            cid = r["category_id"]
            if 1 <= cid <= len(cat_of) and cat_of[cid - 1] is not None:
                results.append({**r, "category_id": cat_of[cid - 1]})
        try:
            res = evaluate(self.gt.subset([v.id]), results)
        except Exception as e:  # noqa: BLE001 - a metric is a nicety; never a crash
            log.warning("AP failed: %s", e)
            return None
        ap = float(res.stats.get("AP", -1))
        return ap if ap >= 0 else None

    def _update_ground_truth_scores(self) -> None:
        pred = self.doc.prediction
        self.main_ap = self._ap_of(pred) if pred is not None and self.gt is not None else None
        self._update_properties()

    # ============================================================ misc
    def _update_enabled(self) -> None:
        has_video = self.reader is not None
        running = self._main_job is not None
        self.act["run"].setEnabled(has_video and bool(self.checkpoint) and not running)
        self.act["cancel"].setEnabled(running or bool(self._compare_jobs()))
        for name in ("next_frame", "prev_frame", "jump_forward", "jump_back", "first_frame", "last_frame",
                     "play", "prev_event", "next_event", "next_uncertain", "fit_view", "toggle_overlays"):
            self.act[name].setEnabled(has_video)
        self.slider.setEnabled(has_video)
        self.spin.setEnabled(has_video)
        tip = "Run the model on the open video"
        if not has_video:
            tip = "Open a video first"
        elif not self.checkpoint:
            tip = "Choose a checkpoint first (Engine → Choose checkpoint…)"
        self.act["run"].setToolTip(f"{tip} (Ctrl+R)")

    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "syncvis-studio.png", "PNG (*.png)")
        if path:
            self.grab().save(path)

    def _about(self) -> None:
        QMessageBox.about(self, "SyncVIS Studio", "SyncVIS Studio: video instance segmentation with "
                                                  "synchronized "
                                                  "video-frame queries. Press F1 for the shortcuts.")

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
        self.save_state()
        self.worker.shutdown()
        if self.reader is not None:
            self.reader.close()
        super().closeEvent(event)


def _sidecar_ground_truth(video: Path) -> Path | None:
    """`clip.ytvis.json` next to `clip.mp4` (how the bundled demo ships its ground truth)."""
    p = video.with_name(video.stem + ".ytvis.json") if video.is_file() else None
    return p if p is not None and p.is_file() else None


def _same_file(a: str, b: str) -> bool:
    try:
        return bool(a) and bool(b) and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _duration(secs: float) -> str:
    secs = max(0.0, float(secs))
    if secs < 60:
        return f"{secs:.0f} s" if secs >= 10 else f"{secs:.1f} s"
    m, s = divmod(int(round(secs)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"
