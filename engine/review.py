"""What a reviewer looks at after a run, computed from a `VideoPrediction` alone (no Qt, no torch).

* `frame_video_lanes`: for one video-level track, its per-frame scores next to those of the linked frame-level
  track of the same run, and the IoU between the two masks on every frame: where the two query kinds
  disagree is
  where the synchronisation did work, or failed to.
* `review_queue`: frames ranked by how unsure the model looks there (score drops, frame/video disagreement,
  jumps in mask IoU from one frame to the next, class flips between windows, tracks appearing or
  vanishing), so
  an annotator checks the likely mistakes first instead of scrubbing the whole video.
* `aggregation_mass`: frames x decoder layers of attention mass that moved between one video query and the
  frame queries (both directions), from the window internals.
* `track_events`: the frames where a track starts or ends (for the previous/next event keys).

Everything works on RLE through pycocotools, so a long video costs no decoded masks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.data import masks
from engine.types import Track, VideoPrediction

# A cue below this value is not worth a reason line in the queue.
REASON_THRESHOLD = 0.3


_area = masks.area


def presence(track: Track, n: int | None = None) -> np.ndarray:
    """Frames where the track has a non-empty mask. The engine stores an empty RLE (not None) on processed
    frames where the object is not predicted, so `Track.present()` alone would show every processed frame."""
    n = len(track.masks) if n is None else n
    out = np.zeros(n, dtype=bool)
    for i, m in enumerate(track.masks[:n]):
        out[i] = _area(m) > 0
    return out


def _mask(track: Track, i: int) -> dict | None:
    """The track's mask on frame i, None when absent or empty."""
    m = track.masks[i] if i < len(track.masks) else None
    return m if _area(m) > 0 else None


def mask_iou(a: dict | None, b: dict | None) -> float:
    """IoU of two RLE masks; 0 when exactly one is missing, nan when both are missing (None or empty)."""
    a = a if _area(a) > 0 else None
    b = b if _area(b) > 0 else None
    if a is None and b is None:
        return float("nan")
    if a is None or b is None:
        return 0.0
    return float(masks.iou_matrix([a], [b])[0, 0])


def _scores(track: Track, n: int) -> np.ndarray:
    """Per-frame scores, nan where the track has no (or an empty) mask."""
    out = np.full(n, np.nan)
    here = presence(track, n)
    for i in np.flatnonzero(here):
        s = track.scores[i] if i < len(track.scores) else None
        out[i] = float(s) if s is not None else float(track.score)
    return out


# ---------------------------------------------------------------- frame vs video
def link_frame_track(pred: VideoPrediction, track: Track) -> Track | None:
    """The frame-level track of the same run that belongs to `track`.

    The two read-outs rank their tracks independently (ids are score ranks), so the link is by masks: the
    frame
    track with the highest mean IoU over the frames where either of the two has a mask.
    """
    frame_tracks = pred.frame_tracks or []
    best, best_iou = None, 0.0
    mine = presence(track)
    for ft in frame_tracks:
        theirs = presence(ft, len(mine))
        either = np.flatnonzero(mine | theirs)
        if not either.size or not (mine & theirs).any():
            continue
        iou = float(np.mean([mask_iou(track.masks[i], ft.masks[i]) for i in either]))
        if iou > best_iou:
            best, best_iou = ft, iou
    return best


@dataclass
class FrameVideoLanes:
    """Per-frame lanes for one video-level track; nan where the lane has no value."""

    track_id: int
    frame_track_id: int | None
    video_scores: np.ndarray
    frame_scores: np.ndarray
    iou: np.ndarray

    @property
    def mean_iou(self) -> float:
        v = self.iou[~np.isnan(self.iou)]
        return float(v.mean()) if v.size else float("nan")


def frame_video_lanes(pred: VideoPrediction, track_id: int) -> FrameVideoLanes:
    track = _track(pred, track_id)
    n = pred.num_frames
    ft = link_frame_track(pred, track)
    frame_scores = _scores(ft, n) if ft is not None else np.full(n, np.nan)
    iou = np.full(n, np.nan)
    if ft is not None:
        for i in range(n):
            iou[i] = mask_iou(_at(track, i), _at(ft, i))
    return FrameVideoLanes(track.id, None if ft is None else ft.id, _scores(track, n), frame_scores, iou)


def _at(track: Track, i: int) -> dict | None:
    return _mask(track, i)


def _track(pred: VideoPrediction, track_id: int) -> Track:
    for t in pred.tracks:
        if t.id == track_id:
            return t
    raise KeyError(f"no track {track_id} in this prediction")


