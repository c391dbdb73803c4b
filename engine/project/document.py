"""The editable document: one video's categories and tracks, changed only by applying `Edit`s. Qt-free.

Every change is an `Edit`, a list of history atoms that each hold the value before and after (napari's labels
history: track, frame, mask before, mask after). That one shape serves three users:
- undo is the inverse edit (atoms reversed, before and after swapped), so it restores the document bitwise;
- the store writes an edit's "after" values in one SQLite transaction, so the file follows the document;
- listeners get one typed `Change` per edit saying which tracks, frames and fields moved, so views redraw only that.

Applying an atom checks that its "before" is what the document holds; a stale or doubly applied edit is refused
(`EditConflict`) instead of silently corrupting the tracks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from engine.project.model import Category, Mask, TrackFields, TrackState, VideoInfo


class EditConflict(ValueError):
    """An edit whose "before" values do not match the document (stale, or applied twice)."""


# ---------------------------------------------------------------- atoms
@dataclass(frozen=True)
class CategoryAtom:
    id: int
    before: Category | None
    after: Category | None

    def inverse(self) -> CategoryAtom:
        return CategoryAtom(self.id, self.after, self.before)


@dataclass(frozen=True)
class TrackAtom:
    """Create (before None), delete (after None) or change a track's fields; its masks and locks are other atoms."""

    id: int
    before: TrackFields | None
    after: TrackFields | None

    def inverse(self) -> TrackAtom:
        return TrackAtom(self.id, self.after, self.before)


@dataclass(frozen=True)
class MaskAtom:
    track: int
    frame: int
    before: Mask | None
    after: Mask | None

    def inverse(self) -> MaskAtom:
        return MaskAtom(self.track, self.frame, self.after, self.before)


@dataclass(frozen=True)
class LockAtom:
    track: int
    frame: int
    before: bool
    after: bool

    def inverse(self) -> LockAtom:
        return LockAtom(self.track, self.frame, self.after, self.before)


Atom = CategoryAtom | TrackAtom | MaskAtom | LockAtom


@dataclass(frozen=True)
class Edit:
    """One undo step and one store transaction: a brush stroke, a merge, a propagation run."""

    description: str
    atoms: tuple[Atom, ...]

    def inverse(self) -> Edit:
        return Edit(self.description, tuple(a.inverse() for a in reversed(self.atoms)))

    def __bool__(self) -> bool:
        return bool(self.atoms)


# ---------------------------------------------------------------- change events
@dataclass
class Change:
    """What one applied edit changed; views redraw exactly this."""

    description: str = ""
    categories: set[int] = field(default_factory=set)
    tracks_added: set[int] = field(default_factory=set)
    tracks_removed: set[int] = field(default_factory=set)
    fields_changed: set[int] = field(default_factory=set)
    masks: dict[int, set[int]] = field(default_factory=dict)   # track -> frames whose mask changed
    locks: dict[int, set[int]] = field(default_factory=dict)   # track -> frames locked or unlocked
    reset: bool = False                                       # everything changed (a project was opened)

    def frames(self) -> set[int]:
        """Every frame on which some mask changed."""
        return set().union(*self.masks.values()) if self.masks else set()


Listener = Callable[[Change], None]


