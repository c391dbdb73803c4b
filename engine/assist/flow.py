"""Mask propagation by dense optical flow (OpenCV DIS), with a refinement step. No model, no checkpoint.

Each step computes the flow from the new frame back to the previous one (for every pixel of the new frame: where
it was before), pulls the previous mask through it with `cv2.remap` and thresholds at one half. Warping alone
drifts: edges blur a little every frame and errors add up, so a refinement step re-decides the warped mask's
edge on the new frame's own pixels:
- "grabcut" (default): GrabCut in a band around the warped mask (`engine.assist.grabcut.refine_band`);
- "morph": an opening + closing, the largest component, holes filled (cheap, for large videos);
- "none": the warped mask as is.

The flow is computed on frames scaled so the longer side is at most `max_side` pixels (DIS at 640 px takes tens
of milliseconds), then scaled back; the mask is warped at full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.assist.base import AssistConfig, AssistSession, FrameSource, NoticeFn, Prompt
from engine.assist.grabcut import GrabCutConfig, _largest_components, grabcut_prompt, refine_band
from engine.errors import InputError

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


@dataclass
class FlowConfig:
    """`preset`: DIS preset (ultrafast / fast / medium). `max_side`: flow is computed at this size or below.
    `refine`: grabcut / morph / none (see the module docstring). `grabcut`: settings of prompts and of the
    GrabCut refinement."""

    preset: str = "medium"
    max_side: int = 640
    refine: str = "grabcut"
    grabcut: GrabCutConfig = field(default_factory=GrabCutConfig)


class DenseFlow:
    """Backward flow between two RGB frames with OpenCV's DIS, on a downscaled copy."""

    def __init__(self, preset: str = "medium", max_side: int = 640):
        if preset not in _DIS_PRESETS:
            raise InputError(None, f"flow preset must be one of {sorted(_DIS_PRESETS)}, got {preset!r}")
        self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
        self.max_side = int(max_side)
        self._gray_cache: dict[int, np.ndarray] = {}    # the last two frames: each step reuses one

    def _gray(self, image: np.ndarray, key: int | None) -> np.ndarray:
        if key is not None and key in self._gray_cache:
            return self._gray_cache[key]
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = g.shape
        s = min(1.0, self.max_side / max(h, w))
        if s < 1.0:
            g = cv2.resize(g, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        if key is not None:
            if len(self._gray_cache) >= 2:
                self._gray_cache.pop(next(iter(self._gray_cache)))
            self._gray_cache[key] = g
        return g

    def backward(self, new: np.ndarray, old: np.ndarray, new_key: int | None = None,
                 old_key: int | None = None) -> np.ndarray:
        """H x W x 2 float32: for each pixel (x, y) of `new`, the offset to where it was in `old`."""
        h, w = new.shape[:2]
        gn, go = self._gray(new, new_key), self._gray(old, old_key)
        flow = self._dis.calc(gn, go, None)
        if flow.shape[:2] != (h, w):
            sx, sy = w / flow.shape[1], h / flow.shape[0]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= sx
            flow[..., 1] *= sy
        return flow


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Pull `mask` (on the old frame) onto the new frame through a backward flow; threshold at 0.5."""
    h, w = mask.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    warped = cv2.remap(mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)
    return warped >= 0.5


def morph_cleanup(mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    return _largest_components(m.astype(bool), mask)


class FlowSession(AssistSession):
    """GrabCut answers prompts; propagation warps the previous mask by dense optical flow and refines it."""

    tool = "flow"

    def __init__(self, video: FrameSource, config: FlowConfig | None = None, assist: AssistConfig | None = None,
                 notice: NoticeFn | None = None):
        super().__init__(video, assist, notice)
        self.flow_config = cfg = config or FlowConfig()
        if cfg.refine not in ("grabcut", "morph", "none"):
            raise InputError(None, f"flow refinement must be grabcut, morph or none, got {cfg.refine!r}")
        self._flow = DenseFlow(cfg.preset, cfg.max_side)
        self._prev: dict[int, tuple[int, np.ndarray]] = {}
        self._frames: dict[int, np.ndarray] = {}    # the two frames of the current step

    def _segment(self, frame: int, obj_id: int, prompt: Prompt) -> np.ndarray:
        return grabcut_prompt(self.frame(frame), prompt, self.flow_config.grabcut)

    def _get(self, i: int) -> np.ndarray:
        img = self._frames.get(i)
        if img is None:
            img = self.frame(i)
            if len(self._frames) >= 2:
                self._frames.pop(next(iter(self._frames)))
            self._frames[i] = img
        return img

    def _run_begin(self, obj_id: int, start: int, d: int, stop: int) -> None:
        self._prev[obj_id] = (start, self.mask(start, obj_id))

    def _run_step(self, obj_id: int, frame: int, d: int) -> np.ndarray:
        prev_frame, prev_mask = self._prev[obj_id]
        new, old = self._get(frame), self._get(prev_frame)
        flow = self._flow_between(frame, prev_frame, new, old)
        m = warp_mask(prev_mask, flow)
        refine = self.flow_config.refine
        if refine == "grabcut":
            m = refine_band(new, m, self.flow_config.grabcut)
        elif refine == "morph":
            m = morph_cleanup(m)
        self._prev[obj_id] = (frame, m)
        return m

    def _flow_between(self, frame: int, prev_frame: int, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """One flow per frame pair, shared by every object of the run."""
        key = (frame, prev_frame)
        cached = getattr(self, "_flow_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        flow = self._flow.backward(new, old, frame, prev_frame)
        self._flow_cache = (key, flow)
        return flow

    def _run_end(self, obj_id: int) -> None:
        self._prev.pop(obj_id, None)
        if not self._prev:
            self._frames.clear()
            self._flow_cache = None
