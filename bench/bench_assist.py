"""Assisted segmentation: mask quality of flow / GrabCut propagation, propagation speed, and memory on long runs.

    python bench/bench_assist.py iou      # IoU vs ground truth over the next 10 / 30 frames, default preset
    python bench/bench_assist.py speed    # frames/s at 1280x720 (flow, GrabCut), SAM 2 tiny at 1024 on the CPU
    python bench/bench_assist.py memory   # resident memory over a 1,000-frame propagation (flow, SAM 2)

One thread throughout (the development machine is shared); SAM 2 uses random weights (nothing is downloaded), so
its speed is real and its masks are not.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.assist import AssistConfig, FlowSession, GrabCutSession  # noqa: E402
from engine.data.synthetic import generate_video  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def iou(a, b):
    u = np.logical_or(a, b).sum()
    return None if u == 0 else float(np.logical_and(a, b).sum() / u)


def bench_iou(seeds: range, size=(320, 192), min_area=400) -> None:
    print(f"IoU against ground truth, default preset, {size[0]}x{size[1]}, seeds {seeds.start}-{seeds.stop - 1}, "
          f"seeded with the ground-truth mask on the first frame an object shows {min_area}+ pixels")
    for name, make in (("flow", FlowSession), ("grabcut", GrabCutSession)):
        for horizon in (10, 30):
            per, frames, t0 = [], 0, time.perf_counter()
            for seed in seeds:
                v = generate_video("default", seed, size=size)
                for k in range(len(v.instances)):
                    big = np.flatnonzero(v.visible_area[k] >= min_area)
                    if not len(big) or big[0] >= v.num_frames - 1:
                        continue
                    s = int(big[0])
                    stop = min(v.num_frames - 1, s + horizon)
                    sess = make(v.frames)
                    sess.set_mask(s, 1, v.mask(k, s))
                    got = {f: d[1] for f, d in sess.propagate(s, "forward", stop)}
                    frames += len(got)
                    vals = [iou(got.get(f, np.zeros(v.labels.shape[1:], bool)), v.mask(k, f))
                            for f in range(s + 1, stop + 1)]
                    vals = [x for x in vals if x is not None]
                    if vals:
                        per.append(np.mean(vals))
            dt = time.perf_counter() - t0
            print(f"  {name:8s} next {horizon:2d} frames: mean IoU {np.mean(per):.3f} (median {np.median(per):.3f}, "
                  f"{len(per)} objects), {frames / dt:.0f} frames/s")


def bench_speed(frames: int, sam2_frames: int) -> None:
    import torch

    torch.set_num_threads(1)
    v = generate_video("default", 7, size=(1280, 720))
    k = int(np.argmax(v.visible_area[:, 0]))
    n = min(frames, v.num_frames - 1)
    print(f"propagation speed at 1280x720, one object, {n} frames, one thread")
    for name, make in (("flow", FlowSession), ("grabcut", GrabCutSession)):
        s = make(v.frames)
        s.set_mask(0, 1, v.mask(k, 0))
        t0 = time.perf_counter()
        got = sum(1 for _ in s.propagate(0, "forward", n))
        print(f"  {name:8s} {got / (time.perf_counter() - t0):6.1f} frames/s")
    from engine.assist.sam2_tool import Sam2Config, Sam2Model

    t0 = time.perf_counter()
    model = Sam2Model(Sam2Config(size="tiny", random_weights=True, device="cpu"))
    load = time.perf_counter() - t0
    s = model.open(v.frames, AssistConfig(lost_after=10**6))
    x0, y0, x1, y1 = v.boxes[k, 0]
    t0 = time.perf_counter()
    s.add_prompt(0, 1, box=(x0, y0, x1, y1))
    prompt = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = sum(1 for _ in s.propagate(0, "forward", min(sam2_frames, v.num_frames - 1)))
    print(f"  sam2 tiny, 1024 input, CPU, random weights: {got / (time.perf_counter() - t0):.2f} frames/s "
          f"(build {load:.1f} s, a box prompt {prompt:.1f} s on the frame encoded at open)")


class LazyVideo:
    def __init__(self, n: int, size=(320, 192)):
        self.n, self.w, self.h = n, size[0], size[1]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        img = np.full((self.h, self.w, 3), 40, np.uint8)
        img[::8] = 90        # some texture for the flow
        x = 40 + abs((i % 200) - 100)
        img[60:110, x:x + 50] = (220, 60, 60)
        return img


def bench_memory(frames: int, sam2_frames: int) -> None:
    import torch

    torch.set_num_threads(1)
    print(f"resident memory during one long propagation (lazy {LazyVideo(1).w}x{LazyVideo(1).h} video)")
    for name in ("flow", "sam2"):
        if name == "flow":
            n = frames
            s = FlowSession(LazyVideo(n + 1))
        else:
            from engine.assist.sam2_tool import Sam2Config, Sam2Model

            n = sam2_frames
            model = Sam2Model(Sam2Config(size="tiny", random_weights=True, device="cpu", image_size=128))
            s = model.open(LazyVideo(n + 1), AssistConfig(lost_after=10**6))
        first = LazyVideo(1)[0]
        s.set_mask(0, 1, (first[..., 0] > 200))
        marks, t0 = {}, time.perf_counter()
        for f, _ in s.propagate(0):
            if f in (n // 10, n // 2, n):
                marks[f] = rss_mb()
        dt = time.perf_counter() - t0
        extra = f", SAM 2 holds {s.stored_outputs(1)} outputs" if name == "sam2" else ""
        print(f"  {name:5s} " + ", ".join(f"frame {f}: {m:.0f} MB" for f, m in marks.items())
              + f" ({n / dt:.1f} frames/s{extra})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["iou", "speed", "memory"], choices=("iou", "speed", "memory"))
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int, default=1000, help="frames of the memory run (flow)")
    ap.add_argument("--sam2-frames", type=int, default=1000, help="frames of SAM 2's memory run (128 input)")
    ap.add_argument("--speed-frames", type=int, default=10)
    ap.add_argument("--sam2-speed-frames", type=int, default=3)
    args = ap.parse_args()
    if "iou" in args.what:
        bench_iou(range(args.videos))
    if "speed" in args.what:
        bench_speed(args.speed_frames, args.sam2_speed_frames)
    if "memory" in args.what:
        bench_memory(args.frames, args.sam2_frames)


if __name__ == "__main__":
    main()
