"""`main.py track-object`: one object through a video with an assist tool, written as YouTube-VIS results.

Registered with engine.cli on import. The command does what the window's click tool + propagate does: a prompt
(a box and/or clicks) on one frame, then propagation forward (or `--backward`, or `--both` ways) until the video
ends or the object is lost; frames it never reached are null in the results, as YTVIS has it for absence.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.cli import command
from engine.errors import InputError
from engine.progress import ConsoleProgress


def _parse_numbers(text: str, n: int, what: str) -> list[float]:
    parts = text.split(",")
    try:
        vals = [float(v) for v in parts[:n]]
    except ValueError:
        vals = []
    if len(vals) != n:
        raise InputError(None, f"{what} must look like {','.join('XYWH'[:n]) if n == 4 else 'X,Y,+'}, got {text!r}")
    return vals


def parse_box(text: str) -> tuple[float, float, float, float]:
    """X,Y,W,H (pixels, top-left corner and size) -> (x0, y0, x1, y1)."""
    x, y, w, h = _parse_numbers(text, 4, "--box")
    if w <= 0 or h <= 0:
        raise InputError(None, f"--box width and height must be positive, got {text!r}")
    return x, y, x + w, y + h


def parse_point(text: str) -> tuple[float, float, int]:
    """X,Y,+ (positive click) or X,Y,- (negative); a missing sign means positive."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise InputError(None, f"--point must look like X,Y,+ or X,Y,-, got {text!r}")
    x, y = _parse_numbers(",".join(parts[:2]), 2, "--point")
    sign = parts[2].strip() if len(parts) == 3 else "+"
    labels = {"+": 1, "1": 1, "pos": 1, "-": 0, "0": 0, "neg": 0}
    if sign not in labels:
        raise InputError(None, f"--point sign must be + or -, got {text!r}")
    return x, y, labels[sign]


def category_id(name: str | None) -> int:
    """A category id, or a name of the synthetic benchmark's categories (1-based, as in its annotations)."""
    if name is None:
        return 1
    from engine.data.synthetic_shapes import CATEGORY_NAMES

    if name.isdigit() and int(name) >= 1:
        return int(name)
    if name in CATEGORY_NAMES:
        return CATEGORY_NAMES.index(name) + 1
    raise InputError(None, f"--category must be a positive id or one of {', '.join(CATEGORY_NAMES)}, got {name!r}")


def _track_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="a video file or a frame folder")
    p.add_argument("--frame", type=int, required=True, help="frame of the prompt (0-based)")
    p.add_argument("--box", help="X,Y,W,H box around the object on --frame (pixels)")
    p.add_argument("--point", action="append", default=[], metavar="X,Y,±",
                   help="a click on --frame: X,Y,+ on the object, X,Y,- off it (repeatable)")
    p.add_argument("--tool", default="flow", choices=("sam2", "flow", "grabcut"),
                   help="sam2 (needs --sam2-checkpoint), flow (optical flow + GrabCut refinement) or grabcut")
    p.add_argument("--sam2-checkpoint", type=Path, help="an official SAM 2 / 2.1 checkpoint (.pt)")
    p.add_argument("--sam2-size", default="tiny", help="tiny | small | base+ | large (must fit the checkpoint)")
    p.add_argument("--sam2-image-size", type=int,
                   help="SAM 2 input size (default 1024; smaller is faster and coarser; multiple of 32)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where SAM 2 runs")
    p.add_argument("--backward", action="store_true", help="propagate towards the first frame instead")
    p.add_argument("--both", action="store_true", help="propagate both ways: the whole video")
    p.add_argument("--category", help="category id or name of the object (default 1)")
    p.add_argument("--video-id", type=int, default=1, help="video_id written in the results (default 1)")
    p.add_argument("-o", "--out", required=True, type=Path, help="YouTube-VIS results JSON to write")


@command("track-object", "segment one object from a box or clicks and propagate it through the video")(_track_args)
def _track(args: argparse.Namespace) -> int:
    from engine.assist import open_session
    from engine.data import masks as mask_utils
    from engine.data.video import VideoReader
    from engine.data.ytvis import save_results

    if not args.input.exists():
        raise InputError(args.input, "no such file or folder")
    box = parse_box(args.box) if args.box else None
    pts = [parse_point(t) for t in args.point]
    if box is None and not pts:
        raise InputError(None, "give the object with --box X,Y,W,H and/or --point X,Y,+")
    cat = category_id(args.category)
    if args.backward and args.both:
        raise InputError(None, "--backward and --both exclude each other")
    sam2 = None
    if args.tool == "sam2":
        from engine.assist.sam2_tool import Sam2Config

        if args.sam2_checkpoint is None:
            from engine.assist.sam2_tool import CHECKPOINT_SOURCE, checkpoint_names

            try:
                names = ", ".join(checkpoint_names(args.sam2_size))
            except InputError:
                names = "sam2.1_hiera_<size>.pt"
            raise InputError(None, f"--tool sam2 needs --sam2-checkpoint ({names}, from {CHECKPOINT_SOURCE}); "
                                   "--tool flow or grabcut need none")
        sam2 = Sam2Config(size=args.sam2_size, checkpoint=args.sam2_checkpoint, device=args.device,
                          image_size=args.sam2_image_size)
    reader = VideoReader(args.input, cache_size=8)
    try:
        n = len(reader)
        if not 0 <= args.frame < n:
            raise InputError(args.input, f"--frame {args.frame} is outside the video (0..{n - 1})")
        session = open_session(args.tool, reader, sam2=sam2, notice=lambda m: print(f"note: {m}"))
        obj = 1
        mask = session.add_prompt(args.frame, obj, points=[p[:2] for p in pts] or None,
                                  labels=[p[2] for p in pts] or None, box=box)
        if not mask.any():
            raise InputError(args.input, f"the prompt gives an empty mask on frame {args.frame}: "
                                         "draw the box around the object or click on it")
        runs = ["backward"] if args.backward else ["forward", "backward"] if args.both else ["forward"]
        total = sum(n - 1 - args.frame if r == "forward" else args.frame for r in runs)
        segs: list[dict | None] = [None] * n
        segs[args.frame] = mask_utils.encode(mask)
        done, t0 = 0, time.perf_counter()
        with ConsoleProgress("track-object", unit="frame") as bar:
            for r in runs:
                for f, masks in session.propagate(args.frame, r, objects=[obj]):
                    m = masks[obj]
                    segs[f] = mask_utils.encode(m) if m.any() else None
                    done += 1
                    bar(done, total)
        elapsed = time.perf_counter() - t0
        session.close()
    finally:
        reader.close()
    save_results(args.out, [{"video_id": args.video_id, "category_id": cat, "score": 1.0, "segmentations": segs}])
    present = [i for i, s in enumerate(segs) if s is not None]
    rate = f", {done / elapsed:.1f} frames/s" if done and elapsed > 0 else ""
    print(f"wrote {args.out}: {args.tool}, object on {len(present)} of {n} frames "
          f"({present[0]}..{present[-1]}){rate}")
    return 0
