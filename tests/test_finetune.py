"""engine.finetune and `main.py finetune`: the plan's defaults, the exported data, the child run (cancel, crash,
class-head extension, iterations sized from timed steps). Tiny synthetic videos (96x64); the bundled tiny-sync.pt
as the start unless said otherwise. The domain-shift evidence (held-out AP rises) is tests/test_finetune_domain.py.
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
from engine.finetune import (
    DEFAULT_CHECKPOINT,
    FinetuneError,
    corrected_frames,
    plan_finetune,
    prepare_data,
    run_finetune,
    split_frames,
)

ROOT = Path(__file__).resolve().parents[1]
EASY = dataclasses.replace(SynthConfig(), name="ft", frames=(12, 12), instances=(1, 2), radius=(0.2, 0.28),
                           lookalike_prob=0, late_entry_prob=0, exit_prob=0, chase_prob=0, shake=0.5,
                           blur_prob=0, noise=2)
# small and fast: the child trains at the videos' own 64 px, 2-frame clips, 2 per batch, few mask points
FAST = {"min_sizes": [64], "max_size": 96, "loss.num_points": 256, "num_frames": 2, "batch_size": 2}


def make_project(root: Path, name: str, seed: int, category: str | None = None, blank=(), frames=12) -> Path:
    """A project of one synthetic video with its ground truth imported (provenance 'imported': corrected), except
    on the frames in `blank`; every object relabelled as `category` when given."""
    from engine.project.io import import_file
    from engine.project.project import Project

    cfg = dataclasses.replace(EASY, frames=(frames, frames))
    data = write_dataset(root / f"{name}_data", cfg, num_videos=1, seed=seed, size=(96, 64))
    ds = Dataset.from_folder(data)
    if category is not None:
        for a in ds.instances:
            a.category_id = 1
        ds.categories = [Category(1, category, "object")]
    for a in ds.instances:
        for f in blank:
            a.segmentations[f] = None
    ds.save(data / "annotations.json")
    path = root / f"{name}.svproj"
    proj = Project.create(path, data / "JPEGImages" / ds.videos[0].name)
    try:
        proj.apply(import_file(proj.doc, data / "annotations.json"))
    finally:
        proj.close()
    return path


def test_split_keeps_the_tail_and_one_of_each():
    assert split_frames(list(range(10)), 0.2) == (list(range(8)), [8, 9])
    assert split_frames([3, 7], 0.2) == ([3], [7])        # at least one held out, one left to train
    assert split_frames([5], 0.5) == ([5], [])
    assert split_frames(list(range(10)), 0.99) == ([0], list(range(1, 10)))


def test_corrected_frames_are_the_non_model_ones():
    import numpy as np

    from engine.data import masks
    from engine.project.document import ProjectDocument
    from engine.project.model import Mask, Provenance, TrackFields, TrackState, VideoInfo

    rle = masks.encode(np.ones((4, 4), bool))
    doc = ProjectDocument(VideoInfo("v.mp4", 10, 4, 4, 10.0))
    model, human = Provenance("model", "run 1"), Provenance("human", "brush")
    doc.load([], [TrackState(1, TrackFields(None), {0: Mask(rle, model), 1: Mask(rle, model), 4: Mask(rle, human)}),
                  TrackState(2, TrackFields(None), {2: Mask(rle, Provenance("assist", "flow"))}, locked={7})])
    assert corrected_frames(doc) == [2, 4, 7]


def test_plan_defaults_and_new_classes_extend_the_vocabulary(tmp_path):
    p = make_project(tmp_path, "one", seed=3, category="blob", blank=(2,))
    plan = plan_finetune([p], tmp_path / "run", measure=False)
    assert plan.init == DEFAULT_CHECKPOINT
    assert (plan.preset, plan.mode) == ("tiny", "sync")   # the bundled tiny-sync.pt has the EfficientNet trunk
    v, = plan.videos
    assert v.corrected == [f for f in range(12) if f != 2]
    assert (v.train, v.heldout) == (v.corrected[:-2], v.corrected[-2:])   # the last 20% of the corrected frames
    shapes = ["disc", "square", "triangle", "star", "ring", "cross", "ellipse", "hexagon"]
    assert plan.classes == shapes + ["blob"] and plan.new_classes == ["blob"]
    assert "blob" in plan.describe() and json.dumps(plan.to_json())

    # several projects: whole videos held out (the last ones), the frames of the others all train
    q = make_project(tmp_path, "two", seed=4)
    r = make_project(tmp_path, "three", seed=5)
    plan = plan_finetune([p, q, r], tmp_path / "run3", holdout=0.3, measure=False)
    assert plan.split == "videos"
    assert [len(v.heldout) for v in plan.videos] == [0, 0, 12] and [len(v.train) for v in plan.videos] == [11, 12, 0]

    # the exported data: held-out frames are in heldout/ only; every class of the vocabulary is listed
    data, held = prepare_data(plan_finetune([p], tmp_path / "run", measure=False))
    dtrain, dheld = Dataset.from_folder(data), Dataset.from_folder(held)
    assert [c.name for c in dtrain.categories] == shapes + ["blob"]
    train_files = {f for v in dtrain.videos for f in v.file_names}
    held_files = {f for v in dheld.videos for f in v.file_names}
    assert len(train_files) == 9 and len(held_files) == 2 and not train_files & held_files
    assert not (data / "JPEGImages" / next(iter(held_files))).exists()
    assert all(a.category_id == 9 for a in dtrain.instances + dheld.instances)


def test_replay_is_linked_in_and_weighted(tmp_path):
    p = make_project(tmp_path, "one", seed=3)
    replay = write_dataset(tmp_path / "replay", EASY, num_videos=3, seed=9, size=(96, 64))
    plan = plan_finetune([p], tmp_path / "run", replay=replay, replay_ratio=0.5, measure=False)
    data, _ = prepare_data(plan)
    ds = Dataset.from_folder(data)
    own = [v for v in ds.videos if not v.file_names[0].startswith("replay_")]
    rep = [v for v in ds.videos if v.file_names[0].startswith("replay_")]
    assert plan.replay_videos == len(rep) == 3 and len(own) == 3        # own video repeated: half the clips each
    assert all(len(ds.frame_paths(v)) and ds.frame_paths(v)[0].is_file() for v in rep)


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_cli_bad_input(tmp_path):
    r = _cli("finetune", tmp_path / "nope.svproj", "--out", tmp_path / "run", "--iters", "2")
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last == f"error: {tmp_path / 'nope.svproj'}: no such project"
    p = make_project(tmp_path, "one", seed=3, blank=range(12))     # nothing corrected
    r = _cli("finetune", p, "--out", tmp_path / "run", "--iters", "2")
    assert r.returncode == 2 and "no corrected frames" in r.stderr.splitlines()[-1]
    r = _cli("finetune", p, "--out", tmp_path / "run", "--iters", "2", "--minutes", "1")
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = _cli("finetune", p, "--out", tmp_path / "run", "--iters", "2", "--init", tmp_path / "none.pt")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ")


def test_child_crash_is_reported_with_its_log(tmp_path):
    p = make_project(tmp_path, "one", seed=3)
    r = _cli("finetune", p, "--out", tmp_path / "run", "--iters", "2", "--set", "no_such_setting=1")
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tmp_path / 'run' / 'train.log'}: training stopped with exit status 2")
    assert "no_such_setting" in last and "  | " in r.stderr          # the tail of the child's log came along


def test_new_class_extends_the_head_and_cancel_keeps_a_checkpoint(tmp_path):
    import torch

    from engine.model.checkpoint import load_checkpoint

    p = make_project(tmp_path, "one", seed=3, category="blob")
    # lr 0, one step: the known classes' rows must come through unchanged, the new class gets a row of its own
    plan = plan_finetune([p], tmp_path / "run", iters=1, periodic_evals=0, overrides={**FAST, "lr": 0.0})
    seen = []
    result = run_finetune(plan, on_event=seen.append)
    assert [e["type"] for e in seen] == ["start", "eval", "train", "eval", "done"]
    assert set(result.before) >= {"AP", "AP50", "AP75", "AR1", "AR10"} and result.after is not None
    start, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    new, meta = load_checkpoint(result.checkpoint)
    assert meta["class_names"] == plan.classes and new.cfg.num_classes == 9
    key = "sem_seg_head.predictor.class_embed.weight"
    w0, w1 = start.state_dict()[key].float(), new.state_dict()[key].float()
    torch.testing.assert_close(w1[:8], w0[:8])
    torch.testing.assert_close(w1[-1], w0[-1])                         # the no-object row
    prov = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert prov["parent"] == str(DEFAULT_CHECKPOINT) and prov["new_classes"] == ["blob"] and prov["iterations"] == 1

    # cancel once training has started: the child stops at its next step and keeps that checkpoint
    plan = plan_finetune([p], tmp_path / "run2", iters=500, periodic_evals=0, overrides=FAST)
    steps = []
    result = run_finetune(plan, on_event=lambda e: steps.append(e) if e["type"] == "train" else None,
                          cancel=lambda: bool(steps))
    assert result.cancelled and result.after is None and result.checkpoint.is_file()
    assert 1 <= result.iterations < 500 and result.before is not None


def test_minutes_size_the_iterations_from_timed_steps(tmp_path):
    p = make_project(tmp_path, "one", seed=3)
    plan = plan_finetune([p], tmp_path / "run", minutes=0.5, periodic_evals=1, overrides=FAST)
    assert plan.step_s is not None and 0 < plan.step_s < 30 and plan.overhead_s > 0
    budget = 30 - plan.overhead_s
    assert plan.iters == max(10, int(budget // plan.step_s))
    assert not (tmp_path / "run" / "probe").exists() and (tmp_path / "run" / "data" / "annotations.json").is_file()


def test_finetune_error_is_an_input_error():
    from engine.errors import InputError

    e = FinetuneError("x.log", "boom", ["a", "b"])
    assert isinstance(e, InputError) and e.tail == ["a", "b"] and str(e) == "x.log: boom"
    with pytest.raises(InputError):
        plan_finetune([], "out")


def test_relative_paths_work_from_any_folder(tmp_path, monkeypatch):
    """The child `train` runs from the project root; a run given relative paths must still find its data."""
    p = make_project(tmp_path, "rel", seed=4)
    monkeypatch.chdir(tmp_path)
    from engine.cli import run_cli

    assert run_cli(["finetune", p.name, "--iters", "1", "--out", "run", "--json", "m.json",
                    *sum((["--set", f"{k}={v}"] for k, v in FAST.items()), [])]) == 0
    assert (tmp_path / "m.json").is_file() and (tmp_path / "run" / "train").is_dir()


def test_finetune_command_stops_on_sigint_even_when_started_with_it_ignored(tmp_path):
    """The window's Cancel stops `main.py finetune` with SIGINT. A process started with SIGINT ignored (a
    background job of a non-interactive shell, as CI ran the suite once) keeps it ignored under Python unless
    the command resets it: then the cancel went unheard and the run trained on to its end. Here the command
    starts that way; SIGINT at its first training step must end it, with its checkpoint kept."""
    import os
    import signal
    import time

    if os.name != "posix":
        pytest.skip("SIGINT to another process is POSIX")
    p = make_project(tmp_path, "one", seed=3)
    out = tmp_path / "out"
    sets = [a for k, v in FAST.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    cmd = [sys.executable, str(ROOT / "main.py"), "finetune", str(p), "--iters", "2000", "--out", str(out), *sets]
    child = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 240
        while time.time() < deadline and child.poll() is None:
            events = list(out.rglob("events.jsonl"))
            if events and '"type": "train"' in events[0].read_text():
                break
            time.sleep(0.2)
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "cancelled at step" in err and "last checkpoint kept" in err, err