# ---------------------------------------------------------------- events
def track_events(tracks: list[Track]) -> np.ndarray:
    """Sorted frames where some track starts, ends, or re-appears after a gap (its first and last frame of
    each run of presence)."""
    events: set[int] = set()
    for t in tracks:
        p = presence(t).astype(np.int8)
        if not p.any():
            continue
        d = np.diff(np.concatenate([[0], p, [0]]))
        events.update(int(i) for i in np.flatnonzero(d == 1))       # run starts
        events.update(int(i) - 1 for i in np.flatnonzero(d == -1))  # run ends (last present frame)
    return np.array(sorted(events), dtype=int)


def next_event(events: np.ndarray, frame: int, direction: int) -> int | None:
    """The nearest event strictly after (direction > 0) or before (direction < 0) `frame`."""
    if direction > 0:
        later = events[events > frame]
        return int(later[0]) if later.size else None
    earlier = events[events < frame]
    return int(earlier[-1]) if earlier.size else None


# ---------------------------------------------------------------- review queue
@dataclass
class ReviewItem:
    """One frame worth a look: `score` in [0, 1] is the strongest cue there; `reasons` say which and why."""

    frame: int
    score: float
    reasons: list[str] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # short cue names (KINDS), strongest first, no repeats


SCORE_DROP, DISAGREE, MASK_JUMP, CLASS_FLIP, APPEARS, VANISHES = (
    "score drop", "frame/video disagreement", "mask jump", "class flip", "track appears", "track vanishes")
KINDS = (SCORE_DROP, DISAGREE, MASK_JUMP, CLASS_FLIP, APPEARS, VANISHES)


@dataclass
class _Cue:
    value: float
    track_id: int
    text: str
    kind: str


def uncertainty_cues(pred: VideoPrediction) -> list[list[_Cue]]:
    """Per frame, every cue of doubt with its strength in [0, 1]."""
    n = pred.num_frames
    cues: list[list[_Cue]] = [[] for _ in range(n)]
    names = pred.categories

    def cname(cid: int) -> str:
        return names[cid - 1] if 1 <= cid <= len(names) else f"class {cid}"  # category ids are 1-based

    for t in pred.tracks:
        s = _scores(t, n)
        present = ~np.isnan(s)
        # score drops between consecutive frames
        for i in range(1, n):
            if present[i] and present[i - 1]:
                drop = s[i - 1] - s[i]
                if drop > 0:
                    cues[i].append(_Cue(min(1.0, 2 * drop), t.id,
                                        f"track {t.id}: score drops {s[i - 1]:.2f} → {s[i]:.2f}", SCORE_DROP))
        # jumps in mask IoU over time
        for i in range(1, n):
            if present[i] and present[i - 1]:
                iou = mask_iou(t.masks[i - 1], t.masks[i])
                text = f"track {t.id}: mask changes (IoU {iou:.2f} with frame {i - 1})"
                cues[i].append(_Cue(1.0 - iou, t.id, text, MASK_JUMP))
        # appearing / vanishing inside the video (a gap or a start after frame 0 may be a missed detection)
        p = present.astype(np.int8)
        if p.any():
            d = np.diff(np.concatenate([[0], p, [0]]))
            for i in np.flatnonzero(d == 1):
                if i > 0:
                    cues[int(i)].append(_Cue(0.5 + 0.5 * float(s[i]) if s[i] == s[i] else 0.5, t.id,
                                             f"track {t.id} appears", APPEARS))
            for i in np.flatnonzero(d == -1):
                if i < n:
                    value = 0.5 + 0.5 * float(s[i - 1])
                    cues[int(i)].append(_Cue(value, t.id, f"track {t.id} vanishes", VANISHES))
        # frame/video disagreement with the linked frame-level track
        ft = link_frame_track(pred, t) if pred.frame_tracks else None
        if ft is not None:
            for i in range(n):
                a, b = _at(t, i), _at(ft, i)
                if a is None and b is None:
                    continue
                iou = mask_iou(a, b)
                if a is None:
                    text = f"track {t.id}: frame queries see it, video query does not"
                elif b is None:
                    text = f"track {t.id}: video query sees it, frame queries do not"
                else:
                    text = f"track {t.id}: frame and video masks disagree (IoU {iou:.2f})"
                cues[i].append(_Cue(1.0 - iou, t.id, text, DISAGREE))
            # a class disagreement is one fact about the pair of tracks: flag it once, where both first exist
            both = np.flatnonzero(present & presence(ft, n))
            if both.size and ft.category_id != t.category_id:
                text = (f"track {t.id}: frame level says {cname(ft.category_id)}, "
                        f"video level {cname(t.category_id)}")
                cues[int(both[0])].append(_Cue(0.6, t.id, text, DISAGREE))
    # class flips of a video query between windows
    prev: dict[int, int] = {}
    for w in pred.windows:
        if w.video_probs is None:
            continue
        probs = w.video_probs[-1]
        for t in pred.tracks:
            q = w.track_queries.get(t.id, t.query)
            if not (0 <= q < probs.shape[0]):
                continue
            cls = int(np.argmax(probs[q][:-1])) + 1 if probs.shape[-1] > 1 else 1
            if t.id in prev and prev[t.id] != cls and w.start < n:
                text = f"track {t.id}: class flips {cname(prev[t.id])} → {cname(cls)}"
                cues[w.start].append(_Cue(0.8, t.id, text, CLASS_FLIP))
            prev[t.id] = cls
    return cues


