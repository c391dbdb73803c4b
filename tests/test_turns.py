"""app.turns: deferred steps run one per event-loop turn, in order, coalesced by name; flush runs them now."""
from __future__ import annotations

import pytest

from app.turns import Turns


@pytest.fixture
def turns(qapp):
    return Turns()


def spin(qapp, n=10):
    for _ in range(n):
        qapp.processEvents()


def test_one_step_per_turn_in_order_and_coalesced(qapp, turns):
    log = []
    turns.schedule("a", lambda: log.append("a1"))
    turns.schedule("b", lambda: log.append("b"))
    turns.schedule("a", lambda: log.append("a2"))      # replaces the waiting "a", keeps its place
    assert turns.pending() and turns.waiting("a") and log == []
    assert not turns.pending("c") and turns.pending("b")     # a prefix asks about some steps only
    qapp.processEvents()
    assert log == ["a2"]                               # one step in this turn, not all of them
    qapp.processEvents()
    assert log == ["a2", "b"] and not turns.pending()


def test_steps_scheduled_by_a_step_run_later_and_flush_runs_everything(qapp, turns):
    log = []
    turns.schedule("outer", lambda: (log.append("outer"), turns.schedule("inner", lambda: log.append("inner"))))
    turns.schedule("x", lambda: log.append("x"))
    turns.flush()
    assert log == ["outer", "x", "inner"] and not turns.pending()
    spin(qapp)
    assert log == ["outer", "x", "inner"]               # nothing runs twice


def test_cancel_and_a_failing_step_does_not_strand_the_rest(qapp, qtbot, turns):
    log = []

    def boom():
        raise ValueError("step failed")

    turns.schedule("gone", lambda: log.append("gone"))
    turns.schedule("boom", boom)
    turns.schedule("after", lambda: log.append("after"))
    turns.cancel("gone")
    with qtbot.captureExceptions() as errors:
        spin(qapp)                                     # "boom" raises in its turn; the loop goes on
    assert log == ["after"] and not turns.pending()
    assert [str(e[1]) for e in errors] == ["step failed"]
