"""The project file: one SQLite database (WAL), one transaction per edit. Qt-free.

Why SQLite: an edit is a handful of rows (a mask is one RLE string), a transaction makes it all-or-nothing, and WAL
with `synchronous=FULL` means a commit that returned survives a killed process and a power cut. The schema version
lives in `PRAGMA user_version`; a file from a newer version is refused before anything is written to it.

Only "after" values are written: the file always holds the document as of the last committed edit, never a log to
replay, so opening a 1,000-frame project is one SELECT per table.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from engine.errors import InputError
from engine.project.document import CategoryAtom, Edit, LockAtom, MaskAtom, TrackAtom
from engine.project.model import Category, Mask, Provenance, TrackFields, TrackState, VideoInfo

SCHEMA_VERSION = 1
SUFFIX = ".svproj"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL, colour TEXT NOT NULL,
                         supercategory TEXT NOT NULL DEFAULT 'object');
CREATE TABLE provenance (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL, time REAL NOT NULL,
                         UNIQUE (kind, detail, time));
CREATE TABLE tracks (id INTEGER PRIMARY KEY, category_id INTEGER, score REAL, name TEXT NOT NULL DEFAULT '');
CREATE TABLE masks (track_id INTEGER NOT NULL, frame INTEGER NOT NULL, counts TEXT NOT NULL,
                    provenance_id INTEGER NOT NULL REFERENCES provenance (id),
                    PRIMARY KEY (track_id, frame)) WITHOUT ROWID;
CREATE TABLE locks (track_id INTEGER NOT NULL, frame INTEGER NOT NULL, PRIMARY KEY (track_id, frame)) WITHOUT ROWID;
CREATE TABLE edits (seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, description TEXT NOT NULL,
                    tag TEXT);
"""


class ProjectError(InputError):
    """A project file that cannot be opened (newer schema, in use, not a project) or written."""


class ProjectInUse(ProjectError):
    pass


class WriteFailed(ProjectError):
    """A commit that did not reach the file (read-only, disk full); the file keeps the last committed state."""


