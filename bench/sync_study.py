"""The studies behind the bundled models' table: input length T, and what makes `sync` (not) come out ahead.

    python bench/sync_study.py train --study length|sync [--variants a,b] [--iters 300] [--batch 4]
    python bench/sync_study.py table --study length|sync|inference|steps [--splits default,hard] [--json OUT]

Every trained variant is a short fine-tune of a bundled checkpoint (`resources/models/tiny-{video,sync}.pt`) on
the bundled training set (`bench/bundled_models.py data`), one factor changed, everything else equal: the same
start, data order, schedule and budget. Short runs from random weights score AP 0 on every variant (the first
T = 2 runs, 250 iterations from scratch), so a shared start is the only way a CPU budget shows differences.
`control` (= `sync-T4`) continues the bundled recipe unchanged and `control-seed1` repeats it with another data
order: their gap is the run-to-run noise every other difference must beat.

`--study steps` trains nothing either: it evaluates the intermediate checkpoints that the bundled models' runs kept
(`runs/bundled/run-{mode}/checkpoints`), a training-length curve of the recipe itself.

`--study inference` trains nothing: it evaluates the bundled `sync` checkpoint with its synchronisation settings
changed at test time (lambda, N_k, order) and with its video-level or frame-level queries read out alone.

Next to AP, the table reports class-agnostic AP and "tube IoU": the mean over ground-truth objects of the best
video IoU any prediction reaches with it, whatever its class or score. With the toy models' class scores near
chance, tube IoU is the measure that still moves: it says how well objects are segmented and kept together over
the video.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bundled_models import HELD_OUT, evaluate_checkpoint, evaluate_loaded  # noqa: E402

# name -> (mode, starting checkpoint, train() overrides)
STUDIES: dict[str, dict[str, tuple[str, str, dict]]] = {
    "length": {
        f"{mode}-T{t}": (mode, f"tiny-{mode}.pt", {"num_frames": t}) for mode in ("video", "sync") for t in (2, 4, 8)
    },
    "sync": {
        "control-seed1": ("sync", "tiny-sync.pt", {"seed": 1}),
        "lambda0": ("sync", "tiny-sync.pt", {"model.sync.momentum": 0.0}),
        "lambda0.2": ("sync", "tiny-sync.pt", {"model.sync.momentum": 0.2}),
        "Nk1": ("sync", "tiny-sync.pt", {"model.sync.top_k": 1}),
        "Nk16": ("sync", "tiny-sync.pt", {"model.sync.top_k": 16}),
        "Ts1": ("sync", "tiny-sync.pt", {"loss.subclip_len": 1}),
        "Ts4": ("sync", "tiny-sync.pt", {"loss.subclip_len": 4}),
        "video_first": ("sync", "tiny-sync.pt", {"model.sync.order": "video_first"}),
    },
}
# the sync study's control is the length study's T = 4 sync run (same recipe)
CONTROL = ("length", "sync-T4")

# test-time changes of the bundled sync model: name -> (read-out mode or None, sync settings)
INFERENCE: dict[str, tuple[str | None, dict]] = {
    "bundled": (None, {}),
    "lambda0": (None, {"momentum": 0.0}),
    "lambda0.2": (None, {"momentum": 0.2}),
    "Nk1": (None, {"top_k": 1}),
    "Nk16": (None, {"top_k": 16}),
    "video_first": (None, {"order": "video_first"}),
    "read-out video": ("video", {}),
    "read-out frame": ("frame", {}),
}


def run_dir(root: Path, study: str, name: str) -> Path:
    return root / "study" / study / name


def train_variants(root: Path, models: Path, study: str, names: list[str], iters: int, batch: int,
                   lr: float) -> None:
    from engine.train import train

    for name in names:
        mode, start, overrides = STUDIES[study][name]
        out = run_dir(root, study, name)
        if (out / "model_final.pt").is_file():
            print(f"{study}/{name}: done already ({out})")
            continue
        t0 = time.time()
        train(root / "train", out, preset="tiny", mode=mode, init=models / start, iters=iters, batch_size=batch,
              lr=lr, resume=(out / "events.jsonl").exists(),
              overrides={**overrides, "val_fraction": 0.0, "eval_every": 0, "checkpoint_every": 100})
        print(f"{study}/{name}: {time.time() - t0:.0f} s", flush=True)


def _checkpoints(root: Path, study: str) -> dict[str, Path]:
    names = dict(STUDIES[study])
    found = {}
    if study == "sync":
        found["control"] = run_dir(root, *CONTROL) / "model_final.pt"
    for name in names:
        found[name] = run_dir(root, study, name) / "model_final.pt"
    return {k: v for k, v in found.items() if v.is_file()}


def _cached(path: Path, split_dir: Path) -> dict:
    """A trained variant's numbers on one split, kept next to it until its checkpoint changes."""
    cache = path.parent / f"eval_{split_dir.name}.json"
    if cache.is_file() and cache.stat().st_mtime > path.stat().st_mtime:
        return json.loads(cache.read_text())
    stats = evaluate_checkpoint(path, split_dir)
    cache.write_text(json.dumps(stats, indent=1))
    return stats


