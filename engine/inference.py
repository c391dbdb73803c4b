"""Whole-video inference: windows of T_w frames through the network, linked into tracks (spec §6).

Why it is shaped this way:
- Memory must not grow with the video. A window's mask logits are turned into RLE right away; what is kept
  across windows is, per query slot, a running sum of class scores and the list of RLEs. The top-k detections
  are chosen at the end (or for each streamed partial result) from the averaged scores, so every slot keeps
  its RLEs.
- Windows do not overlap; consecutive windows are linked by Hungarian matching on the cosine similarity of
  their video-query embeddings (§6.2). In the frame-only read-out every frame is linked to the previous one
  the same way (MinVIS, §6.3), across window borders too.
- A `sync` model carries both query sets, so its video-level and frame-level read-outs come from one forward
  pass: `internals=True` returns both (`tracks` from the video queries, `frame_tracks` from the frame queries)
  plus the aggregation internals of every window, which is what the app's compare and aggregation views show.
- Out of memory on the GPU halves the window (down to one frame) and then moves to the CPU; each step is
  reported in `VideoPrediction.notices`, through `on_notice`, and in the log.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.config import InferConfig
from engine.data import masks as mask_utils
from engine.data.mask_encode import encode_batch
from engine.device import autocast, choose_device, describe, is_oom, release_memory, trim_host_memory
from engine.linking import QueryLinker, RunningMean, topk
from engine.progress import CancelFn, ProgressFn
from engine.types import Track, VideoPrediction, WindowInternals

log = logging.getLogger(__name__)

READOUTS = {"sync": ("sync", "video", "frame"), "video": ("video",), "frame": ("frame",)}

# A query slot whose largest mask on any frame is smaller than this many pixels (at the video's size) is not a
# track: a high class score with no mask would be exported and listed as an object nobody can see.
MIN_TRACK_AREA = 16


def infer_config_for(meta: dict) -> InferConfig:
    """The inference settings a checkpoint was made for: its own (extra["infer"], saved by training), else those
    of its preset (named in extra/provenance, or recognised from the model config), else the defaults. A tiny model
    run with the r50 test size (short side 360) sees objects twice as large as in training, so this matters."""
    from engine.config import PRESETS

    extra = meta.get("extra") or {}
    raw = extra.get("infer") or meta.get("infer")
    if isinstance(raw, InferConfig):
        return dataclasses.replace(raw)
    if isinstance(raw, dict):
        names = {f.name for f in dataclasses.fields(InferConfig)}
        return InferConfig(**{k: v for k, v in raw.items() if k in names})
    preset = extra.get("preset") or meta.get("preset") or (meta.get("provenance") or {}).get("preset")
    if preset in PRESETS:
        return PRESETS[preset]().infer
    config = meta.get("config") or {}
    if isinstance(config, dict):
        for make in PRESETS.values():
            ref = make()
            if all(config.get(k) == getattr(ref.model, k) for k in ("backbone", "hidden_dim", "dec_layers")):
                return ref.infer
    return InferConfig()


def resolve_mode(model_mode: str, requested: str | None) -> str:
    """The read-out to use. A sync network also answers as its video-level or frame-level half; a network
    trained with one query set cannot answer for the other."""
    if requested is None or requested == model_mode:
        return model_mode
    if requested not in READOUTS:
        raise ValueError(f"unknown mode {requested!r}; choose one of sync, video, frame")
    if requested not in READOUTS.get(model_mode, ()):
        raise ValueError(f"a {model_mode}-mode model has no {requested} read-out "
                         f"(only {', '.join(READOUTS.get(model_mode, (model_mode,)))})")
    return requested


def inference_size(height: int, width: int, short_side: int, max_size: int) -> tuple[int, int]:
    """(h, w) the network sees: short side -> short_side (0 keeps the size), long side capped at max_size."""
    scale = 1.0 if short_side <= 0 else short_side / min(height, width)
    if max_size > 0 and max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    if scale == 1.0:
        return height, width
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


# ------------------------------------------------------------------------------------------------ frame sourc
class ArrayVideo:
    """A (T, H, W, 3) uint8 RGB array with the reader interface inference uses (len, width, height,
    iteration)."""

    def __init__(self, frames: np.ndarray):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
        self.frames = frames
        self.height, self.width = int(frames.shape[1]), int(frames.shape[2])

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.frames[i]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.frames)


class FrameFiles:
    """The image files of one video (e.g. a dataset's `file_names`), read on demand in order."""

    def __init__(self, paths: list[Path], width: int, height: int):
        self.paths, self.width, self.height = list(paths), int(width), int(height)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        from engine.errors import InputError

        for p in self.paths:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(p, "cannot read the frame image")
            if img.shape[:2] != (self.height, self.width):
                raise InputError(p, f"frame is {img.shape[1]}x{img.shape[0]}, "
                                    f"expected {self.width}x{self.height}")
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _open(video) -> tuple[object, bool]:
    """(reader, opened_here)."""
    if isinstance(video, (str, Path)):
        from engine.data.video import VideoReader

        return VideoReader(video, cache_size=2), True
    if isinstance(video, np.ndarray):
        return ArrayVideo(video), False
    return video, False


# ------------------------------------------------------------------------------------------------ accumulatio
@dataclass
class _Tubes:
    """Linked query slots of one read-out, filled step by step (a window of video queries, or one frame of
    frame queries). Slot s is query s of the first step; `perms[i][s]` is its query index in step i."""

    average: str = "probs"                     # "probs" (video windows) or "logits" (frame-level, as MinVIS)
    linker: QueryLinker = field(default_factory=QueryLinker)
    scores: RunningMean = field(default_factory=RunningMean)
    rles: list[list[dict]] = field(default_factory=list)
    steps: list[tuple[int, int, np.ndarray]] = field(default_factory=list)   # (start, end, probs (N, K) fp16)
    perms: list[np.ndarray] = field(default_factory=list)
    quality_sum: np.ndarray | None = None
    quality_cnt: np.ndarray | None = None
    max_area: np.ndarray | None = None         # per slot, its largest mask so far (pixels)

    def add(self, start: int, end: int, embeds: np.ndarray, logits: np.ndarray, rles: list[list[dict]],
            quality: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """One step: embeds (N, C), logits (N, K+1), rles[q] = the step's masks of query q."""
        perm = self.linker(embeds)
        logits = logits[perm]
        probs = _softmax(logits)[:, :-1]
        self.scores.add(probs if self.average == "probs" else logits)
        if not self.rles:
            self.rles = [[] for _ in perm]
            self.quality_sum = np.zeros(len(perm))
            self.quality_cnt = np.zeros(len(perm))
            self.max_area = np.zeros(len(perm))
        for s, q in enumerate(perm):
            self.rles[s].extend(rles[q])
            if rles[q]:
                self.max_area[s] = max(self.max_area[s], float(mask_utils.areas(rles[q]).max()))
        self.quality_sum += quality[0][perm]
        self.quality_cnt += quality[1][perm]
        self.steps.append((start, end, probs.astype(np.float16)))
        self.perms.append(perm)
        return perm

    def class_scores(self, use_quality: bool) -> np.ndarray:
        mean = self.scores.mean()
        probs = mean if self.average == "probs" else _softmax(mean)[:, :-1]
        if use_quality and self.quality_sum is not None:
            probs = probs * (self.quality_sum / (self.quality_cnt + 1e-6))[:, None]
        return probs

    def tracks(self, k: int, num_frames: int, use_quality: bool) -> list[Track]:
        if not self.rles:
            return []
        out = []
        ranked = self.class_scores(use_quality).copy()
        ranked[self.max_area < MIN_TRACK_AREA] = -1.0   # no mask worth the name: never a track
        best = [d for d in topk(ranked, k) if d[2] >= 0]
        for rank, (slot, label, score) in enumerate(best):
            masks: list[dict | None] = list(self.rles[slot])
            masks += [None] * (num_frames - len(masks))
            scores: list[float | None] = [None] * num_frames
            for start, end, probs in self.steps:
                p = float(probs[slot, label])
                for t in range(start, end):
                    scores[t] = p
            out.append(Track(id=rank + 1, category_id=label + 1, score=score, masks=masks, scores=scores,
                             query=int(self.perms[0][slot])))
        return out


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@dataclass
class _WindowOut:
    """What one window leaves behind, already off the device: no mask tensors, only RLEs."""

    start: int
    end: int
    video: tuple | None = None                 # (embeds (N, C), logits (N, K+1), rles[q][t], quality)
    frames: list[tuple] | None = None          # per frame: (embeds, logits, rles[q] = [rle], quality)
    internals: WindowInternals | None = None


def _mask_rles(mask_logits: torch.Tensor, padded: tuple[int, int], valid: tuple[int, int],
               out_size: tuple[int, int], threshold: float,
               want_quality: bool) -> tuple[list[list[dict]], tuple[np.ndarray, np.ndarray]]:
    """(Q, t, h4, w4) stride-4 logits -> rles[q][j] at the video's size, plus per-frame mask-quality sums
    ((t, Q) sum of foreground probabilities, (t, Q) foreground pixel counts; zeros unless want_quality).

    Upsample to the padded input, crop the valid area, resize to the video's size (as Mask2Former-VIS), one
    frame at a time so the peak is Q x H x W."""
    q, t = mask_logits.shape[:2]
    rles: list[list[dict]] = [[] for _ in range(q)]
    qsum = np.zeros((t, q))
    qcnt = np.zeros((t, q))
    h, w = valid
    for j in range(t):
        x = mask_logits[:, j].unsqueeze(1).float()
        x = F.interpolate(x, size=padded, mode="bilinear", align_corners=False)[:, :, :h, :w]
        if (h, w) != tuple(out_size):
            x = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        x = x[:, 0]
        if want_quality:
            p = x.sigmoid()
            fg = p > 0.5
            qsum[j] = (p * fg).flatten(1).sum(1).double().cpu().numpy()
            qcnt[j] = fg.flatten(1).sum(1).double().cpu().numpy()
        for i, r in enumerate(encode_batch(x > threshold)):   # pycocotools' strings, the GIL released
            rles[i].append(r)
    return rles, (qsum, qcnt)


def _np(x) -> np.ndarray | None:
    if x is None:
        return None
    x = x.detach()
    return x.float().cpu().numpy() if x.is_floating_point() else x.cpu().numpy()


def run_window(model, chunk: list[np.ndarray], start: int, mode: str, cfg: InferConfig, device: torch.device,
               out_size: tuple[int, int], internals: bool) -> _WindowOut:
    """One window of frames through the model, masks resized to `out_size`. Public for tools that need one
    window's raw per-query output (the app re-runs a window to show a frame query's masks)."""
    h, w = inference_size(out_size[0], out_size[1], cfg.short_side, cfg.max_size)
    if (h, w) != tuple(out_size):
        chunk = [cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=cv2.INTER_LINEAR) for f in chunk]
    x = torch.from_numpy(np.stack(chunk)).to(device).permute(0, 3, 1, 2).float().unsqueeze(0)
    with torch.inference_mode(), autocast(device, cfg.amp):
        out = model(x, return_internals=True) if internals else model(x)
    padded = tuple(int(v) for v in out.get("padded_size", (h, w)))
    valid = tuple(int(v) for v in out.get("image_size", (h, w)))
    quality = cfg.score_mask_quality
    res = _WindowOut(start, start + len(chunk))
    want_video = mode in ("sync", "video")
    want_frames = mode == "frame" or (internals and mode == "sync")
    if want_video:
        v = out.get("video")
        if v is None:
            raise RuntimeError("the model returned no video-level predictions")
        rles, (qs, qc) = _mask_rles(v["masks"][0], padded, valid, out_size, cfg.mask_threshold, quality)
        res.video = (_np(v["embeds"][0]), _np(v["logits"][0]), rles, (qs.sum(0), qc.sum(0)))
    if want_frames:
        f = out.get("frame")
        if f is None:
            if mode == "frame":
                raise RuntimeError("the model returned no frame-level predictions")
        else:
            emb, logit = _np(f["embeds"][0]), _np(f["logits"][0])          # (t, N_f, C), (t, N_f, K+1)
            rles, (qs, qc) = _mask_rles(f["masks"][0].transpose(0, 1), padded, valid, out_size,
                                        cfg.mask_threshold, quality and mode == "frame")
            res.frames = [(emb[j], logit[j], [[r[j]] for r in rles], (qs[j], qc[j]))
                          for j in range(len(chunk))]
    it = out.get("internals") if internals else None
    if it is not None:
        get = lambda k: None if it.get(k) is None else _np(it[k][:, 0])  # noqa: E731 - drop the batch axis
        res.internals = WindowInternals(start=start, end=start + len(chunk), frame_probs=get("frame_probs"),
                                        video_probs=get("video_probs"), f2v_selected=get("f2v_selected"),
                                        f2v_weights=get("f2v_weights"), v2f_selected=get("v2f_selected"),
                                        v2f_weights=get("v2f_weights"))
    return res


# ------------------------------------------------------------------------------------------------ entry point
def infer(video, model, cfg: InferConfig | None = None, *, class_names: list[str] | None = None,
          internals: bool = False, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
          on_window: Callable[[VideoPrediction], None] | None = None,
          on_notice: Callable[[str], None] | None = None, checkpoint: str = "") -> VideoPrediction:
    """Run `model` over a whole video and return its tracks.

    video: a VideoReader (or anything with len/width/height/iteration), a path, or a (T, H, W, 3) uint8 RGB
    array. cfg.mode picks the read-out (default: the model's mode). Track ids are 1..k in score order;
    category ids are 1-based class indices. Masks are RLE at the video's size for every processed frame (empty
    RLE where the object is not predicted) and None for frames not reached (cancelled runs).
    `on_window(partial)` gets the result so far after each window; `cancel()` is checked before each window
    and ends the run with `complete=False`.
    """
    cfg = cfg or InferConfig()
    mcfg = getattr(model, "cfg", None)
    model_mode = getattr(mcfg, "mode", "sync")
    num_classes = int(getattr(mcfg, "num_classes", 0))
    mode = resolve_mode(model_mode, cfg.mode)
    names = list(class_names) if class_names is not None else [f"class {i + 1}" for i in range(num_classes)]
    reader, opened = _open(video)
    device = choose_device(cfg.device)
    notices: list[str] = []

    def notice(msg: str) -> None:
        notices.append(msg)
        log.warning(msg)
        if on_notice is not None:
            on_notice(msg)

    was_training = model.training
    model.eval()
    if next(model.parameters()).device != device:
        model.to(device)
    total = len(reader)
    out_size = (int(reader.height), int(reader.width))
    video_tubes = _Tubes("probs")
    frame_tubes = _Tubes("logits")
    windows: list[WindowInternals] = []
    complete = True
    frames_iter = iter(reader)
    buffer: list[np.ndarray] = []
    done = 0
    window = max(1, int(cfg.window))
    want_frame_tracks = mode == "frame" or (internals and mode == "sync")

    def result() -> VideoPrediction:
        primary = frame_tubes if mode == "frame" else video_tubes
        tracks = primary.tracks(cfg.top_k, total, cfg.score_mask_quality)
        frame_tracks = None
        if mode != "frame" and want_frame_tracks:
            frame_tracks = frame_tubes.tracks(cfg.top_k, total, cfg.score_mask_quality)
        # copies: a partial result handed out earlier keeps the mapping of its own tracks
        wins = []
        slot_of = {int(q): s for s, q in enumerate(video_tubes.perms[0])} if video_tubes.perms else {}
        for w_idx, wi in enumerate(windows):
            tq = {}
            if mode != "frame" and w_idx < len(video_tubes.perms):
                perm = video_tubes.perms[w_idx]
                tq = {t.id: int(perm[slot_of[t.query]]) for t in tracks}
            wins.append(dataclasses.replace(wi, track_queries=tq))
        return VideoPrediction(mode=mode, num_frames=total,
                               height=out_size[0], width=out_size[1], categories=names, tracks=tracks,
                               frame_tracks=frame_tracks, windows=wins, checkpoint=checkpoint,
                               complete=complete, notices=list(notices), device=describe(device))

    t0 = time.perf_counter()
    try:
        if progress is not None:
            progress(0, total)
        while done < total:
            if cancel is not None and cancel():
                complete = False
                break
            while len(buffer) < window and done + len(buffer) < total:
                buffer.append(next(frames_iter))
            chunk = buffer[:window]
            try:
                res = run_window(model, chunk, done, mode, cfg, device, out_size, internals)
            except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
                if not is_oom(e):
                    raise
                del e
                release_memory(device)
                if window > 1:
                    window = max(1, window // 2)
                    notice(f"out of memory on {describe(device)}: window reduced to {window} frames")
                elif device.type != "cpu":
                    device = torch.device("cpu")
                    model.to(device)
                    notice("out of memory on the GPU even with 1-frame windows: continuing on the CPU")
                else:
                    raise
                continue
            if res.video is not None:
                emb, logits, rles, qual = res.video
                video_tubes.add(res.start, res.end, emb, logits, rles, qual)
            if res.frames is not None:
                for j, (emb, logits, rles, qual) in enumerate(res.frames):
                    frame_tubes.add(res.start + j, res.start + j + 1, emb, logits, rles, qual)
            if res.internals is not None:
                windows.append(res.internals)
            del buffer[:len(chunk)], res
            trim_host_memory()
            done += len(chunk)
            if progress is not None:
                progress(done, total)
            if on_window is not None:
                on_window(result())
    finally:
        if was_training:
            model.train()
        if opened:
            reader.close()
    log.debug("inference: %d frames in %.2f s (%s, %s mode)", done, time.perf_counter() - t0,
              describe(device), mode)
    return result()
