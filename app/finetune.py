"""One-click fine-tuning on the open project: a frozen snapshot of the corrected project, `main.py finetune` in a
CHILD process (never in the window's), the run's events.jsonl read into the training panel as it grows, and the
before/after table when it ends; the new checkpoint joins the model list with its provenance, and one click
switches to it and runs it again.

Why a snapshot: the window holds the project's lock while you keep editing, and training should see the data as
it was when you pressed the button. Why a child process: a training run is minutes of full CPU or GPU load and
must never stall or crash the window; cancel sends it Ctrl+C, and `finetune` keeps its last checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from widgets.training_view import TrainingView

ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL = 30  # lines of the child's output shown when it fails


class FineTune(QObject):
    """Signals: started(); finished(dict): {"before", "after", "checkpoint", "run_dir"} of a run that ended normally;
    ended(str): "finished" | "cancelled" | "failed"."""

    started = Signal()
    finished = Signal(dict)
    ended = Signal(str)

    def __init__(self, window, view: TrainingView):
        super().__init__(window)
        self.w, self.view = window, view
        self.proc: QProcess | None = None
        self.run_dir: Path | None = None
        self.result: dict | None = None
        self._events_path: Path | None = None
        self._written: Path | None = None   # the checkpoint the run says it wrote (its events' closing line)
        self._events_pos = 0
        self._log: list[str] = []
        self._cancelled = False
        self._timer = QTimer(self)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._poll)
        view.cancel_requested.connect(self.cancel)
        view.use_new_model.connect(self.use_new_model)

    # ------------------------------------------------------------ the plan
    def dialog(self) -> None:
        if self.w.editing.session.project is None:
            self.w.status.show("Open a video or a project first", 5000)
            return
        dlg = FineTuneDialog(self.w, self.w.checkpoint)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start(**dlg.values())

    def running(self) -> bool:
        return self.proc is not None

    def start(self, init: str | None = None, minutes: float | None = 10.0, iters: int | None = None,
              holdout: float = 0.2, replay: str | None = None, run_dir: str | Path | None = None) -> bool:
        """Snapshot the project and start `main.py finetune` on it in a child process."""
        session = self.w.editing.session
        if session.project is None or self.proc is not None:
            return False
        session.save()
        project = session.project
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = (Path(run_dir) if run_dir else project.path.parent / f"{project.path.stem}-finetune" / stamp).resolve()
        base.mkdir(parents=True, exist_ok=True)
        snapshot = base / "corrected.svproj"
        for old in (snapshot, Path(f"{snapshot}-wal"), Path(f"{snapshot}-shm")):
            old.unlink(missing_ok=True)  # a reused run folder trains on the project as it is now, not as it was
        project.snapshot(snapshot)
        init = init or self.w.checkpoint
        out = base / "run"
        args = [str(ROOT / "main.py"), "finetune", str(snapshot), "--out", str(out), "--json",
                str(base / "metrics.json"), "--holdout", str(holdout)]
        if init:
            args += ["--init", str(init)]
        if iters:
            args += ["--iters", str(int(iters))]
        elif minutes:
            args += ["--minutes", f"{float(minutes):g}"]
        if replay:
            args += ["--replay", str(replay)]
        self.run_dir, self.result, self._cancelled = base, None, False
        self._events_path, self._events_pos, self._log = None, 0, []
        self._written = None
        self._init = str(init)
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        env = proc.processEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_output)
        proc.finished.connect(self._on_finished)
        self.proc = proc
        self.view.reset(f"Fine-tuning {Path(init).name if init else 'the model'} on {project.path.name} "
                        f"(held out: last {holdout:.0%} of each video)")
        if iters:
            self.view.set_total(int(iters))
        self.view.set_running(True)
        proc.start(sys.executable, args)
        self._timer.start()
        self.started.emit()
        self.w.status.show(f"Fine-tuning in a child process; run folder {base}", 8000)
        return True

    def cancel(self) -> None:
        """Stop the child as Ctrl+C would: it saves and keeps its last checkpoint."""
        if self.proc is None:
            return
        self._cancelled = True
        pid = int(self.proc.processId())
        if pid and os.name != "nt":
            os.kill(pid, signal.SIGINT)
        else:  # pragma: no cover - Windows has no SIGINT for another process
            self.proc.terminate()
        self.view.set_status("Cancelling: the run saves its last checkpoint…")

    # ------------------------------------------------------------ following the child
    def _read_output(self) -> None:
        text = bytes(self.proc.readAllStandardOutput()).decode("utf-8", "replace")
        self._log += text.replace("\r", "\n").splitlines()
        self._log = self._log[-400:]

    def _find_events(self) -> Path | None:
        if self.run_dir is None:
            return None
        found = sorted(self.run_dir.rglob("events.jsonl"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def _poll(self) -> None:
        path = self._events_path or self._find_events()
        if path is None or not path.exists():
            return
        if path != self._events_path:
            self._events_path, self._events_pos = path, 0
        with open(path, encoding="utf-8") as f:
            f.seek(self._events_pos)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]   # a half-written last line waits for the next poll
        self._events_pos += len(complete.encode("utf-8"))
        events = []
        for line in complete.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        if events:
            self.view.add_events(events)
        for e in events:   # the training's closing line names the checkpoint it wrote (engine/train.py)
            if e.get("type") in ("done", "cancelled") and e.get("checkpoint"):
                self._written = Path(e["checkpoint"])

    def _on_finished(self, code: int, _status) -> None:
        self._read_output()
        self._poll()
        self._timer.stop()
        self.proc = None
        self.view.set_running(False)
        metrics = self.run_dir / "metrics.json" if self.run_dir else None
        ckpt = self._newest_checkpoint()
        if code == 0 and metrics is not None and metrics.exists():
            res = json.loads(metrics.read_text())
            self.result = {"before": res.get("before", {}), "after": res.get("after", {}),
                           "checkpoint": str(ckpt) if ckpt else "", "run_dir": str(self.run_dir)}
            self.view.set_result(self.result["before"], self.result["after"])
            self.view.set_status(f"Done: {ckpt.name if ckpt else 'no checkpoint'} — before/after on the held-out "
                                 "frames below")
            self._register(ckpt, res)
            self.finished.emit(self.result)
            self.ended.emit("finished")
        elif self._cancelled:
            kept = f"kept {ckpt}" if ckpt else "no checkpoint was written yet"
            self.view.set_status(f"Cancelled: {kept}")
            self.w.status.show(f"Fine-tuning cancelled; {kept}", 10000)
            self.ended.emit("cancelled")
        else:
            tail = "\n".join(self._log[-LOG_TAIL:])
            self.view.set_status(f"The fine-tuning run failed (exit status {code}); see the message")
            self.w.show_message("Fine-tuning failed", f"The training process stopped with status {code}. Last lines "
                                                       f"of its log:\n\n{tail}")
            self.ended.emit("failed")

    def _newest_checkpoint(self) -> Path | None:
        """The checkpoint the training process said it wrote last, when that file is there (no guessing from
        file names: a reused run folder holds older ones)."""
        return self._written if self._written is not None and self._written.is_file() else None

    def _register(self, ckpt: Path | None, metrics: dict) -> None:
        """The new checkpoint in the model list, with where it came from."""
        if ckpt is None:
            return
        card = {"checkpoint": str(ckpt), "parent": self._init, "data": str(self.run_dir / "corrected.svproj"),
                "metrics": metrics, "time": time.time()}
        (self.run_dir / "model.json").write_text(json.dumps(card, indent=2))
        self.w.settings.add_model(str(ckpt))

    def use_new_model(self) -> None:
        """Switch to the fine-tuned checkpoint and run it again; when that run ends, the Compare panes show the
        old and the new model side by side and the panel lists which tracks changed."""
        if not self.result or not self.result.get("checkpoint"):
            return
        old, old_pred = self.w.checkpoint, self.w.doc.prediction
        new = self.result["checkpoint"]
        self.w.set_checkpoint(new)
        self.w.set_compare_sources([old, new])

        def after(pred) -> None:
            self.w.run_finished.disconnect(after)
            if old_pred is not None and pred is not None and pred.complete:
                from engine.track_diff import diff_tracks

                self.view.set_diff([c.text for c in diff_tracks(old_pred, pred)])
            self.w.dock_compare.show()
            self.w.dock_compare.raise_()
            self.w.run_compare()

        self.w.run_finished.connect(after)
        if self.w.run_model() is None:
            self.w.run_finished.disconnect(after)


class FineTuneDialog(QDialog):
    """The plan, with defaults filled in: the checkpoint in use, the last 20% of each video held out, about ten
    minutes of training (the run measures its own step time to size the iterations), optional replay data."""

    def __init__(self, parent: QWidget | None, checkpoint: str):
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on this project")
        self.init = QLineEdit(checkpoint)
        pick = QPushButton("…")
        pick.clicked.connect(lambda: self._pick(self.init, "Starting checkpoint", "Checkpoints (*.pt *.pth)"))
        row = QHBoxLayout()
        row.addWidget(self.init, 1)
        row.addWidget(pick)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 600)
        self.minutes.setValue(10)
        self.minutes.setSuffix(" min")
        self.iters = QSpinBox()
        self.iters.setRange(0, 1_000_000)
        self.iters.setSpecialValueText("sized to the minutes")
        self.holdout = QDoubleSpinBox()
        self.holdout.setRange(0.05, 0.9)
        self.holdout.setSingleStep(0.05)
        self.holdout.setValue(0.2)
        self.replay = QLineEdit()
        self.replay.setPlaceholderText("optional: a YTVIS dataset folder mixed in so the model does not forget")
        pick2 = QPushButton("…")
        pick2.clicked.connect(self._pick_replay)
        row2 = QHBoxLayout()
        row2.addWidget(self.replay, 1)
        row2.addWidget(pick2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        start = buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        start.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Start from", row)
        form.addRow("Train for", self.minutes)
        form.addRow("Iterations", self.iters)
        form.addRow("Held out", self.holdout)
        form.addRow("Replay", row2)
        form.addRow(QLabel("Training runs in its own process; the window stays usable. The held-out frames "
                           "(the last part of each corrected video) are never trained on."))
        form.addRow(buttons)

    def _pick(self, edit: QLineEdit, title: str, filt: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, edit.text(), filt)
        if path:
            edit.setText(path)

    def _pick_replay(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Replay dataset")
        if path:
            self.replay.setText(path)

    def values(self) -> dict:
        return {"init": self.init.text().strip() or None, "minutes": self.minutes.value(),
                "iters": self.iters.value() or None, "holdout": self.holdout.value(),
                "replay": self.replay.text().strip() or None}
