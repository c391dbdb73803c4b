"""Association of query predictions over time.

Two places need it, with one rule (MinVIS / GenVIS): the same object keeps nearly the same query embedding
from one step to the next, so consecutive steps are matched one-to-one by the Hungarian algorithm on 1 -
cosine similarity of L2-normalised embeddings, and the re-ordered current step becomes the reference for the
next one.

* across windows of a long video (video-level queries of window w vs window w+1, spec §6.2);
* across frames for the frame-only view (frame-level queries of frame t vs frame t+1, spec §6.3).

Everything here is numpy on small arrays (N queries x C channels); the network's tensors are converted by the
caller.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine_cost(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(N, C) x (M, C) -> (N, M) matrix of 1 - cosine similarity."""
    return 1.0 - l2_normalize(reference) @ l2_normalize(current).T


def match(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """perm with current[perm[i]] assigned to reference slot i (Hungarian on cosine cost); -1 if slot i is
    left without a partner (only when current has fewer rows than reference)."""
    cost = cosine_cost(reference, current)
    rows, cols = linear_sum_assignment(cost)
    perm = np.full(len(reference), -1, dtype=np.int64)
    perm[rows] = cols
    return perm


class QueryLinker:
    """Sequential linker: call it with each step's (N, C) embeddings, get the permutation that puts them in
    the slots of the first step. The reference is the previous step re-ordered (not the first step), so slow
    drift of an object's embedding is followed."""

    def __init__(self) -> None:
        self.reference: np.ndarray | None = None

    def __call__(self, embeds: np.ndarray) -> np.ndarray:
        embeds = np.asarray(embeds, dtype=np.float64)
        if self.reference is None:
            perm = np.arange(len(embeds), dtype=np.int64)
        else:
            if embeds.shape != self.reference.shape:
                raise ValueError(f"embeddings of shape {embeds.shape} cannot follow {self.reference.shape}")
            perm = match(self.reference, embeds)
        self.reference = embeds[perm]
        return perm


def link_sequence(embeds: np.ndarray, linker: QueryLinker | None = None) -> np.ndarray:
    """(T, N, C) embeddings -> (T, N) permutations; row t re-orders step t into the slots of step 0."""
    linker = linker or QueryLinker()
    return np.stack([linker(e) for e in np.asarray(embeds)]) if len(embeds) else np.zeros((0, 0), np.int64)


class RunningMean:
    """Per-slot running mean of score vectors (class probabilities or logits) over the steps a slot was seen.

    Holds only (N, K) sums and counts, so memory does not grow with video length."""

    def __init__(self) -> None:
        self.sums: np.ndarray | None = None
        self.counts: np.ndarray | None = None

    def add(self, values: np.ndarray, weight: float | np.ndarray = 1.0) -> None:
        values = np.asarray(values, dtype=np.float64)
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), values.shape[:1])
        if self.sums is None:
            self.sums = np.zeros_like(values)
            self.counts = np.zeros(values.shape[0])
        self.sums += values * w[:, None]
        self.counts += w

    def mean(self) -> np.ndarray:
        if self.sums is None:
            return np.zeros((0, 0))
        return self.sums / np.maximum(self.counts, 1e-12)[:, None]


def topk(scores: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """Top-k over queries x classes of an (N, K) score matrix: (query, label, score), best first.

    Flat index i means query i // K, label i % K, so one query may appear with several labels
    (Mask2Former-VIS)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0 or k <= 0:
        return []
    n_cls = scores.shape[1]
    flat = scores.ravel()
    k = min(k, flat.size)
    idx = np.argpartition(-flat, k - 1)[:k]
    idx = idx[np.lexsort((idx, -flat[idx]))]  # by score, ties by index: deterministic
    return [(int(i // n_cls), int(i % n_cls), float(flat[i])) for i in idx]
