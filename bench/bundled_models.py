"""Reproduce the bundled `tiny` models and their results table.

    python bench/bundled_models.py data  [--root runs/bundled]      # synthetic train + held-out splits
    python bench/bundled_models.py train [--root ...] [--iters N] [--batch B] [--modes sync,video,frame]
                                         [--num-frames T] [--tag=-T8]
    python bench/bundled_models.py table [--root ...] [--models resources/models] [--json OUT] [--confusion]
    python bench/bundled_models.py curve [--runs RUN_DIR ...]          # AP / tube IoU vs CPU hours
    python bench/bundled_models.py promote --checkpoint RUN/checkpoints/model_N.pt --out FILE --recipe "..."

The data are the project's synthetic benchmark (engine/data/synthetic.py), fixed by seed:
train = 240 `default` videos (seed 1) + 80 `hard` videos (seed 2); held-out = 30 `default` (seed 101),
20 `hard` (seed 102) and 4 `long` (seed 103) videos, all 320x192. The table runs windowed inference
(engine.inference.infer, the preset's window) and the YouTube-VIS metrics (engine.evaluation) on each split.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN_PARTS = (("default", 240, 1), ("hard", 80, 2))
HELD_OUT = {"default": ("default", 30, 101), "hard": ("hard", 20, 102), "long": ("long", 4, 103)}
MODES = ("sync", "video", "frame")
METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")


def make_data(root: Path) -> None:
    from engine.data.synthetic import write_dataset
    from engine.data.ytvis import Dataset
    from engine.progress import ConsoleProgress

    train = root / "train"
    if not (train / "annotations.json").is_file():
        parts = []
        for preset, n, seed in TRAIN_PARTS:
            with ConsoleProgress(f"train/{preset}", unit="video") as bar:
                parts.append(write_dataset(root / f"part_{preset}", preset=preset, num_videos=n, seed=seed,
                                           progress=bar))
        merged = merge_datasets([Dataset.from_folder(p) for p in parts], train)
        merged.save(train / "annotations.json")
        for p in parts:
            (p / "annotations.json").unlink()
    for split, (preset, n, seed) in HELD_OUT.items():
        if not (root / split / "annotations.json").is_file():
            with ConsoleProgress(f"held-out/{split}", unit="video") as bar:
                write_dataset(root / split, preset=preset, num_videos=n, seed=seed, progress=bar)


def merge_datasets(parts, out: Path):
    """One dataset folder from several: frames moved under out/JPEGImages, ids renumbered."""
    from engine.data.ytvis import Dataset, Instance, VideoEntry

    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    videos, instances = [], []
    for ds in parts:
        vmap = {}
        for v in ds.videos:
            src = ds.root / "JPEGImages" / v.name
            dst = out / "JPEGImages" / v.name
            if not dst.exists():
                shutil.move(str(src), str(dst))
            vmap[v.id] = len(videos) + 1
            videos.append(VideoEntry(id=vmap[v.id], file_names=v.file_names, width=v.width, height=v.height))
        for inst in ds.instances:
            instances.append(Instance(id=len(instances) + 1, video_id=vmap[inst.video_id],
                                      category_id=inst.category_id, segmentations=inst.segmentations))
    return Dataset(videos=videos, categories=parts[0].categories, instances=instances,
                   info={"description": "SyncVIS Studio bundled-model training set", "parts": str(TRAIN_PARTS)})


def train_models(root: Path, iters: int, modes: list[str], num_frames: int | None, batch: int | None, out: Path,
                 tag: str) -> None:
    from engine.train import train

    for mode in modes:
        run = root / f"run-{mode}{tag}"
        t0 = time.time()
        ckpt = train(root / "train", run, preset="tiny", mode=mode, iters=iters, num_frames=num_frames,
                     batch_size=batch,
                     val_dir=root / "default", resume=(run / "events.jsonl").exists())
        print(f"{mode}: {ckpt} in {time.time() - t0:.0f} s")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            from engine.model.checkpoint import load_checkpoint, save_checkpoint

            model, meta = load_checkpoint(ckpt)
            prov = dict(meta.get("provenance") or {})
            prov.update({"recipe": f"bench/bundled_models.py train --iters {iters} --batch {batch}",
                         "train_seconds": time.time() - t0})
            save_checkpoint(out / f"tiny-{mode}{tag}.pt", model, meta["class_names"], prov, fp16=True)


def promote(ckpt: Path, out: Path, recipe: str) -> Path:
    """Save a run's checkpoint as a bundled model: fp16 storage, the recipe and the training cost (CPU seconds of
    the run up to that step, from its events.jsonl) in the provenance."""
    from engine.model.checkpoint import load_checkpoint, save_checkpoint
    from engine.train import read_events

    model, meta = load_checkpoint(ckpt)
    prov = dict(meta.get("provenance") or {})
    step = prov.get("step")
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    cpu = [e["cpu_s"] for e in read_events(run) if e.get("step") == step and "cpu_s" in e]
    prov.update({"recipe": recipe, "train_cpu_seconds": max(cpu) if cpu else None, "source": str(ckpt)})
    return save_checkpoint(out, model, meta["class_names"], prov, fp16=True, extra=meta.get("extra"))


def evaluate_checkpoint(ckpt: Path, split_dir: Path) -> dict:
    from engine.model.checkpoint import load_checkpoint

    return evaluate_loaded(*load_checkpoint(ckpt), split_dir)


def evaluate_loaded(model, meta: dict, split_dir: Path, mode: str | None = None) -> dict:
    """YTVIS metrics of a loaded checkpoint on one held-out split, plus fps, class-agnostic AP and tube IoU.

    `mode` picks the read-out (a sync model's video or frame queries alone); None is the model's own."""
    from engine.data.ytvis import Dataset
    from engine.evaluation import evaluate
    from engine.inference import infer_config_for
    from engine.train import class_agnostic, predict_dataset

    cfg = infer_config_for(meta)   # the preset's window and native size
    if mode is not None:
        cfg = dataclasses.replace(cfg, mode=mode)
    # the same per-video run as training's evaluation
    t0 = time.time()
    gt, results = predict_dataset(model, Dataset.from_folder(split_dir), meta["class_names"], cfg)
    fps = sum(v.length for v in gt.videos) / (time.time() - t0)
    stats = dict(evaluate(gt, results).stats)
    stats["fps"] = fps
    # class-agnostic AP separates "found and tracked the objects" from "named the shape right"
    one = evaluate(*class_agnostic(gt, results))
    stats["AP_agnostic"] = one.stats["AP"]
    # tube IoU: per object, the best video IoU of any prediction (any class, any score), averaged over objects
    stats["tube_iou"] = one.mean_best_iou()
    stats["confusion"] = confusion(gt, results)
    return stats


def confusion(gt, results: list[dict], min_iou: float = 0.5) -> dict:
    """Class confusion of the matched tracks: for every ground-truth object, the highest-scoring prediction whose
    video IoU with it is >= min_iou (whatever its label; what AP would rank first), and its label. Returns
    {"classes": names, "matrix": rows = true class, columns = predicted class + a last "missed" column}."""
    import numpy as np

    from engine.evaluation import video_iou

    cats = [c.id for c in gt.categories]
    col = {c: i for i, c in enumerate(cats)}
    mat = np.zeros((len(cats), len(cats) + 1), dtype=int)
    by_video: dict[int, list[dict]] = {}
    for r in results:
        by_video.setdefault(r["video_id"], []).append(r)
    for v in gt.videos:
        objs = gt.instances_of(v.id)
        if not objs:
            continue
        preds = by_video.get(v.id, [])
        iou = video_iou([p["segmentations"] for p in preds], [o.segmentations for o in objs])
        for j, o in enumerate(objs):
            ok = [i for i in range(len(preds)) if iou[i, j] >= min_iou]
            if not ok:
                mat[col[o.category_id], -1] += 1
                continue
            best = max(ok, key=lambda i: preds[i]["score"])
            mat[col[o.category_id], col[preds[best]["category_id"]]] += 1
    names = gt.category_names()
    return {"classes": [names[c] for c in cats], "matrix": mat.tolist()}


def format_confusion(conf: dict) -> str:
    short = [n[:4] for n in conf["classes"]]
    head = "| true \\ predicted | " + " | ".join(short) + " | missed | right |\n|---|" + "---|" * (len(short) + 2)
    rows = []
    for name, row in zip(conf["classes"], conf["matrix"], strict=True):
        i = conf["classes"].index(name)
        found = sum(row[:-1])
        right = f"{100 * row[i] / found:.0f}%" if found else "-"
        rows.append(f"| {name} | " + " | ".join(str(x) for x in row) + f" | {right} |")
    return head + "\n" + "\n".join(rows)


def curve(runs: list[Path]) -> str:
    """AP / tube IoU against training cost from the periodic evaluations in each run's events.jsonl."""
    from engine.train import read_events

    lines = ["| run | step | CPU hours | AP | AP50 | AR10 | tube IoU |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        for e in read_events(run):
            if e.get("type") != "eval":
                continue
            iou = f"{100 * e['tube_iou']:.1f}" if "tube_iou" in e else "-"
            cpu = f"{e['cpu_s'] / 3600:.2f}" if "cpu_s" in e else "-"
            lines.append(f"| {run.name} | {e['step']} | {cpu} | {100 * e['AP']:.1f} | {100 * e['AP50']:.1f} | "
                         f"{100 * e['AR10']:.1f} | {iou} |")
    return "\n".join(lines)


def table(root: Path, models: Path, tag: str, json_out: Path | None, splits: list[str], modes: list[str],
          show_confusion: bool = False) -> str:
    rows, data = [], {}
    for mode in modes:
        ckpt = models / f"tiny-{mode}{tag}.pt"
        if not ckpt.is_file():
            continue
        for split in splits:
            s = evaluate_checkpoint(ckpt, root / split)
            data[f"{mode}/{split}"] = s
            rows.append(f"| {mode} | {split} | " + " | ".join(f"{100 * s[m]:.1f}" for m in METRICS)
                        + f" | {100 * s['AP_agnostic']:.1f} | {100 * s['tube_iou']:.1f} | {s['fps']:.1f} |")
            print(rows[-1], flush=True)
    head = ("| mode | split | " + " | ".join(METRICS) + " | AP class-agnostic | tube IoU | fps |\n|---|---|"
            + "---|" * (len(METRICS) + 3))
    text = head + "\n" + "\n".join(rows)
    if show_confusion:
        for key, st in data.items():
            text += f"\n\nConfusion of the matched tracks, {key} (video IoU >= 0.5, best-scoring match):\n\n"
            text += format_confusion(st["confusion"])
    if json_out:
        json_out.write_text(json.dumps(data, indent=2))
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("data", "train", "table", "curve", "promote"))
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "bundled")
    ap.add_argument("--models", type=Path, default=ROOT / "resources" / "models")
    ap.add_argument("--iters", type=int, default=700)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--num-frames", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2, help="clips per step (the tiny preset's own default is 4)")
    ap.add_argument("--tag", default="", help="suffix of run folders and checkpoint names (e.g. -T8)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--confusion", action="store_true", help="table: also the class confusion of matched tracks")
    ap.add_argument("--runs", type=Path, nargs="*", default=[], help="curve: run folders (events.jsonl)")
    ap.add_argument("--checkpoint", type=Path, help="promote: a run's model_XXXXXXX.pt")
    ap.add_argument("--out", type=Path, help="promote: the bundled file to write (fp16)")
    ap.add_argument("--recipe", default="", help="promote: the command line that trained it")
    ap.add_argument("--splits", default=",".join(HELD_OUT), help="held-out splits for the table")
    args = ap.parse_args()
    if args.step == "data":
        make_data(args.root)
    elif args.step == "train":
        train_models(args.root, args.iters, args.modes.split(","), args.num_frames, args.batch, args.models,
                     args.tag)
    elif args.step == "promote":
        print(promote(args.checkpoint, args.out, args.recipe))
    elif args.step == "curve":
        print(curve(args.runs or sorted(p for p in args.root.glob("run-*") if (p / "events.jsonl").is_file())))
    else:
        print(table(args.root, args.models, args.tag, args.json, args.splits.split(","), args.modes.split(","),
                    args.confusion))
    return 0


if __name__ == "__main__":
    sys.exit(main())
