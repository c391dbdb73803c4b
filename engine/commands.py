"""The `infer`, `train` and `export` commands (registered with engine.cli on import)."""
from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np

from engine.cli import command
from engine.errors import InputError
from engine.progress import ConsoleProgress

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ infer
def _infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="a video file, a frame folder, or a YTVIS dataset folder")
    p.add_argument("--checkpoint", required=True, type=Path, help="model checkpoint (.pt)")
    p.add_argument("-o", "--out", required=True, type=Path,
                   help="results JSON to write (YTVIS results format)")
    p.add_argument("--mode", choices=("sync", "video", "frame"),
                   help="read-out (default: the checkpoint's mode)")
    p.add_argument("--window", type=int, help="frames per inference window (default: the preset's)")
    p.add_argument("--top-k", type=int, help="detections per video (default 10)")
    p.add_argument("--short-side", type=int, help="test resize of the short side (0 = native)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--eval", action="store_true", help="with a dataset folder: print the YTVIS metrics")
    _classes_arg(p, "an official checkpoint")


CLASSES_HELP = ("class names of {what} (the file stores only their count): ytvis2019, ytvis2021, ovis, coco, or a "
                "FILE (one name per line, or a YTVIS annotations JSON with categories). Default: from the class "
                "count (25 OVIS, 80 COCO; 40 is YouTube-VIS 2019 or 2021: a file-name hint such as ytvis19 or the "
                "data's category names decide, else this option must)")


def _classes_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--classes", metavar="NAME|FILE", help=CLASSES_HELP.format(what=what))


def _classes_note(path: Path, meta: dict, classes: str | None) -> None:
    """One `note:` line for an official file (which classes, and why); --classes given with one of ours is said
    to be unused."""
    prov = meta.get("provenance") or {}
    if meta.get("format") == "official":
        print(f"note: {path}: {prov.get('layout')}, classes of {prov.get('vocabulary_title')} "
              f"({prov.get('vocabulary_reason')})")
    elif classes is not None:
        print(f"note: --classes {classes} is not used: {path} names its own classes")


def _infer_config(args: argparse.Namespace, meta: dict):
    """The checkpoint's inference settings (engine.inference.infer_config_for), then the command line on top."""
    from engine.inference import infer_config_for

    cfg = infer_config_for(meta)
    if args.window is not None:
        if args.window < 1:
            raise InputError(None, f"--window must be at least 1, got {args.window}")
        cfg.window = args.window
    if args.top_k is not None:
        cfg.top_k = args.top_k
    if args.short_side is not None:
        cfg.short_side = args.short_side
    cfg.device = args.device
    cfg.mode = args.mode
    return cfg


def _category_map(class_names: list[str], dataset) -> list[int | None]:
    """label index -> dataset category id (`Dataset.category_ids_for`), saying what is mapped how."""
    if dataset is None:
        return list(range(1, len(class_names) + 1))
    cat_of = dataset.category_ids_for(class_names)
    names = dataset.category_names()
    if all(m is None for m in cat_of):
        raise InputError(dataset.root, f"none of the checkpoint's classes ({', '.join(class_names)}) is among the "
                                       f"dataset's ({', '.join(c.name for c in dataset.categories)})")
    if all(m is not None and names[m] != n for m, n in zip(cat_of, class_names, strict=True)):
        log.warning("no class name of the checkpoint is in the dataset; mapping classes by position")
    unmapped = [n for m, n in zip(cat_of, class_names, strict=True) if m is None]
    if unmapped:
        log.warning("classes not in the dataset, their predictions are left out: %s", ", ".join(unmapped))
    return cat_of


@command("infer", "run SyncVIS over a video, a frame folder or a dataset folder")(_infer_args)
def _infer(args: argparse.Namespace) -> int:
    from engine.data.video import VideoReader
    from engine.data.vocabularies import check_classes_option
    from engine.data.ytvis import ANNOTATION_FILE, Dataset, save_results
    from engine.inference import FrameFiles, infer, resolve_mode
    from engine.model.checkpoint import load_checkpoint

    if not args.input.exists():
        raise InputError(args.input, "no such file or folder")
    check_classes_option(args.classes)
    dataset = None
    if args.input.is_dir() and (args.input / ANNOTATION_FILE).is_file():
        dataset = Dataset.from_folder(args.input)
    # the dataset's category names settle an official file's 40 classes (YouTube-VIS 2019 or 2021)
    model, meta = load_checkpoint(args.checkpoint, device="cpu", classes=args.classes,
                                  target_names=[c.name for c in dataset.categories] if dataset else None)
    _classes_note(args.checkpoint, meta, args.classes)
    class_names = list(meta.get("class_names") or [f"class {i + 1}" for i in range(model.cfg.num_classes)])
    cfg = _infer_config(args, meta)
    try:
        resolve_mode(model.cfg.mode, cfg.mode)
    except ValueError as e:
        raise InputError(args.checkpoint, str(e)) from None
    if dataset is not None:
        jobs = [(v.id, FrameFiles(dataset.frame_paths(v), v.width, v.height)) for v in dataset.videos]
    else:
        jobs = [(1, VideoReader(args.input, cache_size=2))]
        from engine.cli import input_notes

        for note in input_notes(jobs[0][1]):  # a damaged video: say so, then carry on with what was read
            print(f"note: {note}")
    if args.eval and dataset is None:
        raise InputError(args.input, "--eval needs a dataset folder (with annotations.json)")
    cat_of = _category_map(class_names, dataset)
    if dataset is None and meta.get("category_ids"):   # an official file: its dataset's own ids (COCO has gaps)
        cat_of = [int(i) for i in meta["category_ids"]]
    total = sum(len(src) for _, src in jobs)
    results = []
    done = 0
    with ConsoleProgress("infer", unit="frame") as bar:
        for vid, src in jobs:
            pred = infer(src, model, cfg, class_names=class_names, checkpoint=str(args.checkpoint),
                         progress=lambda d, _t, base=done: bar(base + d, total),
                         on_notice=lambda m: print(f"note: {m}"))
            done += len(src)
            for r in pred.to_ytvis_results(vid):
                if cat_of[r["category_id"] - 1] is not None:
                    results.append({**r, "category_id": cat_of[r["category_id"] - 1]})
            close = getattr(src, "close", None)
            if close is not None:
                close()
    save_results(args.out, results)
    print(f"wrote {len(results)} predictions for {len(jobs)} video(s) to {args.out}")
    if args.eval:
        from engine.evaluation import evaluate

        print(evaluate(dataset, results).format_table())
    return 0


