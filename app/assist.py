"""Assisted segmentation in the window: click / box prompts answered with a proposal, and propagation forward
and backward from the current frame, both run by the engine worker (engine/assist behind AssistJob and
PropagateJob), so the window never waits.

The tool: SAM 2 when a checkpoint is set (Engine › Assist settings…), otherwise GrabCut for clicks and dense
optical flow for propagation, so a user without a checkpoint still gets masks. A proposal is shown hatched and
goes into the project only on Enter (one undo step, provenance "assist · <tool>"); Esc drops it. A propagation run
is one undo step too; frames the user locked are never overwritten and stop the run; cancel (Ctrl+. or the
status bar's button) keeps the frames done. A new click on any frame, accepted, and another propagation re-runs
from there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.document import Document
from app.editing import Editing
from app.engine_worker import AssistJob, EngineWorker, JobHandle, PropagateJob
from app.presenters import duration
from app.settings import Settings
from app.status import Status
from app.view_state import ViewState
from engine.data import masks as rle_ops
from engine.project import ops
from engine.project.model import Provenance

SAM2_SIZES = ("tiny", "small", "base+", "large")
SAM2_SOURCE = "https://github.com/facebookresearch/sam2#download-checkpoints"
_SIZE_WORD = {"tiny": "tiny", "small": "small", "base+": "base_plus", "large": "large"}


class Assist(QObject):
    """Signals: proposal_changed(object): the proposed mask (None when cleared); propagated(int): frames a
    finished or cancelled propagation put into the project."""

    proposal_changed = Signal(object)
    propagated = Signal(int)
    busy_changed = Signal()   # a propagation started or ended (the window enables Cancel)

    def __init__(self, window: QWidget, doc: Document, view: ViewState, editing: Editing, worker: EngineWorker,
                 status: Status, settings: Settings, device):
        super().__init__(window)
        self.window, self.doc, self.view, self.editing = window, doc, view, editing
        self.worker, self.status, self.settings, self.device = worker, status, settings, device
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []
        self.box: tuple[float, float, float, float] | None = None
        self.frame = -1
        self.proposal: np.ndarray | None = None
        self.proposal_tool = ""
        self.prompt_job: JobHandle | None = None
        self.run: JobHandle | None = None
        tools = editing.tools
        tools.prompt_point.connect(self.add_point)
        tools.prompt_box.connect(self.set_box)
        view.events.frame.connect(lambda f: f != self.frame and self.clear())
        view.events.tool.connect(lambda t: t != "click" and self.clear())
        status.cancel_button.clicked.connect(self.cancel)

    # ------------------------------------------------------------ which tool
    def sam2(self) -> dict | None:
        ckpt = self.settings.sam2_checkpoint()
        return {"size": self.settings.sam2_size(), "checkpoint": ckpt} if ckpt else None

    def click_tool(self) -> str:
        return "sam2" if self.sam2() else "grabcut"

    def propagation_tool(self) -> str:
        return "sam2" if self.sam2() else "flow"

    # ------------------------------------------------------------ prompts
    def add_point(self, x: float, y: float, positive: bool) -> None:
        self._start_prompt()
        self.points.append((float(x), float(y)))
        self.labels.append(1 if positive else 0)
        self._request()

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self._start_prompt()
        self.box = (float(x0), float(y0), float(x1), float(y1))
        self._request()

    def _start_prompt(self) -> None:
        if self.frame != self.view.frame:
            self.clear()
            self.frame = self.view.frame

    def _request(self) -> None:
        if not self.editing.editable() or self.doc.video is None:
            return
        self.editing.tools.show_prompts(self.points, self.labels, self.box)
        if self.prompt_job is not None:
            self.prompt_job.cancel()
        obj = self.view.selected if self.view.selected is not None else 0
        tool = self.click_tool()
        job = self.worker.submit(AssistJob(str(self.doc.video.path), tool, self.frame, obj, list(self.points),
                                           list(self.labels), self.box, self.sam2(), self.device()))
        self.prompt_job = job
        job.finished.connect(lambda mask, j=job, t=tool: j is self.prompt_job and self._on_proposal(mask, t))
        job.failed.connect(lambda msg: self.status.show_message("Assist", msg))
        self.status.show(f"{tool}: segmenting…", 3000)

    def _on_proposal(self, mask: np.ndarray, tool: str) -> None:
        self.prompt_job = None
        if self.view.frame != self.frame:
            return
        self.proposal, self.proposal_tool = np.asarray(mask, bool), tool
        sel = self.view.selected
        self.editing.tools.show_proposal(self.proposal, self.doc.colour(sel) if sel is not None else None)
        self.proposal_changed.emit(self.proposal)
        self.status.show(f"{tool}: proposal of {int(self.proposal.sum())} px — Enter accepts, Esc drops it, more "
                         "clicks refine it", 8000)

    def has_proposal(self) -> bool:
        return self.proposal is not None

    def accept(self) -> bool:
        """Enter: the proposal becomes the selected track's mask on this frame (a new track when none is
        selected), one undo step with provenance assist."""
        if self.proposal is None or not self.proposal.any():
            return False
        pd, frame, mask = self.editing.pdoc, self.frame, self.proposal
        prov = Provenance.now("assist", self.proposal_tool)
        tid = self.view.selected
        if tid is None:
            new = pd.next_track_id()
            cat = self.editing.default_category()  # the same default as the brush's new track
            ok = self.editing.push(lambda d: ops.sequence(
                d, f"new track {new} ({self.proposal_tool}, frame {frame})",
                lambda d2: ops.new_track(d2, new, cat),
                lambda d2: ops.set_mask(d2, new, frame, rle_ops.encode(mask), prov)))
            if ok:
                self.view.select(new)
        else:
            ok = self.editing.push(lambda d: ops.set_mask(d, tid, frame, rle_ops.encode(mask), prov,
                                                          self.editing.exclusive,
                                                          description=f"{self.proposal_tool} on track {tid}, "
                                                                      f"frame {frame}"))
        self.clear()
        return ok

    def clear(self) -> bool:
        """Esc: drop the prompts and the proposal. True when there was something to drop."""
        had = bool(self.points or self.box or self.proposal is not None)
        if self.prompt_job is not None:
            self.prompt_job.cancel()
            self.prompt_job = None
        self.points, self.labels, self.box, self.proposal = [], [], None, None
        self.frame = -1
        self.editing.tools.clear_prompts()
        if had:
            self.proposal_changed.emit(None)
        return had

    # ------------------------------------------------------------ propagation
    def propagate(self, direction: int) -> JobHandle | None:
        """Ctrl+→ / Ctrl+←: carry the selected track's mask on this frame through the video."""
        ed = self.editing
        if not ed.editable():
            return None
        if self.run is not None:
            self.status.show("A propagation is running (Ctrl+. cancels it)", 5000)
            return None
        if self.proposal is not None:
            self.accept()
        tid = self.view.selected
        frame = max(self.view.frame, 0)
        if tid is None:
            self.status.show("Select a track to propagate (click its mask)", 5000)
            return None
        seed = ed.pdoc.mask(tid, frame)
        if seed is None:
            self.status.show(f"Track {tid} has no mask on frame {frame}: paint or click it first", 6000)
            return None
        if (direction > 0 and frame >= ed.pdoc.num_frames - 1) or (direction < 0 and frame <= 0):
            self.status.show("Nothing to propagate to: this is the last frame that way", 4000)
            return None
        tool = self.propagation_tool()
        locked = sorted(ed.pdoc.tracks[tid].locked - {frame})
        job = self.worker.submit(PropagateJob(str(self.doc.video.path), tool, frame, direction, {tid: seed.rle},
                                              {tid: locked}, self.sam2(), self.device()))
        self.run = job
        self.busy_changed.emit()
        self.status.show_job(f"{tool}: propagating track {tid} {'forward' if direction > 0 else 'backward'}…")
        job.progress.connect(lambda d, t, eta: self.status.job_progress(
            d, t, f"{tool}: track {tid}, {d}/{t} frames" + ("" if eta < 0 else f" · ETA {duration(eta)}")))
        job.finished.connect(lambda res: self._on_propagated(res, tid, tool, frame, direction, False))
        job.cancelled.connect(lambda res: self._on_propagated(res, tid, tool, frame, direction, True))
        job.failed.connect(self._on_failed)
        return job

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def _on_failed(self, msg: str) -> None:
        self.run = None
        self.busy_changed.emit()
        self.status.hide_job()
        self.status.show_message("Propagation failed", msg)

    def _on_propagated(self, result: dict | None, tid: int, tool: str, start: int, direction: int,
                       cancelled: bool) -> None:
        self.run = None
        self.busy_changed.emit()
        self.status.hide_job()
        frames = (result or {}).get(tid, {})
        pd = self.editing.pdoc
        if not frames or pd is None or tid not in pd.tracks:
            self.status.show("Propagation: no frames" + (" (cancelled)" if cancelled else ""), 6000)
            self.propagated.emit(0)
            return
        way = "forward" if direction > 0 else "backward"
        prov = Provenance.now("assist", tool)
        self.editing.push(lambda d: ops.set_masks(d, tid, frames, prov, f"{tool} propagation of track {tid} "
                                                                         f"{way} from frame {start}"), quiet=True)
        last = max(frames) if direction > 0 else min(frames)
        self.status.show(f"{'Cancelled: kept' if cancelled else 'Propagated'} {len(frames)} frames "
                         f"({start}→{last}) with {tool}", 10000)
        self.propagated.emit(len(frames))

    # ------------------------------------------------------------ settings
    def settings_dialog(self) -> None:
        dlg = AssistSettingsDialog(self.window, self.settings.sam2_size(), self.settings.sam2_checkpoint())
        if dlg.exec() == QDialog.DialogCode.Accepted:
            size, ckpt = dlg.values()
            if ckpt and not Path(ckpt).is_file():
                self.status.show_message("Assist settings", f"{ckpt}: no such file; SAM 2 stays off")
                return
            self.settings.set_sam2(size, ckpt)
            self.status.show(f"Assist: {'SAM 2 ' + size if ckpt else 'GrabCut clicks, optical-flow propagation'}",
                             6000)


