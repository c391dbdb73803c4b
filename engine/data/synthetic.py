"""Procedural synthetic VIS benchmark: shapes that move, spin, grow, wobble, enter, leave and hide.

Nothing can be downloaded where this project is built and tested, so the project carries its own benchmark.
It exercises what VIS models find hard: the class is given by the outline only (colour and texture are drawn
independently), several instances of one class look the same within a video (identity must come from motion),
instances occlude each other partially and fully for several frames, appear mid-video and leave the frame, and
the camera shakes. Ground truth is exact: the label map is painted with the very masks used to paint the
pixels, back to front, so each instance's visible mask is its drawn mask minus the masks of those in front.

Everything is seeded: `generate_video(config, seed)` is a pure function of its arguments, and video i of a
dataset is generated from `video_seed(seed, i)`, so it does not depend on how many videos are written.
"""
from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.data import masks as mask_utils
from engine.data.synthetic_shapes import (
    CATEGORY_NAMES,
    EXTENT,
    PATCH,
    SHAPES,
    TEXTURES,
    background,
    flat_patch,
    random_colour,
    texture_patch,
)
from engine.errors import Cancelled, InputError
from engine.progress import CancelFn, ProgressFn

__all__ = ["CATEGORY_NAMES", "PRESETS", "SynthConfig", "SynthInstance", "SynthVideo", "generate_video",
           "video_seed", "write_dataset", "write_mp4"]


@dataclass(frozen=True)
class SynthConfig:
    """Ranges are inclusive (lo, hi). Lengths are in units of min(width, height), speeds in those units per
    frame, probabilities per instance unless said otherwise."""

    name: str = "default"
    frames: tuple[int, int] = (10, 36)
    instances: tuple[int, int] = (1, 6)
    radius: tuple[float, float] = (0.07, 0.16)      # shape radius
    speed: tuple[float, float] = (0.005, 0.03)
    turn_prob: float = 0.05                          # per frame: new heading and speed
    rotation: float = 4.0                            # max spin, degrees per frame
    scale_ratio: float = 1.5                         # max growth / shrink factor over a scale cycle
    wobble: float = 0.06                             # anisotropic scale wobble amplitude (slight deformation)
    lookalike_prob: float = 0.3                      # copies the class and look of an earlier instance
    late_entry_prob: float = 0.25                    # instance appears mid-video (from an edge or in place)
    exit_prob: float = 0.2                           # instance leaves the frame (or vanishes) before the end
    reenter_prob: float = 0.0                        # instance leaves the frame for a while, then comes back
    chase_prob: float = 0.15                         # steers onto an earlier instance for a while
    hide_prob: float = 0.6                           # a chaser is smaller and behind its target
    shake: float = 1.5                               # camera shake, pixels (std of the per-frame kick)
    blur_prob: float = 0.3                           # probability a video is slightly blurred
    noise: float = 4.0                               # max std of additive pixel noise
    jpeg_quality: tuple[int, int] = (75, 95)
    textures: tuple[str, ...] = TEXTURES
    backgrounds: bool = True                         # False: black background (for exactness tests)


PRESETS: dict[str, SynthConfig] = {
    "default": SynthConfig(),
    "hard": SynthConfig(
        name="hard", frames=(20, 60), instances=(6, 15), radius=(0.05, 0.22), speed=(0.02, 0.07),
        turn_prob=0.12, rotation=10.0, scale_ratio=2.0, wobble=0.12, lookalike_prob=0.7, late_entry_prob=0.4,
        exit_prob=0.35, reenter_prob=0.2, chase_prob=0.55, hide_prob=0.7, shake=4.0, blur_prob=0.5, noise=8.0,
        jpeg_quality=(40, 80)),
    "long": SynthConfig(
        name="long", frames=(100, 400), instances=(2, 8), radius=(0.06, 0.16), speed=(0.005, 0.04),
        turn_prob=0.03, rotation=5.0, scale_ratio=1.6, wobble=0.08, lookalike_prob=0.5, late_entry_prob=0.5,
        exit_prob=0.35, reenter_prob=0.4, chase_prob=0.45, shake=2.0, blur_prob=0.3, noise=5.0,
        jpeg_quality=(60, 90)),
}


