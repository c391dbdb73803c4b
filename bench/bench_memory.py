"""Peak memory of whole-video inference must not grow with the video's length (only the RLE output may).

Run: .venv/bin/python bench/bench_memory.py [--short 100] [--long 1000] [--size 320x192] [--mode sync]

Method (each length measured in its own fresh child process, so one run cannot inherit the other's heap):
1. the parent writes an H.264 mp4 of moving shapes of each length;
2. the child loads the tiny network (resources/models/tiny-<mode>.pt if present, else random init), runs one
   warm-up window so the allocator and thread pools are set up, then records its resident set (VmRSS) as the
   baseline and resets the kernel's high-water mark (`echo 5 > /proc/self/clear_refs`, Linux);
3. it runs `engine.inference.infer` on a `VideoReader` of the file (frames decoded on demand, as the app does)
   with Python's tracemalloc on, and reports VmHWM (peak resident set during inference, covering torch's C++
   allocations and the decoder), the tracemalloc peak (Python objects: RLE dicts, lists, numpy arrays), and
   the size of the results as JSON. The figure that must stay under 1.3 is the ratio of the long to the short
   video's peak resident set. Because that includes the fixed cost of Python + torch + the model, the growth
   over the baseline is printed as well: it is what the video adds, and it should be of the order of the RLE
   output, not of the frames or mask logits.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as main.py: idle OpenMP threads sleep


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def write_video(path: Path, n: int, width: int, height: int) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    bg = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    blobs = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-2, 2), rng.uniform(-2, 2),
              rng.uniform(10, 25), rng.integers(100, 255, 3)) for _ in range(5)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        for t in range(n):
            img = bg.copy()
            for x, y, vx, vy, r, col in blobs:
                cx, cy = (x + vx * t) % width, (y + vy * t) % height
                img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = col
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def child(path: str, mode: str, threads: int) -> None:
    import tracemalloc

    import torch

    from engine.config import preset
    from engine.data.video import VideoReader
    from engine.inference import infer
    from engine.model.syncvis import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, source = build_model(preset("tiny", mode).model).eval(), "random init"
    bundled = ROOT / "resources" / "models" / f"tiny-{mode}.pt"
    if bundled.is_file():
        from engine.model.checkpoint import load_checkpoint

        model, source = load_checkpoint(bundled)[0], bundled.name
    cfg = preset("tiny").infer
    cfg.device = "cpu"
    with VideoReader(path, cache_size=2) as r:
        warm = [r[i] for i in range(cfg.window)]
        import numpy as np

        infer(np.stack(warm), model, cfg)
        del warm
    baseline = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    tracemalloc.start()
    t = time.perf_counter()
    with VideoReader(path, cache_size=2) as r:
        n = len(r)
        pred = infer(r, model, cfg)
    seconds = time.perf_counter() - t
    peak = _status_kb("VmHWM")   # before serialising the results, which is not inference's memory
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out_bytes = len(json.dumps(pred.to_ytvis_results(1)))
    print(json.dumps({"frames": n, "baseline_kb": baseline, "peak_kb": peak,
                      "hwm_reset": reset,
                      "py_peak_kb": py_peak // 1024, "results_kb": out_bytes // 1024, "seconds": seconds,
                      "tracks": len(pred.tracks), "weights": source}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", type=int, default=100)
    ap.add_argument("--long", type=int, default=1000)
    ap.add_argument("--size", default="320x192")
    ap.add_argument("--mode", default="sync", choices=("sync", "video", "frame"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mode, args.threads)
        return
    w, h = (int(v) for v in args.size.split("x"))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.short, args.long):
            path = Path(tmp) / f"v{n}.mp4"
            write_video(path, n, w, h)
            proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--mode", args.mode,
                                   "--threads", str(args.threads)], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode:
                sys.exit(proc.stderr)
            rows[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"mode {args.mode}, {w}x{h}, tiny preset ({rows[args.short]['weights']}), "
          "one child process per length")
    print(f"{'frames':>7s} {'baseline MB':>12s} {'peak MB':>9s} {'growth MB':>10s} {'py peak MB':>11s} "
          f"{'results MB':>11s} {'fps':>6s}")
    for n, r in rows.items():
        print(f"{n:7d} {r['baseline_kb'] / 1024:12.1f} {r['peak_kb'] / 1024:9.1f} "
              f"{(r['peak_kb'] - r['baseline_kb']) / 1024:10.1f} {r['py_peak_kb'] / 1024:11.1f} "
              f"{r['results_kb'] / 1024:11.2f} {n / r['seconds']:6.2f}")
    a, b = rows[args.short], rows[args.long]
    ratio = b["peak_kb"] / a["peak_kb"]
    print(f"peak resident set ratio {args.long}/{args.short} frames: {ratio:.3f} (limit 1.3) -> "
          f"{'OK' if ratio < 1.3 else 'FAIL'}")
    if not (a["hwm_reset"] and b["hwm_reset"]):
        print("note: the high-water mark could not be reset; peaks include the warm-up")


if __name__ == "__main__":
    main()
