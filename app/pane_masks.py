"""Masks for the compare panes, decoded straight from COCO RLE at a reduced size (Qt-free, numpy only).

A pane is a third of the dock (about 350-600 px wide), so drawing a 1280x720 frame and 20 full-size masks in
each of three panes costs three times the main canvas for pixels nobody can see. `decode_subsampled(rle, k)`
returns exactly `decode(rle)[::k, ::k]` without making the full mask: the compressed counts are parsed with
numpy and only every k-th column's runs are drawn, so a 720p mask costs tens of microseconds instead of a
millisecond, and the pane's overlay (index, outlines, colours) works on 1/k² of the pixels.
"""
from __future__ import annotations

import numpy as np


def rle_counts(counts: str | bytes) -> np.ndarray:
    """The run lengths of a compressed COCO RLE string (pycocotools' rleFrString, vectorised)."""
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not raw:
        return np.zeros(0, np.int64)
    c = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    end = (c & 0x20) == 0                       # the last character of each number
    first = np.r_[True, end[:-1]]
    tok = np.cumsum(first) - 1                  # which number each character belongs to
    k = np.arange(c.size) - np.flatnonzero(first)[tok]
    vals = np.bincount(tok, weights=(c & 0x1F) << (5 * k)).astype(np.int64)   # exact below 2**53
    last = np.flatnonzero(end)
    neg = (c[last] & 0x10) != 0
    vals[neg] |= -(np.int64(1) << (5 * (k[last][neg] + 1)))
    out = vals.copy()
    even, odd = out[0::2], out[1::2]            # numbers from the third on are deltas of the one two before
    if even.size > 1:
        even[1:] = np.cumsum(even[1:])
    if odd.size:
        odd[:] = np.cumsum(odd)
    out[0::2], out[1::2] = even, odd
    return out


def decode_subsampled(rle: dict, k: int) -> np.ndarray:
    """`decode(rle)[::k, ::k]` (bool, shape (ceil(h/k), ceil(w/k))) without decoding the full mask."""
    h, w = (int(v) for v in rle["size"])
    k = max(1, int(k))
    hs, ws = -(-h // k), -(-w // k)
    counts = rle["counts"]
    cnt = rle_counts(counts) if isinstance(counts, (str, bytes)) else np.asarray(counts, np.int64)
    bounds = np.cumsum(cnt)
    starts, ends = bounds[0:-1:2], bounds[1::2]  # foreground runs [start, end) in column-major order
    n = min(starts.size, ends.size)
    starts, ends = starts[:n], ends[:n]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    out = np.zeros((hs, ws), bool)
    if starts.size:
        c0, c1 = starts // h, (ends - 1) // h    # a run may span several columns: split it per column
        ncol = c1 - c0 + 1
        col = np.repeat(c0, ncol) + (np.arange(int(ncol.sum())) - np.repeat(np.cumsum(ncol) - ncol, ncol))
        s = np.maximum(np.repeat(starts, ncol), col * h) - col * h
        e = np.minimum(np.repeat(ends, ncol), (col + 1) * h) - col * h
        on = col % k == 0
        col, s, e = col[on] // k, s[on], e[on]
        r0, r1 = -(-s // k), -(-e // k)          # kept rows r with r*k in [s, e)
        on = r1 > r0
        col, r0, r1 = col[on], r0[on], r1[on]
        if col.size:   # +1 where a run starts, -1 where it ends, summed down each column of the mask's box
            x0, y0 = int(col.min()), int(r0.min())
            bw, bh = int(col.max()) - x0 + 1, int(r1.max()) - y0
            size = (bh + 1) * bw
            diff = np.bincount((r0 - y0) * bw + col - x0, minlength=size)[:size]
            diff -= np.bincount((r1 - y0) * bw + col - x0, minlength=size)[:size]
            out[y0:y0 + bh, x0:x0 + bw] = np.cumsum(diff.reshape(bh + 1, bw), axis=0)[:bh] > 0
    return out