class _FileLock:
    """An exclusive advisory lock on `<project>.lock`, held while the project is open. The OS drops it when the
    process dies, so a crash never leaves a project locked; a second window (or `project apply`) is refused."""

    def __init__(self, project: Path):
        self.path = project.with_name(project.name + ".lock")
        self._fh = None

    def acquire(self, project: Path) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            if os.name == "nt":  # pragma: no cover - Windows
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            raise ProjectInUse(project, "the project is open in another window or process"
                                        + (f" ({holder})" if holder else "")
                                        + "; close it there first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Store:
    """An open project file. Use `Store.create` or `Store.open`; `close()` releases the file and its lock."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock: _FileLock):
        self.path = path
        self._conn = conn
        self._lock = lock
        self._prov_ids: dict[Provenance, int] = {}
        for pid, kind, detail, t in conn.execute("SELECT id, kind, detail, time FROM provenance"):
            self._prov_ids[Provenance(kind, detail, t)] = pid

    # ------------------------------------------------------------ open / create
    @classmethod
    def create(cls, path: str | Path, video: VideoInfo) -> Store:
        path = Path(path)
        if path.exists():
            raise ProjectError(path, "exists already (open it, or choose another name)")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _FileLock(path)
        lock.acquire(path)
        try:
            conn = _connect(path)
            with conn:
                conn.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            store = cls(path, conn, lock)
            store.set_video(video)
            store.set_meta("created", str(time.time()))
            return store
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if not path.is_file():
            raise ProjectError(path, "no such project file")
        lock = _FileLock(path)
        lock.acquire(path)
        try:
            version = _schema_version(path)
            if version > SCHEMA_VERSION:
                raise ProjectError(path, f"written by a newer SyncVIS Studio (project schema {version}; this "
                                         f"version reads up to {SCHEMA_VERSION}); the file was not changed")
            if version < 1:
                raise ProjectError(path, "not a SyncVIS Studio project (no schema version)")
            conn = _connect(path)
            return cls(path, conn, lock)
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._lock.release()

    # ------------------------------------------------------------ meta
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: str, durable: bool = True) -> None:
        self._write(lambda c: c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)),
                    durable)

    def video(self) -> VideoInfo:
        d = json.loads(self.meta("video") or "null")
        if not d:
            raise ProjectError(self.path, "the project names no video")
        return VideoInfo(**d)

    def set_video(self, video: VideoInfo) -> None:
        self.set_meta("video", json.dumps(video.__dict__))

    def view_state(self) -> dict:
        return json.loads(self.meta("view") or "{}")

    def set_view_state(self, state: dict) -> None:
        """Frame, selection, hidden tracks: a convenience, so written without waiting for the disk (a killed
        process keeps it; a power cut may lose the last one). Under load one fsync took 200 ms of the GUI thread."""
        self.set_meta("view", json.dumps(state, sort_keys=True), durable=False)

    # ------------------------------------------------------------ reading
    def load(self) -> tuple[list[Category], list[TrackState]]:
        c = self._conn
        cats = [Category(i, n, tuple(json.loads(col)), sup) for i, n, col, sup in c.execute(
            "SELECT id, name, colour, supercategory FROM categories ORDER BY id")]
        provs = {pid: Provenance(k, d, t) for pid, k, d, t in c.execute(
            "SELECT id, kind, detail, time FROM provenance")}
        h, w = self._size()
        tracks = {tid: TrackState(tid, TrackFields(cat, score, name)) for tid, cat, score, name in c.execute(
            "SELECT id, category_id, score, name FROM tracks ORDER BY id")}
        for tid, frame, counts, pid in c.execute("SELECT track_id, frame, counts, provenance_id FROM masks"):
            tracks[tid].masks[frame] = Mask({"size": [h, w], "counts": counts}, provs[pid])
        for tid, frame in c.execute("SELECT track_id, frame FROM locks"):
            tracks[tid].locked.add(frame)
        return cats, list(tracks.values())

    def edit_count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM edits").fetchone()[0]

    def edit_tags(self) -> list[str | None]:
        return [r[0] for r in self._conn.execute("SELECT tag FROM edits ORDER BY seq")]

    def _size(self) -> tuple[int, int]:
        v = self.video()
        return v.height, v.width

    # ------------------------------------------------------------ writing
    def commit(self, edit: Edit, tag: str | None = None) -> None:
        """Write `edit` in one transaction; on failure nothing of it is in the file (raises WriteFailed)."""
        new_prov: dict[Provenance, int] = {}

        def write(c: sqlite3.Connection) -> None:
            for a in edit.atoms:
                _write_atom(c, a, lambda p: self._prov_id(c, p, new_prov))
            c.execute("INSERT INTO edits (time, description, tag) VALUES (?, ?, ?)",
                      (time.time(), edit.description, tag))

        self._write(write)
        self._prov_ids.update(new_prov)

    def write_all(self, categories: Iterable[Category], tracks: Iterable[TrackState], tag: str | None = None) -> None:
        """Replace the file's categories and tracks with these (catching up after failed writes), as one edit."""
        new_prov: dict[Provenance, int] = {}

        def write(c: sqlite3.Connection) -> None:
            for table in ("locks", "masks", "tracks", "categories"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            atoms: list = [CategoryAtom(cat.id, None, cat) for cat in categories]
            for t in tracks:
                atoms.append(TrackAtom(t.id, None, t.fields))
                atoms += [MaskAtom(t.id, f, None, m) for f, m in t.masks.items()]
                atoms += [LockAtom(t.id, f, False, True) for f in t.locked]
            for a in atoms:
                _write_atom(c, a, lambda p: self._prov_id(c, p, new_prov))
            c.execute("INSERT INTO edits (time, description, tag) VALUES (?, ?, ?)",
                      (time.time(), "save everything", tag))

        self._write(write)
        self._prov_ids.update(new_prov)

    def _prov_id(self, c: sqlite3.Connection, p: Provenance, new: dict[Provenance, int]) -> int:
        """The row id of provenance `p`, inserting it in the running transaction; ids made in a transaction go in
        `new` and join the cache only once it commits (a rolled-back id must not be reused)."""
        pid = self._prov_ids.get(p) or new.get(p)
        if pid is None:
            c.execute("INSERT OR IGNORE INTO provenance (kind, detail, time) VALUES (?, ?, ?)",
                      (p.kind, p.detail, p.time))
            pid = c.execute("SELECT id FROM provenance WHERE kind = ? AND detail = ? AND time = ?",
                            (p.kind, p.detail, p.time)).fetchone()[0]
            new[p] = pid
        return pid

    def _write(self, fn, durable: bool = True) -> None:
        """One transaction. `durable=False`: no fsync at its commit (WAL with synchronous=NORMAL: atomic and kept
        by a killed process; the next durable commit syncs it too, in order)."""
        c = self._conn
        try:
            if not durable:
                c.execute("PRAGMA synchronous = NORMAL")
            c.execute("BEGIN IMMEDIATE")
            fn(c)
            c.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise WriteFailed(self.path, f"could not save ({e}); the file keeps the last saved state") from None
        finally:
            if not durable:
                try:
                    c.execute("PRAGMA synchronous = FULL")
                except sqlite3.Error:
                    pass


def _write_atom(c: sqlite3.Connection, a, prov_id) -> None:
    if isinstance(a, MaskAtom):
        if a.after is None:
            c.execute("DELETE FROM masks WHERE track_id = ? AND frame = ?", (a.track, a.frame))
        else:
            c.execute("INSERT OR REPLACE INTO masks VALUES (?, ?, ?, ?)",
                      (a.track, a.frame, a.after.rle["counts"], prov_id(a.after.provenance)))
    elif isinstance(a, TrackAtom):
        if a.after is None:
            c.execute("DELETE FROM tracks WHERE id = ?", (a.id,))
        else:
            f = a.after
            c.execute("INSERT OR REPLACE INTO tracks VALUES (?, ?, ?, ?)", (a.id, f.category_id, f.score, f.name))
    elif isinstance(a, LockAtom):
        if a.after:
            c.execute("INSERT OR IGNORE INTO locks VALUES (?, ?)", (a.track, a.frame))
        else:
            c.execute("DELETE FROM locks WHERE track_id = ? AND frame = ?", (a.track, a.frame))
    elif isinstance(a, CategoryAtom):
        if a.after is None:
            c.execute("DELETE FROM categories WHERE id = ?", (a.id,))
        else:
            c.execute("INSERT OR REPLACE INTO categories VALUES (?, ?, ?, ?)",
                      (a.id, a.after.name, json.dumps(list(a.after.colour)), a.after.supercategory))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _schema_version(path: Path) -> int:
    """Read `user_version` without changing the file (read-only URI; no WAL switch, no schema)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise ProjectError(path, f"not a SyncVIS Studio project ({e})") from None
