"""GrabCut (OpenCV `cv2.grabCut`): a mask from a box or clicks with no model and no checkpoint.

Why GrabCut: it needs nothing but the frame, runs in tens of milliseconds on a crop, and a box around an object
that differs in colour from its surroundings is usually enough. It is the fallback when no SAM 2 checkpoint is
configured, and the refinement step of flow propagation (`refine_band`).

Propagation with the GrabCut tool re-runs GrabCut on each next frame seeded by the previous frame's mask: inside
the eroded mask "probably object", a band around it "probably background", further out "background". It follows
objects that move less than the band per frame; flow propagation (`engine.assist.flow`) follows faster motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.assist.base import AssistConfig, AssistSession, FrameSource, NoticeFn, Prompt


@dataclass
class GrabCutConfig:
    """`iterations`: GrabCut EM rounds for a prompt (propagation uses `track_iterations`). `margin`: the crop
    around the box/mask that GrabCut sees, as a fraction of the box size (its background colours come from
    there). `band`: width in pixels (at least; grows with the object, `band_frac` of its size) of the uncertain
    ring around a seed mask. `click_radius`: drawn radius of a click, fraction of min(H, W)."""

    iterations: int = 5
    track_iterations: int = 3
    margin: float = 0.5
    band: int = 4
    band_frac: float = 0.08
    click_radius: float = 0.012
    points_only_extent: float = 0.12   # with clicks and no box: the object is assumed within this fraction of
                                       # min(H, W) around the positive clicks


def _crop_box(x0: float, y0: float, x1: float, y1: float, margin: float, w: int, h: int) -> tuple[int, ...]:
    mx, my = (x1 - x0) * margin + 4, (y1 - y0) * margin + 4
    return (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my))))


def _largest_components(mask: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """The connected component(s) that overlap `keep` most (default: the largest one), holes filled."""
    m = mask.astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    if keep is not None and keep.any():
        score = np.bincount(lab[keep], minlength=n)[1:]
        if score.max() == 0:
            score = stats[1:, cv2.CC_STAT_AREA]
    else:
        score = stats[1:, cv2.CC_STAT_AREA]
    best = int(np.argmax(score)) + 1
    out = (lab == best).astype(np.uint8)
    return fill_holes(out.astype(bool))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(m)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out.astype(bool)


def _run_grabcut(image: np.ndarray, gc: np.ndarray, iterations: int, rect=None) -> np.ndarray:
    """gc: GC_* labels (modified in place); returns the foreground mask. A label map without both foreground and
    background candidates cannot start GrabCut's colour models: then the probable-foreground region is returned."""
    fg_possible = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
    bg_possible = np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD))
    if rect is None and (not fg_possible.any() or not bg_possible.any()):
        return fg_possible
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    img = np.ascontiguousarray(image)
    try:
        if rect is not None:
            cv2.grabCut(img, gc, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
        else:
            cv2.grabCut(img, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        # too few pixels of one kind to fit a 5-component colour model: keep the seed
        return fg_possible
    return np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))


