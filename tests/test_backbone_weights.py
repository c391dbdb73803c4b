"""`train --backbone-weights FILE`: ImageNet ResNet-50 weights of either layout (torchvision, detectron2) land in
the r50 trunk (engine/model/backbone.py load_resnet_weights, engine/train.py _fresh_model)."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from engine.config import preset
from engine.errors import InputError
from engine.model.backbone import build_backbone, d2_resnet_key, load_resnet_weights
from engine.train import _fresh_model, apply_overrides

ROOT = Path(__file__).resolve().parents[1]


def _d2_name(tv: str) -> str:
    """torchvision ResNet name -> detectron2 (the model zoo's R-50.pkl), written out independently of
    d2_resnet_key so that the test checks the mapping rather than restating it."""
    parts = tv.split(".")
    if parts[0] == "conv1":
        return "stem.conv1." + parts[1]
    if parts[0] == "bn1":
        return "stem.conv1.norm." + parts[1]
    stage, block, layer, leaf = int(parts[0][len("layer"):]) + 1, parts[1], parts[2], parts[-1]
    if layer == "downsample":
        return f"res{stage}.{block}.shortcut." + ("" if parts[3] == "0" else "norm.") + leaf
    if layer.startswith("bn"):
        return f"res{stage}.{block}.conv{layer[2:]}.norm.{leaf}"
    return f"res{stage}.{block}.{layer}.{leaf}"


@pytest.fixture(scope="module")
def tv_state():
    torch.manual_seed(3)
    return torchvision.models.resnet50(weights=None).state_dict()   # random, but in the published file layout


def _small_r50():
    """The r50 preset with a small head (the trunk is what is tested; a full head takes seconds to build)."""
    return apply_overrides(preset("r50"), {"model.hidden_dim": 32, "model.nheads": 4, "model.dim_feedforward": 64,
                                           "model.dec_layers": 1, "model.enc_layers": 1, "model.conv_dim": 32,
                                           "model.mask_dim": 32, "model.num_frame_queries": 4,
                                           "model.num_video_queries": 4, "model.num_classes": 3})


def _check_trunk(backbone, tv_state):
    own = backbone.state_dict()
    for k, v in own.items():
        if k in tv_state:
            torch.testing.assert_close(v, tv_state[k].to(v.dtype), msg=k)
    assert {k for k in own if k not in tv_state} == set()         # every trunk tensor came from the file


def test_torchvision_layout(tv_state, tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(tv_state, path)
    backbone = build_backbone("resnet50", frozen_bn=True)
    report = load_resnet_weights(backbone, path)
    _check_trunk(backbone, tv_state)
    assert "fc.weight" in report["ignored"] and "fc.bias" in report["ignored"]
    assert "layer1.0.downsample.1.running_var" in report["loaded"] and not report["missing"]


def test_detectron2_layout_pickle_of_numpy(tv_state, tmp_path):
    d2 = {_d2_name(k): v.numpy() for k, v in tv_state.items()
          if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    assert "res5.2.conv3.norm.running_mean" in d2 and "res2.0.shortcut.weight" in d2
    assert all(d2_resnet_key(k) in tv_state for k in d2)         # the mapping is onto torchvision's names
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:                                   # the model zoo's layout: {"model": {...}, ...}
        pickle.dump({"model": d2, "__author__": "test", "matching_heuristics": True}, f)
    backbone = build_backbone("resnet50", frozen_bn=True)
    report = load_resnet_weights(backbone, path)
    _check_trunk(backbone, tv_state)
    assert len(report["loaded"]) == len(d2)
    # also with the `backbone.` prefix of a whole-model checkpoint
    backbone2 = build_backbone("resnet50", frozen_bn=True)
    load_resnet_weights(backbone2, {"backbone." + k: torch.from_numpy(v) for k, v in d2.items()})
    _check_trunk(backbone2, tv_state)


def test_fresh_r50_model_takes_the_file_and_bad_files_are_input_errors(tv_state, tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(tv_state, path)
    p = _small_r50()
    p.train.backbone_weights = str(path)
    model, note = _fresh_model(p)
    _check_trunk(model.backbone, tv_state)
    assert str(path) in note
    p.train.backbone_weights = ""
    assert "random" in _fresh_model(p)[1]

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    p.train.backbone_weights = str(tmp_path / "r18.pth")
    with pytest.raises(InputError, match="does not fit"):
        _fresh_model(p)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    p.train.backbone_weights = str(tmp_path / "junk.pth")
    with pytest.raises(InputError, match="junk.pth"):
        _fresh_model(p)
    tiny = preset("tiny")
    tiny.train.backbone_weights = str(path)
    with pytest.raises(InputError, match="not a ResNet"):
        _fresh_model(tiny)


def test_cli_help_and_missing_file(tmp_path):
    run = [sys.executable, str(ROOT / "main.py"), "train"]
    out = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "--backbone-weights" in out.stdout
    assert "torchvision" in out.stdout and "detectron2" in out.stdout
    from engine.data.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", num_videos=1, seed=1, size=(96, 64))
    bad = subprocess.run(run + ["--data", str(data), "--out", str(tmp_path / "r"), "--preset", "r50",
                                "--backbone-weights", str(tmp_path / "none.pth")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none.pth'}: no such file"
