"""`main.py finetune PROJECT... [--init CKPT] [--iters N | --minutes M] [--holdout 0.2] [--replay DATASET]
--out RUN_DIR [--json METRICS.json]`: fine-tune on corrected projects and print the before/after table.

Registered with engine.cli on import. The work is engine.finetune's (the same plan and run the window's dialog
uses); training runs in a child `main.py train`, whose progress this command shows as a bar.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli import command
from engine.errors import InputError
from engine.progress import ConsoleProgress


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("projects", type=Path, nargs="+", metavar="PROJECT", help="project files (.svproj)")
    p.add_argument("--init", type=Path,
                   help="starting checkpoint (default: the bundled resources/models/tiny-sync.pt)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--iters", type=int, help="training iterations")
    size.add_argument("--minutes", type=float,
                      help="time budget: iterations sized from a few timed steps on this device (default 10)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="share held out for the before/after evaluation: the last frames of each corrected "
                        "video, or whole videos with several projects (default 0.2)")
    p.add_argument("--replay", type=Path, metavar="DATASET",
                   help="the model's original training data (YTVIS folder), mixed in so it does not forget")
    p.add_argument("--replay-ratio", type=float, default=0.5, help="share of clips from --replay (default 0.5)")
    p.add_argument("--out", required=True, type=Path, help="run folder (data, held-out frames, training run)")
    p.add_argument("--json", type=Path, metavar="METRICS.json",
                   help='write {"before": {"AP": ...}, "after": {...}} (fractions, the evaluation\'s own)')
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="passed on to the child's `train --set` (e.g. lr=1e-3, loss.num_points=256)")


@command("finetune", "fine-tune a checkpoint on corrected projects; before/after AP on held-out frames")(
    _finetune_args)
def _finetune(args: argparse.Namespace) -> int:
    from engine.commands import _parse_overrides
    from engine.finetune import FinetuneError, format_table, plan_finetune, run_finetune

    if args.iters is not None and args.iters < 1:
        raise InputError(None, f"--iters must be at least 1, got {args.iters}")
    if args.json is not None and args.json.is_dir():
        raise InputError(args.json, "--json: is a folder; give a file name")
    # The child `train` runs from the project root: every path it is given must not depend on our working folder.
    args.out = args.out.resolve()
    args.projects = [p.resolve() for p in args.projects]
    args.init = args.init.resolve() if isinstance(args.init, Path) else args.init
    args.replay = args.replay.resolve() if isinstance(args.replay, Path) else args.replay
    overrides = _parse_overrides(args.set)
    bar = ConsoleProgress("finetune", unit="it")

    def on_event(e: dict) -> None:
        if e.get("type") == "train" and not e.get("probe"):
            bar(int(e["step"]), total[0])

    total = [args.iters or 0]
    try:
        if args.iters is None:
            print(f"timing a few steps to fit {args.minutes or 10:g} minutes ...", file=sys.stderr)
        plan = plan_finetune(args.projects, args.out, init=args.init, iters=args.iters, minutes=args.minutes,
                             holdout=args.holdout, replay=args.replay, replay_ratio=args.replay_ratio,
                             device=args.device, overrides=overrides)
        total[0] = plan.iters
        print(plan.describe())
        try:
            result = run_finetune(plan, on_event=on_event)
        finally:
            bar.close()
    except FinetuneError as e:
        for line in e.tail:
            print(f"  | {line}", file=sys.stderr)
        raise
    except KeyboardInterrupt:
        from engine.train import latest_checkpoint

        found = latest_checkpoint(args.out / "train")
        if found is not None:
            print(f"note: cancelled at step {found[0]}; last checkpoint kept: {found[1]}", file=sys.stderr)
        raise
    print(format_table(result.before, result.after))
    print(f"checkpoint: {result.checkpoint} ({result.iterations} iterations, {result.seconds / 60:.1f} min)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.metrics_json(), indent=2))
    return 0
