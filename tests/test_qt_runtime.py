"""Guards against a broken Qt binding: PySide6 6.12.0 leaked a reference to `True` on every Signal.emit(), so an app
that emits a few thousand signals (playback, scrubbing) aborted with `Fatal Python error: bool_dealloc`."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(int)


def test_signal_emit_keeps_refcount_of_true():
    e = _Emitter()
    seen = []
    e.fired.connect(seen.append)
    before = sys.getrefcount(True)
    for i in range(200):
        e.fired.emit(i)
    assert seen == list(range(200))
    assert sys.getrefcount(True) - before > -50, "this PySide6 build leaks references on emit; see pyproject.toml"
