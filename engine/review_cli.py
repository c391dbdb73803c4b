"""`python main.py review INPUT --checkpoint CKPT -o queue.json`: the review queue without the window.

Runs the model over the video (with its internals, so frame/video disagreement is available), keeps a small
grey copy of every frame on the way for the motion cue, and writes every frame's uncertainty with its reasons,
most uncertain first: `[{"frame": F, "uncertainty": U, "reasons": [...], "tracks": [...], "kinds": [...]}]`.
Registered with engine.cli on import (engine.cli._load_optional_commands).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import command, input_notes
from engine.errors import InputError
from engine.progress import ConsoleProgress


def _review_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="a video file or a folder of frames")
    p.add_argument("--checkpoint", required=True, type=Path, help="model checkpoint (.pt)")
    p.add_argument("-o", "--out", required=True, type=Path, help="queue JSON to write")
    p.add_argument("--mode", choices=("sync", "video", "frame"), help="read-out (default: the checkpoint's)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--limit", type=int, help="keep only the N most uncertain frames")
    p.add_argument("--no-motion", action="store_true",
                   help="leave out the motion cue (the model's own evidence only)")


class _Tap:
    """The reader as inference sees it, keeping a small grey copy of each frame it hands out."""

    def __init__(self, reader, keep: bool):
        self.reader, self.keep, self.grey = reader, keep, []
        self.width, self.height = reader.width, reader.height

    def __len__(self) -> int:
        return len(self.reader)

    def __iter__(self):
        from engine.review import small_grey

        for f in self.reader:
            if self.keep:
                self.grey.append(small_grey(f))
            yield f


@command("review", "rank a video's frames by how likely the model is wrong there (review queue as JSON)")(
    _review_args)
def _review(args: argparse.Namespace) -> int:
    from engine import review
    from engine.data.video import VideoReader
    from engine.device import check_device
    from engine.inference import infer, infer_config_for, resolve_mode
    from engine.model.checkpoint import load_checkpoint

    if not args.input.exists():
        raise InputError(args.input, "no such file or folder")
    if args.limit is not None and args.limit < 1:
        raise InputError(None, f"--limit must be at least 1, got {args.limit}")
    check_device(args.device)
    model, meta = load_checkpoint(args.checkpoint, device="cpu")
    class_names = list(meta.get("class_names") or [f"class {i + 1}" for i in range(model.cfg.num_classes)])
    cfg = infer_config_for(meta)
    cfg.device, cfg.mode = args.device, args.mode
    try:
        resolve_mode(model.cfg.mode, cfg.mode)
    except ValueError as e:
        raise InputError(args.checkpoint, str(e)) from None
    reader = VideoReader(args.input, cache_size=2)
    try:
        for note in input_notes(reader):
            print(f"note: {note}")
        tap = _Tap(reader, keep=not args.no_motion)
        with ConsoleProgress("review", unit="frame") as bar:
            pred = infer(tap, model, cfg, class_names=class_names, internals=True, checkpoint=str(args.checkpoint),
                         progress=bar, on_notice=lambda m: print(f"note: {m}"))
    finally:
        reader.close()
    motion = None if args.no_motion else review.motion_from_grey(tap.grey)
    items = review.review_queue(pred, motion, limit=args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([it.to_json() for it in items], indent=1, ensure_ascii=False))
    if items:
        top = items[0]
        print(f"wrote {len(items)} frames to {args.out}; most uncertain: frame {top.frame} "
              f"(U {top.score:.2f}: {top.reasons[0] if top.reasons else 'no single cue'})")
    else:
        print(f"wrote an empty queue to {args.out} (the video has no frames)")
    return 0
