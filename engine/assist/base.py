"""The one interface every assist tool follows, shaped like the sam2 package's video predictor.

A session is opened on a video (an `engine.data.video.VideoReader`, or anything with `len()` and `__getitem__`
returning H x W x 3 uint8 RGB). For an object on a frame the caller gives prompts (positive / negative points, a
box, a mask) and gets that frame's mask back at once; `propagate(start, direction, stop)` is a generator of
`(frame, {object_id: mask})`, so the caller shows progress, cancels by simply not asking for the next frame, and
keeps every frame that already came back.

Why the driver lives here and not in each tool: the rules the annotator relies on are the same for every tool and
must not drift between them:
- `locked[obj]` holds frames propagation never overwrites; reaching one ends that object's run (the frames
  beyond it were decided by a human, so the run must not continue through them). Other objects go on.
- a run starts from whatever the object's mask on `start` is: a prompt's answer, an earlier run's output, or a
  mask the caller set; the start frame itself is never yielded (its mask is the source, not an output).
- a new prompt on any frame replaces that frame's mask; a run from there re-computes what follows and every
  other object keeps what it has.
- an object is "lost" after `lost_after` empty frames in a row (SAM 2 can find an object again after an
  occlusion); a tool that cannot recover from an empty mask (flow, GrabCut) stops at the first.

Masks come back as H x W bool arrays; the session keeps every frame's result as COCO RLE (a few hundred bytes per
frame), so a long video's results stay small.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from engine.data import masks as mask_utils
from engine.errors import InputError

NoticeFn = Callable[[str], None]


class FrameSource(Protocol):
    """What a session reads: `len(video)` frames, `video[i]` an H x W x 3 uint8 RGB array."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> np.ndarray: ...


