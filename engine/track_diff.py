"""Which tracks changed between two runs on the same video (the old and the fine-tuned model, side by side).

Tracks are matched by video IoU (intersection over union summed over all frames, as the YouTube-VIS metric does)
with the Hungarian algorithm; a pair below MATCH_IOU is no match. Each track then reads as kept, relabelled,
reshaped, new or gone, in words the training panel shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from engine.data import masks as rle_ops
from engine.types import VideoPrediction

MATCH_IOU = 0.3      # below this two tracks are different objects
SAME_IOU = 0.85      # at or above this a matched track's masks count as unchanged


@dataclass(frozen=True)
class TrackChange:
    kind: str            # "same" | "relabelled" | "reshaped" | "new" | "gone"
    old_id: int | None
    new_id: int | None
    iou: float
    text: str


def video_iou(a: list, b: list) -> float:
    """Sum over frames of the intersections over the sum of the unions (frames where neither has a mask skipped)."""
    inter = union = 0.0
    for ma, mb in zip(a, b, strict=False):
        if ma is None and mb is None:
            continue
        aa, ab = rle_ops.area(ma), rle_ops.area(mb)
        i = 0.0
        if ma is not None and mb is not None and aa and ab:
            j = float(rle_ops.iou_matrix([ma], [mb])[0, 0])
            i = j * (aa + ab) / (1 + j)  # intersection from IoU: j = i / (aa + ab - i)
        inter += i
        union += aa + ab - i
    return inter / union if union > 0 else 0.0


def diff_tracks(old: VideoPrediction, new: VideoPrediction) -> list[TrackChange]:
    def name(p: VideoPrediction, cid: int) -> str:
        return p.categories[cid - 1] if 1 <= cid <= len(p.categories) else f"class {cid}"

    ious = np.array([[video_iou(o.masks, n.masks) for n in new.tracks] for o in old.tracks]).reshape(
        len(old.tracks), len(new.tracks))
    rows, cols = linear_sum_assignment(-ious) if ious.size else ([], [])
    out: list[TrackChange] = []
    matched_old, matched_new = set(), set()
    for r, c in zip(rows, cols, strict=True):
        iou = float(ious[r, c])
        if iou < MATCH_IOU:
            continue
        o, n = old.tracks[r], new.tracks[c]
        matched_old.add(r)
        matched_new.add(c)
        before, after = name(old, o.category_id), name(new, n.category_id)
        if before != after:
            out.append(TrackChange("relabelled", o.id, n.id, iou, f"track {o.id} → {n.id}: {before} → {after} "
                                                                  f"(masks IoU {iou:.2f})"))
        elif iou < SAME_IOU:
            out.append(TrackChange("reshaped", o.id, n.id, iou, f"track {o.id} → {n.id} {after}: masks changed "
                                                                f"(IoU {iou:.2f})"))
        else:
            out.append(TrackChange("same", o.id, n.id, iou, f"track {o.id} → {n.id} {after}: unchanged "
                                                            f"(IoU {iou:.2f})"))
    for r, o in enumerate(old.tracks):
        if r not in matched_old:
            out.append(TrackChange("gone", o.id, None, 0.0, f"track {o.id} {name(old, o.category_id)}: gone"))
    for c, n in enumerate(new.tracks):
        if c not in matched_new:
            out.append(TrackChange("new", None, n.id, 0.0, f"track {n.id} {name(new, n.category_id)}: new"))
    order = {"relabelled": 0, "new": 1, "gone": 2, "reshaped": 3, "same": 4}
    return sorted(out, key=lambda t: (order[t.kind], t.new_id or t.old_id or 0))
