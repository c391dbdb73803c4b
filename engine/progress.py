"""One progress convention for the whole engine: long functions take `progress(done, total)` callbacks and a
`cancel()` predicate; the CLI turns the callback into a tqdm bar that appears only after a second of work."""
from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def no_progress(done: int, total: int) -> None:  # noqa: ARG001 - the default callback
    return None


def never() -> bool:
    return False


class ConsoleProgress:
    """A callable progress sink for the CLI: `bar(done, total)` updates a tqdm bar shown after 1 s."""

    def __init__(self, desc: str, unit: str = "it"):
        self._bar: tqdm | None = None
        self._desc, self._unit = desc, unit

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._desc, unit=self._unit, delay=1.0, file=sys.stderr,
                             dynamic_ncols=True)
        if total != self._bar.total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
