"""Inference throughput of the tiny preset, end to end: decoded RGB frames in, RLE masks of the top-k tracks
out.

Run: .venv/bin/python bench/bench_inference.py [--frames 48] [--size 320x192] [--threads 1] [--repeats 2]

For each configuration the same decoded frames (a synthetic video of the `default` preset) go through
`engine.inference.infer` on the CPU; the time covers resizing, the network, mask upsampling, thresholding, RLE
encoding and window linking. Networks: a sync network (read out as sync, and again with internals=True, which
also links the frame-level predictions), a video-only and a frame-only network. Weights are the bundled ones
in resources/models/ when a checkpoint of that mode is there, random-init otherwise (speed does not depend on
the values). The split between the network's forward pass and everything else is measured by timing the
forward calls. The best of `--repeats` runs is reported (the machine is shared; the minimum is the least
disturbed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as main.py, before torch: idle OpenMP threads sleep
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.config import preset  # noqa: E402
from engine.data.synthetic import generate_video  # noqa: E402
from engine.inference import infer  # noqa: E402
from engine.model.syncvis import build_model  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "resources" / "models"


class Timed(torch.nn.Module):
    """The network with its forward time accumulated."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.cfg, self.seconds = model, model.cfg, 0.0

    def forward(self, *a, **kw):
        t = time.perf_counter()
        out = self.inner(*a, **kw)
        self.seconds += time.perf_counter() - t
        return out


def load(mode: str):
    for path in sorted(MODELS.glob("*.pt")):
        try:
            from engine.model.checkpoint import load_checkpoint

            model, meta = load_checkpoint(path)
            if model.cfg.mode == mode:
                return model, path.name
        except Exception:  # noqa: BLE001 - not a checkpoint of ours
            continue
    torch.manual_seed(0)
    return build_model(preset("tiny", mode).model).eval(), "random init"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="320x192")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    from dataclasses import replace

    from engine.data.synthetic import PRESETS

    cfg_v = replace(PRESETS["default"], frames=(args.frames, args.frames))
    frames = generate_video(cfg_v, seed=1, size=(w, h)).frames
    infer_cfg = preset("tiny").infer
    infer_cfg.device = "cpu"
    print(f"{len(frames)} frames {w}x{h}, window {infer_cfg.window}, torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [("sync", "sync", False), ("sync", "sync", True), ("video", "video", False),
            ("frame", "frame", False)]
    print(f"{'network':8s} {'read-out':16s} {'weights':14s} {'fps':>7s} {'net s':>7s} {'post s':>7s}")
    for net_mode, readout, internals in rows:
        model, source = load(net_mode)
        timed = Timed(model)
        infer(frames[: infer_cfg.window], timed, replace(infer_cfg, mode=readout))   # warm-up
        best = None
        for _ in range(args.repeats):
            timed.seconds = 0.0
            t = time.perf_counter()
            infer(frames, timed, replace(infer_cfg, mode=readout), internals=internals)
            total = time.perf_counter() - t
            if best is None or total < best[0]:
                best = (total, timed.seconds)
        total, net = best
        label = readout + (" +internals" if internals else "")
        print(f"{net_mode:8s} {label:16s} {source:14s} {len(frames) / total:7.2f} {net:7.2f} "
              f"{total - net:7.2f}")


if __name__ == "__main__":
    main()