# ------------------------------------------------------------------------------------------------ train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="training dataset folder (YTVIS layout)")
    p.add_argument("--out", required=True, type=Path, help="run folder (events.jsonl, checkpoints)")
    p.add_argument("--preset", default="tiny", help="tiny | tiny_mobilenet | r50 | swinl")
    p.add_argument("--mode", default="sync", choices=("sync", "video", "frame"))
    p.add_argument("--recipe", default="shared", choices=("shared", "own"),
                   help="shared: every mode trains with the preset's SyncVIS recipe (a controlled comparison); "
                        "own: video trains as Mask2Former-VIS (T = 2, 16 clips/batch, 6k iterations), frame as "
                        "MinVIS (single frames, 32/batch); the tiny preset keeps 16 frames per step")
    p.add_argument("--init", type=Path,
                   help="checkpoint to fine-tune from: ours (its architecture), or an official Mask2Former / "
                        "Mask2Former-VIS / VITA / SyncVIS file (.pth, detectron2 .pkl: the architecture its tensors "
                        "describe, unless --set model.<architecture field> asks for the preset's); class rows are "
                        "copied by class name")
    p.add_argument("--iters", type=int, help="iterations (LR steps scale with it)")
    p.add_argument("--val", type=Path,
                   help="validation dataset folder (default: hold out some training videos)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--num-frames", type=int, help="frames per training clip (T)")
    p.add_argument("--batch", type=int, help="videos per iteration, all processes together")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--backbone-weights", type=Path, metavar="FILE",
                   help="ImageNet ResNet weights for a fresh r50 trunk: a torchvision state dict (e.g. "
                        "resnet50-0676ba61.pth) or a detectron2 one (R-50.pkl of the model zoo); nothing is "
                        "downloaded. Without it the tiny preset's EfficientNet-Lite0 trunk starts from the "
                        "ImageNet weights of its registry package, the others from random weights")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--check-replicas", action="store_true",
                   help="debug: every process writes a checksum of its weights to OUT/replicas/ at the end")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, e.g. --set eval_every=200 --set loss.num_points=1024 "
                        "--set model.sync.top_k=8 (repeatable; model.sync.* also applies on top of --init)")
    _classes_arg(p, "an official --init file")


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(None, f"--set needs KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@command("train", "train or fine-tune SyncVIS on a YTVIS dataset folder (torchrun for many GPUs)")(
    _train_args)
def _train(args: argparse.Namespace) -> int:
    from engine.train import train

    rank0 = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format="%(message)s")
    try:
        overrides = _parse_overrides(args.set)
        from engine.data.vocabularies import check_classes_option

        check_classes_option(args.classes)
        if args.backbone_weights is not None:
            if not args.backbone_weights.is_file():
                raise InputError(args.backbone_weights, "no such file")
            overrides["backbone_weights"] = str(args.backbone_weights)
        bar = ConsoleProgress("train", unit="it") if rank0 else None
        try:
            path = train(args.data, args.out, preset=args.preset, mode=args.mode, init=args.init,
                         iters=args.iters, num_frames=args.num_frames, batch_size=args.batch, lr=args.lr,
                         device=args.device,
                         val_dir=args.val, resume=args.resume, seed=args.seed, overrides=overrides,
                         progress=bar, check_replicas=args.check_replicas, recipe=args.recipe,
                         init_classes=args.classes)
        finally:
            if bar is not None:
                bar.close()
    except (ValueError, KeyError) as e:
        raise InputError(None, str(e)) from None
    if rank0:
        print(f"checkpoint: {path}")
    return 0