def table(root: Path, models: Path, study: str, splits: list[str], json_out: Path | None) -> str:
    from engine.model.checkpoint import load_checkpoint

    cols = ("AP", "AP50", "AR10", "AP_agnostic", "tube_iou")
    rows, data = [], {}
    # name -> split folder -> stats
    evaluators: dict[str, Callable[[Path], dict]] = {}
    if study == "inference":
        for name, (readout, sync) in INFERENCE.items():
            model, meta = load_checkpoint(models / "tiny-sync.pt")
            for k, v in sync.items():
                setattr(model.cfg.sync, k, v)
            evaluators[name] = partial(evaluate_loaded, model, meta, mode=readout)
    elif study == "steps":
        for mode in ("sync", "video", "frame"):
            for path in sorted((root / f"run-{mode}" / "checkpoints").glob("model_*.pt")):
                evaluators[f"{mode} @{int(path.stem.split('_')[1])}"] = partial(evaluate_checkpoint, path)
    else:
        evaluators = {name: partial(_cached, path) for name, path in _checkpoints(root, study).items()}
    for name, evaluate in evaluators.items():
        for split in splits:
            s = evaluate(root / split)
            data[f"{name}/{split}"] = s
            rows.append(f"| {name} | {split} | " + " | ".join(f"{100 * s[c]:.1f}" for c in cols) + " |")
            print(rows[-1], flush=True)
    head = "| variant | split | AP | AP50 | AR10 | AP class-agnostic | tube IoU |\n|---|---|---|---|---|---|---|"
    if json_out:
        json_out.write_text(json.dumps(data, indent=2))
    return head + "\n" + "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("train", "table"))
    ap.add_argument("--study", choices=("length", "sync", "inference", "steps"), required=True)
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "bundled")
    ap.add_argument("--models", type=Path, default=ROOT / "resources" / "models")
    ap.add_argument("--variants", default="", help="comma-separated subset (default: all of the study)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--splits", default="default,hard")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    splits = args.splits.split(",")
    unknown = set(splits) - set(HELD_OUT)
    if unknown:
        ap.error(f"unknown split(s) {', '.join(sorted(unknown))}; choose from {', '.join(HELD_OUT)}")
    if args.step == "train":
        if args.study in ("inference", "steps"):
            ap.error(f"the {args.study} study trains nothing; run `table --study {args.study}`")
        names = args.variants.split(",") if args.variants else list(STUDIES[args.study])
        bad = [n for n in names if n not in STUDIES[args.study]]
        if bad:
            ap.error(f"unknown variant(s) {', '.join(bad)} of study {args.study}")
        train_variants(args.root, args.models, args.study, names, args.iters, args.batch, args.lr)
    else:
        print(table(args.root, args.models, args.study, splits, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
