"""Whether a dock's content is on screen.

`QDockWidget.isVisible()` stays True for a dock that is a tab behind another one (Frame vs video behind the
Review queue, Compare behind the Timeline), so a panel that asked only that redrew, hidden, on every frame
change. A tab behind another has an empty visible region; Qt's `visibilityChanged(True)` comes when it is
brought to the front, with the region already set (so too for a dock reopened after closing, in its own area or
as a tab, and for a floating one), so a panel that redraws on that signal is never stale.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget


def on_screen(dock: QDockWidget | None) -> bool:
    """True when the dock is shown and not hidden behind another dock's tab (nor collapsed to nothing)."""
    return dock is not None and dock.isVisible() and not dock.visibleRegion().isEmpty()
