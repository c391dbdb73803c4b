"""Work spread over event-loop turns, so that no single turn holds the GUI thread for long.

A window's redraw after a model run touches many views (track list, timeline, canvas, the analysis panels,
the compare panes) and the project store. Done in one go it blocked input and painting for 100-200 ms at
720p; done one piece per turn, the event loop paints and answers input between the pieces, and each piece
fits within one frame's budget. `Turns` is that queue: named steps run in the order they were first
scheduled, one per turn; scheduling a name that is still waiting replaces its function (coalescing: five
partial results in a row redraw a panel once), and `flush()` runs what is left at once, for callers that
need the end state now (a new run, a new video, closing the window, tests).
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer


class Turns(QObject):
    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._todo: dict[str, Callable[[], None]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)

    def schedule(self, name: str, fn: Callable[[], None]) -> None:
        """Run `fn` in a later turn (after the steps scheduled before it); replaces a waiting `name`."""
        self._todo[name] = fn
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self, *names: str) -> None:
        """Drop waiting steps (a caller that just did the same work itself)."""
        for n in names:
            self._todo.pop(n, None)
        if not self._todo:
            self._timer.stop()

    def pending(self, prefix: str = "") -> bool:
        """Steps are waiting (only those whose names start with `prefix`, when given)."""
        return any(n.startswith(prefix) for n in self._todo)

    def waiting(self, name: str) -> bool:
        return name in self._todo

    def flush(self) -> None:
        """Run every waiting step now, in order (steps they schedule run too)."""
        self._timer.stop()
        while self._todo:
            self._run_first()

    def _step(self) -> None:
        try:
            if self._todo:
                self._run_first()
        finally:   # a step that raised must not strand the ones after it
            if self._todo:
                self._timer.start()

    def _run_first(self) -> None:
        name = next(iter(self._todo))
        fn = self._todo.pop(name)
        fn()
