"""What the views show, built from the document and the view state: overlays, track rows, lanes, properties.

Plain functions from data to the widgets' own data types (no widget is touched here), so what a view shows can
be tested without a window and the same overlays serve the main canvas and the compare panes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.document import Document
from engine import review
from engine.data.masks import MaskCrop
from engine.types import Track
from widgets.colors import track_color
from widgets.review_queue import ReviewItem as QueueItem
from widgets.timeline import MARK_ASSIST, MARK_EDITED, MARK_LOCKED, Lane
from widgets.track_list import TrackRow
from widgets.video_canvas import MaskOverlay


def overlays_for(doc: Document, frame: int, shows: Callable[[int], bool] | None = None,
                 selected: int | None = None) -> list[MaskOverlay]:
    """The masks on `frame` that `shows` lets through as canvas overlays (the selected track last, so it is
    drawn on top)."""
    out = [crop_overlay(doc, tid, c, frame, tid == selected) for tid, c in doc.masks_at(frame, shows)]
    out.sort(key=lambda o: o.selected)
    return out


def crop_overlay(doc: Document, tid: int, crop: MaskCrop, frame: int, selected: bool) -> MaskOverlay:
    """A track's decoded mask (a tight MaskCrop, at any step) as a canvas overlay labelled
    "class score-on-this-frame"; the main canvas and the compare panes label masks alike."""
    t = doc.track(tid)
    label = f"{doc.category_name(t.category_id)} {frame_score(t, frame):.2f}"
    return MaskOverlay(tid, crop.mask, track_color(tid), label, selected=selected, box=crop.box, tight=True)


def frame_score(t: Track, frame: int) -> float:
    s = t.scores[frame] if frame < len(t.scores) else None
    return float(t.score if s is None else s)


def track_rows(doc: Document, is_visible: Callable[[int], bool],
               presence: np.ndarray | None = None) -> list[TrackRow]:
    """The track list's rows, in track order (`presence`: doc.presence(), when the caller has it already)."""
    presence = doc.presence() if presence is None else presence
    return [TrackRow(t.id, track_color(t.id), doc.category_name(t.category_id), float(t.score), presence[r],
                     is_visible(t.id)) for r, t in enumerate(doc.tracks)]


def track_lanes(doc: Document, presence: np.ndarray | None = None) -> list[Lane]:
    """The timeline's lanes, in track order (`presence`: doc.presence(), when the caller has it already)."""
    presence = doc.presence() if presence is None else presence
    n = doc.num_frames
    lanes = []
    for r, t in enumerate(doc.tracks):
        name = doc.category_name(t.category_id)
        scores = np.array([np.nan if s is None else float(s) for s in t.scores[:n]], dtype=float)
        lanes.append(Lane(t.id, track_color(t.id), presence[r], scores, f"{t.id} {name}", lane_marks(doc, t, n)))
    return lanes


def lane_marks(doc: Document, t: Track, n: int) -> np.ndarray | None:
    """Per frame: human-edited, assisted or locked (the timeline's strip), from the project's provenance."""
    pt = doc.project.tracks.get(t.id) if doc.project is not None else None
    if pt is None:
        return None
    marks = np.zeros(n, np.uint8)
    for f, m in pt.masks.items():
        if f < n and m.provenance.kind in ("human", "assist"):
            marks[f] = MARK_EDITED if m.provenance.kind == "human" else MARK_ASSIST
    for f in pt.locked:
        if f < n:
            marks[f] = MARK_LOCKED
    return marks


PROPERTY_FIELDS = (("track", "Track"), ("class", "Class"), ("score", "Score"), ("frames", "Frames"),
                   ("source", "Source"), ("this_frame", "This frame"), ("query", "Video query"), ("run", "Run"))


def properties(doc: Document, track_id: int | None, run_ap: float | None, frame: int = -1) -> dict[str, str]:
    """The properties panel's text per field of PROPERTY_FIELDS ("track" is rich text: a colour swatch)."""
    out = {k: "—" for k, _ in PROPERTY_FIELDS}
    run = doc.run
    if run is not None:
        text = f"{Path(run.checkpoint).name or 'model'} · {run.mode} mode"
        if not run.complete:
            text += f" · partial ({run.frames_done}/{doc.num_frames} frames)"
        if run_ap is not None:
            text += f" · AP {run_ap * 100:.1f}"
        out["run"] = text
    t = doc.track(track_id) if track_id is not None else None
    if t is None:
        if doc.tracks:
            out["track"] = "click a track or a mask"
        return out
    pres = review.presence(t)
    rng = np.flatnonzero(pres)
    out["track"] = f"<span style='color:rgb{track_color(t.id)}'>■</span> {t.id}"
    out["class"] = doc.category_name(t.category_id)
    out["score"] = f"{t.score:.3f}"
    out["frames"] = f"{rng.size} frames ({rng[0]}–{rng[-1]})" if rng.size else "none"
    counts: dict[str, int] = {}
    for src, p in zip(t.sources, pres, strict=False):
        if p and src:
            counts[src] = counts.get(src, 0) + 1
    out["source"] = " · ".join(f"{k} {counts[k]}" for k in ("model", "imported", "assist", "human") if k in counts) \
        or "—"
    pt = doc.project.tracks.get(t.id) if doc.project is not None else None
    if pt is not None and 0 <= frame:
        m = pt.masks.get(frame)
        text = m.provenance.describe() if m is not None else "no mask"
        out["this_frame"] = text + (" · locked" if frame in pt.locked else "")
    out["query"] = str(t.query) if t.query >= 0 else "—"
    return out


def queue_items(items: list[review.ReviewItem]) -> list[QueueItem]:
    """The review queue's rows: the cue names (kinds, for the tips) and the reasons in words (the Why column,
    its tooltip and the panel under the list)."""
    return [QueueItem(it.frame, it.score, list(it.kinds), list(it.reasons)) for it in items]


@dataclass(frozen=True)
class FrameTexts:
    time: str      # under the canvas: "0:01.20 · 25 fps"
    status: str    # status bar: "Frame 3 / 11"


def frame_texts(frame: int, num_frames: int, fps: float) -> FrameTexts:
    fps = fps or 30.0
    secs = frame / fps
    return FrameTexts(f"{int(secs // 60):d}:{secs % 60:05.2f} · {fps:.3g} fps", f"Frame {frame} / {num_frames - 1}")


def duration(secs: float) -> str:
    secs = max(0.0, float(secs))
    if secs < 60:
        return f"{secs:.0f} s" if secs >= 10 else f"{secs:.1f} s"
    m, s = divmod(int(round(secs)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"
