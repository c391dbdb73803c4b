"""The values an annotation project is made of: categories, tracks, masks with their provenance. Qt-free.

These are plain, immutable-where-it-matters dataclasses so an edit can hold "before" and "after" copies of them
(undo restores the very objects it took away) and the store can write them without knowing the document.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

from engine.data.masks import RLE

ProvenanceKind = Literal["model", "imported", "assist", "human"]
PROVENANCE_KINDS: tuple[str, ...] = ("model", "imported", "assist", "human")


@dataclass(frozen=True)
class Provenance:
    """Where one mask came from, and when.

    `detail` says which one: for a model the run, checkpoint and mode (``"run 3 · tiny-sync.pt · sync"``), for an
    import the file, for assist the tool (``"sam2"``, ``"flow"``, ``"grabcut"``), for a human the tool used
    (``"brush"``, ``"polygon"``, ``"merge"``...). Frozen and hashable so the store keeps one row per distinct value.
    """

    kind: ProvenanceKind
    detail: str = ""
    time: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PROVENANCE_KINDS:
            raise ValueError(f"unknown provenance kind {self.kind!r}")

    @classmethod
    def now(cls, kind: ProvenanceKind, detail: str = "") -> Provenance:
        return cls(kind, detail, round(time.time(), 3))

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.time)) if self.time else ""
        return " · ".join(p for p in (self.kind, self.detail, when) if p)


@dataclass(frozen=True)
class Mask:
    """One track's mask on one frame: compressed COCO RLE (str counts) and its provenance."""

    rle: RLE
    provenance: Provenance

    # An RLE is a dict (unhashable), so equality and hash are by hand: same counts, size and provenance.
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Mask) and self.provenance == other.provenance
                and self.rle["counts"] == other.rle["counts"]
                and list(self.rle["size"]) == list(other.rle["size"]))

    def __hash__(self) -> int:
        return hash((self.rle["counts"], self.provenance))


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    colour: tuple[int, int, int] = (255, 255, 255)
    supercategory: str = "object"  # kept for the YouTube-VIS round trip


@dataclass(frozen=True)
class TrackFields:
    """The per-track values an edit can change as a whole (masks and locks are per frame, kept apart)."""

    category_id: int | None = None
    score: float | None = None  # the model's track score (None for tracks a human made)
    name: str = ""              # optional free label ("car 2"), shown next to the class

    def with_(self, **kw) -> TrackFields:
        return replace(self, **kw)


@dataclass
class TrackState:
    """A track as the document holds it: fields, masks by frame (sparse: absent frames have no key), locks."""

    id: int
    fields: TrackFields
    masks: dict[int, Mask] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)

    @property
    def category_id(self) -> int | None:
        return self.fields.category_id

    def frames(self) -> list[int]:
        return sorted(self.masks)

    def frame_range(self) -> tuple[int, int] | None:
        return (min(self.masks), max(self.masks)) if self.masks else None


@dataclass(frozen=True)
class VideoInfo:
    """The project's video: where it was, and what identifies it if it moves (see engine.project.fingerprint)."""

    path: str
    num_frames: int
    width: int
    height: int
    fps: float
    fingerprint: str = ""

    @property
    def name(self) -> str:
        from pathlib import Path

        p = Path(self.path)
        return p.stem if p.suffix else p.name
