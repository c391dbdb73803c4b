"""Running SyncVIS on the open video: the checkpoint and device pickers, the main run's job, its progress in the
status bar, and what a finished or cancelled run leaves in the document.

The run is one `JobHandle` (app/engine_worker.py) whose signals are connected here; a newer run replaces it and
the old handle's late signals are ignored because they belong to a handle that is no longer `self.job`.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QToolBar

from app.document import Document, frames_reached
from app.engine_worker import EngineWorker, InferJob, JobHandle
from app.fit_note import class_fit_note
from app.presenters import duration
from app.settings import Settings
from app.status import Status
from engine.types import VideoPrediction

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
BUNDLED_MODELS = ("tiny-sync.pt", "tiny-video.pt", "tiny-frame.pt")
OTHER = "__other__"
# The window's test size: the network sees at most this many pixels on the long side (a 1280x720 video runs at
# 640x360, about 4x less CPU than its native size; smaller videos run as the checkpoint says). The bundled
# models were trained at 160-224 px short sides, so nothing they can see is lost; the masks come back at the
# video's size. The CLI keeps the checkpoint's own size.
TEST_MAX_SIDE = 640


def bundled_checkpoints(folder: Path | None = None) -> list[Path]:
    folder = folder or RESOURCES / "models"
    ordered = [folder / n for n in BUNDLED_MODELS if (folder / n).exists()]
    others = sorted(p for p in folder.glob("*.pt") if p not in ordered) if folder.is_dir() else []
    return ordered + others


def default_checkpoint() -> Path | None:
    p = RESOURCES / "models" / "tiny-sync.pt"
    return p if p.exists() else None


def same_file(a: str, b: str) -> bool:
    try:
        return bool(a) and bool(b) and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class RunController(QObject):
    run_finished = Signal(object)   # the final VideoPrediction of a main run (complete or cancelled); its
    #                                 handler redraws the document (Editing.accept_run does)
    state_changed = Signal()        # a run started or ended, or the checkpoint changed (enable actions)

    def __init__(self, window: QMainWindow, doc: Document, worker: EngineWorker, settings: Settings,
                 status: Status):
        super().__init__(window)
        self.window, self.doc, self.worker, self.settings, self.status = window, doc, worker, settings, status
        self.checkpoint = ""
        self.job: JobHandle | None = None
        self._started_at = 0.0
        self._fit_checked = False

        self.ckpt_combo = QComboBox()
        self.ckpt_combo.setMinimumWidth(180)
        self.ckpt_combo.setToolTip("Checkpoint to run (Engine → Choose checkpoint… for others)")
        self.ckpt_combo.activated.connect(self._on_ckpt_combo)
        self.device_combo = QComboBox()
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("GPU (CUDA)", "cuda")
        self.device_combo.setToolTip("Where the model runs; GPU needs CUDA")
        self._set_gpu_enabled(False, "checking for a GPU…")
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        status.cancel_button.clicked.connect(self.cancel)
        worker.ready.connect(self._on_worker_ready)

    def add_pickers(self, toolbar: QToolBar) -> None:
        toolbar.addWidget(QLabel(" Model "))
        toolbar.addWidget(self.ckpt_combo)
        toolbar.addWidget(QLabel("  Device "))
        toolbar.addWidget(self.device_combo)

    def fill_bundled_menu(self, menu: QMenu) -> None:
        bundled = menu.addMenu("Bundled models")
        for p in bundled_checkpoints():
            bundled.addAction(p.name, lambda p=p: self.set_checkpoint(str(p)))
        bundled.setEnabled(bool(bundled_checkpoints()))

    # ------------------------------------------------------------ checkpoint and device
    def set_checkpoint(self, path: str, remember: bool = True) -> None:
        self.checkpoint = str(path or "")
        if remember and path:
            self.settings.set_checkpoint(self.checkpoint)
        self._fill_ckpt_combo()
        self.state_changed.emit()

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
        c.addItem("Other…", OTHER)
        c.setCurrentIndex(max(0, c.findData(self.checkpoint)))
        c.blockSignals(False)

    def _on_ckpt_combo(self, index: int) -> None:
        data = self.ckpt_combo.itemData(index)
        if data == OTHER:
            self.choose_checkpoint_dialog()
            self._fill_ckpt_combo()
        elif data:
            self.set_checkpoint(data)

    def choose_checkpoint_dialog(self) -> None:
        start = str(Path(self.checkpoint).parent) if self.checkpoint else str(RESOURCES / "models")
        path, _ = QFileDialog.getOpenFileName(self.window, "Choose checkpoint", start,
                                              "Checkpoints (*.pt *.pth *.pkl);;All files (*)")
        from app.official_classes import confirm_checkpoint  # official files: which dataset's classes

        if path and confirm_checkpoint(self.window, path):
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
        if self.settings.device() == "cuda" and cuda:
            self.device_combo.setCurrentIndex(1)
        self._update_device_label()

    def _on_device_changed(self, _i: int) -> None:
        self.settings.set_device(self.device())
        self._update_device_label()

    def _update_device_label(self) -> None:
        gpus = self.worker.info.get("gpus")
        self.status.device_label.setText(f"GPU: {gpus[0]}" if self.device() == "cuda" and gpus else "CPU")

    # ------------------------------------------------------------ the main run
    def run(self, checkpoint: str | None = None, window: int | None = None) -> JobHandle | None:
        """Start SyncVIS on the open video; results stream in window by window. `window` overrides the
        checkpoint's frames per inference window."""
        if self.doc.video is None:
            self.status.show_message("Run SyncVIS", "Open a video first (File → Open, Ctrl+O).",
                                     QMessageBox.Icon.Information)
            return None
        ckpt = checkpoint or self.checkpoint
        if not ckpt:
            self.status.show_message("Run SyncVIS", "No checkpoint chosen: Engine → Choose checkpoint…",
                                     QMessageBox.Icon.Information)
            return None
        if self.job is not None:
            self.job.cancel()
        job = self.worker.submit(InferJob(str(self.doc.video.path), str(ckpt), self.device(), internals=True,
                                          window=window, tag="main", max_side=TEST_MAX_SIDE))
        self._fit_checked = False
        self.job = job
        mine = lambda fn: lambda *a: fn(*a) if job is self.job else None  # noqa: E731 - ignore replaced runs
        job.started.connect(mine(self.status.job_label.setText))
        job.progress.connect(mine(self._on_progress))
        job.partial.connect(mine(self._on_partial))
        job.finished.connect(mine(self._on_ended))
        job.cancelled.connect(mine(self._on_ended))
        job.failed.connect(mine(self._on_failed))
        job.notice.connect(lambda msg: self.status.show(msg, 15000))  # fallbacks: at once; listed at the end
        self._started_at = time.perf_counter()
        self.status.show_job(f"{Path(ckpt).name}: starting…")
        self.state_changed.emit()
        return job

    def test_size_text(self) -> str:
        """'640x360' for the open video: what the network sees at the window's test size (at most
        TEST_MAX_SIDE on the long side; the checkpoint's own short side may make it smaller)."""
        v = self.doc.video
        if v is None:
            return "–"
        w, h = v.width, v.height
        s = min(1.0, TEST_MAX_SIDE / max(w, h, 1))
        return f"{max(1, round(w * s))}x{max(1, round(h * s))}"

    def _check_fit(self, pred: VideoPrediction) -> None:
        """Once per run, on its first result: a shapes model on a real video gets the note (app/fit_note.py)."""
        if self._fit_checked or self.doc.video is None:
            return
        self._fit_checked = True
        note = class_fit_note(pred.categories, self.doc.video.path, pred.checkpoint)
        if note is None:
            self.status.hide_banner()
        else:
            self.status.show_banner(note)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.job_label.setText("cancelling after this window…")

    def abandon(self) -> None:
        """A new video: the run of the old one goes, whatever it finishes is ignored."""
        self.status.hide_banner()
        if self.job is not None:
            self.job.cancel()
            self.job = None
            self.status.hide_job()

    def is_running(self) -> bool:
        return self.job is not None

    def accepts(self, pred: VideoPrediction) -> bool:
        """A result belongs to the open video (a run of a video closed meanwhile is dropped)."""
        v = self.doc.video
        return v is not None and pred.num_frames == v.num_frames

    def _on_progress(self, done: int, total: int, eta: float) -> None:
        eta_text = " · ETA after the first window" if eta < 0 else f" · ETA {duration(eta)}"
        self.status.job_progress(done, total, f"{Path(self.checkpoint).name} at {self.test_size_text()}: "
                                              f"{done}/{total} frames{eta_text}")

    def _on_partial(self, pred: VideoPrediction) -> None:
        if frames_reached(pred) >= pred.num_frames:
            return   # the last window: the final result follows at once, and one redraw of it is enough
        if self.accepts(pred):
            pred.complete = False
            self._check_fit(pred)
            self.doc.set_prediction(pred)

    def _end(self) -> None:
        self.job = None
        self.status.hide_job()
        self.state_changed.emit()

    def _on_ended(self, pred: VideoPrediction | None) -> None:
        """Finished, or cancelled (None: before it started)."""
        self._end()
        if pred is None or not self.accepts(pred):
            return
        self._check_fit(pred)
        # The views redraw once, when run_finished's handler has given the tracks to the project (or, with none
        # open, shown them): a full redraw of the run and then one of the project stalled the GUI at 720p.
        self.doc.set_prediction(pred, notify=False)
        secs = time.perf_counter() - self._started_at
        if pred.complete:
            msg = f"Done: {len(pred.tracks)} tracks over {pred.num_frames} frames in {duration(secs)}"
        else:
            done = self.doc.run.frames_done
            msg = f"Cancelled: kept the first {done} of {pred.num_frames} frames ({len(pred.tracks)} tracks)"
        if pred.device:
            msg += f" on {pred.device}"
        self.status.show(msg, 15000)
        if pred.notices:
            self.status.show_message("SyncVIS adjusted the run", "\n".join(dict.fromkeys(pred.notices)),
                                     QMessageBox.Icon.Information)
        self.run_finished.emit(pred)

    def _on_failed(self, message: str) -> None:
        self._end()
        self.status.show_message("SyncVIS run failed", message)
