"""Benchmark: engine.evaluation.evaluate against a straightforward per-frame baseline of the same definition.

The baseline decodes every mask to numpy and sums per-frame intersections and unions in Python loops; it is
plugged into the same evaluator (`iou_fn`), so matching and accumulation are shared and the numbers must agree
exactly.

    .venv/bin/python bench/bench_eval.py [--videos 200] [--size 448x256] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import masks  # noqa: E402
from engine.data.ytvis import Category, Dataset, Instance, VideoEntry  # noqa: E402
from engine.evaluation import STAT_KEYS, evaluate, video_iou  # noqa: E402


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = np.ogrid[:h, :w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def build(num_videos: int, h: int, w: int, seed: int, num_cats: int = 5) -> tuple[Dataset, list[dict]]:
    """Moving ellipses that enter and leave; predictions jittered, some wrong-class, plus false positives."""
    rng = np.random.default_rng(seed)
    videos, instances, results = [], [], []
    ann_id = 1
    for vid in range(1, num_videos + 1):
        T = int(rng.integers(20, 31))
        videos.append(VideoEntry(vid, [f"v{vid:04d}/{t:05d}.jpg" for t in range(T)], width=w, height=h))
        for _ in range(int(rng.integers(2, 6))):
            cat = int(rng.integers(1, num_cats + 1))
            ry, rx = rng.uniform(0.05, 0.45) * h, rng.uniform(0.05, 0.45) * w
            cy, cx = rng.uniform(ry, h - ry), rng.uniform(rx, w - rx)
            vy, vx = rng.normal(0, 2, 2)
            start, end = sorted(rng.integers(0, T + 1, 2))
            end = max(end, start + 3)
            gt = np.zeros((T, h, w), bool)
            for t in range(start, min(end, T)):
                gt[t] = _ellipse(h, w, cy + vy * t, cx + vx * t, ry, rx)
            segs = masks.encode_stack(gt)
            instances.append(
                Instance(ann_id, vid, cat, [s if start <= t < end else None for t, s in enumerate(segs)])
            )
            ann_id += 1
            for _ in range(int(rng.integers(1, 3))):
                dy, dx = rng.normal(0, 0.1 * ry), rng.normal(0, 0.1 * rx)
                s = rng.uniform(0.9, 1.1)
                pr = np.zeros((T, h, w), bool)
                keep = [
                    t for t in range(T) if (start <= t < end and rng.random() > 0.1) or rng.random() < 0.03
                ]
                for t in keep:
                    pr[t] = _ellipse(h, w, cy + vy * t + dy, cx + vx * t + dx, ry * s, rx * s)
                psegs = masks.encode_stack(pr)
                pc = cat if rng.random() < 0.8 else int(rng.integers(1, num_cats + 1))
                results.append(
                    {
                        "video_id": vid,
                        "category_id": pc,
                        "score": float(rng.random()),
                        "segmentations": [psegs[t] if t in keep else None for t in range(T)],
                    }
                )
        for _ in range(int(rng.integers(0, 4))):  # false positives
            pr = np.zeros((T, h, w), bool)
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 40)
            for t in range(T):
                pr[t] = _ellipse(h, w, cy, cx, r, r)
            results.append(
                {
                    "video_id": vid,
                    "category_id": int(rng.integers(1, num_cats + 1)),
                    "score": float(rng.random()),
                    "segmentations": masks.encode_stack(pr),
                }
            )
    cats = [Category(i, f"class{i}") for i in range(1, num_cats + 1)]
    return Dataset(videos, cats, instances), results


def baseline_iou(dts: list[list], gts: list[list]) -> np.ndarray:
    """The definition written plainly: decode, then per pair and per frame count intersection and union."""

    def decode_track(segs):
        return [None if s is None else masks.decode(s) for s in segs]

    dd = [decode_track(d) for d in dts]
    gg = [decode_track(g) for g in gts]
    out = np.zeros((len(dts), len(gts)))
    for i, d in enumerate(dd):
        for j, g in enumerate(gg):
            inter = union = 0
            for a, b in zip(d, g, strict=True):
                if a is not None and b is not None:
                    inter += int(np.count_nonzero(a & b))
                    union += int(np.count_nonzero(a | b))
                elif a is not None:
                    union += int(np.count_nonzero(a))
                elif b is not None:
                    union += int(np.count_nonzero(b))
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--size", default="448x256", help="WxH")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours (best is reported)")
    ap.add_argument("--repeat-baseline", type=int, default=2, help="runs of the baseline (best is reported)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    t0 = time.perf_counter()
    gt, results = build(args.videos, h, w, args.seed)
    frames = sum(v.length for v in gt.videos)
    print(
        f"built {len(gt.videos)} videos ({frames} frames, {w}x{h}), {len(gt.instances)} GT objects, "
        f"{len(results)} predictions in {time.perf_counter() - t0:.1f}s"
    )

    def best_of(n, fn):
        """Shortest of n runs: the machine is shared, so the minimum is the least disturbed measurement."""
        times, out = [], None
        for _ in range(n):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    # IoU stage alone, per video, all predictions x all GT objects
    by_vid = {
        v.id: (
            [a.segmentations for a in gt.instances_of(v.id)],
            [r["segmentations"] for r in results if r["video_id"] == v.id],
        )
        for v in gt.videos
    }
    t_fast_iou, fast = best_of(args.repeat, lambda: {vid: video_iou(d, g) for vid, (g, d) in by_vid.items()})
    t_slow_iou, slow = best_of(
        args.repeat_baseline, lambda: {vid: baseline_iou(d, g) for vid, (g, d) in by_vid.items()}
    )
    diff = max(float(np.abs(fast[v] - slow[v]).max()) if fast[v].size else 0.0 for v in fast)

    t_ours, ours = best_of(args.repeat, lambda: evaluate(gt, results))
    t_base, base = best_of(args.repeat_baseline, lambda: evaluate(gt, results, iou_fn=baseline_iou))

    print(ours.format_table())
    same = all(ours.stats[k] == base.stats[k] for k in STAT_KEYS)
    print(
        f"\n(best of {args.repeat} runs for ours, {args.repeat_baseline} for the baseline; load avg "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"IoU stage:   ours {t_fast_iou:7.2f}s   baseline {t_slow_iou:7.2f}s   "
        f"speed-up {t_slow_iou / t_fast_iou:5.1f}x   max |diff| {diff:.1e}"
    )
    print(f"evaluate():  ours {t_ours:7.2f}s   baseline {t_base:7.2f}s   speed-up {t_base / t_ours:5.1f}x")
    print(f"all 12 metrics identical: {same}")
    return 0 if same and diff == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
