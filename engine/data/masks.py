"""COCO RLE helpers. Masks are RLE everywhere except on screen; these are the only conversions the project uses."""
from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

RLE = dict  # {"size": [h, w], "counts": str}


def encode(mask: np.ndarray) -> RLE:
    """Binary HxW mask -> compressed RLE with `counts` as str (JSON-ready)."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    rle = mask_utils.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"]}


def encode_stack(masks: np.ndarray) -> list[RLE]:
    """T x H x W binary masks -> list of RLEs in one pycocotools call."""
    m = np.asfortranarray(np.asarray(masks, dtype=np.uint8).transpose(1, 2, 0))
    out = []
    for r in mask_utils.encode(m):
        out.append({"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")})
    return out


def _as_c(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode(rle: RLE) -> np.ndarray:
    """RLE (compressed str/bytes counts) -> HxW bool array."""
    return mask_utils.decode(_as_c(rle)).astype(bool)


def counts_string(counts: np.ndarray) -> str:
    """Run lengths -> the compressed COCO RLE string (pycocotools' rleToString, vectorised; rle_counts is its
    inverse). From the third run on each number is stored as the delta to the run two before; each number is
    written as 5-bit groups, low first, '0' + group, with 0x20 set on all groups but the last, as few groups
    as hold it as a signed number."""
    cnt = np.asarray(counts, np.int64)
    x = cnt.copy()
    x[3:] -= cnt[1:-2]
    groups = np.ones(x.size, np.int64)
    for k in range(1, 13):   # k groups hold -2**(5k-1) <= x < 2**(5k-1)
        half = np.int64(1) << (5 * k - 1)
        more = (x >= half) | (x < -half)
        if not more.any():
            break
        groups += more
    starts = np.cumsum(groups) - groups
    j = np.arange(int(groups.sum())) - np.repeat(starts, groups)   # which group of its number
    c = (np.repeat(x, groups) >> (5 * j)) & 0x1F
    c |= (j < np.repeat(groups, groups) - 1) * 0x20
    return (c + 48).astype(np.uint8).tobytes().decode("ascii")


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


class MaskCrop(NamedTuple):
    """A decoded mask kept as its bounding box and the pixels inside it: a 720p object of 100x150 px costs 15 kB
    instead of 0.9 MB, so the screen's cache holds a whole video's masks and compositing touches only boxes."""

    box: tuple[int, int, int, int]   # x0, y0, x1, y1 (exclusive), tight: every edge row/column has a pixel
    mask: np.ndarray                 # bool (y1 - y0, x1 - x0), C-contiguous
    size: tuple[int, int]            # (h, w) of the whole (subsampled) frame

    def full(self) -> np.ndarray:
        """The HxW bool mask."""
        out = np.zeros(self.size, bool)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


# Past this many characters of compressed counts (about as many run lengths: a large ragged mask has 20-50
# thousand at 720p) pycocotools' decode of the whole frame (about 1.5 ms at 720p, whatever the mask) beats
# parsing and splitting every run per column in numpy (5-7 ms at 50 thousand).
_MANY_COUNTS = 16_000


def decode_crop(rle: RLE, step: int = 1) -> MaskCrop | None:
    """`decode(rle)[::step, ::step]` as a tight MaskCrop, None when empty. Usually without making the full
    mask: the compressed counts are parsed with numpy and each column's runs are written into the box only, so
    a compact 720p object costs tens of microseconds instead of pycocotools' millisecond (which writes and
    copies all H*W pixels); a mask of very many runs goes through pycocotools, which is faster for it."""
    h, w = (int(v) for v in rle["size"])
    k = max(1, int(step))
    size = (-(-h // k), -(-w // k))
    counts = rle["counts"]
    if len(counts) > _MANY_COUNTS:
        return _crop_of(decode(rle)[::k, ::k])
    cnt = rle_counts(counts) if isinstance(counts, (str, bytes)) else np.asarray(counts, np.int64)
    bounds = np.cumsum(cnt)
    starts, ends = bounds[0:-1:2], bounds[1::2]  # foreground runs [start, end) in column-major order
    n = min(starts.size, ends.size)
    starts, ends = starts[:n], ends[:n]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if not starts.size:
        return None
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
    if not col.size:
        return None
    # +1 where a run starts, -1 one past its end, summed down each column of the box (column-major, int8).
    # Subsampling can make two runs of a column touch (one ends where the next starts): they become one, so
    # every start and every end has a cell of its own.
    touch = (col[1:] == col[:-1]) & (r1[:-1] == r0[1:])
    first, last = np.r_[True, ~touch], np.r_[~touch, True]
    x0, y0 = int(col.min()), int(r0.min())
    bw, bh = int(col.max()) - x0 + 1, int(r1.max()) - y0
    d = np.zeros((bw, bh + 1), np.int8)
    d[col[first] - x0, r0[first] - y0] = 1
    d[col[last] - x0, r1[last] - y0] = -1
    crop = np.ascontiguousarray((np.cumsum(d[:, :bh], axis=1, dtype=np.int8) > 0).T)
    return MaskCrop((x0, y0, x0 + bw, y0 + bh), crop, size)


def _crop_of(mask: np.ndarray) -> MaskCrop | None:
    """A decoded (possibly subsampled) mask as a tight MaskCrop, None when empty."""
    m = np.ascontiguousarray(mask, dtype=bool)
    x, y, bw, bh = cv2.boundingRect(m.view(np.uint8))
    if not bw or not bh:
        return None
    return MaskCrop((x, y, x + bw, y + bh), np.ascontiguousarray(m[y:y + bh, x:x + bw]), m.shape)


def decode_subsampled(rle: RLE, k: int) -> np.ndarray:
    """`decode(rle)[::k, ::k]` (bool, shape (ceil(h/k), ceil(w/k))) without decoding the full mask."""
    crop = decode_crop(rle, k)
    if crop is None:
        h, w = (int(v) for v in rle["size"])
        return np.zeros((-(-h // max(1, k)), -(-w // max(1, k))), bool)
    return crop.full()


def area(rle: RLE | None) -> int:
    return 0 if rle is None else int(mask_utils.area(_as_c(rle)))


def areas(rles: list[RLE]) -> np.ndarray:
    """Areas of many RLEs in C. pycocotools' `area` sizes a uint8 scratch array by the list length, which numpy 2
    rejects past 255 entries (OverflowError on long videos), so the list goes in chunks of 255."""
    out = np.zeros(len(rles), dtype=np.int64)
    for s in range(0, len(rles), 255):
        chunk = [_as_c(r) for r in rles[s:s + 255]]
        out[s:s + len(chunk)] = mask_utils.area(chunk)
    return out


def any_pixels(rles: list[RLE | None]) -> bool:
    """Whether any of the masks (None: no mask) has a pixel. Looks at as few as it must, a few at a time: a
    track's masks are nearly all non-empty, so importing a run no longer measures every mask of every track
    (1,200 masks of 20 tracks took 2-3 ms of the GUI thread's import turn)."""
    todo = [r for r in rles if r is not None]
    return any(areas(todo[s:s + 8]).any() for s in range(0, len(todo), 8))


def bbox(rle: RLE | None) -> list[float] | None:
    """[x, y, w, h] as in COCO; None for a missing mask."""
    if rle is None:
        return None
    return [float(v) for v in mask_utils.toBbox(_as_c(rle))]


def to_compressed(seg: Any, height: int, width: int) -> RLE:
    """Accept compressed RLE, uncompressed RLE (list counts) or polygons, return compressed RLE with str counts."""
    if isinstance(seg, list):  # polygons
        rles = mask_utils.frPyObjects(seg, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    elif isinstance(seg, dict):
        rle = _as_c(seg)
    else:
        raise TypeError(f"not a segmentation: {type(seg).__name__}")
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def iou_matrix(a: list[RLE], b: list[RLE]) -> np.ndarray:
    """Pairwise IoU of two lists of same-size RLEs (pycocotools, in C)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_utils.iou([_as_c(r) for r in a], [_as_c(r) for r in b], [0] * len(b)))


def empty(height: int, width: int) -> RLE:
    return encode(np.zeros((height, width), dtype=bool))