# ---------------------------------------------------------------- document
class ProjectDocument:
    """Categories and tracks of one video. Mutated only through `apply(edit)`."""

    def __init__(self, video: VideoInfo | None = None):
        self.video = video
        self.categories: dict[int, Category] = {}
        self.tracks: dict[int, TrackState] = {}
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------ listeners
    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def notify(self, change: Change) -> None:
        for fn in list(self._listeners):
            fn(change)

    # ------------------------------------------------------------ queries
    def track(self, track_id: int) -> TrackState:
        try:
            return self.tracks[track_id]
        except KeyError:
            raise KeyError(f"no track {track_id}") from None

    def track_ids(self) -> list[int]:
        return sorted(self.tracks)

    def mask(self, track_id: int, frame: int) -> Mask | None:
        t = self.tracks.get(track_id)
        return None if t is None else t.masks.get(frame)

    def masks_on(self, frame: int) -> Iterator[tuple[int, Mask]]:
        """(track id, mask) of every track with a mask on `frame`, in id order."""
        for tid in self.track_ids():
            m = self.tracks[tid].masks.get(frame)
            if m is not None:
                yield tid, m

    def is_locked(self, track_id: int, frame: int) -> bool:
        t = self.tracks.get(track_id)
        return t is not None and frame in t.locked

    def category_by_name(self, name: str) -> Category | None:
        for c in self.categories.values():
            if c.name == name:
                return c
        return None

    def category_name(self, category_id: int | None) -> str:
        if category_id is None:
            return "unlabelled"
        c = self.categories.get(category_id)
        return c.name if c else f"class {category_id}"

    def next_track_id(self) -> int:
        return max(self.tracks, default=0) + 1

    def next_category_id(self) -> int:
        return max(self.categories, default=0) + 1

    @property
    def num_frames(self) -> int:
        return self.video.num_frames if self.video else 0

    def snapshot(self) -> tuple:
        """A comparable copy of everything an edit can change (tests use it to check undo is exact)."""
        return (
            tuple(sorted(self.categories.items())),
            tuple((tid, t.fields, tuple(sorted(t.masks.items())), tuple(sorted(t.locked)))
                  for tid, t in sorted(self.tracks.items())),
        )

    # ------------------------------------------------------------ applying edits
    def apply(self, edit: Edit, notify: bool = True) -> Change:
        """Apply every atom of `edit` or none of them (a conflict midway rolls the applied ones back)."""
        change = Change(edit.description)
        done: list[Atom] = []
        try:
            for atom in edit.atoms:
                self._apply_atom(atom, change)
                done.append(atom)
        except EditConflict:
            for atom in reversed(done):
                self._apply_atom(atom.inverse(), Change())
            raise
        if notify:
            self.notify(change)
        return change

    def load(self, categories: Iterable[Category], tracks: Iterable[TrackState]) -> None:
        """Replace everything (opening a project): no edit, no undo step; listeners get a reset."""
        self.categories = {c.id: c for c in categories}
        self.tracks = {t.id: t for t in tracks}
        self.notify(Change("open", reset=True))

    def _apply_atom(self, a: Atom, ch: Change) -> None:
        if isinstance(a, MaskAtom):
            t = self.tracks.get(a.track)
            if t is None:
                raise EditConflict(f"no track {a.track}")
            if t.masks.get(a.frame) != a.before:
                raise EditConflict(f"track {a.track} frame {a.frame}: mask is not what the edit expects")
            if a.after is None:
                t.masks.pop(a.frame, None)
            else:
                self._check_frame(a.frame)
                t.masks[a.frame] = a.after
            ch.masks.setdefault(a.track, set()).add(a.frame)
        elif isinstance(a, TrackAtom):
            t = self.tracks.get(a.id)
            have = None if t is None else t.fields
            if have != a.before:
                raise EditConflict(f"track {a.id}: fields are not what the edit expects")
            if a.after is None:
                if t.masks or t.locked:
                    raise EditConflict(f"track {a.id} still has masks or locks")
                del self.tracks[a.id]
                if a.id in ch.tracks_added:
                    ch.tracks_added.discard(a.id)
                else:
                    ch.tracks_removed.add(a.id)
            elif t is None:
                self.tracks[a.id] = TrackState(a.id, a.after)
                if a.id in ch.tracks_removed:
                    ch.tracks_removed.discard(a.id)
                    ch.fields_changed.add(a.id)
                else:
                    ch.tracks_added.add(a.id)
            else:
                t.fields = a.after
                ch.fields_changed.add(a.id)
        elif isinstance(a, LockAtom):
            t = self.tracks.get(a.track)
            if t is None:
                raise EditConflict(f"no track {a.track}")
            if (a.frame in t.locked) != a.before:
                raise EditConflict(f"track {a.track} frame {a.frame}: lock is not what the edit expects")
            (t.locked.add if a.after else t.locked.discard)(a.frame)
            ch.locks.setdefault(a.track, set()).add(a.frame)
        elif isinstance(a, CategoryAtom):
            if self.categories.get(a.id) != a.before:
                raise EditConflict(f"category {a.id} is not what the edit expects")
            if a.after is None:
                del self.categories[a.id]
            else:
                self.categories[a.id] = a.after
            ch.categories.add(a.id)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not an atom: {a!r}")

    def _check_frame(self, frame: int) -> None:
        if self.video is not None and not 0 <= frame < self.video.num_frames:
            raise EditConflict(f"frame {frame} is outside the video (0..{self.video.num_frames - 1})")
