"""Training loop: event log, checkpoints, cancel + exact resume, and DDP replicas (engine/train.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.data.synthetic import CATEGORY_NAMES, write_dataset
from engine.model.checkpoint import load_checkpoint
from engine.train import apply_overrides, latest_checkpoint, lr_factor, param_groups, read_events, train

ROOT = Path(__file__).resolve().parents[1]
# a reduced tiny network and small clips: the loop is what is tested here, not the model
SMALL = {"model.dec_layers": 2, "model.enc_layers": 1, "loss.num_points": 256, "min_sizes": [64],
         "max_size": 96, "log_every": 1, "frame_range": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("synth"), num_videos=3, seed=5, size=(96, 64))


def _states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_events_checkpoint_and_eval(data, tmp_path):
    run = tmp_path / "run"
    final = train(data, run, iters=2, num_frames=2, batch_size=2, device="cpu",
                  overrides={**SMALL, "val_fraction": 0.34, "val_max_videos": 1})
    assert final == run / "model_final.pt"
    events = read_events(run)
    assert [e["type"] for e in events] == ["start", "train", "train", "eval", "done"]
    start = events[0]
    assert start["num_train_videos"] == 2 and start["num_val_videos"] == 1 and start["world_size"] == 1
    for step, e in zip((1, 2), events[1:3], strict=False):
        assert e["step"] == step
        for key in ("loss", "lr", "eta_s", "time", "loss_ce_frame", "loss_mask_frame", "loss_dice_frame"):
            assert isinstance(e[key], float), key
        terms = {k: v for k, v in e.items() if k.startswith("loss_")}
        assert len(terms) > 6 and e["loss"] == pytest.approx(sum(terms.values()), rel=1e-4)
    assert events[1]["lr"] == pytest.approx(3e-4 * 0.1)          # warm-up starts at 0.1 x base LR
    ev = events[3]
    assert ev["step"] == 2 and all(-1 <= ev[k] <= 1 for k in ("AP", "AP50", "AP75", "AR1", "AR10"))
    assert 0 <= ev["tube_iou"] <= 1 and ev["cpu_s"] > 0
    assert events[-1]["checkpoint"] == str(final)
    model, meta = load_checkpoint(final)
    assert meta["class_names"] == list(CATEGORY_NAMES) and meta["provenance"]["step"] == 2
    assert model.cfg.dec_layers == 2 and model.cfg.num_classes == 8
    step, model_path, _ = latest_checkpoint(run)
    assert step == 2 and _states_equal(load_checkpoint(model_path)[0], model)


def test_cancel_then_resume_equals_uninterrupted(data, tmp_path):
    kw = dict(iters=3, num_frames=2, batch_size=2, device="cpu", overrides={**SMALL, "val_fraction": 0})
    straight = train(data, tmp_path / "a", **kw)

    path = train(data, tmp_path / "b", cancel=lambda: True, **kw)   # stops after the first step
    assert path.name == "model_0000001.pt" and path.is_file()
    last = read_events(tmp_path / "b")[-1]
    assert (last["type"], last["step"], last["checkpoint"]) == ("cancelled", 1, str(path))
    resumed = train(data, tmp_path / "b", resume=True, **kw)
    events = read_events(tmp_path / "b")
    starts = [e for e in events if e["type"] == "start"]
    assert [s["step"] for s in starts] == [0, 1] and "resumed" in starts[1]["note"]
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3]
    assert events[-1]["type"] == "done"
    # same clips, same point draws, same optimizer state: bit-identical weights
    assert _states_equal(load_checkpoint(straight)[0], load_checkpoint(resumed)[0])
    with pytest.raises(Exception, match="already reached"):
        train(data, tmp_path / "b", resume=True, **kw)


def test_fine_tune_init_maps_classes(data, tmp_path):
    """--init from a checkpoint with another vocabulary order: rows of the class head follow the names."""
    from engine.config import preset
    from engine.model.checkpoint import save_checkpoint
    from engine.model.syncvis import build_model

    cfg = preset("tiny").model
    cfg.dec_layers, cfg.enc_layers = 2, 1
    src = build_model(cfg)
    names = list(reversed(CATEGORY_NAMES))
    save_checkpoint(tmp_path / "src.pt", src, names, {"note": "test"})
    run = tmp_path / "ft"
    train(data, run, init=tmp_path / "src.pt", iters=1, num_frames=2, batch_size=1, lr=0.0, device="cpu",
          overrides={**SMALL, "val_fraction": 0.34, "val_max_videos": 1, "warmup_iters": 0,
                     "model.sync.top_k": 2, "model.sync.order": "video_first"})
    events = read_events(run)
    assert [e["type"] for e in events] == ["start", "eval", "train", "eval", "done"]  # before and after AP
    tuned, _ = load_checkpoint(run / "model_final.pt")
    # the architecture is the checkpoint's, the synchronisation settings (not weights) are the run's
    assert tuned.cfg.dec_layers == 2 and src.cfg.sync.top_k == 4
    assert (tuned.cfg.sync.top_k, tuned.cfg.sync.order) == (2, "video_first")
    w_src = src.state_dict()["sem_seg_head.predictor.class_embed.weight"]
    w_new = tuned.state_dict()["sem_seg_head.predictor.class_embed.weight"]
    # lr 0: weights unchanged except for the re-ordering of class rows (no-object row stays last)
    torch.testing.assert_close(w_new[:-1], w_src[:-1].flip(0))
    torch.testing.assert_close(w_new[-1], w_src[-1])


def test_overrides_reach_nested_sections():
    from engine.config import preset

    p = apply_overrides(preset("tiny"), {"lr": 1e-3, "loss.subclip_len": 4, "model.sync.top_k": 8,
                                         "model.sync.order": "video_first", "min_sizes": [64, 96]})
    assert (p.train.lr, p.loss.subclip_len, p.train.min_sizes) == (1e-3, 4, (64, 96))
    assert (p.model.sync.top_k, p.model.sync.order, p.model.sync.momentum) == (8, "video_first", 0.05)
    for bad in ("nope", "model.sync.nope", "model.nope.top_k", "loss.subclip_len.x"):
        with pytest.raises(ValueError, match="unknown setting"):
            apply_overrides(preset("tiny"), {bad: 1})


def test_optimizer_groups_and_schedule():
    from engine.config import preset
    from engine.model.syncvis import build_model

    model = build_model(preset("tiny").model)
    groups = param_groups(model, 1e-3, 0.05, 0.1, 0.0, 0.0)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    bb = next(n for n in named if n.startswith("backbone") and named[n].requires_grad)
    assert by_param[id(named[bb])]["lr"] == pytest.approx(1e-4)
    norm = next(n for n in named if "decoder_norm" in n)
    assert by_param[id(named[norm])]["weight_decay"] == 0.0
    emb = next(n for n in named if n.endswith("query_feat1.weight"))
    assert by_param[id(named[emb])]["weight_decay"] == 0.0
    lin = next(n for n in named if n.endswith("class_embed.weight"))
    assert by_param[id(named[lin])]["weight_decay"] == 0.05 and by_param[id(named[lin])]["lr"] == 1e-3
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    assert lr_factor(0, (10,), 0.1, 4, 0.2) == pytest.approx(0.2)
    assert lr_factor(2, (10,), 0.1, 4, 0.2) == pytest.approx(0.6)
    assert lr_factor(9, (10,), 0.1, 4, 0.2) == 1.0 and lr_factor(10, (10,), 0.1, 4, 0.2) == pytest.approx(0.1)


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_replicas(data, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    sets = [a for k, v in {**SMALL, "val_fraction": 0}.items()
            for a in ("--set", f"{k}={v if not isinstance(v, list) else str(v).replace(' ', '')}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "main.py"), "train", "--data", str(data), "--out", str(run), "--iters", "2",
           "--batch", "2", "--num-frames", "2", "--device", "cpu", "--check-replicas", *sets]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sums = [(run / "replicas" / f"rank{r}.txt").read_text().strip() for r in (0, 1)]
    assert len(sums[0]) == 64 and sums[0] == sums[1]
    events = read_events(run)
    assert events[0]["world_size"] == 2 and [e["step"] for e in events if e["type"] == "train"] == [1, 2]
    assert events[-1]["type"] == "done"
    from engine.train import state_checksum

    model, _ = load_checkpoint(run / "model_final.pt")
    assert state_checksum(model) == sums[0]      # what rank 0 saved is what every rank holds


def test_baselines_own_recipes():
    """--recipe own: Mask2Former-VIS trains on 2-frame clips, MinVIS on single frames (spec §12); shared (the
    default) keeps SyncVIS's recipe for every mode; sync is the same under both."""
    import dataclasses

    from engine.config import preset

    video, frame = preset("r50", "video", "own").train, preset("r50", "frame", "own").train
    assert (video.num_frames, video.batch_size, video.max_iters, video.lr_steps, video.lr) == (2, 16, 6000,
                                                                                               (4000,), 1e-4)
    assert video.min_sizes == (360, 480)
    assert (frame.num_frames, frame.batch_size) == (1, 32)
    assert preset("r50", "video").train == preset("r50", "sync").train            # shared
    assert preset("r50", "sync", "own").train == preset("r50", "sync").train
    tiny = {m: preset("tiny", m, "own").train for m in ("sync", "video", "frame")}
    assert {m: t.num_frames * t.batch_size for m, t in tiny.items()} == {"sync": 16, "video": 16, "frame": 16}
    assert dataclasses.replace(tiny["video"], num_frames=4, batch_size=4) == tiny["sync"]
    with pytest.raises(ValueError, match="unknown recipe"):
        preset("tiny", "video", "nope")