@dataclass
class Prompt:
    """What the user gave for one object on one frame. Points are (x, y) pixels with labels 1 (positive) or 0
    (negative); `box` is (x0, y0, x1, y1) pixels; `mask` an H x W bool array."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return len(self.points) == 0 and self.box is None and self.mask is None

    def merged(self, other: Prompt) -> Prompt:
        """This prompt with `other` added on top (the SAM 2 demo's clear_old_points=False): points accumulate,
        a new box or mask replaces the old one."""
        return Prompt(points=np.concatenate([self.points, other.points]),
                      labels=np.concatenate([self.labels, other.labels]),
                      box=other.box if other.box is not None else self.box,
                      mask=other.mask if other.mask is not None else self.mask)


def make_prompt(points: Iterable | None = None, labels: Iterable | None = None, box: Iterable | None = None,
                mask: np.ndarray | None = None, size: tuple[int, int] | None = None) -> Prompt:
    """Check and normalise prompt arguments; `size` is the frame's (height, width) for range checks."""
    pts = np.asarray([] if points is None else list(points), np.float32).reshape(-1, 2)
    if labels is None:
        labs = np.ones(len(pts), np.int32)
    else:
        labs = np.asarray(list(labels), np.int32).reshape(-1)
    if len(labs) != len(pts):
        raise InputError(None, f"{len(pts)} points but {len(labs)} labels")
    if len(labs) and not np.isin(labs, (0, 1)).all():
        raise InputError(None, "point labels must be 1 (positive) or 0 (negative)")
    bx = None
    if box is not None:
        bx = np.asarray(list(box), np.float32).reshape(-1)
        if bx.shape != (4,) or not (bx[2] > bx[0] and bx[3] > bx[1]):
            raise InputError(None, f"a box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {bx.tolist()}")
    m = None
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if size is not None and m.shape != tuple(size):
            raise InputError(None, f"the mask is {m.shape[1]}x{m.shape[0]}, the video {size[1]}x{size[0]}")
    if size is not None:
        h, w = size
        if len(pts) and ((pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)).any():
            raise InputError(None, f"a point lies outside the {w}x{h} frame")
        if bx is not None and (bx[2] <= 0 or bx[3] <= 0 or bx[0] >= w or bx[1] >= h):
            raise InputError(None, f"the box lies outside the {w}x{h} frame")
    p = Prompt(points=pts, labels=labs, box=bx, mask=m)
    if p.empty:
        raise InputError(None, "a prompt needs points, a box or a mask")
    return p


@dataclass
class AssistConfig:
    """Rules shared by every tool. `lost_after`: empty frames in a row after which an object's run ends (only for
    tools that can find an object again; the others stop at the first empty frame)."""

    lost_after: int = 10


def parse_direction(direction: int | str) -> int:
    if direction in (1, "forward", "+"):
        return 1
    if direction in (-1, "backward", "-"):
        return -1
    raise InputError(None, f"direction must be 'forward' or 'backward', got {direction!r}")


class AssistSession:
    """Base of every tool's session: prompts, results, locks and the propagation driver.

    Subclasses implement `_segment(frame, obj, prompt) -> mask` (answer a prompt) and the run hooks
    `_run_begin(obj, start, d, stop)`, `_run_step(obj, frame, d) -> mask`, `_run_end(obj)`.
    """

    tool: ClassVar[str] = "assist"
    can_recover: ClassVar[bool] = False   # can an object come back after an empty mask?

    def __init__(self, video: FrameSource, config: AssistConfig | None = None, notice: NoticeFn | None = None):
        n = len(video)
        if n <= 0:
            raise InputError(getattr(video, "path", None), "the video has no frames")
        first = np.asarray(video[0])
        if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
            raise InputError(getattr(video, "path", None),
                             f"frames must be H x W x 3 uint8 RGB, got {first.shape} {first.dtype}")
        self.video = video
        self.num_frames = n
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self.config = config or AssistConfig()
        self.notice: NoticeFn = notice or (lambda _msg: None)
        self.locked: dict[int, set[int]] = defaultdict(set)
        self._prompts: dict[int, dict[int, Prompt]] = defaultdict(dict)
        self._results: dict[int, dict[int, dict]] = defaultdict(dict)   # obj -> frame -> RLE
        self._run: Iterator | None = None

    # ---- frames ----------------------------------------------------------------------------------------------
    def frame(self, i: int) -> np.ndarray:
        img = np.asarray(self.video[i])
        if img.shape[:2] != (self.height, self.width):
            raise InputError(getattr(self.video, "path", None),
                             f"frame {i} is {img.shape[1]}x{img.shape[0]}, frame 0 {self.width}x{self.height}")
        return img

    def _check_frame(self, frame: int) -> int:
        if not 0 <= int(frame) < self.num_frames:
            raise InputError(None, f"frame {frame} is outside the video (0..{self.num_frames - 1})")
        return int(frame)

    # ---- prompts ---------------------------------------------------------------------------------------------
    @property
    def objects(self) -> list[int]:
        return sorted(set(self._results) | set(self._prompts))

    def add_prompt(self, frame: int, obj_id: int, *, points: Iterable | None = None, labels: Iterable | None = None,
                   box: Iterable | None = None, mask: np.ndarray | None = None, clear: bool = True) -> np.ndarray:
        """Prompt object `obj_id` on `frame` and return its mask there (H x W bool). With clear=False the points
        are added to the frame's earlier prompt (a new box or mask replaces the old one)."""
        self._idle()
        frame = self._check_frame(frame)
        p = make_prompt(points, labels, box, mask, (self.height, self.width))
        old = self._prompts[obj_id].get(frame)
        if not clear and old is not None:
            p = old.merged(p)
        m = np.asarray(self._segment(frame, obj_id, p), bool)
        self._prompts[obj_id][frame] = p
        self._set_result(obj_id, frame, m)
        return m

    def set_mask(self, frame: int, obj_id: int, mask: np.ndarray) -> np.ndarray:
        """Give the object's mask on a frame (a human edit, an earlier result): the same as a mask prompt."""
        return self.add_prompt(frame, obj_id, mask=mask)

    def clear_prompts(self, frame: int, obj_id: int) -> None:
        """Forget the prompts (and result) of `obj_id` on `frame`: an Esc on a proposal."""
        self._idle()
        self._prompts[obj_id].pop(frame, None)
        self._results[obj_id].pop(frame, None)
        self._forget(frame, obj_id)

    def remove_object(self, obj_id: int) -> None:
        self._idle()
        self._prompts.pop(obj_id, None)
        self._results.pop(obj_id, None)
        self.locked.pop(obj_id, None)
        self._forget(None, obj_id)

    def lock(self, obj_id: int, frames: Iterable[int]) -> None:
        self.locked[obj_id].update(int(f) for f in frames)

    def unlock(self, obj_id: int, frames: Iterable[int]) -> None:
        self.locked[obj_id].difference_update(int(f) for f in frames)

    # ---- results ---------------------------------------------------------------------------------------------
    def mask(self, frame: int, obj_id: int) -> np.ndarray | None:
        """The object's latest mask on `frame`, or None when it has none."""
        rle = self._results.get(obj_id, {}).get(frame)
        return None if rle is None else mask_utils.decode(rle)

    def results(self, obj_id: int) -> dict[int, dict]:
        """frame -> COCO RLE of every mask this session produced (or was given) for the object."""
        return dict(self._results.get(obj_id, {}))

    def _set_result(self, obj_id: int, frame: int, mask: np.ndarray) -> None:
        self._results[obj_id][frame] = mask_utils.encode(mask)

    # ---- propagation -----------------------------------------------------------------------------------------
    def propagate(self, start: int, direction: int | str = "forward", stop: int | None = None,
                  objects: Iterable[int] | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Yield (frame, {object_id: H x W bool mask}) for frames start+d, start+2d, ... up to `stop` (inclusive;
        default: the video's end in that direction). `objects` defaults to every object with a mask on `start`.

        An object drops out of the run on reaching a frame in `locked[obj]` (that frame is not touched), or when
        it is lost; the run ends when no object is left. Stopping the iteration (break, close()) cancels: frames
        already yielded stay in `results()`."""
        self._idle()
        start = self._check_frame(start)
        d = parse_direction(direction)
        last = self.num_frames - 1 if d > 0 else 0
        stop = last if stop is None else self._check_frame(stop)
        if (stop - start) * d < 0:
            raise InputError(None, f"stop frame {stop} lies {'before' if d > 0 else 'after'} start frame {start}")
        objs = [o for o in (self.objects if objects is None else objects) if start in self._results.get(o, {})]
        if objects is not None:
            missing = [o for o in objects if o not in objs]
            if missing:
                raise InputError(None, f"object(s) {missing} have no mask on frame {start}: prompt them first")
        self._run = self._drive(start, d, stop, objs)
        return self._run

    def _drive(self, start: int, d: int, stop: int, objs: list[int]) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        active: list[int] = []
        empty_run: dict[int, int] = {}
        try:
            for o in objs:
                self._run_begin(o, start, d, stop)
                active.append(o)
                empty_run[o] = 0
            limit = self.config.lost_after if self.can_recover else 1
            for f in range(start + d, stop + d, d):
                if not active:
                    break
                out: dict[int, np.ndarray] = {}
                for o in list(active):
                    if f in self.locked.get(o, ()):
                        active.remove(o)
                        self._run_end(o)
                        continue
                    m = np.asarray(self._run_step(o, f, d), bool)
                    self._set_result(o, f, m)
                    self._prompts[o].pop(f, None)     # the frame's mask is now the run's, not the old prompt's
                    out[o] = m
                    empty_run[o] = 0 if m.any() else empty_run[o] + 1
                    if empty_run[o] >= limit:
                        active.remove(o)
                        self._run_end(o)
                if out:
                    yield f, out
        finally:
            for o in active:
                self._run_end(o)
            self._run = None

    def _idle(self) -> None:
        """A prompt, lock-free edit or new run while an earlier run is suspended cancels that run (its frames
        stay): the model state must not change under a run that is half way."""
        run, self._run = self._run, None
        if run is not None:
            run.close()

    def close(self) -> None:
        """Free what the session holds (model state, caches); cancels a suspended run."""
        self._idle()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- what a tool implements ------------------------------------------------------------------------------
    def _segment(self, frame: int, obj_id: int, prompt: Prompt) -> np.ndarray:
        raise NotImplementedError

    def _forget(self, frame: int | None, obj_id: int) -> None:
        """Drop tool state of obj_id on `frame` (None: everywhere)."""

    def _run_begin(self, obj_id: int, start: int, d: int, stop: int) -> None:
        raise NotImplementedError

    def _run_step(self, obj_id: int, frame: int, d: int) -> np.ndarray:
        raise NotImplementedError

    def _run_end(self, obj_id: int) -> None:
        """Called once per object that began a run, whether it finished, stopped or was cancelled."""
