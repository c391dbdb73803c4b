"""The window's open project: the Qt-free `engine.project` layer behind a QUndoStack. Thin on purpose.

Every change the user makes goes through `push(edit)`: a QUndoCommand whose redo/undo apply the edit or its
inverse through `Project.apply`, which commits one SQLite transaction. So undo is exact (the inverse edit holds
the masks it took away), every step is on disk as it happens, and the stack's clean state simply follows the
project's "everything committed" flag. A failed write never loses the edit: the document keeps it, the title
shows unsaved, and `save()` (Ctrl+S) writes it when the disk lets it.

A video opened without a project gets an autosave project in the settings' projects folder, named after the
video's path, so work on a plain video is kept too and comes back when the video is opened again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.project.document import Change, Edit, EditConflict
from engine.project.project import Project
from engine.project.store import SUFFIX, WriteFailed


class EditCommand(QUndoCommand):
    """One undo step: an `Edit` (a brush stroke, a merge, a propagation run)."""

    def __init__(self, session: ProjectSession, edit: Edit):
        super().__init__(edit.description)
        self._session = session
        self.edit = edit

    def redo(self) -> None:
        self._session.apply(self.edit)

    def undo(self) -> None:
        self._session.apply(self.edit.inverse())


def autosave_path(folder: Path, video: str | Path) -> Path:
    """Where the autosave project of a plain video lives: `<folder>/<stem>-<hash of its absolute path>.svproj`."""
    video = Path(video).resolve()
    digest = hashlib.sha1(str(video).encode()).hexdigest()[:10]
    stem = video.stem if video.suffix else video.name
    return folder / f"{stem}-{digest}{SUFFIX}"


class ProjectSession(QObject):
    """Signals:
    changed(Change): the document changed (an edit, an undo, a redo, or a reset when a project opened).
    saved_changed(bool): True when everything is in the file, False after a failed write.
    write_failed(str): the message of a failed write (shown in the status bar; nothing is lost).
    """

    changed = Signal(object)
    saved_changed = Signal(bool)
    write_failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.autosave = False  # the project is the automatic one of a plain video
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(0)  # unlimited
        self.stack.indexChanged.connect(self._sync_clean)

    # ------------------------------------------------------------ open / close
    def open(self, path: str | Path, video: str | Path | None = None) -> Project:
        """Open a project file (raises ProjectError / VideoMissing naming the file)."""
        project = Project.open(path, video)
        self._set(project, autosave=False)
        return project

    def create(self, path: str | Path, video: str | Path, autosave: bool = False) -> Project:
        project = Project.create(path, video)
        self._set(project, autosave)
        return project

    def open_for_video(self, folder: Path, video: str | Path) -> Project:
        """The autosave project of a plain video: reopened when it exists (with its edits), made otherwise."""
        folder.mkdir(parents=True, exist_ok=True)
        path = autosave_path(folder, video)
        if path.exists():
            project = Project.open(path, video)
            self._set(project, autosave=True)
            return project
        return self.create(path, video, autosave=True)

    def close(self) -> None:
        if self.project is not None:
            self.project.close()
            self.project = None
            self.stack.clear()

    def _set(self, project: Project, autosave: bool) -> None:
        if self.project is not None:
            self.project.close()
        self.stack.clear()
        self.project = project
        self.autosave = autosave
        project.doc.subscribe(self.changed.emit)
        project.on_saved_changed = self.saved_changed.emit
        self.changed.emit(Change("open", reset=True))
        self.stack.setClean()

    @property
    def doc(self):
        return self.project.doc if self.project else None

    # ------------------------------------------------------------ edits
    def push(self, edit: Edit) -> bool:
        """Do `edit` as one undo step. False when there is nothing to do."""
        if self.project is None or not edit:
            return False
        self.stack.push(EditCommand(self, edit))
        return True

    def apply(self, edit: Edit) -> None:
        """Apply through the project (document first, then the file); a failed write is reported, not raised."""
        try:
            self.project.apply(edit)
        except WriteFailed as e:
            self.write_failed.emit(str(e))
        except EditConflict as e:  # pragma: no cover - would be a bug in an operation; never corrupt silently
            self.write_failed.emit(f"edit refused: {e}")

    def save(self) -> bool:
        """Ctrl+S: write anything a failed write left pending. True when the file holds everything."""
        if self.project is None:
            return True
        try:
            ok = self.project.save()
        except WriteFailed as e:
            self.write_failed.emit(str(e))
            return False
        self._sync_clean()
        return ok

    def save_as(self, path: str | Path) -> None:
        self.project.save_as(path)
        self.autosave = False
        self._sync_clean()

    @property
    def saved(self) -> bool:
        return self.project is None or self.project.saved

    def _sync_clean(self, *_args) -> None:
        if self.project is not None and self.project.saved:
            self.stack.setClean()