def checkpoint_hint(size: str) -> str:
    w = _SIZE_WORD.get(size, "tiny")
    return (f"Official SAM 2 checkpoints: {SAM2_SOURCE}. For {size}: sam2.1_hiera_{w}.pt (or sam2_hiera_{w}.pt). "
            "Without one, clicks use GrabCut and propagation uses optical flow.")


class AssistSettingsDialog(QDialog):
    """SAM 2 model size and checkpoint; says where the official files come from and which names fit a size.
    A wrong file (another size, not SAM 2) is named when it is first used: the worker loads it."""

    def __init__(self, parent: QWidget | None, size: str, checkpoint: str):
        super().__init__(parent)
        self.setWindowTitle("Assist settings")
        self.size = QComboBox()
        self.size.addItems(SAM2_SIZES)
        self.size.setCurrentText(size if size in SAM2_SIZES else "tiny")
        self.path = QLineEdit(checkpoint)
        self.path.setPlaceholderText("no checkpoint: GrabCut and optical flow")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.hint = QLabel(checkpoint_hint(self.size.currentText()))
        self.hint.setWordWrap(True)
        self.hint.setOpenExternalLinks(True)
        self.size.currentTextChanged.connect(lambda s: self.hint.setText(checkpoint_hint(s)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("SAM 2 size", self.size)
        form.addRow("Checkpoint", row)
        form.addRow(self.hint)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM 2 checkpoint", "", "SAM 2 checkpoints (*.pt);;All (*)")
        if path:
            self.path.setText(path)

    def values(self) -> tuple[str, str]:
        return self.size.currentText(), self.path.text().strip()