def review_queue(pred: VideoPrediction, min_score: float = REASON_THRESHOLD,
                 limit: int | None = None) -> list[ReviewItem]:
    """Frames ranked by their strongest cue of doubt (ties: more cues first, then earlier frame)."""
    items = []
    for i, frame_cues in enumerate(uncertainty_cues(pred)):
        strong = sorted((c for c in frame_cues if c.value >= min_score), key=lambda c: -c.value)
        if not strong:
            continue
        tids = list(dict.fromkeys(c.track_id for c in strong))
        kinds = list(dict.fromkeys(c.kind for c in strong))
        items.append(ReviewItem(i, float(strong[0].value), [c.text for c in strong], tids, kinds))
    items.sort(key=lambda it: (-round(it.score, 6), -len(it.reasons), it.frame))
    return items if limit is None else items[:limit]


# ---------------------------------------------------------------- aggregation weights
def aggregation_mass(pred: VideoPrediction, track_id: int, direction: str = "f2v") -> np.ndarray:
    """(num_frames, L) attention mass between the track's video query and each frame, per decoder layer.

    f2v: how much of the video query's attention went to the selected embeddings of frame t (sums to 1 over
    the
    frames of one window). v2f: the mean attention that frame t's queries paid to this video query, 0 where
    the
    query was not among the selected video embeddings. nan outside windows with internals.
    """
    track = _track(pred, track_id)
    layers = 0
    for w in pred.windows:
        arr = w.f2v_weights if direction == "f2v" else w.v2f_weights
        if arr is not None:
            layers = arr.shape[0]
            break
    out = np.full((pred.num_frames, layers), np.nan)
    for w in pred.windows:
        q = w.track_queries.get(track.id, track.query)
        if q < 0:
            continue
        if direction == "f2v" and w.f2v_weights is not None:
            L, nv, tk = w.f2v_weights.shape
            t = w.end - w.start
            if q >= nv:
                continue
            mass = w.f2v_weights[:, q, :].reshape(L, t, tk // t).sum(-1)  # (L, T)
            out[w.start:w.end, :L] = mass.T
        elif direction == "v2f" and w.v2f_weights is not None and w.v2f_selected is not None:
            L = w.v2f_weights.shape[0]
            m = np.zeros((w.end - w.start, L))
            for layer in range(L):
                hit = np.flatnonzero(w.v2f_selected[layer] == q)
                if hit.size:
                    m[:, layer] = w.v2f_weights[layer][:, :, hit].sum(-1).mean(-1)
            out[w.start:w.end, :L] = m
    return out


def selected_frame_queries(pred: VideoPrediction, frame: int, layer: int) -> np.ndarray:
    """Indices of the frame queries whose embeddings were selected (keys of frame→video) on `frame`."""
    for w in pred.windows:
        if w.start <= frame < w.end and w.f2v_selected is not None:
            return np.asarray(w.f2v_selected[layer, frame - w.start])
    return np.zeros(0, dtype=int)


def reverse_weights(pred: VideoPrediction, track_id: int, frame: int) -> tuple[np.ndarray, list[int]] | None:
    """Video → frame on one frame: (N_f, L) attention each frame query paid to the track's video query (0 at
    layers where that query was not among the selected video embeddings), and the video queries selected at
    the
    last layer. None when the frame has no internals."""
    track = _track(pred, track_id)
    for w in pred.windows:
        if w.start <= frame < w.end and w.v2f_weights is not None and w.v2f_selected is not None:
            q = w.track_queries.get(track.id, track.query)
            L, _, nf, _ = w.v2f_weights.shape
            out = np.zeros((nf, L))
            for layer in range(L):
                hit = np.flatnonzero(w.v2f_selected[layer] == q)
                if hit.size:
                    out[:, layer] = w.v2f_weights[layer, frame - w.start][:, hit].sum(-1)
            return out, [int(v) for v in w.v2f_selected[-1]]
    return None


def selected_frame_queries_all(pred: VideoPrediction, layer: int = -1) -> list[list[int]]:
    """Per frame, the frame queries selected as keys of frame→video at `layer` (empty outside internals)."""
    out: list[list[int]] = [[] for _ in range(pred.num_frames)]
    for w in pred.windows:
        if w.f2v_selected is None:
            continue
        sel = w.f2v_selected[layer]
        for j in range(min(w.end, pred.num_frames) - w.start):
            out[w.start + j] = [int(v) for v in sel[j]]
    return out
