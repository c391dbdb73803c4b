"""The annotation document: one video, its categories and tracks. Qt-free.

How the user looks at it (frame, selection, hidden tracks, overlays) is not here but in app/view_state.py: the
same document can be shown by several views with different looks (the compare panes show every track of their
own documents while the main canvas hides some), and an edit changes the document, never the look.

Views never own data: they read the document and redraw when it tells them something changed (a napari-style
evented model with plain callbacks, so the model runs in tests and scripts without a QApplication). Masks stay
COCO RLE; only frames on screen are decoded, to their bounding boxes (MaskCrop), through an LRU cache with a
byte budget, so a long video with many tracks costs memory in proportion to what is shown, not to its length,
and a second pass over a clip (playback, scrubbing) decodes nothing.
"""
from __future__ import annotations

import colorsys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.data.masks import MaskCrop, decode_crop
from engine.project.document import Change, ProjectDocument
from engine.project.model import TrackState
from engine.review import next_event, presence, track_events
from engine.types import Track, VideoPrediction

# Events sent to listeners: (name, payload dict).
VIDEO = "video"            # a video was opened (or closed)
TRACKS = "tracks"          # the set of tracks or their masks changed (new run, partial window)

Listener = Callable[[str, dict], None]


class TrackMask(NamedTuple):
    track_id: int
    crop: MaskCrop     # the mask in its box (crop.full() for the HxW bool mask)


@dataclass
class VideoRef:
    """What the document knows about its video; the frames themselves come from a VideoReader."""

    path: str
    num_frames: int
    width: int
    height: int
    fps: float

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class RunInfo:
    """Where the tracks came from: one inference run."""

    checkpoint: str
    mode: str
    complete: bool
    frames_done: int


def frames_reached(pred: VideoPrediction) -> int:
    """Frames a partial run has processed: the engine writes a mask (possibly empty) on every processed
    frame and None beyond, so the longest prefix of non-None masks tells (window internals when no tracks)."""
    done = max((w.end for w in pred.windows), default=0)
    for t in pred.tracks:
        n = next((i for i, m in enumerate(t.masks) if m is None), len(t.masks))
        done = max(done, n)
    return done


def _display_track(t: TrackState, num_frames: int, predicted: Track | None) -> Track:
    """A project track as the views' `Track`: masks per frame, provenance kinds as sources; per-frame scores and
    the video query come from the run's track of the same id while its masks are still the model's."""
    masks = [None] * num_frames
    sources = [None] * num_frames
    for f, m in t.masks.items():
        if 0 <= f < num_frames:
            masks[f] = m.rle
            sources[f] = m.provenance.kind
    scores: list[float | None] = [None] * num_frames
    query = -1
    if predicted is not None:
        query = predicted.query
        for f, m in t.masks.items():
            if m.provenance.kind == "model" and f < len(predicted.scores):
                scores[f] = predicted.scores[f]
    score = t.fields.score if t.fields.score is not None else 1.0
    return Track(t.id, t.category_id or 0, float(score), masks, scores, sources, query)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per track id (golden-ratio hue steps, as label tools do)."""
    h = (0.61803398875 * (track_id + 1)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


class MaskCache:
    """LRU cache of decoded masks (as MaskCrop, None for an empty mask) keyed by (track id, frame); bounded by
    a byte budget."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[int, int], MaskCrop | None] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, key: tuple[int, int], rle: dict) -> MaskCrop | None:
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        m = decode_crop(rle)
        self._data[key] = m
        self._bytes += _nbytes(m)
        while self._bytes > self.max_bytes and len(self._data) > 1:
            _, old = self._data.popitem(last=False)
            self._bytes -= _nbytes(old)
        return m

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0

    def invalidate(self, track_id: int, frames: set[int] | None = None) -> None:
        """Forget decoded masks of one track (on `frames`, or all): an edit changed them."""
        keys = [k for k in self._data if k[0] == track_id and (frames is None or k[1] in frames)]
        for k in keys:
            self._bytes -= _nbytes(self._data.pop(k))

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes


def _nbytes(m: MaskCrop | None) -> int:
    return 64 if m is None else m.mask.nbytes + 64


