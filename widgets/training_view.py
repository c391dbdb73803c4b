"""The training panel: progress with ETA, live loss curves, learning rate, periodic held-out AP, and the
before/after table when the run ends. numpy + Qt + pyqtgraph only; it draws the events it is given (the lines of
a run's events.jsonl, see engine/train.py) and says what the user clicked.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from widgets.colors import BACKGROUND, FOREGROUND, MUTED

METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")
_NOT_LOSSES = {"type", "step", "lr", "eta_s", "elapsed_s", "cpu_s", "grad_norm", "time", "total"}
_CURVE_COLOURS = [(90, 170, 255), (255, 160, 60), (120, 220, 120), (230, 100, 200), (200, 200, 90)]


class TrainingView(QWidget):
    """Signals: cancel_requested(), use_new_model()."""

    cancel_requested = Signal()
    use_new_model = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No fine-tuning run yet: Engine › Fine-tune on this project…")
        self.title.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.detail = QLabel("")
        self.detail.setStyleSheet(f"color: {MUTED};")
        self.cancel = QPushButton("Cancel (keeps the last checkpoint)")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancel_requested)
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setLabel("bottom", "iteration", color=FOREGROUND)
        self.plot.setLabel("left", "loss", color=FOREGROUND)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMinimumHeight(60)
        self.ap_plot = pg.PlotWidget(background=BACKGROUND)
        self.ap_plot.setLabel("left", "held-out AP", color=FOREGROUND)
        self.ap_plot.setMinimumHeight(40)
        self.ap_curve = self.ap_plot.plot([], [], pen=pg.mkPen(255, 220, 90, width=2), symbol="o", symbolSize=6)
        self.table = QTableWidget(len(METRICS), 3)
        self.table.setHorizontalHeaderLabels(["before", "after", "change"])
        self.table.setVerticalHeaderLabels(list(METRICS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(175)
        self.table.setMinimumHeight(60)
        self.diff = QLabel("")
        self.diff.setWordWrap(True)
        self.diff.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use = QPushButton("Use the new model and run again")
        self.use.setEnabled(False)
        self.use.clicked.connect(self.use_new_model)
        top = QHBoxLayout()
        top.addWidget(self.bar, 1)
        top.addWidget(self.cancel)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(top)
        lay.addWidget(self.detail)
        lay.addWidget(self.plot, 2)
        lay.addWidget(self.ap_plot, 1)
        lay.addWidget(self.table)
        lay.addWidget(self.diff)
        lay.addWidget(self.use, 0, Qt.AlignmentFlag.AlignRight)
        self.reset()

    # ------------------------------------------------------------ state
    def reset(self, title: str = "") -> None:
        self._losses: dict[str, list[tuple[float, float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._ap: list[tuple[float, float]] = []
        self._total = 0
        self.plot.clear()
        self.ap_curve.setData([], [])
        self.table.clearContents()
        self.diff.setText("")
        self.use.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.detail.setText("")
        if title:
            self.title.setText(title)

    def set_total(self, iterations: int) -> None:
        """The run's planned iterations (the bar's range); without it the bar estimates from the ETA."""
        self._total = int(iterations)

    def set_running(self, running: bool) -> None:
        self.cancel.setEnabled(running)

    def set_status(self, text: str) -> None:
        self.title.setText(text)

    def add_events(self, events: list[dict]) -> None:
        """Lines of events.jsonl: "train" steps move the bar and the curves, "eval" adds a held-out AP point."""
        redraw = False
        for ev in events:
            kind = ev.get("type")
            if kind == "train" and "step" in ev:
                step = float(ev["step"])
                for key, val in ev.items():
                    if key not in _NOT_LOSSES and isinstance(val, (int, float)) and not isinstance(val, bool) \
                            and np.isfinite(val):
                        self._losses.setdefault(key, []).append((step, float(val)))
                        redraw = True
                total = self._total or _total_from_eta(ev)
                if total:
                    self.bar.setRange(0, total)
                    self.bar.setValue(int(step))
                parts = [f"iteration {int(step)}" + (f" / {total}" if total else "")]
                if "loss" in ev:
                    parts.append(f"loss {float(ev['loss']):.3f}")
                if "lr" in ev:
                    parts.append(f"lr {float(ev['lr']):.2e}")
                if ev.get("eta_s") is not None:
                    parts.append(f"ETA {_duration(float(ev['eta_s']))}")
                self.detail.setText(" · ".join(parts))
            elif kind == "eval" and "AP" in ev:
                self._ap.append((float(ev.get("step", len(self._ap))), float(ev["AP"]) * 100))
                xs, ys = zip(*self._ap, strict=True)
                self.ap_curve.setData(list(xs), list(ys))
        if redraw:
            self._draw_losses()

    def _draw_losses(self) -> None:
        for i, (key, pts) in enumerate(sorted(self._losses.items(), key=lambda kv: kv[0] != "loss")):
            curve = self._curves.get(key)
            if curve is None:
                width = 2 if key == "loss" else 1
                curve = self.plot.plot([], [], pen=pg.mkPen(_CURVE_COLOURS[i % len(_CURVE_COLOURS)], width=width),
                                       name=key)
                self._curves[key] = curve
            xs, ys = zip(*pts, strict=True)
            curve.setData(list(xs), list(ys))

    def set_result(self, before: dict, after: dict) -> None:
        """The before/after table (metrics as fractions, shown x100)."""
        for r, m in enumerate(METRICS):
            b, a = before.get(m), after.get(m)
            for c, v in enumerate((b, a)):
                self.table.setItem(r, c, QTableWidgetItem("—" if v is None else f"{100 * v:.1f}"))
            if a is not None and b is not None:
                d = 100 * (a - b)
                item = QTableWidgetItem(f"{d:+.1f}")
                item.setForeground(pg.mkColor((110, 220, 120) if d > 0 else (240, 110, 110) if d < 0 else MUTED))
                self.table.setItem(r, 2, item)
        self.use.setEnabled(True)

    def set_diff(self, lines: list[str]) -> None:
        """Which tracks changed between the old model's run and the new one's (engine.track_diff)."""
        self.diff.setText("<b>Old vs new model, per track</b><br>" + "<br>".join(lines) if lines else "")

    def loss_points(self) -> dict[str, list[tuple[float, float]]]:
        return {k: list(v) for k, v in self._losses.items()}

    def ap_points(self) -> list[tuple[float, float]]:
        return list(self._ap)

    def cell(self, metric: str, column: int) -> str:
        item = self.table.item(METRICS.index(metric), column)
        return item.text() if item else ""


def _total_from_eta(ev: dict) -> int:
    step, eta, elapsed = ev.get("step"), ev.get("eta_s"), ev.get("elapsed_s")
    if not step or eta is None or not elapsed:
        return 0
    return int(round(step + float(eta) / (float(elapsed) / float(step))))


def _duration(secs: float) -> str:
    secs = max(0.0, secs)
    return f"{secs:.0f} s" if secs < 90 else f"{secs / 60:.1f} min"
