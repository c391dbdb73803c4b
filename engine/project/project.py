"""A project: the document and its store, kept in step. Qt-free; the window and `main.py project` both use it.

`apply(edit)` changes the document and commits the edit in one transaction. When the commit fails (read-only
folder, disk full) the edit stays in the document, which is marked unsaved, and is kept in a pending list: the
file holds the last committed state, nothing the user made is lost, and `save()` writes the pending edits once the
disk lets it (or `save_as` writes everything elsewhere).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.data.video import VideoReader
from engine.errors import InputError
from engine.project.document import Change, Edit, ProjectDocument
from engine.project.model import VideoInfo
from engine.project.store import ProjectError, Store, WriteFailed

FINGERPRINT_SIZE = (16, 12)   # thumbnail (w, h) per sampled frame
FINGERPRINT_TOLERANCE = 12.0  # mean absolute grey-level difference that still counts as the same video


class VideoMissing(ProjectError):
    """The project's video is not where it was; `video` says what to look for."""

    def __init__(self, project: Path, video: VideoInfo):
        self.video = video
        super().__init__(project, f"its video {video.path} is missing ({video.num_frames} frames, "
                                  f"{video.width}x{video.height}); choose where it is now")


def fingerprint(reader) -> str:
    """A few tiny grey thumbnails (first, middle, last frame) as hex: survives a move or a copy of the file, and
    (within FINGERPRINT_TOLERANCE) a re-encode, but tells another video of the same size and length apart."""
    import cv2

    n = len(reader)
    parts = []
    for i in sorted({0, n // 2, n - 1}):
        grey = cv2.cvtColor(np.asarray(reader[i]), cv2.COLOR_RGB2GRAY)
        parts.append(cv2.resize(grey, FINGERPRINT_SIZE, interpolation=cv2.INTER_AREA).tobytes().hex())
    return ":".join(parts)


def same_fingerprint(a: str, b: str) -> bool:
    pa, pb = a.split(":"), b.split(":")
    if len(pa) != len(pb):
        return False
    for x, y in zip(pa, pb, strict=True):
        u = np.frombuffer(bytes.fromhex(x), np.uint8).astype(float)
        v = np.frombuffer(bytes.fromhex(y), np.uint8).astype(float)
        if u.shape != v.shape or np.abs(u - v).mean() > FINGERPRINT_TOLERANCE:
            return False
    return True


def describe_video(path: str | Path) -> VideoInfo:
    """Open a video file or frame folder and say what it is (raises VideoError naming the file)."""
    path = Path(path)
    with VideoReader(path, cache_size=4) as r:
        return VideoInfo(str(path.resolve()), len(r), r.width, r.height, float(r.fps), fingerprint(r))


class Project:
    """An open project. Create with `Project.create`, open with `Project.open`; close with `close()`."""

    def __init__(self, store: Store, doc: ProjectDocument):
        self.store = store
        self.doc = doc
        self.pending: list[Edit] = []      # applied in the document, not yet in the file
        self.last_error: str | None = None
        self.on_saved_changed: Callable[[bool], None] | None = None

    # ------------------------------------------------------------ open / create
    @classmethod
    def create(cls, path: str | Path, video: str | Path | VideoInfo) -> Project:
        info = video if isinstance(video, VideoInfo) else describe_video(video)
        store = Store.create(path, info)
        return cls(store, ProjectDocument(info))

    @classmethod
    def open(cls, path: str | Path, video: str | Path | None = None, require_video: bool = True) -> Project:
        """Open a project. Its video is looked for where it was, then beside the project (same name); `video`
        overrides both and must be the same video (frames, size, fingerprint). Without `require_video` (edits and
        exports that never read a frame) a missing video is no error."""
        store = Store.open(path)
        try:
            info = store.video()
            try:
                found = cls._find_video(store.path, info, video)
            except VideoMissing:
                if require_video:
                    raise
                found = info.path
            if found != info.path:
                info = cls._relocated(store, info, found)
            doc = ProjectDocument(info)
            cats, tracks = store.load()
            doc.load(cats, tracks)
            return cls(store, doc)
        except BaseException:
            store.close()
            raise

    @staticmethod
    def _find_video(project: Path, info: VideoInfo, override: str | Path | None) -> str:
        if override is not None:
            return str(Path(override).resolve())
        if Path(info.path).exists():
            return info.path
        beside = project.parent / Path(info.path).name
        if beside.exists():
            return str(beside.resolve())
        raise VideoMissing(project, info)

    @staticmethod
    def _relocated(store: Store, info: VideoInfo, new_path: str) -> VideoInfo:
        if not Path(new_path).exists():
            raise InputError(new_path, "no such video file or folder")
        new = describe_video(new_path)
        if (new.num_frames, new.width, new.height) != (info.num_frames, info.width, info.height):
            raise InputError(new_path, f"not the project's video: {new.num_frames} frames of {new.width}x"
                                       f"{new.height}, the project's has {info.num_frames} of {info.width}x"
                                       f"{info.height}")
        if info.fingerprint and not same_fingerprint(new.fingerprint, info.fingerprint):
            raise InputError(new_path, "not the project's video: same length and size, but its frames differ")
        moved = VideoInfo(new.path, info.num_frames, info.width, info.height, info.fps, info.fingerprint)
        store.set_video(moved)
        return moved

    def close(self) -> None:
        self.store.close()

    @property
    def path(self) -> Path:
        return self.store.path

    # ------------------------------------------------------------ edits
    @property
    def saved(self) -> bool:
        return not self.pending

    def apply(self, edit: Edit, tag: str | None = None) -> Change:
        """Apply to the document, then commit. A failed commit keeps the edit (unsaved) and re-raises WriteFailed
        after the document and its listeners are up to date. An empty edit is not written, unless it carries a
        `tag` (a `project apply` line that changed nothing is still recorded, so the file says which lines ran)."""
        if not edit and tag is None:
            return Change(edit.description)
        change = self.doc.apply(edit)
        if self.pending:  # earlier edits are not in the file yet: keep the order, try them all first
            self.pending.append(edit)
            self.save(raise_errors=False)
            if self.pending:
                raise WriteFailed(self.path, self.last_error or "could not save")
            return change
        try:
            self.store.commit(edit, tag)
        except WriteFailed as e:
            self.pending.append(edit)
            self._set_error(e.problem)
            raise
        return change

    def save(self, raise_errors: bool = True) -> bool:
        """Commit pending edits (each in its own transaction, in order). True when everything is in the file."""
        while self.pending:
            try:
                self.store.commit(self.pending[0])
            except WriteFailed as e:
                self._set_error(e.problem)
                if raise_errors:
                    raise
                return False
            self.pending.pop(0)
        if self.last_error is not None:
            self.last_error = None
            if self.on_saved_changed:
                self.on_saved_changed(True)
        return True

    def _set_error(self, problem: str) -> None:
        first = self.last_error is None
        self.last_error = problem
        if first and self.on_saved_changed:
            self.on_saved_changed(False)

    def snapshot(self, path: str | Path) -> Path:
        """Write the document as it is now to a new project file and keep working here: a frozen copy for a job
        in another process (fine-tuning), which cannot open this file while this project holds its lock."""
        store = Store.create(path, self.doc.video)
        try:
            store.write_all(self.doc.categories.values(), self.doc.tracks.values(), tag="snapshot")
        finally:
            store.close()
        return Path(path)

    def save_as(self, path: str | Path) -> Project:
        """Write everything to a new file and continue there (the old file keeps its last committed state)."""
        store = Store.create(path, self.doc.video)
        try:
            store.write_all(self.doc.categories.values(), self.doc.tracks.values())
            store.set_view_state(self.store.view_state())
        except BaseException:
            store.close()
            raise
        self.store.close()
        self.store = store
        self.pending.clear()
        self.last_error = None
        if self.on_saved_changed:
            self.on_saved_changed(True)
        return self
