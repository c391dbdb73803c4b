"""Editing in the window: the canvas tools, the track operations, categories, import and export, all as undo
steps on the open project (app/project_session.py over engine/project).

Every handler here computes an `Edit` with the Qt-free operations (engine/project/ops.py, the same ones
`main.py project apply` uses) and pushes it; the project commits it and the document tells the views what changed.
Nothing here draws: the views follow the document (app/track_views.py). A handler that cannot act says why in the
status bar (no selection, a locked frame, a run in progress) instead of a dialog, so editing stays fast.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from app.document import Document
from app.project_session import ProjectSession
from app.status import Status
from app.view_state import SELECT_TOOL, ViewState
from engine.data import masks as rle_ops
from engine.errors import InputError
from engine.project import ops
from engine.project.document import Edit, ProjectDocument, TrackAtom
from engine.project.io import export_dataset, export_results, import_file, import_prediction, read_annotations
from engine.project.model import Provenance
from engine.project.store import ProjectError
from engine.types import VideoPrediction
from widgets.edit_tools import CanvasTools, polygon_mask
from widgets.video_canvas import VideoCanvas

EDIT_TOOLS = ("brush", "eraser", "polygon", "click")
VIEW_SAVE_DELAY_MS = 800  # the frame and selection are written to the project this long after they settle


class Editing(QObject):
    """The project's edits from the window: tools, undoable operations, and a model run's import."""

    def __init__(self, window: QWidget, doc: Document, view: ViewState, canvas: VideoCanvas, status: Status,
                 is_running: Callable[[], bool]):
        super().__init__(window)
        self.window, self.doc, self.view, self.canvas, self.status = window, doc, view, canvas, status
        self.is_running = is_running
        self.session = ProjectSession(self)
        self.tools = CanvasTools(canvas)
        self.exclusive = False          # "masks never overlap": painting takes pixels from other tracks
        self.ask = True                 # dialogs for choices (tests pass the choice instead)
        self._runs = 0
        self._importing = False   # a run import is being applied (its redraw may spread over turns)
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(VIEW_SAVE_DELAY_MS)
        self._view_timer.timeout.connect(self._save_view_state)

        self.session.changed.connect(self._on_changed)
        self.session.write_failed.connect(lambda msg: self.status.show_message("Not saved", msg))
        view.events.tool.connect(self._on_tool)
        view.events.brush_size.connect(self.tools.set_brush_size)
        view.events.selection.connect(self._on_selection)
        view.events.frame.connect(lambda _f: self._view_timer.start())
        view.events.visibility.connect(lambda _t: self._view_timer.start())
        self.tools.brush_size_changed.connect(view.set_brush_size)
        self.tools.stroke_finished.connect(self.paint)
        self.tools.polygon_finished.connect(self.polygon)

    # ------------------------------------------------------------ the project
    @property
    def pdoc(self) -> ProjectDocument | None:
        return self.session.doc

    def attach(self, video: str | Path, projects_dir: Path, project: str | Path | None = None) -> bool:
        """After a video opened: open its project (`project`, or the video's autosave project) and show it.
        False (with a message) when the project cannot be opened; the video stays open, read-only."""
        try:
            if project is not None:
                self.session.open(project, video)
            else:
                self.session.open_for_video(projects_dir, video)
        except (ProjectError, InputError) as e:
            self.session.close()
            self.status.show_message("Project not opened", f"{e}\nEdits are off for this video.")
            return False
        state = self.session.project.store.view_state()
        if state.get("selected") is not None:
            self.view.select(int(state["selected"]))
        for tid in state.get("hidden", []):
            self.view.set_visible(int(tid), False)
        frame = int(state.get("frame", 0))
        if 0 < frame < self.doc.num_frames:
            self.view.set_frame(frame)
        return True

    def detach(self) -> None:
        self._save_view_state()
        self.session.close()

    def _on_changed(self, change) -> None:
        if self.pdoc is not None and not self.is_running():
            self.doc.show_project(self.pdoc, change, bulk=self._importing)

    def _save_view_state(self) -> None:
        p = self.session.project
        if p is None:
            return
        try:
            p.store.set_view_state({"frame": max(self.view.frame, 0), "selected": self.view.selected,
                                    "hidden": sorted(self.view.hidden)})
        except ProjectError:
            pass  # the view state is a convenience; a failing disk is reported by the next edit

    def editable(self, quiet: bool = False) -> bool:
        why = None
        if self.pdoc is None:
            why = "no project is open (open a video or a project first)"
        elif self.is_running():
            why = "editing waits until the model run ends (or cancel it, Ctrl+.)"
        if why and not quiet:
            self.status.show(f"Cannot edit: {why}", 6000)
        return why is None

    def push(self, make: Callable[[ProjectDocument], Edit], quiet: bool = False) -> bool:
        """Compute an edit with `make(doc)` and do it as one undo step; an OpError goes to the status bar."""
        if not self.editable():
            return False
        try:
            edit = make(self.pdoc)
        except ops.OpError as e:
            self.status.show(f"Cannot edit: {e}", 6000)
            return False
        if not edit:
            return False
        self.session.push(edit)
        if not quiet:
            self.status.show(edit.description[:1].upper() + edit.description[1:], 3000)
        return True

    def accept_run(self, pred: VideoPrediction) -> bool:
        """A finished (or cancelled) run becomes the project's tracks: one undo step; untouched model tracks of
        earlier runs give way, tracks anyone edited stay (engine.project.io.import_prediction). The document
        is redrawn exactly once here (the run controller left it unannounced)."""
        if self.pdoc is None:
            self.doc.refresh()   # no project (edits off for this video): the run's own tracks stay on screen
            return False
        if not any(t.masks for t in pred.tracks):
            self.doc.show_project(self.pdoc)
            return False
        self._runs += 1
        n = self._runs
        self._importing = True
        try:
            ok = self.push(lambda d: import_prediction(d, pred, f"run {n}"), quiet=True)
        finally:
            self._importing = False
        if not ok:  # nothing imported: the project's tracks come back on screen in place of the run's
            self.doc.show_project(self.pdoc)
        return ok

    # ------------------------------------------------------------ tools
    def _on_tool(self, name: str) -> None:
        self.tools.set_tool(name if name in EDIT_TOOLS else SELECT_TOOL)
        self._colour_tools()

    def _on_selection(self, _tid) -> None:
        self._colour_tools()
        self._view_timer.start()

    def _colour_tools(self) -> None:
        tid = self.view.selected
        if tid is not None:
            self.tools.set_colour(self.doc.colour(tid))

    def _frame(self) -> int:
        return max(self.view.frame, 0)

    def paint(self, footprint: np.ndarray, erase: bool) -> bool:
        """A finished brush or eraser stroke on the current frame: one undo step. A brush stroke with no track
        selected starts a new track; an eraser with none selected erases every unlocked track under it."""
        if not self.editable():
            return False
        frame, tid = self._frame(), self.view.selected
        tool = "eraser" if erase else "brush"
        prov = Provenance.now("human", tool)
        if erase and tid is None:
            targets = [t for t, _m in self.pdoc.masks_on(frame) if not self.pdoc.is_locked(t, frame)]
            makers = [lambda d, t=t: ops.set_mask(d, t, frame, _painted(d, t, frame, footprint, True), prov)
                      for t in targets]
            return self.push(lambda d: ops.sequence(d, f"erase on frame {frame}", *makers))
        if tid is None:
            new = self.pdoc.next_track_id()
            ok = self.push(lambda d: ops.sequence(
                d, f"new track {new} (brush, frame {frame})",
                lambda d2: ops.new_track(d2, new, self.default_category()),
                lambda d2: ops.set_mask(d2, new, frame, rle_ops.encode(footprint), prov, self.exclusive)))
            if ok:
                self.view.select(new)
            return ok
        return self.push(lambda d: ops.set_mask(d, tid, frame, _painted(d, tid, frame, footprint, erase), prov,
                                                self.exclusive and not erase,
                                                description=f"{tool} on track {tid}, frame {frame}"))

    def polygon(self, points: np.ndarray) -> bool:
        """A closed polygon adds its area to the selected track's mask (a new track when none is selected)."""
        if self.doc.video is None:
            return False
        shape = (self.doc.video.height, self.doc.video.width)
        area = polygon_mask(points, shape)
        return self.paint(area, erase=False) if area.any() else False

    def set_tool(self, name: str) -> None:
        self.view.set_tool(name)

    def set_exclusive(self, on: bool) -> None:
        """The "masks never overlap" option: a stroke takes its pixels from the other (unlocked) tracks."""
        self.exclusive = bool(on)

    def brush_larger(self) -> None:
        self.tools.grow_brush(1.25)

    def brush_smaller(self) -> None:
        self.tools.grow_brush(0.8)

    def accept(self) -> None:
        """Enter: close the polygon in progress."""
        if self.tools.tool == "polygon":
            self.tools.finish_polygon()

    def reject(self) -> None:
        """Esc: drop the stroke or polygon in progress, else leave the tool for selection."""
        if not self.tools.cancel() and self.view.tool != SELECT_TOOL:
            self.view.set_tool(SELECT_TOOL)

    # ------------------------------------------------------------ track operations
    def _selected(self) -> int | None:
        tid = self.view.selected
        if tid is None:
            self.status.show("Select a track first (click its mask or its row)", 5000)
        return tid

    def default_category(self) -> int | None:
        """A new track gets the selected track's class, else the first class (None when there is none)."""
        pd = self.pdoc
        sel = self.view.selected
        if sel is not None and sel in pd.tracks:
            return pd.tracks[sel].category_id
        return min(pd.categories) if pd.categories else None

    def new_track(self, category: int | str | None = None) -> int | None:
        """N: a new, empty track (selected, ready for the brush)."""
        if not self.editable():
            return None
        tid = self.pdoc.next_track_id()
        cat = category if category is not None else self.default_category()
        if not self.push(lambda d: ops.new_track(d, tid, cat)):
            return None
        self.view.select(tid)
        if self.view.tool == SELECT_TOOL:
            self.view.set_tool("brush")
        return tid

    def delete_mask(self, frames: range | None = None) -> bool:
        """Del: the selected track's mask on this frame (or on `frames`)."""
        tid = self._selected()
        if tid is None:
            return False
        return self.push(lambda d: ops.delete_mask(d, tid, frames if frames is not None else self._frame()))

    def delete_range_dialog(self) -> None:
        tid = self._selected()
        if tid is None or self.pdoc is None:
            return
        n = self.pdoc.num_frames
        lo, ok = QInputDialog.getInt(self.window, "Delete masks", "From frame", self._frame(), 0, n - 1)
        if not ok:
            return
        hi, ok = QInputDialog.getInt(self.window, "Delete masks", "To frame (inclusive)", n - 1, lo, n - 1)
        if ok:
            self.delete_mask(range(lo, hi + 1))

    def delete_track(self) -> bool:
        """Shift+Del: the selected track, all of it."""
        tid = self._selected()
        return tid is not None and self.push(lambda d: ops.delete_track(d, tid))

    def relabel(self, category: int | str | None = None) -> bool:
        tid = self._selected()
        if tid is None or not self.editable():
            return False
        if category is None:
            names = [c.name for c in sorted(self.pdoc.categories.values(), key=lambda c: c.id)]
            if not names:
                self.status.show("No classes yet: Edit → Add class…", 5000)
                return False
            category, ok = QInputDialog.getItem(self.window, "Change class", f"Class of track {tid}", names, 0,
                                                False)
            if not ok:
                return False
        return self.push(lambda d: ops.relabel(d, tid, category))

    def merge(self, into: int | None = None, prefer: str | None = None) -> bool:
        """M: merge the selected track into another. Where both have a mask on a frame, `prefer` ("track" = the
        selected one's, "into" = the other's) decides; asked when not given."""
        tid = self._selected()
        if tid is None or not self.editable():
            return False
        others = [t for t in self.pdoc.track_ids() if t != tid]
        if into is None:
            if not others:
                self.status.show("Merge needs another track", 5000)
                return False
            labels = [f"{t} {self.pdoc.category_name(self.pdoc.tracks[t].category_id)}" for t in others]
            pick, ok = QInputDialog.getItem(self.window, "Merge tracks", f"Merge track {tid} into", labels, 0, False)
            if not ok:
                return False
            into = others[labels.index(pick)]
        into_masks = self.pdoc.tracks[into].masks if into in self.pdoc.tracks else {}
        both = sorted(set(self.pdoc.tracks[tid].masks) & set(into_masks))
        if prefer is None:
            prefer = "into"
            if both and self.ask:
                box = QMessageBox(QMessageBox.Icon.Question, "Merge tracks",
                                  f"Tracks {tid} and {into} both have a mask on {len(both)} frame(s) "
                                  f"({both[0]}…{both[-1]}). Which mask wins there?", parent=self.window)
                mine = box.addButton(f"Track {tid}'s", QMessageBox.ButtonRole.AcceptRole)
                box.addButton(f"Track {into}'s", QMessageBox.ButtonRole.AcceptRole)
                box.addButton(QMessageBox.StandardButton.Cancel)
                box.exec()
                if box.clickedButton() not in box.buttons()[:2]:
                    return False
                prefer = "track" if box.clickedButton() is mine else "into"
        ok = self.push(lambda d: ops.merge(d, tid, into, prefer))
        if ok:
            self.view.select(into)
        return ok

    def split(self) -> int | None:
        """Alt+M: frames from the current one on become a new track (selected)."""
        tid = self._selected()
        if tid is None or not self.editable():
            return None
        new = self.pdoc.next_track_id()
        if self.push(lambda d: ops.split(d, tid, self._frame(), new)):
            self.view.select(new)
            return new
        return None

    def swap(self, other: int | None = None) -> bool:
        """Swap the identities of the selected track and `other` from the current frame on."""
        tid = self._selected()
        if tid is None or not self.editable():
            return False
        if other is None:
            others = [t for t in self.pdoc.track_ids() if t != tid]
            if not others:
                return False
            labels = [str(t) for t in others]
            pick, ok = QInputDialog.getItem(self.window, "Swap identities",
                                            f"Swap track {tid} from frame {self._frame()} on with", labels, 0, False)
            if not ok:
                return False
            other = int(pick)
        return self.push(lambda d: ops.swap(d, tid, other, self._frame()))

    def toggle_lock(self) -> bool:
        """L: lock or unlock the selected track on this frame (a locked mask is never overwritten)."""
        tid = self._selected()
        if tid is None or not self.editable():
            return False
        frame = self._frame()
        return self.push(lambda d: ops.lock(d, tid, frame, not d.is_locked(tid, frame)))

    def fill_holes(self) -> bool:
        tid = self._selected()
        return tid is not None and self.push(lambda d: ops.fill_holes(d, tid, self._frame()))

    # ------------------------------------------------------------ categories
    def add_category(self, name: str | None = None) -> bool:
        if name is None:
            name, ok = QInputDialog.getText(self.window, "Add class", "Name of the new class")
            if not ok or not name.strip():
                return False
        return self.push(lambda d: ops.add_category(d, name))

    def _pick_category(self, title: str) -> str | None:
        names = [c.name for c in sorted(self.pdoc.categories.values(), key=lambda c: c.id)] if self.pdoc else []
        if not names:
            self.status.show("No classes yet: Edit → Add class…", 5000)
            return None
        sel = self.view.selected
        cur = self.pdoc.category_name(self.pdoc.tracks[sel].category_id) if sel in (self.pdoc.tracks or {}) else ""
        pick, ok = QInputDialog.getItem(self.window, title, "Class", names,
                                        names.index(cur) if cur in names else 0, False)
        return pick if ok else None

    def rename_category(self, category: str | None = None, name: str | None = None) -> bool:
        category = category or self._pick_category("Rename class")
        if category is None:
            return False
        if name is None:
            name, ok = QInputDialog.getText(self.window, "Rename class", f"New name for {category}", text=category)
            if not ok or not name.strip():
                return False
        return self.push(lambda d: ops.rename_category(d, category, name))

    def recolour_category(self, category: str | None = None, colour: tuple[int, int, int] | None = None) -> bool:
        from PySide6.QtWidgets import QColorDialog

        category = category or self._pick_category("Recolour class")
        if category is None:
            return False
        if colour is None:
            c = QColorDialog.getColor(parent=self.window, title=f"Colour of {category}")
            if not c.isValid():
                return False
            colour = (c.red(), c.green(), c.blue())
        return self.push(lambda d: ops.recolour_category(d, category, colour))

    def delete_category(self, category: str | None = None, policy: str | None = None,
                        reassign_to: str | None = None) -> bool:
        """Delete a class; its tracks are left unlabelled, deleted, or moved to another class (asked)."""
        category = category or self._pick_category("Delete class")
        if category is None:
            return False
        if policy is None:
            n = sum(1 for t in self.pdoc.tracks.values() if self.pdoc.category_name(t.category_id) == category)
            choices = ["Keep its tracks, unlabelled", "Delete its tracks", "Move its tracks to another class"]
            pick, ok = QInputDialog.getItem(self.window, "Delete class", f"{category} has {n} track(s).",
                                            choices, 0, False)
            if not ok:
                return False
            policy = ("unlabel", "delete_tracks", "reassign")[choices.index(pick)]
            if policy == "reassign":
                reassign_to = self._pick_category("Move tracks to")
                if reassign_to is None:
                    return False
        return self.push(lambda d: ops.delete_category(d, category, policy, reassign_to))

    # ------------------------------------------------------------ undo, save
    def undo(self) -> None:
        if self.editable():
            self.session.stack.undo()

    def redo(self) -> None:
        if self.editable():
            self.session.stack.redo()

    def save(self) -> bool:
        """Ctrl+S: edits are committed as they happen; this writes anything a failed write left behind."""
        if self.session.project is None:
            return False
        self._save_view_state()
        ok = self.session.save()
        self.status.show(f"Saved {self.session.project.path}" if ok else "Not saved: see the message", 5000)
        return ok

    # ------------------------------------------------------------ import / export
    def import_ytvis(self, path: str | Path, video_name: str | None = None) -> bool:
        """Import a YTVIS ground truth or results file into the project (one undo step; provenance imported).
        When the file has several videos and none is named like this one, the user picks."""
        if not self.editable():
            return False
        try:
            dataset, _ = read_annotations(path)
            if dataset is not None and video_name is None and len(dataset.videos) > 1 and \
                    self.pdoc.video.name not in [v.name for v in dataset.videos]:
                if not self.ask:
                    raise InputError(path, f"no video named {self.pdoc.video.name!r} in the file")
                names = [v.name for v in dataset.videos if v.length == self.pdoc.num_frames] or \
                    [v.name for v in dataset.videos]
                video_name, ok = QInputDialog.getItem(self.window, "Import YouTube-VIS",
                                                      f"{Path(path).name}: which video is this one?", names, 0,
                                                      False)
                if not ok:
                    return False
            edit = import_file(self.pdoc, path, video_name)
        except InputError as e:
            self.status.show_message("Cannot import", str(e))
            return False
        self.session.push(edit)
        tracks = sum(1 for a in edit.atoms if isinstance(a, TrackAtom))
        self.status.show(f"Imported {Path(path).name}: {tracks} tracks", 6000)
        return True

    def export_ytvis(self, path: str | Path, results: bool = False) -> bool:
        from engine.data.ytvis import save_results

        if self.pdoc is None:
            return False
        dataset = export_dataset([self.pdoc])
        try:
            if results:
                save_results(path, export_results(dataset))
            else:
                dataset.save(path)
        except OSError as e:
            self.status.show_message("Cannot export", f"{path}: {e.strerror or e}")
            return False
        self.status.show(f"Exported {len(dataset.instances)} objects to {path}", 6000)
        return True

    def export_davis(self, folder: str | Path) -> bool:
        from engine.commands import export_davis

        if self.pdoc is None:
            return False
        dataset = export_dataset([self.pdoc])
        n = export_davis(dataset, export_results(dataset), Path(folder), min_score=0.0)
        self.status.show(f"Wrote {n} palette PNGs to {folder}", 6000)
        return True


def _painted(doc: ProjectDocument, tid: int, frame: int, footprint: np.ndarray, erase: bool) -> dict:
    """The track's mask on `frame` after a stroke with `footprint`, as RLE."""
    m = doc.mask(tid, frame)
    base = rle_ops.decode(m.rle) if m is not None else np.zeros(footprint.shape, bool)
    return rle_ops.encode(base & ~footprint if erase else base | footprint)
