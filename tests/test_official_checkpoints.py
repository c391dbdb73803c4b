"""Official Mask2Former-VIS / SyncVIS checkpoints open like ours (issue 10 §4): `main.py infer`, `main.py train
--init` and `main.py checkpoint-info` take the .pth or detectron2 .pkl file directly, build the architecture its
tensors describe, and name its classes from the dataset its class count names (engine/data/vocabularies.py).

The files are written here in the official layout (detectron2 ResNet names, no model config, numpy arrays in the
.pkl) from a small ResNet-18 network, with a class head rigged so that every query says one class row: which
name and id that row gets is then visible in the results.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import is_command, run_cli
from engine.config import ModelConfig, SyncConfig
from engine.data.vocabularies import COCO, OVIS, YTVIS_2019, YTVIS_2021, AmbiguousClassesError, resolve_classes
from engine.model import build_model
from engine.model.checkpoint import load_checkpoint
from tests.media import write_video
from tests.test_checkpoint import _official_from

_PRED = "sem_seg_head.predictor."
AMBIGUOUS = "40 classes: YouTube-VIS 2019 or 2021? pass --classes ytvis2019 or --classes ytvis2021"
assert is_command(["infer"])            # registers the engine commands


def _small(num_classes: int, mode: str = "video") -> ModelConfig:
    """ResNet-18 trunk (the smallest an official file may have) under a tiny head; 8 heads as the official."""
    return ModelConfig(mode=mode, backbone="resnet18", frozen_bn=True, num_classes=num_classes, hidden_dim=32,
                       nheads=8, dim_feedforward=64, dec_layers=2, num_frame_queries=6, num_video_queries=6,
                       mask_dim=32, enc_layers=1, enc_dim_feedforward=64, conv_dim=32, sync=SyncConfig(top_k=2))


def _mask2former_vis(num_classes: int, favourite: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A Mask2Former-VIS state dict (one query set, no SyncVIS aggregation tensors) whose class head gives every
    query the class row `favourite`."""
    torch.manual_seed(seed)
    sd = _official_from(build_model(_small(num_classes)), single_query_set=True)
    sd = {k: v for k, v in sd.items()
          if not k.startswith(("syncvis_module.", _PRED + "multi_attn.", _PRED + "FFN_", _PRED + "bogus."))
          and not (k.startswith(_PRED + "query_feat") and k[len(_PRED) + 10:len(_PRED) + 11].isdigit())}
    w, b = sd[_PRED + "class_embed.weight"], sd[_PRED + "class_embed.bias"]
    sd[_PRED + "class_embed.weight"] = torch.zeros_like(w)
    bias = torch.full_like(b, -10.0)
    bias[favourite] = 10.0
    sd[_PRED + "class_embed.bias"] = bias
    return sd


def _save_pkl(sd: dict, path: Path) -> Path:
    with open(path, "wb") as f:            # detectron2 model zoo: a plain pickle of numpy arrays
        pickle.dump({"model": {k: v.numpy() for k, v in sd.items()}, "__author__": "tests"}, f)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("official")
    zebra_2021 = YTVIS_2021.index("zebra")            # row 39: zebra in 2021, tennis_racket in 2019
    sd40 = _mask2former_vis(40, zebra_2021)
    torch.save({"model": sd40, "iteration": 12000}, d / "model_final_40.pth")
    _save_pkl(sd40, d / "model_final_40.pkl")
    _save_pkl(_mask2former_vis(25, OVIS.index("Giraffe"), seed=1), d / "model_final_25.pkl")
    return {"dir": d, "sd40": sd40, "pth": d / "model_final_40.pth", "pkl": d / "model_final_40.pkl",
            "ovis": d / "model_final_25.pkl", "video": write_video(d / "clip.mp4", n=6, size=(64, 48))}


def _infer(files, ckpt, out, *extra) -> int:
    return run_cli(["infer", str(files["video"]), "--checkpoint", str(ckpt), "-o", str(out), "--device", "cpu",
                    "--short-side", "48", "--top-k", "6", *map(str, extra)])


