"""SyncVIS Studio entry point: no arguments (or a video path) opens the window; a command name runs headless."""
from __future__ import annotations

import os
import sys

# Idle OpenMP threads must sleep, not spin: on a shared 2-core laptop spinning threads made torch 5-10x slower
# (bench/bench_model_speed.py). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from engine.cli import is_command, run_cli

    if is_command(argv):
        try:
            return run_cli([a for a in argv if a != "help"] or ["--help"])
        except BrokenPipeError:   # `main.py checkpoint-info F --json | head`: the reader left; not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())   # so the interpreter's own flush at exit stays quiet
            return 141                              # 128 + SIGPIPE, as a shell tool would

    from app.launch import launch

    return launch(argv)


if __name__ == "__main__":
    sys.exit(main())
