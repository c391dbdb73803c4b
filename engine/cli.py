"""Headless commands: `python main.py <command> ...`. Each command parses its arguments here and calls one engine
function; bad input ends with a one-line `error:` message and exit status 2."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from engine.errors import InputError
from engine.progress import ConsoleProgress

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register `fn(args) -> exit code` with an `add_args(parser)` companion."""

    def wrap(add_args):
        def register(run):
            COMMANDS[name] = (help, add_args, run)
            return run

        return register

    return wrap


# ---------------------------------------------------------------- synth
def _synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="dataset folder to write (YTVIS layout)")
    p.add_argument("--preset", default="default", help="default | hard | long")
    p.add_argument("--videos", type=int, default=10, help="number of videos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="320x192", help="frame size WxH (default 320x192)")
    p.add_argument("--mp4", action="store_true", help="also write DIR/videos/<video>.mp4")


@command("synth", "generate the synthetic VIS benchmark")(_synth_args)
def _synth(args: argparse.Namespace) -> int:
    from engine.data.synthetic import write_dataset

    w, h = _parse_size(args.size)
    with ConsoleProgress("synth", unit="video") as bar:
        path = write_dataset(args.out, preset=args.preset, num_videos=args.videos, seed=args.seed,
                             size=(w, h), mp4=args.mp4, progress=bar)
    print(f"wrote {args.videos} videos to {path}")
    return 0


# ---------------------------------------------------------------- eval
def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", required=True, type=Path, help="ground truth: YTVIS JSON or a dataset folder")
    p.add_argument("--pred", required=True, type=Path, help="results: YTVIS results JSON")
    p.add_argument("--json", type=Path, help="also write the metrics as one JSON object")
    p.add_argument("--per-category", action="store_true", help="also print AP per category")


@command("eval", "YouTube-VIS metrics of results against ground truth")(_eval_args)
def _eval(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate_files

    result = evaluate_files(args.gt, args.pred)
    print(result.format_table(per_category=args.per_category))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.stats, indent=2))
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(None, f"--size must look like 320x192, got {text!r}") from None
    if w < 16 or h < 16:
        raise InputError(None, f"--size too small: {text}")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    _load_optional_commands()
    parser = argparse.ArgumentParser(prog="main.py", description="SyncVIS Studio headless commands. "
                                     "Run without a command to open the window.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
    return parser


def _load_optional_commands() -> None:
    """Commands defined next to the code they drive register themselves on import."""
    import importlib

    for mod in ("engine.commands", "engine.project.cli", "engine.review_cli", "engine.assist.cli",
                "engine.finetune_cli"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def input_notes(reader) -> list[str]:
    """What the user must know about a video that opened but is not whole (said as `note:` lines, since the
    command carries on with the frames that can be read)."""
    notes = []
    damaged = getattr(reader, "damaged_at", None)
    if damaged is not None:
        promised = getattr(getattr(getattr(reader, "_av", None), "stream", None), "frames", 0) or 0
        claim = f"its index promises {promised} frames, but " if promised > damaged else ""
        notes.append(f"{reader.path}: the video is damaged: {claim}decoding stops at frame {damaged}; "
                     f"read {damaged} frames and carrying on with those")
    return notes


def _precheck(args: argparse.Namespace) -> None:
    """Bad input that every command would otherwise meet deep inside its work (after loading a model, after
    creating a run folder, behind a logged traceback): a CUDA device that is not there, a dataset folder that
    is not there."""
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        from engine.device import check_device

        check_device(device)
    if args.command == "train":
        from engine.data.ytvis import ANNOTATION_FILE

        for flag, path in (("--data", args.data), ("--val", getattr(args, "val", None))):
            if path is None:
                continue
            if not path.exists():
                raise InputError(path, f"{flag}: no such dataset folder")
            if not path.is_dir() or not (path / ANNOTATION_FILE).is_file():
                raise InputError(path, f"{flag}: not a dataset folder (no {ANNOTATION_FILE} in it; the layout "
                                       f"is DIR/{ANNOTATION_FILE} + DIR/JPEGImages/<video>/00000.jpg)")
        init = getattr(args, "init", None)
        if init is not None and not init.is_file():
            raise InputError(init, "--init: no such checkpoint")


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt in this process, whatever it inherited. Python leaves SIGINT ignored
    when the parent ignored it (a background job of a non-interactive shell, and everything started from it),
    and then the window's Cancel of a fine-tuning run, which stops `main.py finetune` with SIGINT as Ctrl+C
    would, went unheard: the run trained on to its end. Main thread only (signal handlers live there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_cli(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    interruptible()
    try:
        _precheck(args)
        return COMMANDS[args.command][2](args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {e.filename}: no such file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def is_command(argv: list[str]) -> bool:
    _load_optional_commands()
    return bool(argv) and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "help"))