@dataclass
class SynthInstance:
    category_id: int                  # 1..8, see CATEGORY_NAMES
    z: int                            # paint order: 0 is painted first (furthest back)
    lookalike_of: int | None = None   # index of an instance with the same class and look, if any
    chases: int | None = None         # index of the instance it steers onto for a while, if any
    colour: tuple[int, int, int] | None = None  # flat colour when textures == ("flat",), else None


@dataclass
class SynthVideo:
    """One generated video. Visible masks of different instances are disjoint, so one label map per frame
    holds all of them exactly: `labels[t] == k + 1` is instance k's visible mask on frame t (0: none)."""

    frames: np.ndarray                # T x H x W x 3 uint8 RGB (before JPEG)
    labels: np.ndarray                # T x H x W uint8
    instances: list[SynthInstance]    # creation order; instances never visible are dropped
    visible_area: np.ndarray          # N x T int: visible pixels
    amodal_area: np.ndarray           # N x T int: drawn pixels inside the frame, before occlusion
    boxes: np.ndarray                 # N x T x 4 int: x0, y0, x1, y1 (exclusive) bounding the drawn pixels
    jpeg_quality: int = 90
    seed: int = 0
    amodal: list[list[tuple[int, int, np.ndarray] | None]] | None = field(default=None, repr=False)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def mask(self, k: int, t: int) -> np.ndarray:
        return self.labels[t] == k + 1

    def masks(self, k: int) -> np.ndarray:
        """T x H x W bool visible masks of instance k."""
        return self.labels == k + 1

    def rles(self, k: int) -> list[dict | None]:
        """Per-frame RLE of instance k; None where it is out of frame, fully hidden or not yet/no longer there
        (the YTVIS convention for absence)."""
        out: list[dict | None] = [None] * self.num_frames
        ts = np.flatnonzero(self.visible_area[k] > 0)
        if not len(ts):
            return out
        # pycocotools wants H x W x N in Fortran order, i.e. N x W x H in C order; only the drawn box of each
        # frame can hold the instance, so compare there and leave the rest zero
        w, h = self.size
        stack = np.zeros((len(ts), w, h), np.uint8)
        for i, t in enumerate(ts):
            x0, y0, x1, y1 = self.boxes[k, t]
            stack[i, x0:x1, y0:y1] = (self.labels[t, y0:y1, x0:x1] == k + 1).T
        for t, rle in zip(ts, mask_utils.encode_stack(stack.transpose(0, 2, 1)), strict=True):
            out[int(t)] = rle
        return out

    def all_rles(self) -> list[list[dict | None]]:
        return [self.rles(k) for k in range(len(self.instances))]

    def amodal_mask(self, k: int, t: int) -> np.ndarray:
        """Full-frame drawn mask of instance k on frame t before occlusion (needs keep_amodal=True)."""
        if self.amodal is None:
            raise ValueError("generate the video with keep_amodal=True to keep drawn masks")
        w, h = self.size
        out = np.zeros((h, w), dtype=bool)
        entry = self.amodal[k][t]
        if entry is not None:
            x0, y0, m = entry
            out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        return out


def video_seed(seed: int, index: int) -> int:
    """Seed of video `index` in a dataset of seed `seed`, independent of how many videos there are."""
    if seed < 0 or index < 0:
        raise InputError(None, f"seed and index must be non-negative, got seed={seed}, index={index}")
    return int(np.random.SeedSequence(entropy=seed, spawn_key=(index,)).generate_state(1, np.uint64)[0])


# ------------------------------------------------------------------------------------------------ motion
_IN, _OUT, _BACK = 0, 1, 2  # bounce inside the frame / head out of it / head back in (no bounce until inside)


