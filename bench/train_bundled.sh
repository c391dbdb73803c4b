#!/usr/bin/env bash
# Train (or resume, bit-exactly, from the latest checkpoint) the tiny model of one mode for the bundled set:
#   bash bench/train_bundled.sh sync|video|frame [ITERS]      # after: python bench/bundled_models.py data
# One thread, niced, so it can run in the background on a shared machine; runs/bundled/run-<mode>-eff/ holds
# events.jsonl and a checkpoint every 125 iterations (SIGTERM saves one at the next step). Rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bench/train_bundled.sh sync|video|frame [ITERS]}
iters=${2:-1500}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
exec nice -n 10 .venv/bin/python main.py train --data runs/bundled/train --val runs/bundled/default \
  --preset tiny --mode "$mode" --out "runs/bundled/run-$mode-eff" --iters "$iters" --batch 4 --resume