# ------------------------------------------------------------------------------------------------ infer
@pytest.mark.parametrize("kind", ["pth", "pkl"])
def test_infer_opens_an_official_file_with_the_classes_asked_for(files, tmp_path, capsys, kind):
    out = tmp_path / "r.json"
    assert _infer(files, files[kind], out, "--classes", "ytvis2021") == 0
    text = capsys.readouterr().out
    assert "YouTube-VIS 2021 (--classes ytvis2021)" in text and "Mask2Former-VIS" in text
    results = json.loads(out.read_text())
    assert results and {r["category_id"] for r in results} == {YTVIS_2021.index("zebra") + 1}   # 40
    assert all(len(r["segmentations"]) == 6 for r in results)

    # the model itself: the file's architecture (not a preset's), its weights, the 2021 names
    model, meta = load_checkpoint(files[kind], classes="ytvis2021")
    assert (model.cfg.backbone, model.cfg.num_classes, model.cfg.num_frame_queries, model.cfg.mode,
            model.cfg.hidden_dim) == ("resnet18", 40, 6, "video", 32)
    assert meta["class_names"] == list(YTVIS_2021) and meta["category_ids"] == list(range(1, 41))
    prov = meta["provenance"]
    assert prov["source"] == str(files[kind]) and prov["format"] == kind and prov["vocabulary"] == "ytvis2021"
    assert "Mask2Former-VIS" in prov["layout"] and prov["mismatched"] == 0
    own = model.state_dict()
    torch.testing.assert_close(own["backbone.layer3.1.conv2.weight"],
                               torch.as_tensor(files["sd40"]["backbone.res4.1.conv2.weight"]), rtol=0, atol=0)
    torch.testing.assert_close(own[_PRED + "class_embed.bias"], files["sd40"][_PRED + "class_embed.bias"])


def test_dataset_names_decide_and_the_names_matter(files, tmp_path, capsys):
    """On a dataset folder the category names settle 40 classes; with the other vocabulary the same class row
    is another class (tennis_racket, not in the data), so nothing is kept."""
    from engine.data.synthetic import write_dataset

    root = write_dataset(tmp_path / "ds", num_videos=1, seed=2, size=(64, 48))
    doc = json.loads((root / "annotations.json").read_text())
    names = ["person", "whale", "squirrel", "bird", "car", "flying_disc", "zebra", "cat"]   # 2021-only + shared
    for c, n in zip(doc["categories"], names, strict=False):
        c["name"] = n
    (root / "annotations.json").write_text(json.dumps(doc))
    zebra_id = next(c["id"] for c in doc["categories"] if c["name"] == "zebra")

    out = tmp_path / "r.json"
    assert run_cli(["infer", str(root), "--checkpoint", str(files["pkl"]), "-o", str(out), "--device", "cpu",
                    "--short-side", "48", "--top-k", "6", "--window", "8"]) == 0
    text = capsys.readouterr().out
    assert "YouTube-VIS 2021 (8 of the data's 8 category names are YouTube-VIS 2021's" in text
    results = json.loads(out.read_text())
    assert results and {r["category_id"] for r in results} == {zebra_id}

    assert run_cli(["infer", str(root), "--checkpoint", str(files["pkl"]), "-o", str(out), "--device", "cpu",
                    "--short-side", "48", "--top-k", "6", "--window", "8", "--classes", "ytvis2019"]) == 0
    assert "wrote 0 predictions" in capsys.readouterr().out
    assert YTVIS_2019[YTVIS_2021.index("zebra")] == "tennis_racket"


