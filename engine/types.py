"""Plain value types that cross the engine's public boundary: numpy and Python only, never torch tensors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.data.masks import RLE

Mode = Literal["sync", "video", "frame"]
Source = Literal["model", "imported", "assist", "human"]


@dataclass
class Track:
    """One object through a video. Lists are indexed by frame; `None` where the object is absent.

    `sources[i]` says where mask i came from (model, imported, assist, human) so provenance survives every edit.
    `query` is the video-level (or frame-level, in frame mode) query index that produced the track in its first
    window; the aggregation view uses it to show that query's weights.
    """

    id: int
    category_id: int
    score: float
    masks: list[RLE | None]
    scores: list[float | None]
    sources: list[Source | None] = field(default_factory=list)
    query: int = -1

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = ["model" if m is not None else None for m in self.masks]

    @property
    def num_frames(self) -> int:
        return len(self.masks)

    def present(self) -> np.ndarray:
        return np.array([m is not None for m in self.masks], dtype=bool)

    def frame_range(self) -> tuple[int, int] | None:
        idx = np.flatnonzero(self.present())
        return None if idx.size == 0 else (int(idx[0]), int(idx[-1]))


@dataclass
class WindowInternals:
    """What the synchronized decoder did in one inference window [start, end). Arrays are per decoder layer
    (L = prediction sets that have an aggregation step).

    frame_probs:   (L+1, T, N_f, K+1) frame-level class probabilities
    video_probs:   (L+1, N_v, K+1)    video-level class probabilities
    f2v_selected:  (L, T, N_k)        indices of frame queries selected per frame (keys for frame->video)
    f2v_weights:   (L, N_v, T*N_k)    attention of each video query over the selected frame embeddings
    v2f_selected:  (L, N_k)           indices of video queries selected (keys for video->frame)
    v2f_weights:   (L, T, N_f, N_k)   attention of each frame query over the selected video embeddings
    Any field may be None for modes that do not have it.
    """

    start: int
    end: int
    frame_probs: np.ndarray | None = None
    video_probs: np.ndarray | None = None
    f2v_selected: np.ndarray | None = None
    f2v_weights: np.ndarray | None = None
    v2f_selected: np.ndarray | None = None
    v2f_weights: np.ndarray | None = None
    track_queries: dict[int, int] = field(default_factory=dict)  # track id -> video query index in this window


@dataclass
class VideoPrediction:
    """The result of one inference run over a whole video."""

    mode: Mode
    num_frames: int
    height: int
    width: int
    categories: list[str]
    tracks: list[Track]
    frame_tracks: list[Track] | None = None  # linked frame-level predictions of the same run (sync/frame)
    windows: list[WindowInternals] = field(default_factory=list)
    checkpoint: str = ""
    complete: bool = True  # False when the run was cancelled; tracks hold the frames done
    notices: list[str] = field(default_factory=list)  # what the engine changed on its own (OOM fallbacks, ...)
    device: str = ""  # where the run ended up (after any fallback)

    def to_ytvis_results(self, video_id: int) -> list[dict]:
        """YouTube-VIS results-format entries for this video (category ids are 1-based)."""
        out = []
        for t in self.tracks:
            out.append({"video_id": video_id, "category_id": int(t.category_id), "score": float(t.score),
                        "segmentations": list(t.masks)})
        return out