@dataclass
class Document:
    video: VideoRef | None = None
    categories: list[str] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    prediction: VideoPrediction | None = None
    run: RunInfo | None = None
    cache: MaskCache = field(default_factory=MaskCache)
    project: ProjectDocument | None = None  # the editable tracks shown, when a project is open (else a run's)
    _listeners: list[Listener] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------ events
    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, name: str, **payload) -> None:
        for fn in list(self._listeners):
            fn(name, payload)

    # ------------------------------------------------------------ video
    def open_video(self, ref: VideoRef) -> None:
        """A new video starts an empty document: tracks of another video never carry over."""
        self.video = ref
        self._reset_tracks()
        self._emit(VIDEO, video=ref)
        self._emit(TRACKS, partial=False)

    def close_video(self) -> None:
        self.video = None
        self._reset_tracks()
        self._emit(VIDEO, video=None)
        self._emit(TRACKS, partial=False)

    def _reset_tracks(self) -> None:
        self.tracks, self.prediction, self.run, self.categories = [], None, None, []
        self.project = None
        self.cache.clear()

    # ------------------------------------------------------------ the project's tracks
    def show_project(self, project: ProjectDocument, change: Change | None = None, bulk: bool = False) -> None:
        """Show the project's (editable) tracks. The prediction stays as it was (analysis and compare read it;
        an edit never changes it). Only the tracks and frames `change` names are rebuilt and re-decoded, so a
        brush stroke on a 1,000-frame video costs one track's list, not the whole document. `bulk` (a run's
        import) tells the views that everything changed at once, so they may spread their redraws over turns."""
        self.project = project
        self.categories = []
        n = project.num_frames
        by_id = {t.id: t for t in self.tracks}
        full = change is None or change.reset or change.categories or change.tracks_added or \
            change.tracks_removed
        touched = set() if full else set(change.masks) | change.fields_changed | set(change.locks)
        pred_tracks = {t.id: t for t in self.prediction.tracks} if self.prediction is not None else {}
        tracks = []
        for tid in project.track_ids():
            if not full and tid not in touched and tid in by_id:
                tracks.append(by_id[tid])
                continue
            tracks.append(_display_track(project.tracks[tid], n, pred_tracks.get(tid)))
        self.tracks = tracks
        if full:
            self.cache.clear()
        else:
            for tid, frames in change.masks.items():
                self.cache.invalidate(tid, frames)
        self._emit(TRACKS, partial=False, change=change, bulk=bulk)

    @property
    def num_frames(self) -> int:
        return self.video.num_frames if self.video else 0

    # ------------------------------------------------------------ tracks
    def set_prediction(self, pred: VideoPrediction, frames_done: int | None = None, notify: bool = True) -> None:
        """Show the tracks of a run (also called once per finished window with the partial prediction).
        `notify=False` holds the redraw back for the caller's next one (the end of a run: the project takes
        the tracks and redraws once, instead of every view redrawing the run and then the project)."""
        if self.video is not None and pred.num_frames != self.video.num_frames:
            raise ValueError(f"prediction has {pred.num_frames} frames, the video {self.video.num_frames}")
        self.prediction = pred
        self.project = None  # a run's tracks are on screen (streaming); the project's come back when it ends
        self.categories = list(pred.categories)
        self.tracks = list(pred.tracks)
        done = frames_done if frames_done is not None else (
            pred.num_frames if pred.complete else frames_reached(pred))
        self.run = RunInfo(pred.checkpoint, pred.mode, pred.complete, done)
        self.cache.clear()
        if notify:
            self._emit(TRACKS, partial=not pred.complete)

    def refresh(self) -> None:
        """Tell the views the tracks changed (after a `set_prediction(..., notify=False)`)."""
        self._emit(TRACKS, partial=self.run is not None and not self.run.complete)

    def clear_tracks(self) -> None:
        self._reset_tracks()
        self._emit(TRACKS, partial=False)

    def track(self, track_id: int) -> Track | None:
        for t in self.tracks:
            if t.id == track_id:
                return t
        return None

    def category_name(self, category_id: int) -> str:
        """Category ids are 1-based (YTVIS), `categories` a plain list of names (a project names its own)."""
        if self.project is not None:
            return self.project.category_name(category_id or None)
        if 1 <= category_id <= len(self.categories):
            return self.categories[category_id - 1]
        return f"class {category_id}"

    def colour(self, track_id: int) -> tuple[int, int, int]:
        return track_colour(track_id)

    def presence(self) -> np.ndarray:
        """(num_tracks, num_frames) bool, rows in track order."""
        n = self.num_frames or (self.prediction.num_frames if self.prediction else 0)
        out = np.zeros((len(self.tracks), n), dtype=bool)
        for r, t in enumerate(self.tracks):
            p = presence(t)[:n]
            out[r, : p.size] = p
        return out

    def events(self) -> np.ndarray:
        return track_events(self.tracks)

    def next_event(self, frame: int, direction: int) -> int | None:
        return next_event(self.events(), frame, direction)

    # ------------------------------------------------------------ masks on screen
    def crop(self, track_id: int, frame: int) -> MaskCrop | None:
        """The track's mask on `frame` in its box (cached), None when it has none or it is empty."""
        t = self.track(track_id)
        if t is None or not (0 <= frame < len(t.masks)) or t.masks[frame] is None:
            return None
        return self.cache.get((track_id, frame), t.masks[frame])

    def mask(self, track_id: int, frame: int) -> np.ndarray | None:
        """The track's HxW bool mask on `frame`, None when it has none or it is empty."""
        c = self.crop(track_id, frame)
        return None if c is None else c.full()

    def masks_at(self, frame: int, shows: Callable[[int], bool] | None = None) -> list[TrackMask]:
        """A TrackMask for each track present on `frame`, in track order; `shows(track_id)` filters
        (the view state's `shows`: overlays on and the track not hidden)."""
        out = []
        for t in self.tracks:
            if shows is not None and not shows(t.id):
                continue
            c = self.crop(t.id, frame)
            if c is not None:
                out.append(TrackMask(t.id, c))
        return out

    def label_map(self, frame: int, shows: Callable[[int], bool] | None = None) -> np.ndarray:
        """HxW int32 of track ids (-1 = background); later tracks paint over earlier ones."""
        h = self.video.height if self.video else (self.prediction.height if self.prediction else 0)
        w = self.video.width if self.video else (self.prediction.width if self.prediction else 0)
        out = np.full((h, w), -1, dtype=np.int32)
        for tid, c in self.masks_at(frame, shows):
            x0, y0, x1, y1 = c.box
            out[y0:y1, x0:x1][c.mask] = tid
        return out
