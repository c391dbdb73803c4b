"""COCO RLE of a batch of masks straight from a torch tensor, with the GIL released for the heavy part.

Inference encodes Q masks per frame at the video's size (16 queries at 720p: 15 M pixels a frame).
pycocotools' encode holds the GIL for the whole batch (about 20 ms a frame here), and the engine runs in a
thread of the window's process: the GUI thread, which needs the GIL for every paint, stalled that long. Here
the pixel work is done by torch ops, which release the GIL: two reductions find which rows and columns of
each mask have any pixel (its box), then a few ops run on the pixels of that box only (a small object:
thousands, not a frame's million); numpy handles the run boundaries. The strings are pycocotools' own, byte
for byte (tests/test_mask_encode.py checks it).
"""
from __future__ import annotations

import numpy as np
import torch

from engine.data.masks import RLE, counts_string


def encode_batch(binary: torch.Tensor) -> list[RLE]:
    """(N, H, W) bool (or 0/1) masks, any device -> N compressed RLEs {"size": [H, W], "counts": str}."""
    if binary.dim() != 3:
        raise ValueError(f"encode_batch wants (N, H, W) masks, got shape {tuple(binary.shape)}")
    n, h, w = (int(v) for v in binary.shape)
    size = [h, w]
    if h * w == 0:
        return [{"size": size, "counts": ""} for _ in range(n)]
    b = binary.bool()
    u8 = b.view(torch.uint8)               # amax over bytes is vectorised; any() over bool is 25x slower
    rows_on = u8.amax(dim=2).cpu().numpy()   # (N, H) and (N, W): which rows and columns have a pixel
    cols_on = u8.amax(dim=1).cpu().numpy()
    out = []
    for i in range(n):
        ys = np.flatnonzero(rows_on[i])
        if not ys.size:
            counts = np.array([h * w])
        else:
            xs = np.flatnonzero(cols_on[i])
            y0, x0 = int(ys[0]), int(xs[0])
            counts = box_counts(b[i, y0:int(ys[-1]) + 1, x0:int(xs[-1]) + 1], y0, x0, h, w)
        out.append({"size": size, "counts": counts_string(counts)})
    return out


def box_counts(box: torch.Tensor, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """COCO run lengths of an HxW mask that is zero outside `box` (its pixels at rows y0.., columns x0..).

    COCO runs go down each column, then on to the next column, starting with the background. Each column of
    the box is padded with a zero above and below, so its runs start and end inside it and the changes come
    in (start, end) pairs; two runs that touch across a column break (one ends on the bottom row, the next
    starts on the top row) are one run."""
    p = torch.nn.functional.pad(box.t().to(torch.int8), (1, 1))   # (box columns, rows + 2)
    col, row = torch.nonzero(p[:, 1:] != p[:, :-1], as_tuple=True)   # in (column, row) order: COCO's
    at = ((col + x0) * h + row + y0).cpu().numpy()
    starts, ends = at[0::2], at[1::2]
    apart = ends[:-1] != starts[1:]
    starts, ends = starts[np.r_[True, apart]], ends[np.r_[apart, True]]
    edges = np.empty(2 * starts.size + 2, np.int64)
    edges[0], edges[-1] = 0, h * w
    edges[1:-1:2], edges[2:-1:2] = starts, ends
    counts = np.diff(edges)
    return counts[:-1] if counts[-1] == 0 else counts   # the mask's last pixel set: no empty last run
