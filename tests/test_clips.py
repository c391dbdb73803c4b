"""Training clips: sampling, clip-consistent augmentation, GT preparation, collation (engine/data/clips)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.config import TrainConfig
from engine.data import masks as mask_utils
from engine.data.clips import ClipBatches, ClipDataset, collate_clips, sample_frame_indices
from engine.data.ytvis import Category, Dataset, Instance, VideoEntry

W, H = 96, 64
SQUARE = (30, 20, 16, 12)   # x, y, w, h of the static object


def _write_static_dataset(root: Path, length: int = 12, late_frame: int | None = None) -> Path:
    """One video of `length` identical frames: a white square on black, annotated in every frame; optionally a
    second object (a grey bar) present only on frame `late_frame`."""
    folder = root / "JPEGImages" / "static"
    folder.mkdir(parents=True)
    img = np.zeros((H, W, 3), np.uint8)
    x, y, w, h = SQUARE
    img[y:y + h, x:x + w] = 255
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    bar = np.zeros((H, W), bool)
    bar[50:58, 5:25] = True
    names = []
    for t in range(length):
        frame = img.copy()
        if t == late_frame:
            frame[bar] = 128
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 100])
        names.append(f"static/{t:05d}.jpg")
    inst = [Instance(1, 1, 2, [mask_utils.encode(m) for _ in range(length)])]
    if late_frame is not None:
        segs = [mask_utils.encode(bar) if t == late_frame else None for t in range(length)]
        inst.append(Instance(2, 1, 1, segs))
    Dataset([VideoEntry(1, names, W, H)], [Category(1, "bar"), Category(2, "square")], inst).save(
        root / "annotations.json")
    return root


def _cfg(**kw) -> TrainConfig:
    base = TrainConfig(num_frames=4, frame_range=3, min_sizes=(64,), max_size=200, crop_prob=0.0,
                       flip_prob=0.0)
    return replace(base, **kw)


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_frame_sampling_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        idx = sample_frame_indices(30, 5, 4, rng)
        assert idx == sorted(idx) and len(idx) == 5
        assert all(0 <= i < 30 for i in idx)
        assert max(idx) - min(idx) <= 8           # everything within +-range of the reference
    assert sample_frame_indices(1, 3, 4, rng) == [0, 0, 0]


def test_deterministic_given_seed_and_key(tmp_path):
    root = _write_static_dataset(tmp_path)
    cfg = _cfg(crop_prob=0.5, flip_prob=0.5, min_sizes=(48, 64, 80))
    a, b = ClipDataset(root, cfg, seed=3), ClipDataset(root, cfg, seed=3)
    for key in [(0, 1), (0, 2), (0, 99)]:
        x, y = a[key], b[key]
        assert torch.equal(x["frames"], y["frames"])
        assert torch.equal(x["target"]["masks"], y["target"]["masks"])
        assert x["frame_indices"] == y["frame_indices"] and x["boxes"] == y["boxes"]
    other = ClipDataset(root, cfg, seed=4)
    diffs = [a[(0, k)]["boxes"] != other[(0, k)]["boxes"] or a[(0, k)]["flip"] != other[(0, k)]["flip"]
             or a[(0, k)]["frames"].shape != other[(0, k)]["frames"].shape for k in range(8)]
    assert any(diffs)


def test_crop_moves_across_clip_and_masks_follow(tmp_path):
    root = _write_static_dataset(tmp_path)
    cfg = _cfg(crop_prob=1.0, crop_min_frac=0.6, num_frames=4)
    ds = ClipDataset(root, cfg, seed=0)
    x, y, w, h = SQUARE

    def inside(b):
        return b[0] <= x and b[1] <= y and x + w <= b[0] + b[2] and y + h <= b[1] + b[3]

    # a clip whose crop window really moves and holds the whole square at both ends
    item = next(it for it in (ds[(0, k)] for k in range(300))
                if it["boxes"][0][:2] != it["boxes"][-1][:2]
                and inside(it["boxes"][0]) and inside(it["boxes"][-1]))
    boxes = item["boxes"]
    xs = [b[0] for b in boxes]
    ys = [b[1] for b in boxes]
    assert np.all(np.diff(xs) * np.sign(xs[-1] - xs[0]) >= 0)     # monotonic: linear motion
    assert np.all(np.diff(ys) * np.sign(ys[-1] - ys[0]) >= 0)
    masks = item["target"]["masks"][0].numpy()              # (T, h, w)
    frames = item["frames"].numpy()                          # (T, 3, h, w)
    cw, ch = boxes[0][2:]
    oh, ow = masks.shape[1:]
    sx, sy = ow / cw, oh / ch
    full = np.zeros((H, W), bool)
    full[SQUARE[1]:SQUARE[1] + SQUARE[3], SQUARE[0]:SQUARE[0] + SQUARE[2]] = True
    for t in range(len(boxes)):
        x0, y0 = boxes[t][:2]
        # the part of the square inside the crop window, mapped to output pixel centres
        expected = (_centroid(full[y0:y0 + ch, x0:x0 + cw]) + 0.5) * [sx, sy] - 0.5
        assert np.abs(_centroid(masks[t]) - expected).max() < 1.0
        bright = frames[t].mean(0) > 128                     # the square in the pixels...
        inter = (bright & masks[t]).sum()
        assert inter / (bright | masks[t]).sum() > 0.85     # ...is where the mask says it is
    # the square moves opposite to the crop window, by the window's shift times the scale
    c0, c1 = _centroid(masks[0]), _centroid(masks[-1])
    np.testing.assert_allclose(c1 - c0, -np.array([xs[-1] - xs[0], ys[-1] - ys[0]]) * [sx, sy], atol=1.0)


def test_flip_is_clip_consistent(tmp_path):
    root = _write_static_dataset(tmp_path)
    plain = ClipDataset(root, _cfg(flip_prob=0.0), seed=0)[(0, 5)]
    flipped = ClipDataset(root, _cfg(flip_prob=1.0), seed=0)[(0, 5)]
    assert flipped["flip"] and not plain["flip"]
    torch.testing.assert_close(flipped["frames"], plain["frames"].flip(-1))
    assert torch.equal(flipped["target"]["masks"], plain["target"]["masks"].flip(-1))
    cx = [_centroid(m)[0] for m in flipped["target"]["masks"][0].numpy()]
    w = flipped["frames"].shape[-1]
    scale = w / W
    assert all(abs(c - (w - 1 - ((SQUARE[0] + SQUARE[2] / 2) * scale - 0.5))) < 1.0 for c in cx)


def test_resize_rule_and_labels(tmp_path):
    root = _write_static_dataset(tmp_path)
    item = ClipDataset(root, _cfg(min_sizes=(32,), max_size=40), seed=0)[0]
    assert item["frames"].shape == (4, 3, 27, 40)    # short side 32 would make the long side 48 > 40
    assert item["frames"].dtype == torch.float32 and float(item["frames"].max()) > 200
    assert item["target"]["labels"].tolist() == [1]  # category 2 ("square") -> label 1 of sorted ids [1, 2]
    assert item["target"]["masks"].shape == (1, 4, 27, 40) and item["target"]["masks"].dtype == torch.bool


def test_instances_absent_in_sampled_frames_are_dropped(tmp_path):
    root = _write_static_dataset(tmp_path, length=20, late_frame=19)
    ds = ClipDataset(root, _cfg(num_frames=2, frame_range=2), seed=0)
    seen = {}
    for k in range(60):
        it = ds[(0, k)]
        seen[19 in it["frame_indices"]] = it
        if len(seen) == 2:
            break
    assert seen[True]["target"]["ids"].tolist() == [1, 2]
    assert seen[True]["target"]["labels"].tolist() == [1, 0]
    assert seen[False]["target"]["ids"].tolist() == [1]
    with_bar = seen[True]
    t = with_bar["frame_indices"].index(19)
    assert with_bar["target"]["masks"][1, t].any() and not with_bar["target"]["masks"][1, :t].any()


def test_collate_pads_and_batches_split_over_ranks(tmp_path):
    root = _write_static_dataset(tmp_path)
    ds = ClipDataset(root, _cfg(min_sizes=(32, 64)), seed=0)
    items = [ds[(0, k)] for k in range(6)]
    sizes = {tuple(it["frames"].shape[-2:]) for it in items}
    assert len(sizes) == 2
    batch = collate_clips(items)
    hm = max(s[0] for s in sizes)
    wm = max(s[1] for s in sizes)
    assert batch["frames"].shape == (6, 4, 3, hm, wm)
    for i, (it, tgt, size) in enumerate(zip(items, batch["targets"], batch["image_sizes"], strict=False)):
        h, w = size
        assert tgt["masks"].shape[-2:] == (hm, wm)
        assert torch.equal(tgt["masks"][..., :h, :w], it["target"]["masks"])
        assert not tgt["masks"][..., h:, :].any() and not tgt["masks"][..., :, w:].any()
        assert torch.equal(batch["frames"][i, :, :, :h, :w], it["frames"])
    whole = ClipBatches(5, 4, seed=1)
    r0 = ClipBatches(5, 4, seed=1, rank=0, world_size=2)
    r1 = ClipBatches(5, 4, seed=1, rank=1, world_size=2)
    for step in (0, 7):
        g = whole.keys(step)
        assert sorted(r0.keys(step) + r1.keys(step)) == sorted(g) and len(r0.keys(step)) == 2
    assert list(ClipBatches(5, 4, seed=1, start_step=3, end_step=5)) == [whole.keys(3), whole.keys(4)]
    with pytest.raises(ValueError):
        ClipBatches(5, 1, world_size=2)
