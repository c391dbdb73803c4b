"""Training clips from a YTVIS dataset folder (spec §5, §7.1).

A sample is T frames of one video: a random reference frame plus T-1 frames drawn (with replacement) from the
+-frame_range frames around it, sorted in time. Augmentation is the same for the whole clip, as the recipe
asks: one short-side scale, one flip, and a crop whose window slides linearly between two random positions
over the T frames (so the model sees camera-like motion). The crop is relative (a fraction of the frame)
rather than the recipe's absolute 384-600 px window, so the same code serves the tiny 320x192 preset and
full-size videos.

Determinism: every sample is a pure function of (dataset, seed, key); `ClipBatches` derives the keys of each
step from (seed, step), so a resumed run sees the clips an uninterrupted run would have seen, and each rank of
a distributed run takes its own share of the same global batch.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from engine.config import TrainConfig
from engine.data import masks as mask_utils
from engine.data.ytvis import Dataset
from engine.errors import InputError

MAX_RESAMPLE = 10


def sample_frame_indices(length: int, num_frames: int, frame_range: int,
                         rng: np.random.Generator) -> list[int]:
    """Reference frame + num_frames-1 others from [ref - range, ref + range] (ref excluded), sorted."""
    ref = int(rng.integers(length))
    lo, hi = max(0, ref - frame_range), min(length, ref + frame_range + 1)
    cand = np.array([i for i in range(lo, hi) if i != ref] or [ref])
    others = rng.choice(cand, size=num_frames - 1, replace=True) if num_frames > 1 else np.array([], int)
    return sorted([ref, *[int(i) for i in others]])


def scaled_size(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    scale = short / min(height, width)
    if max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


class ClipDataset(TorchDataset):
    """Map-style dataset of augmented clips. `ds[key]` with key = (video index, sample seed), or an int (the
    video index, seeded by itself). Labels are 0-based indices into `class_ids` (category ids, sorted by
    default).
    """

    def __init__(self, data: str | Path | Dataset, cfg: TrainConfig, *, num_frames: int | None = None,
                 seed: int = 0, video_ids: list[int] | None = None, class_ids: list[int] | None = None,
                 augment: bool = True):
        self.dataset = Dataset.from_folder(data) if isinstance(data, (str, Path)) else data
        if self.dataset.root is None:
            raise InputError(None, "the training dataset has no folder (load it with Dataset.from_folder)")
        self.cfg = cfg
        self.num_frames = int(num_frames or cfg.num_frames)
        self.seed = int(seed)
        self.augment = augment
        self.class_ids = (list(class_ids) if class_ids is not None
                          else sorted(c.id for c in self.dataset.categories))
        self.label_of = {cid: i for i, cid in enumerate(self.class_ids)}
        keep = None if video_ids is None else set(video_ids)
        by_video: dict[int, list] = {}
        for a in self.dataset.instances:
            if a.category_id in self.label_of:
                by_video.setdefault(a.video_id, []).append(a)
        # videos without any instance give empty clips; the recipe filters them (FILTER_EMPTY_ANNOTATIONS)
        self.videos = [v for v in self.dataset.videos
                       if (keep is None or v.id in keep) and by_video.get(v.id) and v.length > 0]
        self.instances = by_video
        if not self.videos:
            raise InputError(self.dataset.root, "no annotated videos to train on")

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key) -> dict:
        if isinstance(key, (tuple, list)):
            index, sample_seed = int(key[0]), int(key[1])
        else:
            index, sample_seed = int(key), int(key)
        rng = np.random.default_rng([self.seed, index, sample_seed])
        for _ in range(MAX_RESAMPLE):
            item = self._sample(index, rng)
            if len(item["target"]["labels"]):
                return item
        return item  # a clip with no visible instance after many draws: keep it, the loss handles empty GT

    # ------------------------------------------------------------------ one clip
    def _sample(self, index: int, rng: np.random.Generator) -> dict:
        cfg, T = self.cfg, self.num_frames
        video = self.videos[index]
        frames = sample_frame_indices(video.length, T, cfg.frame_range, rng)
        H, W = video.height, video.width
        ch, cw = H, W
        y_a = x_a = y_b = x_b = 0
        flip = False
        short = min(H, W)
        if self.augment:
            if rng.random() < cfg.crop_prob:
                ch = int(round(H * rng.uniform(cfg.crop_min_frac, 1.0)))
                cw = int(round(W * rng.uniform(cfg.crop_min_frac, 1.0)))
                y_a, y_b = (int(v) for v in rng.integers(0, H - ch + 1, size=2))
                x_a, x_b = (int(v) for v in rng.integers(0, W - cw + 1, size=2))
            flip = bool(rng.random() < cfg.flip_prob)
            short = int(rng.choice(cfg.min_sizes))
        oh, ow = scaled_size(ch, cw, short, cfg.max_size) if self.augment else (H, W)
        boxes = []
        for j in range(T):
            a = j / (T - 1) if T > 1 else 0.0
            boxes.append((int(round(x_a + (x_b - x_a) * a)), int(round(y_a + (y_b - y_a) * a)), cw, ch))

        paths = self.dataset.frame_paths(video)
        imgs = np.empty((T, oh, ow, 3), np.uint8)
        for j, (fi, box) in enumerate(zip(frames, boxes, strict=True)):
            img = cv2.imread(str(paths[fi]), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(paths[fi], "cannot read the frame image")
            if img.shape[:2] != (H, W):
                raise InputError(paths[fi], f"frame is {img.shape[1]}x{img.shape[0]}, "
                                            f"the annotations say {W}x{H}")
            imgs[j] = cv2.cvtColor(self._geom(img, box, (oh, ow), flip, cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)

        labels, ids, tubes = [], [], []
        for inst in self.instances[video.id]:
            tube = np.zeros((T, oh, ow), bool)
            for j, (fi, box) in enumerate(zip(frames, boxes, strict=True)):
                seg = inst.segmentations[fi]
                if seg is not None:
                    m = mask_utils.decode(seg).astype(np.uint8)
                    tube[j] = self._geom(m, box, (oh, ow), flip, cv2.INTER_NEAREST) > 0
            if tube.any():  # spec §5: instances empty in every sampled frame are dropped
                labels.append(self.label_of[inst.category_id])
                ids.append(inst.id)
                tubes.append(tube)
        masks = np.stack(tubes) if tubes else np.zeros((0, T, oh, ow), bool)
        return {"frames": torch.from_numpy(imgs).permute(0, 3, 1, 2).float(),
                "target": {"labels": torch.tensor(labels, dtype=torch.int64),
                           "masks": torch.from_numpy(masks), "ids": torch.tensor(ids, dtype=torch.int64)},
                "video_id": video.id, "frame_indices": frames, "boxes": boxes, "flip": flip}

    @staticmethod
    def _geom(img: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool,
              interp: int) -> np.ndarray:
        """Crop -> resize -> flip, identical for frames and masks so they stay aligned."""
        x0, y0, cw, ch = box
        out = img[y0:y0 + ch, x0:x0 + cw]
        if out.shape[:2] != size:
            out = cv2.resize(out, (size[1], size[0]), interpolation=interp)
        if flip:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


def collate_clips(batch: list[dict]) -> dict:
    """Pad every clip bottom/right to the batch's largest frame: frames (B, T, 3, H, W) float 0-255; masks of
    the targets padded the same way (the network pads further to a multiple of 32 by itself)."""
    hm = max(b["frames"].shape[-2] for b in batch)
    wm = max(b["frames"].shape[-1] for b in batch)
    T = batch[0]["frames"].shape[0]
    frames = torch.zeros(len(batch), T, 3, hm, wm)
    targets = []
    for i, b in enumerate(batch):
        h, w = b["frames"].shape[-2:]
        frames[i, :, :, :h, :w] = b["frames"]
        m = b["target"]["masks"]
        padded = torch.zeros(m.shape[0], T, hm, wm, dtype=torch.bool)
        padded[..., :h, :w] = m
        targets.append({"labels": b["target"]["labels"], "masks": padded, "ids": b["target"]["ids"]})
    return {"frames": frames, "targets": targets, "video_ids": [b["video_id"] for b in batch],
            "image_sizes": [tuple(b["frames"].shape[-2:]) for b in batch]}


class ClipBatches:
    """Batch sampler for an iteration-based run: step s draws a global batch of keys from (seed, s); rank r of
    world_size takes keys[r::world_size]. Iterates steps [start_step, end_step)."""

    def __init__(self, num_videos: int, batch_size: int, seed: int = 0, *, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, end_step: int = 1 << 62):
        if batch_size < world_size:
            raise ValueError(f"batch size {batch_size} is smaller than the number of processes {world_size}")
        self.num_videos, self.batch_size, self.seed = num_videos, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.start_step, self.end_step = start_step, end_step

    def keys(self, step: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, 7919, step])
        vids = rng.integers(self.num_videos, size=self.batch_size)
        seeds = rng.integers(1 << 31, size=self.batch_size)
        return [(int(v), int(s)) for v, s in zip(vids, seeds, strict=True)][self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.end_step):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)
