"""COCO RLE helpers. Masks are RLE everywhere except on screen; these are the only conversions the project uses."""
from __future__ import annotations

from typing import Any

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
