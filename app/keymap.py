"""The one table of actions and their default shortcuts (product.md, "Default shortcuts").

The window builds its QActions from this table and the F1 sheet is rendered from it, so what the sheet says is
what the keys do. Keys are QKeySequence portable strings. `available=False` marks actions whose feature
arrives in
a later issue: they are listed (disabled) so users see the whole vocabulary, and their keys stay reserved.
Mouse gestures are listed in MOUSE for the sheet only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Binding:
    action: str
    text: str
    keys: tuple[str, ...]
    group: str
    available: bool = True


KEYMAP: tuple[Binding, ...] = (
    # File
    Binding("open", "Open video…", ("Ctrl+O",), "File"),
    Binding("save", "Save (edits are also saved as you make them)", ("Ctrl+S",), "File"),
    Binding("quit", "Quit", ("Ctrl+Q",), "File"),
    # Navigation
    Binding("next_frame", "Next frame", ("D", "Right"), "Navigate"),
    Binding("prev_frame", "Previous frame", ("A", "Left"), "Navigate"),
    Binding("jump_forward", "Jump 10 frames forward", ("Shift+Right",), "Navigate"),
    Binding("jump_back", "Jump 10 frames back", ("Shift+Left",), "Navigate"),
    Binding("first_frame", "First frame", ("Home",), "Navigate"),
    Binding("last_frame", "Last frame", ("End",), "Navigate"),
    Binding("play", "Play / pause", ("Space",), "Navigate"),
    Binding("prev_event", "Previous track event", (",",), "Navigate"),
    Binding("next_event", "Next track event", (".",), "Navigate"),
    Binding("next_uncertain", "Next uncertain frame", ("U",), "Navigate"),
    # View
    Binding("toggle_overlays", "Toggle overlays", ("V",), "View"),
    Binding("fit_view", "Fit view", ("Ctrl+F",), "View"),
    Binding("shortcuts", "Shortcut sheet", ("F1",), "Help"),
    # Engine
    Binding("run", "Run SyncVIS", ("Ctrl+R",), "Engine"),
    Binding("cancel", "Cancel job", ("Ctrl+.",), "Engine"),
    # Edit
    Binding("undo", "Undo", ("Ctrl+Z",), "Edit"),
    Binding("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    Binding("accept", "Accept the current object", ("Return",), "Edit"),
    Binding("reject", "Cancel the current object", ("Esc",), "Edit"),
    Binding("propagate_forward", "Propagate forward", ("Ctrl+Right",), "Edit"),
    Binding("propagate_back", "Propagate backward", ("Ctrl+Left",), "Edit"),
    Binding("brush", "Brush", ("B",), "Tools"),
    Binding("eraser", "Eraser", ("E",), "Tools"),
    Binding("polygon", "Polygon", ("P",), "Tools"),
    Binding("brush_smaller", "Brush smaller", ("[",), "Tools"),
    Binding("brush_larger", "Brush larger", ("]",), "Tools"),
    Binding("new_track", "New track", ("N",), "Edit"),
    Binding("merge", "Merge tracks", ("M",), "Edit"),
    Binding("split", "Split track", ("Alt+M",), "Edit"),
    Binding("lock_frame", "Lock frame for the selected track", ("L",), "Edit"),
    Binding("delete_mask", "Delete mask on this frame", ("Del",), "Edit"),
    Binding("delete_track", "Delete whole track", ("Shift+Del",), "Edit"),
)

MOUSE: tuple[tuple[str, str], ...] = (
    ("Positive click (assist)", "Left click"),
    ("Negative click (assist)", "Right click"),
    ("Box prompt (assist)", "Left drag with the Click tool"),
    ("Brush / eraser stroke", "Left drag with the Brush / Eraser"),
    ("Polygon vertex / remove last", "Left click / right click with the Polygon; Enter closes"),
    ("Zoom", "Mouse wheel"),
    ("Pan", "Drag with the middle button (any tool), or the left button with Select"),
)

_BY_ACTION = {b.action: b for b in KEYMAP}


def binding(action: str) -> Binding:
    return _BY_ACTION[action]


def find(action: str) -> Binding | None:
    """The binding of `action`, or None for actions without keys (menu-only ones, see app/actions.py)."""
    return _BY_ACTION.get(action)


def keys_for(action: str) -> tuple[str, ...]:
    return _BY_ACTION[action].keys


def conflicts() -> dict[str, list[str]]:
    """Keys bound to more than one action (should be empty; the tests check it)."""
    seen: dict[str, list[str]] = {}
    for b in KEYMAP:
        for k in b.keys:
            seen.setdefault(k.lower(), []).append(b.action)
    return {k: v for k, v in seen.items() if len(v) > 1}


def sheet_html() -> str:
    """The F1 sheet: one table per group, unavailable actions greyed with a note."""
    groups: dict[str, list[Binding]] = {}
    for b in KEYMAP:
        groups.setdefault(b.group, []).append(b)
    parts = ["<style>td{padding:2px 10px;} .k{font-family:monospace;font-weight:bold;} "
             ".off{color:#888;}</style>"]
    for group, items in groups.items():
        parts.append(f"<h3>{group}</h3><table>")
        for b in items:
            keys = " / ".join(f"<span class='k'>{_pretty(k)}</span>" for k in b.keys)
            cls = "" if b.available else " class='off'"
            note = "" if b.available else " <i>(coming soon)</i>"
            parts.append(f"<tr{cls}><td>{b.text}{note}</td><td>{keys}</td></tr>")
        parts.append("</table>")
    parts.append("<h3>Mouse</h3><table>")
    for text, gesture in MOUSE:
        parts.append(f"<tr><td>{text}</td><td><span class='k'>{gesture}</span></td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _pretty(key: str) -> str:
    return {"Right": "→", "Left": "←", "Shift+Right": "Shift+→", "Shift+Left": "Shift+←",
            "Ctrl+Right": "Ctrl+→", "Ctrl+Left": "Ctrl+←", "Return": "Enter"}.get(key, key)