def grabcut_prompt(image: np.ndarray, prompt: Prompt, config: GrabCutConfig | None = None) -> np.ndarray:
    """H x W bool mask of the object a prompt points at: a box (GrabCut initialised with the rectangle), clicks
    (positive ones forced to the object, negative ones to the background) or both; a mask prompt is returned
    unchanged (it is the user's own mask)."""
    cfg = config or GrabCutConfig()
    if prompt.mask is not None and len(prompt.points) == 0 and prompt.box is None:
        return prompt.mask.copy()
    h, w = image.shape[:2]
    pos = prompt.points[prompt.labels == 1]
    neg = prompt.points[prompt.labels == 0]
    if prompt.box is not None:
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
    elif len(pos):
        r = cfg.points_only_extent * min(h, w)
        x0, y0 = pos.min(0) - r
        x1, y1 = pos.max(0) + r
    else:
        return np.zeros((h, w), bool)      # only negative clicks: nothing is the object
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    cx0, cy0, cx1, cy1 = _crop_box(x0, y0, x1, y1, cfg.margin, w, h)
    crop = image[cy0:cy1, cx0:cx1]
    ch, cw = crop.shape[:2]
    rect = (int(x0) - cx0, int(y0) - cy0, max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0))))
    rect = (rect[0], rect[1], min(rect[2], cw - rect[0]), min(rect[3], ch - rect[1]))
    gc = np.zeros((ch, cw), np.uint8)
    if prompt.mask is not None:     # mask + clicks: start from the mask
        m = prompt.mask[cy0:cy1, cx0:cx1]
        gc[:] = cv2.GC_BGD
        gc[m] = cv2.GC_PR_FGD
        box_region = np.zeros_like(m)
        box_region[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = True
        gc[box_region & ~m] = cv2.GC_PR_BGD
        fg = _run_grabcut(crop, gc, 1)
    elif rect[2] * rect[3] < cw * ch:     # some background left around the box to learn its colours from
        fg = _run_grabcut(crop, gc, cfg.iterations, rect=rect)
    else:                                 # the box is the whole frame: no background to learn from
        fg = np.ones((ch, cw), bool)
    if len(pos) or len(neg):
        rad = max(2, int(round(cfg.click_radius * min(h, w))))
        gc = np.where(fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        if prompt.box is not None:      # outside the box is background
            outside = np.ones((ch, cw), bool)
            outside[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = False
            gc[outside] = cv2.GC_BGD
        for (x, y) in pos:
            cv2.circle(gc, (int(x) - cx0, int(y) - cy0), rad, int(cv2.GC_FGD), -1)
        for (x, y) in neg:
            cv2.circle(gc, (int(x) - cx0, int(y) - cy0), rad, int(cv2.GC_BGD), -1)
        fg = _run_grabcut(crop, gc, cfg.iterations)
    keep = None
    if len(pos):
        keep = np.zeros((ch, cw), bool)
        for (x, y) in pos:
            keep[min(ch - 1, max(0, int(y) - cy0)), min(cw - 1, max(0, int(x) - cx0))] = True
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = _largest_components(fg, keep)
    return out


def refine_band(image: np.ndarray, prior: np.ndarray, config: GrabCutConfig | None = None,
                iterations: int | None = None) -> np.ndarray:
    """Re-segment `image` around a mask that is roughly right (the previous frame's mask, a flow-warped mask):
    GrabCut decides a band of pixels around the mask's edge, the eroded core stays object, the far outside
    stays background. Returns H x W bool; an empty prior gives an empty mask."""
    cfg = config or GrabCutConfig()
    h, w = prior.shape
    if not prior.any():
        return np.zeros((h, w), bool)
    ys, xs = np.nonzero(prior)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    size = max(x1 - x0, y1 - y0)
    band = max(cfg.band, int(round(cfg.band_frac * size)))
    cx0, cy0, cx1, cy1 = _crop_box(x0 - band, y0 - band, x1 + band, y1 + band, 0.25, w, h)
    m = prior[cy0:cy1, cx0:cx1].astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    core = cv2.erode(m, k).astype(bool)
    near = cv2.dilate(m, k).astype(bool)
    gc = np.full(m.shape, cv2.GC_BGD, np.uint8)
    gc[near] = cv2.GC_PR_BGD
    gc[m.astype(bool)] = cv2.GC_PR_FGD
    gc[core] = cv2.GC_FGD
    fg = _run_grabcut(image[cy0:cy1, cx0:cx1], gc, cfg.track_iterations if iterations is None else iterations)
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = _largest_components(fg, m.astype(bool))
    return out


class GrabCutSession(AssistSession):
    """GrabCut for prompts; propagation re-runs GrabCut on each frame seeded by the previous frame's mask."""

    tool = "grabcut"

    def __init__(self, video: FrameSource, config: GrabCutConfig | None = None,
                 assist: AssistConfig | None = None, notice: NoticeFn | None = None):
        super().__init__(video, assist, notice)
        self.gc_config = config or GrabCutConfig()
        self._prev: dict[int, np.ndarray] = {}

    def _segment(self, frame: int, obj_id: int, prompt: Prompt) -> np.ndarray:
        return grabcut_prompt(self.frame(frame), prompt, self.gc_config)

    def _run_begin(self, obj_id: int, start: int, d: int, stop: int) -> None:
        self._prev[obj_id] = self.mask(start, obj_id)

    def _run_step(self, obj_id: int, frame: int, d: int) -> np.ndarray:
        m = refine_band(self.frame(frame), self._prev[obj_id], self.gc_config)
        self._prev[obj_id] = m
        return m

    def _run_end(self, obj_id: int) -> None:
        self._prev.pop(obj_id, None)
