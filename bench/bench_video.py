"""VideoReader speed against OpenCV on one generated 720p h264 file with B-frames.

Run: .venv/bin/python bench/bench_video.py [--frames 300] [--size 1280x720]

Measures, in one run on the same file:
- sequential decode throughput, frames delivered as RGB uint8 arrays by both (OpenCV's BGR is converted, as
  the app would have to); target: VideoReader >= 0.9 x OpenCV;
- random-access latency over 100 random frames, cold (fresh reader, frames never decoded) and cached
  (the same frames again); target: cached median < 2 ms.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.data.video import VideoReader  # noqa: E402


def make_video(path: Path, n: int, width: int, height: int) -> None:
    """Moving gradients, a few moving boxes and light noise: camera-like, so the decoder does typical work."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 6, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], -1)
    base = base.astype(np.uint8)
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "superfast", "bf": "3", "g": "60", "keyint_min": "60", "crf": "23"}
    for i in range(n):
        img = np.roll(base, 3 * i, axis=1)
        img = cv2.add(img, noise)
        for k in range(4):
            x = int((width - 120) * (0.5 + 0.5 * np.sin(0.05 * i + k)))
            y = int((height - 90) * (0.5 + 0.5 * np.cos(0.07 * i + 2 * k)))
            img[y : y + 90, x : x + 120] = (60 * k, 255 - 50 * k, 128)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()


def seq_videoreader(path: Path) -> tuple[int, float]:
    t = time.perf_counter()
    with VideoReader(path) as r:
        n = 0
        for _frame in r:
            n += 1
    return n, time.perf_counter() - t


def seq_opencv(path: Path) -> tuple[int, float]:
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n, time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--repeats", type=int, default=5, help="sequential passes per reader, interleaved")
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    width, height = map(int, args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        t = time.perf_counter()
        make_video(path, args.frames, width, height)
        print(f"generated {path.name}: {args.frames} frames {width}x{height} h264 "
              "(bf=3, gop=60, x264 superfast) "
              f"in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        with VideoReader(path) as r:
            open_s = time.perf_counter() - t
            info = r.info
        print(f"VideoReader open (packet index + first frame): {open_s * 1000:.1f} ms; {info}")

        # Interleave the passes so both readers see the same machine load.
        ours, theirs = [], []
        for _ in range(args.repeats):
            n_ours, s = seq_videoreader(path)
            ours.append(s)
            n_cv, s = seq_opencv(path)
            theirs.append(s)
        if n_ours != n_cv:
            print(f"frame counts differ: VideoReader {n_ours}, OpenCV {n_cv}")
        fps_ours, fps_cv = n_ours / min(ours), n_cv / min(theirs)
        # On a shared machine the load moves between passes; the ratio of each back-to-back pair is steadier.
        pair_ratio = statistics.median((n_ours / a) / (n_cv / b) for a, b in zip(ours, theirs, strict=True))

        rng = np.random.default_rng(1)
        picks = rng.integers(0, info.num_frames, args.samples).tolist()
        cold, cached = [], []
        with VideoReader(path, cache_size=args.samples + 8) as r:
            for i in picks:
                if i in r._cache:  # a repeated pick would be a cache hit, not a cold read
                    continue
                t = time.perf_counter()
                r[i]
                cold.append(time.perf_counter() - t)
            for i in picks:
                t = time.perf_counter()
                r[i]
                cached.append(time.perf_counter() - t)

    rows = [
        ("sequential VideoReader (RGB)", f"{fps_ours:8.1f} fps", f"best of {len(ours)}"),
        ("sequential OpenCV (BGR->RGB)", f"{fps_cv:8.1f} fps", f"best of {len(theirs)}"),
        ("ratio of best passes", f"{fps_ours / fps_cv:8.2f}", "target >= 0.90"),
        (f"ratio, median of {len(ours)} pairs", f"{pair_ratio:8.2f}", "target >= 0.90"),
        (f"random cold ({len(cold)} frames)", f"{statistics.median(cold) * 1e3:8.2f} ms",
         f"p95 {pct(cold, 95) * 1e3:.2f} ms"),
        (f"random cached ({len(cached)} frames)", f"{statistics.median(cached) * 1e3:8.3f} ms",
         f"p95 {pct(cached, 95) * 1e3:.3f} ms  (target < 2 ms)"),
    ]
    print()
    print(f"{'measure':34s} {'value':>13s}  note")
    print("-" * 80)
    for name, value, note in rows:
        print(f"{name:34s} {value:>13s}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
