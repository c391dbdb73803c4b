"""Evidence for issue 13: fine-tuning on corrected frames of a domain the starting model has not seen raises its AP
on the held-out frames.

The whole path runs headless through the command line, each step its own process as a user would run it:
- the starting model is made here (the bundled one is too slow to fine-tune in a test): `main.py train` for 25
  iterations on synthetic videos whose shapes are striped or checkered on black (domain A, one class "shape");
- domain B, which that model never saw: shapes with spotted textures on textured backgrounds. Its ground truth,
  minus two frames left uncorrected, is imported with `main.py project create --import` (that is "correcting part
  of the frames from the generator's ground truth");
- `main.py finetune` holds out the last 20% of the corrected frames, trains 40 iterations in its child `train`,
  and writes the before/after metrics with --json.

Measured on the 2-core development machine (shared): the start model has AP 17 on its own domain A (its training
videos) and 0.0 on B's held-out frames; after the fine-tune 65 (AP50 100); about 40 s for the whole test. The
margin asked for is +25 AP points, well inside what was measured, while a fine-tune that learnt nothing stays at 0.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.data.synthetic import SynthConfig, write_dataset
from engine.data.ytvis import Category, Dataset

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.25          # held-out AP must rise by at least this much (fractions, as the evaluation reports)

BASE = dataclasses.replace(SynthConfig(), frames=(16, 16), instances=(2, 2), radius=(0.2, 0.28),
                           speed=(0.01, 0.03), lookalike_prob=0, late_entry_prob=0, exit_prob=0, chase_prob=0,
                           shake=0.5, blur_prob=0, noise=2)
DOMAIN_A = dataclasses.replace(BASE, name="a", textures=("stripes", "checker"), backgrounds=False)
DOMAIN_B = dataclasses.replace(BASE, name="b", frames=(30, 30), textures=("spots",), backgrounds=True)
SMALL = ["min_sizes=[64]", "max_size=96", "loss.num_points=256"]


def _one_class(folder: Path, blank=()) -> Dataset:
    ds = Dataset.from_folder(folder)
    for a in ds.instances:
        a.category_id = 1
        for f in blank:
            a.segmentations[f] = None
    ds.categories = [Category(1, "shape", "shape")]
    ds.save(folder / "annotations.json")
    return ds


def _main(*args, timeout=300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.slow
def test_finetune_on_an_unseen_domain_raises_heldout_ap(tmp_path):
    from engine.data.ytvis import load_results
    from engine.evaluation import evaluate

    a = write_dataset(tmp_path / "A", DOMAIN_A, num_videos=6, seed=1, size=(96, 64))
    _one_class(a)
    b = write_dataset(tmp_path / "B", DOMAIN_B, num_videos=1, seed=2, size=(96, 64))
    gt_b = _one_class(b, blank=(3, 11))

    _main("train", "--data", a, "--out", tmp_path / "start", "--iters", 25, "--num-frames", 2, "--batch", 2,
          "--lr", "1e-3", "--device", "cpu", *[x for s in [*SMALL, "val_fraction=0", "warmup_iters=2"]
                                               for x in ("--set", s)])
    start = tmp_path / "start" / "model_final.pt"
    _main("infer", a, "--checkpoint", start, "-o", tmp_path / "a.json")
    ap_home = evaluate(Dataset.from_folder(a), load_results(tmp_path / "a.json")).stats["AP"]

    project = tmp_path / "b.svproj"
    _main("project", "create", b / "JPEGImages" / gt_b.videos[0].name, "-o", project, "--import",
          b / "annotations.json")
    r = _main("finetune", project, "--init", start, "--iters", 40, "--out", tmp_path / "ft",
              "--json", tmp_path / "metrics.json",
              *[x for s in [*SMALL, "lr=1e-3", "num_frames=2", "batch_size=2"] for x in ("--set", s)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    print(f"\nstart model AP on its own domain {ap_home:.3f}\n{r.stdout}")

    assert "28 corrected frames, 22 train, 6 held out" in r.stdout       # frames 3 and 11 were left uncorrected
    assert "before" in r.stdout and "after" in r.stdout and "AR10" in r.stdout
    for k in ("AP", "AP50", "AP75", "AR1", "AR10"):
        assert 0 <= m["before"][k] <= 1 and 0 <= m["after"][k] <= 1
    assert ap_home > m["before"]["AP"] + 0.05, "the start model should be worse on the new domain than on its own"
    assert m["after"]["AP"] >= m["before"]["AP"] + MARGIN, m
    assert m["after"]["AR10"] > m["before"]["AR10"]
    held = Dataset.from_folder(tmp_path / "ft" / "heldout")
    train = Dataset.from_folder(tmp_path / "ft" / "data")
    assert sum(v.length for v in held.videos) == 6 and sum(v.length for v in train.videos) == 22