def test_ambiguous_count_without_classes_is_a_one_line_error(files, tmp_path, capsys):
    for kind in ("pth", "pkl"):
        assert _infer(files, files[kind], tmp_path / "r.json") == 2
        err = capsys.readouterr().err
        assert err == f"error: {files[kind]}: {AMBIGUOUS}\n"
        assert not (tmp_path / "r.json").exists()
    with pytest.raises(AmbiguousClassesError) as e:
        load_checkpoint(files["pth"])
    assert e.value.candidates == ["ytvis2019", "ytvis2021"]
    # a file name that says which
    hinted = files["dir"] / "vita_r18_ytvis19.pth"
    if not hinted.exists():
        hinted.symlink_to(files["pth"])
    _, meta = load_checkpoint(hinted)
    assert meta["class_names"] == list(YTVIS_2019) and "ytvis19" in meta["provenance"]["vocabulary_reason"]
    _, meta = load_checkpoint(files["pth"], target_names=["whale", "person"])
    assert meta["provenance"]["vocabulary"] == "ytvis2021"
    # a names file instead of a dataset key; a wrong count or value is bad input
    names = tmp_path / "names.txt"
    names.write_text("# my classes\n" + "\n".join(f"thing{i}" for i in range(40)) + "\n")
    _, meta = load_checkpoint(files["pth"], classes=names)
    assert meta["class_names"][:2] == ["thing0", "thing1"] and len(meta["class_names"]) == 40
    ann = tmp_path / "valid.json"
    ann.write_text(json.dumps({"videos": [], "annotations": [],
                               "categories": [{"id": 40 - i, "name": n} for i, n in enumerate(YTVIS_2021[::-1])]}))
    _, meta = load_checkpoint(files["pth"], classes=ann)
    assert meta["class_names"] == list(YTVIS_2021)
    (tmp_path / "short.txt").write_text("a\nb\n")
    assert _infer(files, files["pth"], tmp_path / "r.json", "--classes", tmp_path / "short.txt") == 2
    assert "2 class names, but the checkpoint model_final_40.pth has 40" in capsys.readouterr().err
    assert _infer(files, files["pth"], tmp_path / "r.json", "--classes", "ovis") == 2
    assert "--classes ovis: OVIS has 25 classes, but the checkpoint has 40" in capsys.readouterr().err
    assert _infer(files, files["pth"], tmp_path / "r.json", "--classes", "ytvis2020") == 2
    assert capsys.readouterr().err.startswith("error: ytvis2020: --classes: neither one of ytvis2019")