# ------------------------------------------------------------------------------------------------ checkpoint-info
def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a checkpoint: ours (.pt) or an official Mask2Former / "
                                           "Mask2Former-VIS / VITA / SyncVIS file (.pth, detectron2 .pkl)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: layout, architecture and the lists loaded, ignored ([key, why]), missing, "
                        "unexpected, mismatched ([key, file shape, model shape]), renamed; for an official "
                        "file also vocabulary (name, title, reason, classes, category_ids)")
    _classes_arg(p, "an official file")


@command("checkpoint-info", "what the loader makes of a checkpoint file, before anything runs")(_info_args)
def _checkpoint_info(args: argparse.Namespace) -> int:
    from engine.data.vocabularies import check_classes_option
    from engine.model.checkpoint import inspect_checkpoint

    check_classes_option(args.classes)
    info = inspect_checkpoint(args.file, classes=args.classes)
    if args.classes is not None and "vocabulary" not in info and not args.json:
        print(f"note: --classes {args.classes} is not used: {args.file} names its own classes")
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    print(f"{info['file']}: {info['layout']}")
    for k, v in info["architecture"].items():
        if k != "classes":
            print(f"  {k}: {v}")
    if info["architecture"].get("classes"):
        print(f"  classes: {', '.join(info['architecture']['classes'])}")
    print(f"  {info['summary']}")
    for what in ("missing", "unexpected"):
        if info[what]:
            print(f"  {what} ({len(info[what])}): {', '.join(info[what][:8])}" + (" ..." if len(info[what]) > 8
                                                                                else ""))
    for key, a, b in info["mismatched"][:8]:
        print(f"  mismatched: {key} file {tuple(a)} vs model {tuple(b)}")
    reasons: dict[str, int] = {}
    for _, why in info["ignored"]:
        reasons[why] = reasons.get(why, 0) + 1
    for why, n in reasons.items():
        print(f"  ignored {n}: {why}")
    return 0


# ------------------------------------------------------------------------------------------------ export
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", required=True, choices=("davis", "ytvis"))
    p.add_argument("--data", type=Path, help="dataset folder (or ground-truth JSON) the results belong to")
    p.add_argument("--results", type=Path,
                   help="results JSON (davis: default = the dataset's own annotations)")
    p.add_argument("-o", "--out", required=True, type=Path, help="davis: output folder; ytvis: JSON file")
    p.add_argument("--min-score", type=float, default=0.5, help="davis: drop predictions below this score")


def davis_palette() -> list[int]:
    """The DAVIS / PASCAL VOC colour map: object id i gets the colour from the bit-interleaved id."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def export_davis(dataset, objects: list[dict], out_dir: Path, min_score: float = 0.5) -> int:
    """One palette PNG per frame: OUT/<video>/<frame>.png with object ids 1..n (by descending score; where
    objects overlap the higher score is drawn on top). Returns the number of PNGs."""
    from PIL import Image

    from engine.data import masks as mask_utils

    pal = davis_palette()
    count = 0
    for v in dataset.videos:
        objs = [o for o in objects if o["video_id"] == v.id and o.get("score", 1.0) >= min_score]
        objs.sort(key=lambda o: -o.get("score", 1.0))
        folder = out_dir / v.name
        folder.mkdir(parents=True, exist_ok=True)
        for t, name in enumerate(v.file_names):
            canvas = np.zeros((v.height, v.width), np.uint8)
            for oid in range(len(objs), 0, -1):   # lowest score first, so the best ends up on top
                seg = objs[oid - 1]["segmentations"][t]
                if seg is not None:
                    canvas[mask_utils.decode(seg)] = min(oid, 255)
            img = Image.fromarray(canvas, mode="P")
            img.putpalette(pal)
            img.save(folder / (Path(name).stem + ".png"))
            count += 1
    return count


@command("export", "convert results/annotations: DAVIS palette PNGs, or a validated, normalised YTVIS JSON")(
    _export_args)
def _export(args: argparse.Namespace) -> int:
    from engine.data.ytvis import Dataset, _read_json, check_results, save_results

    dataset = None
    if args.data is not None:
        dataset = (Dataset.from_folder(args.data, check_frames=False) if args.data.is_dir()
                   else Dataset.load(args.data))
    if args.format == "davis":
        if dataset is None:
            raise InputError(None, "--format davis needs --data (the dataset the results belong to)")
        if args.results is not None:
            objects = check_results(_read_json(args.results), dataset, args.results)
        else:
            objects = [{"video_id": a.video_id, "score": 1.0, "segmentations": a.segmentations}
                       for a in dataset.instances]
        n = export_davis(dataset, objects, args.out, args.min_score)
        print(f"wrote {n} palette PNGs to {args.out}")
        return 0
    src = args.results or args.data
    if src is None:
        raise InputError(None, "--format ytvis needs --results (a results file) or --data (a ground-truth "
                               "file)")
    doc = _read_json(src if src.is_file() else src / "annotations.json")
    if isinstance(doc, list):
        save_results(args.out, check_results(doc, dataset, src))
        print(f"wrote {len(doc)} results to {args.out}")
    else:
        Dataset.from_json(doc, src).save(args.out)
        print(f"wrote a ground-truth file to {args.out}")
    return 0
