"""Actions, menus and toolbars, generated from tables.

Titles and keys come from the one keymap (app/keymap.py, product.md's shortcuts, also the F1 sheet); this module
adds what a QAction needs beyond that: what it calls, its icon, whether it needs an open video, and where it sits
in the menus and toolbars. A feature adds its actions by adding rows (ACTIONS, and its ids to MENUS or TOOLS);
nothing else in the window changes. Handlers take the window, so the table is plain data built at import time.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QStyle, QToolBar, QWidget

from app import keymap
from app.view_state import SELECT_TOOL, ViewState

JUMP = 10
SP = QStyle.StandardPixmap

Handler = Callable[[Any], None]   # gets the MainWindow


@dataclass(frozen=True)
class ActionSpec:
    id: str
    handler: Handler | None = None
    title: str = ""                  # "" = the keymap's text; actions outside the keymap name theirs here
    tip: str = ""                    # "" = "<title> (<keys>)"
    icon: SP | None = None
    checkable: bool = False
    checked: bool = False
    needs_video: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("open", lambda w: w.open_dialog(), icon=SP.SP_DialogOpenButton),
    ActionSpec("open_folder", lambda w: w.open_folder_dialog(), "Open frame folder…"),
    ActionSpec("load_gt", lambda w: w.load_gt_dialog(), "Load ground truth (YTVIS JSON)…"),
    ActionSpec("save_screenshot", lambda w: w.screenshot_dialog(), "Save window screenshot…"),
    ActionSpec("new_project", lambda w: w.files.new_project_dialog(), "New project…"),
    ActionSpec("open_project", lambda w: w.files.open_project_dialog(), "Open project…"),
    ActionSpec("save", lambda w: w.editing.save(), needs_video=True),
    ActionSpec("save_as", lambda w: w.files.save_project_as_dialog(), "Save project as…", needs_video=True),
    ActionSpec("import_ytvis", lambda w: w.files.import_ytvis_dialog(), "Import YouTube-VIS…", needs_video=True),
    ActionSpec("export_ytvis", lambda w: w.files.export_dialog("ytvis"), "Export YouTube-VIS ground truth…",
               needs_video=True),
    ActionSpec("export_results", lambda w: w.files.export_dialog("results"), "Export YouTube-VIS results…",
               needs_video=True),
    ActionSpec("export_davis", lambda w: w.files.export_dialog("davis"), "Export DAVIS palette PNGs…",
               needs_video=True),
    # Edit
    ActionSpec("undo", lambda w: w.editing.undo(), needs_video=True),
    ActionSpec("redo", lambda w: w.editing.redo(), needs_video=True),
    ActionSpec("new_track", lambda w: w.editing.new_track(), needs_video=True),
    ActionSpec("merge", lambda w: w.editing.merge(), needs_video=True),
    ActionSpec("split", lambda w: w.editing.split(), needs_video=True),
    ActionSpec("swap", lambda w: w.editing.swap(), "Swap identities from this frame on…", needs_video=True),
    ActionSpec("relabel", lambda w: w.editing.relabel(), "Change class…", needs_video=True),
    ActionSpec("lock_frame", lambda w: w.editing.toggle_lock(), needs_video=True),
    ActionSpec("delete_mask", lambda w: w.editing.delete_mask(), needs_video=True),
    ActionSpec("delete_range", lambda w: w.editing.delete_range_dialog(), "Delete masks in a frame range…",
               needs_video=True),
    ActionSpec("delete_track", lambda w: w.editing.delete_track(), needs_video=True),
    ActionSpec("fill_holes", lambda w: w.editing.fill_holes(), "Fill holes in this mask", needs_video=True),
    ActionSpec("no_overlap", lambda w: w.editing.set_exclusive(w.act["no_overlap"].isChecked()),
               "Masks never overlap (painting takes pixels from other tracks)", checkable=True, needs_video=True),
    ActionSpec("add_class", lambda w: w.editing.add_category(), "Add class…", needs_video=True),
    ActionSpec("rename_class", lambda w: w.editing.rename_category(), "Rename class…", needs_video=True),
    ActionSpec("recolour_class", lambda w: w.editing.recolour_category(), "Recolour class…", needs_video=True),
    ActionSpec("delete_class", lambda w: w.editing.delete_category(), "Delete class…", needs_video=True),
    ActionSpec("accept", lambda w: w.assist.accept() or w.editing.accept()),
    ActionSpec("reject", lambda w: w.assist.clear() or w.editing.reject()),
    ActionSpec("propagate_forward", lambda w: w.assist.propagate(+1), needs_video=True),
    ActionSpec("propagate_back", lambda w: w.assist.propagate(-1), needs_video=True),
    ActionSpec("assist_settings", lambda w: w.assist.settings_dialog(), "Assist settings (SAM 2)…"),
    ActionSpec("finetune", lambda w: w.finetune.dialog(), "Fine-tune on this project…", needs_video=True),
    ActionSpec("brush_smaller", lambda w: w.editing.brush_smaller()),
    ActionSpec("brush_larger", lambda w: w.editing.brush_larger()),
    ActionSpec("quit", lambda w: w.close()),
    # Navigate
    ActionSpec("next_frame", lambda w: w.step(1), icon=SP.SP_ArrowRight, needs_video=True),
    ActionSpec("prev_frame", lambda w: w.step(-1), icon=SP.SP_ArrowLeft, needs_video=True),
    ActionSpec("jump_forward", lambda w: w.step(JUMP), needs_video=True),
    ActionSpec("jump_back", lambda w: w.step(-JUMP), needs_video=True),
    ActionSpec("first_frame", lambda w: w.seek(0), icon=SP.SP_MediaSkipBackward, needs_video=True),
    ActionSpec("last_frame", lambda w: w.seek(w.doc.num_frames - 1), icon=SP.SP_MediaSkipForward,
               needs_video=True),
    ActionSpec("play", lambda w: w.toggle_play(), icon=SP.SP_MediaPlay, checkable=True, needs_video=True),
    ActionSpec("prev_event", lambda w: w.playback.jump_event(-1), needs_video=True),
    ActionSpec("next_event", lambda w: w.playback.jump_event(+1), needs_video=True),
    ActionSpec("next_uncertain", lambda w: w.analysis.next_uncertain(), needs_video=True),
    # View
    ActionSpec("toggle_overlays", lambda w: w.view.set_overlays_visible(not w.view.overlays_visible),
               checkable=True, checked=True, needs_video=True),
    ActionSpec("fit_view", lambda w: w.canvas.fit_view(), needs_video=True),
    ActionSpec("reset_layout", lambda w: w.reset_layout(), "Reset layout"),
    # Engine
    ActionSpec("run", lambda w: w.run_model(), icon=SP.SP_MediaSeekForward),
    ActionSpec("cancel", lambda w: w.cancel_run(), icon=SP.SP_BrowserStop),
    ActionSpec("choose_checkpoint", lambda w: w.runs.choose_checkpoint_dialog(), "Choose checkpoint…"),
    # Help
    ActionSpec("shortcuts", lambda w: w.show_shortcuts()),
    ActionSpec("about", lambda w: w.about(), "About SyncVIS Studio"),
    # Tools (the checked one is the view state's tool)
    ActionSpec("select_tool", title="Select", tip="Select tracks (click a mask) · wheel zooms, drag pans",
               checkable=True, checked=True),
    ActionSpec("brush", checkable=True),
    ActionSpec("eraser", checkable=True),
    ActionSpec("polygon", checkable=True),
    ActionSpec("click_tool", title="Click", tip="Click to segment: left click adds, right click removes, drag a "
               "box; Enter accepts, Esc drops (SAM 2 when a checkpoint is set, else GrabCut)", checkable=True),
)

# Menu layouts: action ids, None = separator, "@name" = a slot the window fills (a submenu or dock toggles).
MENUS: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("&File", ("open", "open_folder", "@recent", None, "new_project", "open_project", "save", "save_as", None,
               "import_ytvis", "export_ytvis", "export_results", "export_davis", None, "load_gt", "save_screenshot",
               None, "quit")),
    ("&Edit", ("undo", "redo", None, "new_track", "relabel", "merge", "split", "swap", "lock_frame", None,
               "delete_mask", "delete_range", "delete_track", "fill_holes", "no_overlap", None, "brush_larger",
               "brush_smaller", "accept", "reject", None, "add_class", "rename_class", "recolour_class",
               "delete_class", None, "propagate_forward", "propagate_back")),
    ("&View", ("toggle_overlays", "fit_view", None, "@docks", None, "reset_layout")),
    ("&Navigate", ("play", None, "next_frame", "prev_frame", "jump_forward", "jump_back", "first_frame",
                   "last_frame", None, "next_event", "prev_event", "next_uncertain")),
    ("&Engine", ("run", "cancel", None, "choose_checkpoint", "@bundled", "@finetuned", None, "finetune", None,
                 "assist_settings")),
    ("&Help", ("shortcuts", "about")),
)
MAIN_TOOLBAR: tuple[str | None, ...] = ("open", None, "run", "cancel", None, "@engine")
TRANSPORT: tuple[str, ...] = ("first_frame", "prev_frame", "play", "next_frame", "last_frame")
TOOLS: dict[str, str] = {"select_tool": SELECT_TOOL, "brush": "brush", "eraser": "eraser", "polygon": "polygon",
                         "click_tool": "click"}   # action id -> ViewState.tool

_SPECS = {s.id: s for s in ACTIONS}
_LATER = " — coming in a later version"


class Actions:
    """The window's QActions by id (`act["run"]`), built from KEYMAP and ACTIONS."""

    def __init__(self, window: QWidget, view: ViewState):
        self.window = window
        self.act: dict[str, QAction] = {}
        ids = [b.action for b in keymap.KEYMAP] + [s.id for s in ACTIONS if keymap.find(s.id) is None]
        for aid in ids:
            self.act[aid] = self._make(aid)
        self._tool_group = QActionGroup(window)
        for aid, tool in TOOLS.items():
            self._tool_group.addAction(self.act[aid])
            self.act[aid].triggered.connect(lambda _c=False, tool=tool: view.set_tool(tool))
        by_tool = {tool: aid for aid, tool in TOOLS.items()}
        # The checked tool button follows the view state, whoever set it (a key, N starting the brush, a test).
        view.events.tool.connect(lambda tool: tool in by_tool and self.act[by_tool[tool]].setChecked(True))

    def _make(self, aid: str) -> QAction:
        spec = _SPECS.get(aid, ActionSpec(aid))
        b = keymap.find(aid)
        a = QAction(spec.title or (b.text if b else aid), self.window)
        a.setObjectName(f"action_{aid}")
        available = b.available if b else True
        if b is not None:
            a.setShortcuts([QKeySequence(k) for k in b.keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            native = QKeySequence.SequenceFormat.NativeText
            keys = " / ".join(QKeySequence(k).toString(native) for k in b.keys)
            a.setToolTip(f"{b.text} ({keys}){'' if available else _LATER}")
            a.setEnabled(available)
            self.window.addAction(a)   # shortcuts work wherever the focus is in the window
        if spec.tip:
            a.setToolTip(spec.tip)
        if spec.icon is not None:
            a.setIcon(self.window.style().standardIcon(spec.icon))
        a.setCheckable(spec.checkable)
        a.setChecked(spec.checked)
        if spec.handler is not None:
            a.triggered.connect(lambda _c=False, h=spec.handler: h(self.window))
        return a

    def __getitem__(self, aid: str) -> QAction:
        return self.act[aid]

    def update_enabled(self, has_video: bool) -> None:
        """Actions that need a video follow whether one is open (the others keep their keymap state)."""
        for spec in ACTIONS:
            if spec.needs_video:
                self.act[spec.id].setEnabled(has_video)

    # ------------------------------------------------------------ menus and toolbars
    def fill(self, target: QMenuBar | QMenu | QToolBar, items: tuple[str | None, ...],
             slots: dict[str, Callable[[Any], None]]) -> None:
        """Add `items` to a menu or toolbar; "@name" calls slots[name](target)."""
        for item in items:
            if item is None:
                target.addSeparator()
            elif item.startswith("@"):
                slots[item[1:]](target)
            else:
                target.addAction(self.act[item])

    def build_menus(self, bar: QMenuBar, slots: dict[str, Callable[[QMenu], None]]) -> dict[str, QMenu]:
        menus = {}
        for title, items in MENUS:
            menus[title] = m = bar.addMenu(title)
            self.fill(m, items, slots)
        return menus

    def build_tools(self, parent: QObject) -> QToolBar:
        tools = QToolBar("Tools", parent)
        tools.setObjectName("toolbar_tools")
        tools.setOrientation(Qt.Orientation.Vertical)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tools.setMovable(False)
        for aid in TOOLS:
            tools.addAction(self.act[aid])
        return tools
