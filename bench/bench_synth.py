"""Throughput of the synthetic benchmark writer on one core: frames of output per second, JPEG writing, RLE
encoding and the annotation file included. The target is at least 200 frames/s per core.

Both wall-clock and CPU time (time.process_time) are reported: on a shared machine the wall clock mostly
measures the neighbours, while CPU time of this single-threaded process is what one free core would take.

    .venv/bin/python bench/bench_synth.py [--default 20] [--hard 10] [--long 3] [--size 320x192]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data.synthetic import write_dataset  # noqa: E402
from engine.data.ytvis import Dataset  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--default", type=int, default=20, help="default-preset videos")
    p.add_argument("--hard", type=int, default=10, help="hard-preset videos")
    p.add_argument("--long", type=int, default=3, help="long-preset videos")
    p.add_argument("--size", default="320x192")
    args = p.parse_args()
    cv2.setNumThreads(1)
    w, h = (int(v) for v in args.size.split("x"))
    total_frames, total_wall, total_cpu = 0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for preset, count in (("default", args.default), ("hard", args.hard), ("long", args.long)):
            if count <= 0:
                continue
            out = Path(tmp) / preset
            wall, cpu = time.perf_counter(), time.process_time()
            write_dataset(out, preset=preset, num_videos=count, seed=0, size=(w, h))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            ds = Dataset.load(out / "annotations.json")
            frames = sum(v.length for v in ds.videos)
            total_frames, total_wall, total_cpu = total_frames + frames, total_wall + wall, total_cpu + cpu
            print(f"{preset:8s} {count:3d} videos {frames:5d} frames {len(ds.instances):4d} instances  "
                  f"wall {wall:6.2f} s {frames / wall:7.1f} frames/s  "
                  f"cpu {cpu:6.2f} s {frames / cpu:7.1f} frames/s")
    print(f"{'overall':8s} {total_frames:5d} frames  wall {total_frames / total_wall:7.1f} frames/s  "
          f"cpu {total_frames / total_cpu:7.1f} frames/s  (1 OpenCV thread, {w}x{h})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
