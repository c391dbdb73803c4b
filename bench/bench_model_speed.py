"""Inference speed of the SyncVIS network per preset and mode (B = 1, one window of T frames, torch.no_grad).

    .venv/bin/python bench/bench_model_speed.py                   # tiny, 320x192, T = 12, 2 threads, 3 modes
    .venv/bin/python bench/bench_model_speed.py --r50 --threads 1 --repeats 2
    .venv/bin/python bench/bench_model_speed.py --spin-wait      # OpenMP's default (active) waiting

Prints parameters and frames per second per mode, plus the split between backbone, pixel decoder and decoder.
The machine is often shared: besides wall-clock fps it prints "cpu fps" (frames / CPU seconds of this
process), which is what a dedicated core would give with one thread, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Threads that spin while waiting make two-thread runs several times slower when other processes share the two
# cores; passive waiting must be set before torch (its OpenMP runtime) loads. --spin-wait keeps the default.
if "--spin-wait" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import preset  # noqa: E402
from engine.model import build_model  # noqa: E402


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


@torch.no_grad()
def bench(name: str, mode: str, t: int, h: int, w: int, repeats: int, device: str) -> dict:
    torch.manual_seed(0)
    model = build_model(preset(name, mode).model).eval().to(device)
    frames = torch.rand(1, t, 3, h, w, device=device) * 255
    model(frames)  # warm-up (caches, allocator)
    walls, cpus = [], []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        model(frames)
        if device == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    # one split run: backbone / pixel decoder / decoder
    t0 = time.perf_counter()
    x, _ = model.preprocess(frames)
    feats = model.backbone(x)
    t1 = time.perf_counter()
    mask_features, multi_scale = model.sem_seg_head.pixel_decoder(feats)
    t2 = time.perf_counter()
    model.sem_seg_head.predictor(multi_scale, mask_features, 1, t)
    t3 = time.perf_counter()
    wall = sorted(walls)[len(walls) // 2]
    cpu = sorted(cpus)[len(cpus) // 2]
    return {
        "params": model.num_parameters(),
        "fps": t / wall,
        "best_fps": t / min(walls),
        "cpu_fps": t / cpu if cpu > 0 else float("nan"),
        "split": (t1 - t0, t2 - t1, t3 - t2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--modes", default="sync,video,frame")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--r50", action="store_true", help="also time the r50 preset (slow on CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--spin-wait", action="store_true", help="leave OMP_WAIT_POLICY unset (OpenMP default)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wait = os.environ.get("OMP_WAIT_POLICY", "default")
    print(
        f"torch {torch.__version__}, {args.threads} threads (OMP_WAIT_POLICY {wait}), {args.device}; "
        f"{_load()}"
    )
    presets = [args.preset] + (["r50"] if args.r50 and args.preset != "r50" else [])
    for name in presets:
        repeats = args.repeats if name == args.preset else max(1, min(args.repeats, 2))
        for mode in args.modes.split(","):
            r = bench(name, mode, args.frames, args.height, args.width, repeats, args.device)
            bb, pd, dec = r["split"]
            print(
                f"{name:5s} {mode:5s} {args.width}x{args.height} T={args.frames}: params {r['params']:,}  "
                f"{r['fps']:.1f} fps (best {r['best_fps']:.1f}, cpu {r['cpu_fps']:.1f})  "
                f"split backbone {bb:.3f}s pixel-decoder {pd:.3f}s decoder {dec:.3f}s",
                flush=True,
            )
    print(_load())


if __name__ == "__main__":
    main()