def test_ovis_needs_no_option(files, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert _infer(files, files["ovis"], out) == 0
    assert "OVIS (25 classes)" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results and {r["category_id"] for r in results} == {OVIS.index("Giraffe") + 1}
    _, meta = load_checkpoint(files["ovis"])
    assert meta["class_names"] == list(OVIS) and meta["class_names"][-1] == "Vehical"


def test_vocabularies_in_official_order():
    assert len(YTVIS_2019) == len(YTVIS_2021) == 40 and len(OVIS) == 25 and len(COCO) == 80
    assert YTVIS_2019[:3] == ("person", "giant_panda", "lizard") and YTVIS_2019[-1] == "tennis_racket"
    assert YTVIS_2021[:3] == ("airplane", "bear", "bird") and YTVIS_2021[-1] == "zebra"
    assert COCO[0] == (1, "person") and COCO[11] == (13, "stop sign") and COCO[-1] == (90, "toothbrush")
    coco = resolve_classes(80)
    assert coco.key == "coco" and coco.ids[-1] == 90 and len(set(coco.ids)) == 80
    unknown = resolve_classes(7)
    assert not unknown.known and unknown.names[0] == "class 1"
    assert resolve_classes(40, "syncvis_swinl_ytvis_2021.pth").key == "ytvis2021"
    assert resolve_classes(40, "m_2019.pkl").key == "ytvis2019"
    with pytest.raises(AmbiguousClassesError):
        resolve_classes(40, "ytvis19_to_ytvis21.pkl")          # the name says both


# ------------------------------------------------------------------------------------------------ info
def test_checkpoint_info_says_which_vocabulary_and_why(files, capsys):
    assert run_cli(["checkpoint-info", str(files["pkl"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vocabulary"]["name"] is None and info["vocabulary"]["reason"] == AMBIGUOUS
    assert info["vocabulary"]["candidates"] == ["ytvis2019", "ytvis2021"]
    assert info["architecture"]["num_classes"] == 40 and "classes" not in info["architecture"]

    assert run_cli(["checkpoint-info", str(files["pkl"]), "--json", "--classes", "ytvis2021"]) == 0
    info = json.loads(capsys.readouterr().out)
    voc = info["vocabulary"]
    assert (voc["name"], voc["title"], voc["reason"]) == ("ytvis2021", "YouTube-VIS 2021", "--classes ytvis2021")
    assert voc["classes"] == list(YTVIS_2021) and info["architecture"]["classes"] == list(YTVIS_2021)
    assert info["architecture"]["backbone"] == "resnet18" and "Mask2Former-VIS" in info["layout"]

    assert run_cli(["checkpoint-info", str(files["ovis"])]) == 0
    text = capsys.readouterr().out
    assert "  vocabulary: OVIS (25 classes)" in text and "classes: Person, Bird, Cat" in text


# ------------------------------------------------------------------------------------------------ train --init
def test_train_init_from_an_official_file(files, tmp_path, capsys):
    """--init OFFICIAL.pkl: the file's architecture, class rows copied by name into the data's vocabulary."""
    from engine.data.synthetic import write_dataset
    from engine.train import read_events

    root = write_dataset(tmp_path / "ds", num_videos=2, seed=5, size=(96, 64))
    doc = json.loads((root / "annotations.json").read_text())
    names = ["person", "zebra", "whale", "circle", "giant_panda", "car", "star", "squirrel"]
    for c, n in zip(doc["categories"], names, strict=True):
        c["name"] = n
    (root / "annotations.json").write_text(json.dumps(doc))
    data_names = [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])]

    torch.manual_seed(3)        # a source whose class rows all differ (not the rigged head)
    src = {k: v.clone() for k, v in files["sd40"].items()}
    src[_PRED + "class_embed.weight"] = torch.randn_like(src[_PRED + "class_embed.weight"])
    src[_PRED + "class_embed.bias"] = torch.randn_like(src[_PRED + "class_embed.bias"])
    init = _save_pkl(src, tmp_path / "model_final.pkl")
    run = tmp_path / "run"
    small = ["loss.num_points=256", "min_sizes=[64]", "max_size=96", "log_every=1", "frame_range=3",
             "val_fraction=0", "warmup_iters=0", "num_workers=0"]
    argv = ["train", "--data", str(root), "--out", str(run), "--init", str(init), "--iters", "2",
            "--num-frames", "2", "--batch", "1", "--lr", "0", "--device", "cpu", "--classes", "ytvis2021"]
    for s in small:
        argv += ["--set", s]
    assert run_cli(argv) == 0, capsys.readouterr().err
    events = read_events(run)
    assert [e["type"] for e in events] == ["start", "train", "train", "done"]
    assert "file's architecture" in events[0]["note"] and "YouTube-VIS 2021" in events[0]["note"]

    tuned, meta = load_checkpoint(run / "model_final.pt")
    assert meta["class_names"] == data_names
    assert (tuned.cfg.backbone, tuned.cfg.hidden_dim, tuned.cfg.num_frame_queries, tuned.cfg.num_classes) == \
        ("resnet18", 32, 6, 8)
    w = tuned.state_dict()[_PRED + "class_embed.weight"]
    b = tuned.state_dict()[_PRED + "class_embed.bias"]
    w_src, b_src = src[_PRED + "class_embed.weight"], src[_PRED + "class_embed.bias"]
    copied = 0
    for j, name in enumerate(data_names):
        if name in YTVIS_2021:
            i = YTVIS_2021.index(name)
            torch.testing.assert_close(w[j], w_src[i], rtol=0, atol=0)     # lr 0: the rows as copied
            torch.testing.assert_close(b[j], b_src[i], rtol=0, atol=0)
            copied += 1
        else:                                          # circle, star: fresh rows, like no source row
            assert not any(torch.equal(w[j], w_src[i]) for i in range(41))
    assert copied == 6
    torch.testing.assert_close(w[-1], w_src[-1], rtol=0, atol=0)           # no-object row
    torch.testing.assert_close(tuned.state_dict()["backbone.layer2.0.downsample.0.weight"],
                               src["backbone.res3.0.shortcut.weight"], rtol=0, atol=0)

    # explicit architecture options build the preset's network instead: the tiny trunk cannot take this file
    argv2 = [a if a != str(run) else str(tmp_path / "run2") for a in argv] + ["--set", "model.dec_layers=2"]
    assert run_cli(argv2) == 2
    assert "backbone does not fit this model" in capsys.readouterr().err


def test_train_init_ambiguous_needs_classes_unless_the_data_says(files, tmp_path, capsys):
    """The training data's names settle 40 classes; shape names (in neither list) make the choice irrelevant."""
    from engine.model import checkpoint as ckpt

    of = ckpt.open_official(files["pth"], target_names=["person", "whale"], target_what="training data")
    assert of.classes.key == "ytvis2021" and "training data" in of.classes.reason
    of = ckpt.open_official(files["pth"], target_names=["circle", "star"])
    assert "no class row matches by name" in of.classes.reason
    with pytest.raises(AmbiguousClassesError):
        ckpt.open_official(files["pth"], target_names=["person", "cat"])     # in both lists
    np.testing.assert_equal(of.config.num_classes, 40)
