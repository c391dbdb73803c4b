"""`main.py project create|apply|export|info`: the window's project, edits and export, for scripts and tests.

Registered with engine.cli on import. Every subcommand opens the project the way the window does (same store, same
edit operations), so a line applied here is exactly the edit the GUI would have committed.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from engine.cli import command
from engine.errors import InputError
from engine.progress import ConsoleProgress


def _project_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="project_command", required=True)
    c = sub.add_parser("create", help="make a project from a video file or frame folder",
                       description="Make a project (one SQLite file) for a video file or a frame folder.")
    c.add_argument("input", type=Path, help="a video file or a frame folder")
    c.add_argument("-o", "--out", required=True, type=Path, help="project file to create (.svproj)")
    c.add_argument("--import", dest="import_file", type=Path,
                   help="YTVIS ground truth or results JSON to import (provenance 'imported')")
    c.add_argument("--video-name", help="the video of a multi-video --import file (default: matched by name)")
    c.add_argument("--checkpoint", type=Path, help="model checkpoint for --run")
    c.add_argument("--run", action="store_true", help="run the model over the video and keep its tracks")
    c.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))

    a = sub.add_parser("apply", help="apply edit commands, one JSON object per line, each committed on its own",
                       description="Apply edits (JSON lines). After each line is committed its number (1-based) is "
                                   "printed on its own line. A bad line stops the run; the lines before it stay.")
    a.add_argument("project", type=Path)
    a.add_argument("edits", type=Path, help="EDITS.jsonl ('-' for standard input)")

    e = sub.add_parser("export", help="export one or more projects as one YouTube-VIS dataset",
                       description="Export projects (one video each) as one YouTube-VIS file.")
    e.add_argument("projects", type=Path, nargs="+")
    e.add_argument("--ytvis", required=True, type=Path, help="JSON file to write")
    e.add_argument("--results", action="store_true", help="results format (with scores) instead of ground truth")
    e.add_argument("--frames", type=Path, help="also write DIR/JPEGImages/<video>/00000.jpg from the video")
    e.add_argument("--davis", type=Path, help="also write DAVIS palette PNGs to DIR/<video>/00000.png")

    i = sub.add_parser("info", help="what a project holds", description="What a project holds.")
    i.add_argument("project", type=Path)
    i.add_argument("--json", action="store_true", help="one JSON object instead of text")


@command("project", "annotation projects: create, apply edits, export YouTube-VIS, info")(_project_args)
def _project(args: argparse.Namespace) -> int:
    return {"create": _create, "apply": _apply, "export": _export, "info": _info}[args.project_command](args)


# ---------------------------------------------------------------- create
def _create(args: argparse.Namespace) -> int:
    from engine.project.io import import_file, import_prediction
    from engine.project.project import Project

    if not args.input.exists():
        raise InputError(args.input, "no such file or folder")
    if args.run and args.checkpoint is None:
        raise InputError(None, "--run needs --checkpoint")
    if args.out.exists():
        raise InputError(args.out, "exists already; choose another name")
    proj = Project.create(args.out, args.input)
    try:
        if args.import_file is not None:
            try:
                proj.apply(import_file(proj.doc, args.import_file, args.video_name))
            except InputError:
                proj.close()
                _remove_project(args.out)
                raise
        if args.run:
            pred = _run_model(args.input, args.checkpoint, args.device)
            proj.apply(import_prediction(proj.doc, pred, "run 1"))
        doc = proj.doc
        print(f"wrote {args.out}: {doc.video.num_frames} frames, {len(doc.categories)} categories, "
              f"{len(doc.tracks)} tracks")
    finally:
        proj.close()
    return 0


def _remove_project(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)


def _run_model(video: Path, checkpoint: Path, device: str):
    from engine.data.video import VideoReader
    from engine.inference import infer, infer_config_for
    from engine.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint, device="cpu")
    names = list(meta.get("class_names") or [f"class {i + 1}" for i in range(model.cfg.num_classes)])
    cfg = infer_config_for(meta)
    cfg.device = device
    with VideoReader(video, cache_size=2) as reader, ConsoleProgress("infer", unit="frame") as bar:
        return infer(reader, model, cfg, class_names=names, checkpoint=str(checkpoint), progress=bar,
                     on_notice=lambda m: print(f"note: {m}"))


# ---------------------------------------------------------------- apply
def _apply(args: argparse.Namespace) -> int:
    from engine.project.ops import OpError, edit_from_json
    from engine.project.project import Project

    name = "<stdin>" if str(args.edits) == "-" else str(args.edits)
    if name != "<stdin>" and not args.edits.is_file():
        raise InputError(args.edits, "no such file")
    proj = Project.open(args.project, require_video=False)
    try:
        stream = sys.stdin if name == "<stdin>" else open(args.edits, encoding="utf-8")  # noqa: SIM115
        with stream:
            for n, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    edit = edit_from_json(proj.doc, obj)
                except json.JSONDecodeError as e:
                    raise InputError(name, f"line {n}: not JSON ({e.msg})") from None
                except (OpError, InputError) as e:
                    raise InputError(name, f"line {n}: {getattr(e, 'problem', e)}") from None
                proj.apply(edit, tag=f"{Path(name).name}:{n}")
                sys.stdout.write(f"{n}\n")  # one write: a kill never leaves half a number
                sys.stdout.flush()
    finally:
        proj.close()
    return 0


# ---------------------------------------------------------------- export
def _export(args: argparse.Namespace) -> int:
    from engine.data.ytvis import save_results
    from engine.project.io import export_dataset, export_results, skipped_tracks, write_frames
    from engine.project.project import Project

    docs, projects = [], []
    try:
        for p in args.projects:
            proj = Project.open(p, require_video=args.frames is not None)
            projects.append(proj)
            docs.append(proj.doc)
        dataset = export_dataset(docs)
        for proj in projects:
            left = skipped_tracks(proj.doc)
            if left:
                print(f"note: {proj.path}: {len(left)} track(s) without a class or a mask left out: "
                      f"{', '.join(map(str, left[:10]))}", file=sys.stderr)
        if args.results:
            save_results(args.ytvis, export_results(dataset))
        else:
            dataset.save(args.ytvis)
        print(f"wrote {args.ytvis}: {len(dataset.videos)} video(s), {len(dataset.instances)} objects, "
              f"{len(dataset.categories)} categories ({'results' if args.results else 'ground truth'})")
        if args.frames is not None:
            total = sum(d.num_frames for d in docs)
            with ConsoleProgress("frames", unit="frame") as bar:
                done = 0
                for d in docs:
                    done += write_frames(d, args.frames, lambda i, _n, base=done: bar(base + i, total))
            print(f"wrote {done} frames to {args.frames / 'JPEGImages'}")
        if args.davis is not None:
            from engine.commands import export_davis

            objects = export_results(dataset)
            n = export_davis(dataset, objects, args.davis, min_score=0.0)
            print(f"wrote {n} palette PNGs to {args.davis}")
    finally:
        for proj in projects:
            proj.close()
    return 0


# ---------------------------------------------------------------- info
def project_info(proj) -> dict:
    doc = proj.doc
    v = doc.video
    prov = Counter(m.provenance.kind for t in doc.tracks.values() for m in t.masks.values())
    return {
        "project": str(proj.path),
        "video": {"path": v.path, "name": v.name, "frames": v.num_frames, "width": v.width, "height": v.height,
                  "fps": v.fps},
        "categories": [{"id": c.id, "name": c.name, "colour": list(c.colour)}
                       for c in sorted(doc.categories.values(), key=lambda c: c.id)],
        "tracks": [{"id": tid, "category": doc.category_name(t.category_id), "category_id": t.category_id,
                    "score": t.fields.score, "frames": t.frames(), "locked": sorted(t.locked),
                    "provenance": dict(Counter(m.provenance.kind for m in t.masks.values()))}
                   for tid, t in sorted(doc.tracks.items())],
        "edits": proj.store.edit_count(),
        "provenance": {k: prov.get(k, 0) for k in ("model", "imported", "assist", "human")},
    }


def _info(args: argparse.Namespace) -> int:
    from engine.project.project import Project

    proj = Project.open(args.project, require_video=False)
    try:
        info = project_info(proj)
    finally:
        proj.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    v = info["video"]
    print(f"project {info['project']}")
    print(f"video   {v['path']} ({v['frames']} frames, {v['width']}x{v['height']}, {v['fps']:.3g} fps)")
    print(f"classes {', '.join(c['name'] for c in info['categories']) or '(none)'}")
    print(f"edits   {info['edits']}; masks by provenance: "
          + ", ".join(f"{k} {n}" for k, n in info["provenance"].items()))
    for t in info["tracks"]:
        fr = t["frames"]
        span = f"frames {fr[0]}-{fr[-1]} ({len(fr)})" if fr else "no masks"
        lock = f", locked {len(t['locked'])}" if t["locked"] else ""
        print(f"track {t['id']:>4}  {t['category']:<16} {span}{lock}")
    return 0