@dataclass
class _Track:
    category_id: int
    patch: np.ndarray
    colour: tuple[int, int, int] | None
    r0: float
    zval: float
    lookalike_of: int | None = None
    chases: int | None = None
    alive: np.ndarray | None = None   # T bool
    pos: np.ndarray | None = None     # T x 2 float, world (pre-shake) pixel coordinates
    radius: np.ndarray | None = None  # T
    angle: np.ndarray | None = None   # T radians
    sx: np.ndarray | None = None      # T anisotropic wobble factors
    sy: np.ndarray | None = None


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _edge_start(rng: np.random.Generator, w: int, h: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    """A point just outside a random edge and the inward direction."""
    side = int(rng.integers(4))
    if side == 0:
        p, d = np.array([-r, rng.uniform(0, h)]), np.array([1.0, 0.0])
    elif side == 1:
        p, d = np.array([w + r, rng.uniform(0, h)]), np.array([-1.0, 0.0])
    elif side == 2:
        p, d = np.array([rng.uniform(0, w), -r]), np.array([0.0, 1.0])
    else:
        p, d = np.array([rng.uniform(0, w), h + r]), np.array([0.0, -1.0])
    return p, _unit(d + rng.normal(0, 0.3, 2))


def _shape_params(rng: np.random.Generator, cfg: SynthConfig, tr: _Track, n: int) -> None:
    t = np.arange(n, dtype=np.float64)
    ratio = np.exp(rng.uniform(0, np.log(cfg.scale_ratio)))
    period = rng.uniform(0.5, 2.0) * max(n, 20)
    tr.radius = tr.r0 * ratio ** np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    a = rng.uniform(0, cfg.wobble)
    wob = a * np.sin(2 * np.pi * t / rng.uniform(8, 30) + rng.uniform(0, 2 * np.pi))
    tr.sx, tr.sy = 1 + wob, 1 - wob
    spin = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
    flips = np.where(rng.random(n) < 0.03, -1.0, 1.0).cumprod()
    tr.angle = rng.uniform(0, 2 * np.pi) + np.cumsum(spin * flips)


def _simulate(rng: np.random.Generator, cfg: SynthConfig, tr: _Track, tracks: list[_Track], n: int,
              w: int, h: int, unit: float) -> None:
    """Fill tr.pos and tr.alive: smooth motion with heading changes, bounces, entries, exits and chasing."""
    lo, hi = cfg.speed[0] * unit, cfg.speed[1] * unit
    late = n >= 6 and rng.random() < cfg.late_entry_prob
    t0 = int(rng.integers(1, max(2, int(n * 0.6)))) if late else 0
    events: dict[int, int] = {}
    vanish = n
    if rng.random() < cfg.exit_prob and n - t0 >= 6:
        t_exit = int(rng.integers(t0 + (n - t0) // 3, n))
        if rng.random() < 0.25:
            vanish = t_exit
        else:
            events[t_exit] = _OUT
    if rng.random() < cfg.reenter_prob and n - t0 >= 30:
        a = int(rng.integers(t0 + 5, n - 20))
        events.setdefault(a, _OUT)
        events.setdefault(a + int(rng.integers(8, 20)), _BACK)
    chase_window = (0, 0)
    if tr.chases is not None:
        other = tracks[tr.chases]
        span = np.flatnonzero(other.alive[t0:vanish]) + t0
        if len(span) >= 6:
            a = int(rng.integers(span[0], span[-1] - 4))
            chase_window = (a, min(int(span[-1]) + 1, a + int(rng.integers(6, 20))))
        else:
            tr.chases = None

    speed = rng.uniform(lo, hi)
    r = float(tr.radius[t0])
    if late and rng.random() < 0.6 or (not late and rng.random() < 0.1):
        pos, d = _edge_start(rng, w, h, r)
        mode = _BACK
        target = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
        vel = _unit(0.5 * d + 0.5 * _unit(target - pos)) * max(speed, lo + 0.3 * (hi - lo))
    else:
        pos = np.array([rng.uniform(r, max(r + 1, w - r)), rng.uniform(r, max(r + 1, h - r))])
        mode = _IN
        target = pos
        vel = _unit(rng.normal(0, 1, 2)) * speed
    alive = np.zeros(n, dtype=bool)
    alive[t0:vanish] = True
    out = np.zeros((n, 2))
    out[:t0] = pos
    turns = rng.random(n) < cfg.turn_prob
    turn_angles = rng.normal(0, 1.0, n)
    turn_speeds = np.exp(rng.normal(0, 0.5, n))
    targets = rng.uniform(0.2, 0.8, (n, 2)) * (w, h)
    for t in range(t0, n):
        new_mode = events.get(t)
        if new_mode == _OUT:
            mode = _OUT
            heading = _unit(pos - (w / 2, h / 2)) + rng.normal(0, 0.3, 2)
            vel = _unit(heading) * max(np.hypot(*vel), 0.5 * (lo + hi))
        elif new_mode == _BACK:
            mode, target = _BACK, targets[t]
        r = float(tr.radius[t])
        if mode == _IN and turns[t]:
            c, s = np.cos(turn_angles[t]), np.sin(turn_angles[t])
            vel = np.array([c * vel[0] - s * vel[1], s * vel[0] + c * vel[1]])
            vel = _unit(vel) * np.clip(np.hypot(*vel) * turn_speeds[t], lo, hi)
        if chase_window[0] <= t < chase_window[1]:
            pull = tracks[tr.chases].pos[t] - pos
            norm = np.hypot(*pull)
            if norm > 1.5 * hi:
                pull *= 1.5 * hi / norm
            vel = 0.4 * vel + 0.6 * pull
        elif mode == _BACK:
            vel = 0.7 * vel + 0.3 * _unit(target - pos) * max(np.hypot(*vel), lo + 0.3 * (hi - lo))
        pos = pos + vel
        if mode == _IN:
            for i, size in ((0, w), (1, h)):
                lo_b, hi_b = min(r, size / 2), max(size - r, size / 2)
                if pos[i] < lo_b and vel[i] < 0:
                    pos[i], vel[i] = 2 * lo_b - pos[i], -vel[i]
                elif pos[i] > hi_b and vel[i] > 0:
                    pos[i], vel[i] = 2 * hi_b - pos[i], -vel[i]
        elif mode == _BACK and r <= pos[0] <= w - r and r <= pos[1] <= h - r:
            mode = _IN
        out[t] = pos
    tr.pos, tr.alive = out, alive


def _make_tracks(rng: np.random.Generator, cfg: SynthConfig, n: int, w: int, h: int) -> list[_Track]:
    unit = float(min(w, h))
    count = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    flat = tuple(cfg.textures) == ("flat",)
    cats = np.concatenate([rng.permutation(len(CATEGORY_NAMES)) + 1 for _ in range(count // 8 + 1)])
    tracks: list[_Track] = []
    for i in range(count):
        lookalike = None
        if i > 0 and not flat and rng.random() < cfg.lookalike_prob:
            lookalike = int(rng.integers(i))
        if lookalike is not None:
            src = tracks[lookalike]
            tr = _Track(src.category_id, src.patch, None, src.r0 * rng.uniform(0.85, 1.15), rng.random(),
                        lookalike_of=lookalike)
        else:
            colour = None
            if flat:
                c = random_colour(rng).astype(np.uint8)
                colour = (int(c[0]), int(c[1]), int(c[2]))
                patch = flat_patch(c)
            else:
                patch = texture_patch(rng, cfg.textures)
            tr = _Track(int(cats[i]), patch, colour, rng.uniform(*cfg.radius) * unit, rng.random())
        if i > 0 and rng.random() < cfg.chase_prob:
            # chase a look-alike preferably: two identical shapes crossing is the hardest case for identity
            tr.chases = lookalike if lookalike is not None else int(rng.integers(i))
            target = tracks[tr.chases]
            if rng.random() < cfg.hide_prob:
                tr.r0 = min(tr.r0, target.r0 * rng.uniform(0.4, 0.75))
                tr.zval = target.zval - 1e-3 * rng.uniform(0.1, 1)
            else:
                tr.zval = target.zval + 1e-3 * rng.uniform(0.1, 1)
        _shape_params(rng, cfg, tr, n)
        _simulate(rng, cfg, tr, tracks, n, w, h, unit)
        tracks.append(tr)
    return tracks


# --------------------------------------------------------------------------------------------- rendering
def _shake(rng: np.random.Generator, cfg: SynthConfig, n: int) -> tuple[np.ndarray, int]:
    margin = int(np.ceil(3 * cfg.shake))
    off = np.zeros((n, 2))
    kicks = rng.normal(0, cfg.shake, (n, 2))
    for t in range(1, n):
        off[t] = 0.5 * off[t - 1] + kicks[t]
    return np.clip(np.rint(off), -margin, margin).astype(int), margin


def _render(rng: np.random.Generator, cfg: SynthConfig, tracks: list[_Track], n: int, w: int, h: int,
            keep_amodal: bool):
    shake, m = _shake(rng, cfg, n)
    if cfg.backgrounds:
        bg = background(rng, w + 2 * m, h + 2 * m)
    else:
        bg = np.zeros((h + 2 * m, w + 2 * m, 3), np.uint8)
    blur = rng.uniform(0.5, 1.2) if rng.random() < cfg.blur_prob else 0.0
    sigma = rng.uniform(0, cfg.noise)
    nm = 8  # noise field margin: each frame takes a shifted crop of one field
    noise_pos = noise_neg = None
    noise_off = rng.integers(0, 2 * nm + 1, (n, 2))
    if sigma > 0.5:
        field_ = rng.normal(0, sigma, (h + 2 * nm, w + 2 * nm, 3)).astype(np.float32)
        noise_pos = np.clip(field_, 0, 255).astype(np.uint8)
        noise_neg = np.clip(-field_, 0, 255).astype(np.uint8)

    num = len(tracks)
    order = sorted(range(num), key=lambda k: tracks[k].zval)
    frames = np.empty((n, h, w, 3), np.uint8)
    labels = np.zeros((n, h, w), np.uint8)
    amodal_area = np.zeros((num, n), np.int64)
    visible_area = np.zeros((num, n), np.int64)
    draw_boxes = np.zeros((num, n, 4), np.int32)
    amodal = [[None] * n for _ in range(num)] if keep_amodal else None
    k_patch = 2 * EXTENT / PATCH
    c_patch = (PATCH - 1) / 2
    boxes: list[tuple[int, int, int, int, int]] = []
    for t in range(n):
        ox, oy = shake[t]
        f = frames[t]
        f[:] = bg[m + oy:m + oy + h, m + ox:m + ox + w]
        lab = labels[t]
        for k in order:
            tr = tracks[k]
            if not tr.alive[t]:
                continue
            r, a = tr.radius[t], tr.angle[t]
            c, s = np.cos(a), np.sin(a)
            A = np.array([[c * r * tr.sx[t], -s * r * tr.sy[t]], [s * r * tr.sx[t], c * r * tr.sy[t]]])
            centre = tr.pos[t] - (ox, oy)
            outer, hole = SHAPES[tr.category_id]
            v = outer @ A.T + centre
            x0, y0 = max(int(np.floor(v[:, 0].min())) - 1, 0), max(int(np.floor(v[:, 1].min())) - 1, 0)
            x1, y1 = min(int(np.ceil(v[:, 0].max())) + 2, w), min(int(np.ceil(v[:, 1].max())) + 2, h)
            if x1 <= x0 or y1 <= y0:
                continue
            origin = np.array([x0, y0])
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.rint((v - origin) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            if hole is not None:
                vh = hole @ A.T + centre
                cv2.fillPoly(mask, [np.rint((vh - origin) * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
            area = cv2.countNonZero(mask)
            if area == 0:
                continue
            amodal_area[k, t] = area
            draw_boxes[k, t] = (x0, y0, x1, y1)
            M = np.empty((2, 3))
            M[:, :2] = A * k_patch
            M[:, 2] = centre - origin - M[:, :2] @ (c_patch, c_patch)
            tex = cv2.warpAffine(tr.patch, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
            mb = mask.view(bool)
            cv2.copyTo(tex, mask, f[y0:y1, x0:x1])  # in place into the frame view, 20x faster than numpy here
            lab[y0:y1, x0:x1][mb] = k + 1
            boxes.append((k, y0, y1, x0, x1))
            if keep_amodal:
                amodal[k][t] = (x0, y0, mb.copy())
        # visible pixels lie inside the drawn box; counting there beats a full-frame bincount
        for k, y0, y1, x0, x1 in boxes:
            visible_area[k, t] = cv2.countNonZero(cv2.compare(lab[y0:y1, x0:x1], k + 1, cv2.CMP_EQ))
        boxes.clear()
        if blur > 0:
            cv2.GaussianBlur(f, (0, 0), blur, dst=f)
        if noise_pos is not None:
            nx, ny = noise_off[t]
            cv2.add(f, noise_pos[ny:ny + h, nx:nx + w], dst=f)
            cv2.subtract(f, noise_neg[ny:ny + h, nx:nx + w], dst=f)
    return frames, labels, visible_area, amodal_area, draw_boxes, amodal


def generate_video(config: SynthConfig | str, seed: int, size: tuple[int, int] = (320, 192),
                   keep_amodal: bool = False) -> SynthVideo:
    """One video, in memory, as a pure function of (config, seed, size). `size` is (width, height).

    With keep_amodal=True the drawn (pre-occlusion) masks are kept as bounding-box crops, for tests and amodal
    experiments; by default only their areas are kept."""
    cfg = PRESETS[config] if isinstance(config, str) else config
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise InputError(None, f"frame size {w}x{h} is too small (at least 8x8)")
    if not 1 <= cfg.instances[0] <= cfg.instances[1] <= 255:  # label maps are uint8
        raise InputError(None, f"instances per video must be within 1..255, got {cfg.instances}")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(cfg.frames[0], cfg.frames[1] + 1))
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    tracks = _make_tracks(rng, cfg, n, w, h)
    frames, labels, visible, amodal_area, draw_boxes, amodal = _render(rng, cfg, tracks, n, w, h, keep_amodal)

    keep = [k for k in range(len(tracks)) if visible[k].any()]
    if len(keep) < len(tracks):
        lut = np.zeros(256, np.uint8)
        lut[[k + 1 for k in keep]] = np.arange(1, len(keep) + 1)
        labels = lut[labels]
    new_index = {old: new for new, old in enumerate(keep)}
    z_rank = {k: i for i, k in enumerate(sorted(keep, key=lambda k: tracks[k].zval))}
    instances = [SynthInstance(category_id=tracks[k].category_id, z=z_rank[k],
                               lookalike_of=new_index.get(tracks[k].lookalike_of),
                               chases=new_index.get(tracks[k].chases), colour=tracks[k].colour) for k in keep]
    return SynthVideo(frames=frames, labels=labels, instances=instances, visible_area=visible[keep],
                      amodal_area=amodal_area[keep], boxes=draw_boxes[keep], jpeg_quality=quality,
                      seed=int(seed), amodal=[amodal[k] for k in keep] if amodal is not None else None)


# ------------------------------------------------------------------------------------------------ writing
def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 10) -> Path:
    """H.264 / yuv420p mp4 of T x H x W x 3 RGB frames; odd sizes are padded by one edge row/column, since
    yuv420p needs even sizes (the annotations keep the original size, masks stay aligned at the top left)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            if pad_h or pad_w:
                frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_dataset(out_dir: str | Path, preset: str | SynthConfig = "default", num_videos: int = 10,
                  seed: int = 0, size: tuple[int, int] = (320, 192), mp4: bool = False,
                  progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Path:
    """Write DIR/JPEGImages/<video>/00000.jpg..., DIR/annotations.json (YTVIS ground truth) and, with
    mp4=True, DIR/videos/<video>.mp4. Video i is generate_video(preset, video_seed(seed, i), size).
    Returns DIR."""
    from engine.data.ytvis import Category, Dataset, Instance, VideoEntry

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise InputError(None, f"unknown synthetic preset {preset!r}; choose one of {', '.join(PRESETS)}")
        cfg = PRESETS[preset]
    else:
        cfg = preset
    if num_videos < 0:
        raise InputError(None, f"number of videos must be non-negative, got {num_videos}")
    out = Path(out_dir)
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    videos, instances = [], []
    if progress is not None:
        progress(0, num_videos)
    for i in range(num_videos):
        if cancel is not None and cancel():
            raise Cancelled(f"synthetic dataset cancelled after {i} of {num_videos} videos")
        video = generate_video(cfg, video_seed(seed, i), size)
        name = f"synth_{cfg.name}_s{seed}_{i:04d}"
        folder = out / "JPEGImages" / name
        if folder.exists():
            shutil.rmtree(folder)  # stale frames of an older, longer video of the same name would remain
        folder.mkdir(parents=True)
        params = [cv2.IMWRITE_JPEG_QUALITY, video.jpeg_quality]
        files = []
        for t, frame in enumerate(video.frames):
            file = f"{t:05d}.jpg"
            if not cv2.imwrite(str(folder / file), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params):
                raise InputError(folder / file, "cannot write frame")
            files.append(f"{name}/{file}")
        w, h = video.size
        videos.append(VideoEntry(id=i + 1, file_names=files, width=w, height=h))
        for inst, segs in zip(video.instances, video.all_rles(), strict=True):
            instances.append(Instance(id=len(instances) + 1, video_id=i + 1, category_id=inst.category_id,
                                      segmentations=segs))
        if mp4:
            write_mp4(out / "videos" / f"{name}.mp4", video.frames)
        if progress is not None:
            progress(i + 1, num_videos)
    categories = [Category(id=i + 1, name=n, supercategory="shape") for i, n in enumerate(CATEGORY_NAMES)]
    info = {"description": f"SyncVIS Studio synthetic benchmark, preset {cfg.name}", "preset": cfg.name,
            "seed": seed, "size": [int(size[0]), int(size[1])], "config": dataclasses.asdict(cfg)}
    dataset = Dataset(videos=videos, categories=categories, instances=instances, info=info)
    dataset.save(out / "annotations.json")
    return out
