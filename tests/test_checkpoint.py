"""Checkpoints: our format round trip, clear errors, the official (detectron2-style) key map of spec §10."""
from __future__ import annotations

import pickle
import re

import pytest
import torch

from engine.config import ModelConfig, SyncConfig, preset
from engine.errors import CheckpointError
from engine.model import build_model
from engine.model.checkpoint import (
    load_checkpoint,
    load_official_checkpoint,
    load_official_state_dict,
    load_weights,
    read_meta,
    save_checkpoint,
)


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(num_classes: int = 4, **kw) -> ModelConfig:
    cfg = preset("tiny").model
    cfg.num_classes = num_classes
    cfg.dec_layers = 2
    cfg.enc_layers = 1
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _r50_small(num_classes: int = 3) -> ModelConfig:
    """ResNet-50 trunk (the detectron2 layout of spec §10.1) under a deliberately small head."""
    return ModelConfig(backbone="resnet50", frozen_bn=True, num_classes=num_classes, hidden_dim=32, nheads=4,
                       dim_feedforward=64, dec_layers=2, num_frame_queries=4, num_video_queries=4,
                       mask_dim=32, enc_layers=1, enc_dim_feedforward=64, conv_dim=32,
                       sync=SyncConfig(top_k=2))


def _clip(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 2, 3, 64, 96, generator=g) * 255


NAMES = ["circle", "square", "triangle", "star"]


# ------------------------------------------------------------------------------------------ our format
def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model(_tiny()).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, NAMES, {"trained_on": "synthetic", "iters": 10},
                           extra={"note": "x"})
    loaded, meta = load_checkpoint(path)
    assert meta["format"] == "syncvis-studio" and meta["version"] == 1
    assert meta["class_names"] == NAMES and meta["provenance"]["iters"] == 10
    assert meta["extra"] == {"note": "x"}
    assert meta["config"]["num_classes"] == 4 and not loaded.training
    x = _clip()
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for kind in ("video", "frame"):
        for key in ("logits", "masks"):
            torch.testing.assert_close(a[kind][key], b[kind][key], rtol=0, atol=0)
    assert read_meta(path)["class_names"] == NAMES
    # a DataParallel / DDP wrapper saves the same names
    wrapped = save_checkpoint(tmp_path / "dp.pt", torch.nn.DataParallel(model), NAMES, {})
    again, _ = load_checkpoint(wrapped)
    for k, v in again.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k], rtol=0, atol=0)


def test_fp16_storage_is_smaller_and_close(tmp_path):
    torch.manual_seed(1)
    model = build_model(_tiny()).eval()
    full = save_checkpoint(tmp_path / "full.pt", model, NAMES, {})
    half = save_checkpoint(tmp_path / "half.pt", model, NAMES, {}, fp16=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, meta = load_checkpoint(half)
    assert meta["fp16"] is True
    for name, p in loaded.state_dict().items():
        assert p.dtype == model.state_dict()[name].dtype
        if p.is_floating_point():
            torch.testing.assert_close(p, model.state_dict()[name].half().float(), rtol=0, atol=0)
    x = _clip(1)
    with torch.no_grad():
        a, b = model(x)["video"], loaded(x)["video"]
    assert torch.allclose(a["logits"].softmax(-1), b["logits"].softmax(-1), atol=2e-2)
    agree = ((a["masks"] > 0) == (b["masks"] > 0)).float().mean()
    assert float(agree) > 0.98


def test_mode_override_reads_the_same_weights(tmp_path):
    torch.manual_seed(2)
    model = build_model(_tiny()).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, NAMES, {})
    video_view, _ = load_checkpoint(path, mode="video")
    assert video_view.cfg.mode == "video"
    with torch.no_grad():
        out = video_view(_clip())
    assert out["frame"] is None and out["video"]["logits"].shape == (1, 16, 5)


def test_wrong_class_count_or_architecture_is_a_clear_error(tmp_path):
    torch.manual_seed(3)
    path = save_checkpoint(tmp_path / "forty.pt", build_model(_tiny(num_classes=40)),
                           [f"c{i}" for i in range(40)], {})
    eight = build_model(_tiny(num_classes=8))
    with pytest.raises(CheckpointError, match="checkpoint has 40 classes but the model expects 8") as e:
        load_weights(eight, path)
    assert str(path) in str(e.value)
    with pytest.raises(CheckpointError, match="40 classes"):
        load_checkpoint(path, expect=_tiny(num_classes=8))

    narrow = build_model(_tiny(num_classes=8, hidden_dim=32, mask_dim=32, conv_dim=32))
    other = save_checkpoint(tmp_path / "narrow.pt", narrow, [f"c{i}" for i in range(8)], {})
    with pytest.raises(CheckpointError, match=r"another architecture: hidden_dim 32 \(model: 64\)") as e:
        load_weights(eight, other)
    assert str(other) in str(e.value)


def test_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CheckpointError, match="not a SyncVIS Studio or detectron2 checkpoint") as e:
        load_checkpoint(garbage)
    assert str(garbage) in str(e.value)
    with pytest.raises(CheckpointError, match="not a SyncVIS Studio or detectron2 checkpoint"):
        load_official_checkpoint(build_model(_tiny()), garbage)

    other = tmp_path / "dict.pt"
    torch.save({"weights": [1, 2, 3]}, other)
    with pytest.raises(CheckpointError, match="not a SyncVIS Studio or detectron2 checkpoint"):
        load_checkpoint(other)

    with pytest.raises(CheckpointError, match="file not found") as e:
        load_checkpoint(tmp_path / "nope.pt")
    assert "nope.pt" in str(e.value)

    # a pickle that names arbitrary code is refused, not executed
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": {"x": re.compile("a")}}))
    with pytest.raises(CheckpointError, match="not a SyncVIS Studio or detectron2 checkpoint"):
        load_official_checkpoint(build_model(_tiny()), evil)


def test_official_checkpoint_given_to_load_checkpoint_says_how_to_import(tmp_path):
    path = tmp_path / "d2.pth"
    torch.save({"model": {"backbone.stem.conv1.weight": torch.zeros(64, 3, 7, 7)}, "iteration": 3}, path)
    with pytest.raises(CheckpointError, match="detectron2-style"):
        load_checkpoint(path)


def test_damaged_or_newer_checkpoint(tmp_path):
    model = build_model(_tiny())
    path = save_checkpoint(tmp_path / "m.pt", model, NAMES, {})
    obj = torch.load(path, weights_only=True)
    obj["config"]["no_such_field"] = 1
    torch.save(obj, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="no_such_field"):
        load_checkpoint(tmp_path / "unknown.pt")
    obj = torch.load(path, weights_only=True)
    obj["version"] = 99
    torch.save(obj, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "newer.pt")
    obj = torch.load(path, weights_only=True)
    obj["state_dict"].pop("sem_seg_head.predictor.decoder_norm.weight")
    torch.save(obj, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="1 missing"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(ValueError, match="class names"):
        save_checkpoint(tmp_path / "bad.pt", model, NAMES[:2], {})


# ------------------------------------------------------------------------------------------ official layouts
def _to_d2_backbone(rel: str) -> str:
    """torchvision ResNet name -> detectron2 name, written independently of the code under test."""
    m = re.fullmatch(r"conv1\.(\w+)", rel)
    if m:
        return f"stem.conv1.{m[1]}"
    m = re.fullmatch(r"bn1\.(\w+)", rel)
    if m:
        return f"stem.conv1.norm.{m[1]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)", rel)
    if m:
        stage, block, kind, k, leaf = m.groups()
        return f"res{int(stage) + 1}.{block}.conv{k}." + ("norm." if kind == "bn" else "") + leaf
    m = re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.(0|1)\.(\w+)", rel)
    if m:
        stage, block, idx, leaf = m.groups()
        return f"res{int(stage) + 1}.{block}.shortcut." + ("norm." if idx == "1" else "") + leaf
    raise AssertionError(f"unexpected torchvision key {rel}")


_PRED = "sem_seg_head.predictor."


def _official_from(model, single_query_set: bool) -> dict:
    """A detectron2-style state dict with the official names of spec §10, built from our model's tensors."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("backbone."):
            name = "backbone." + _to_d2_backbone(key[len("backbone."):])
        elif key.startswith(_PRED):
            rest = key[len(_PRED):]
            for ours, theirs in (("sync_attn.", "multi_attn."), ("phi_frame.", "FFN_2."),
                                 ("phi_video.", "FFN_3.")):
                if rest.startswith(ours):
                    rest = theirs + rest[len(ours):]
            if single_query_set and rest.split(".")[0] in ("query_feat1", "query_embed1"):
                continue
            name = _PRED + rest
        else:
            name = key
        out[name] = value.clone()
    c = model.cfg.hidden_dim
    q = model.cfg.num_frame_queries
    for i in range(2, 6):
        out[f"{_PRED}query_feat{i}.weight"] = torch.randn(q, c)
    out[f"{_PRED}FFN_1.linear1.weight"] = torch.randn(model.cfg.dim_feedforward, c)
    out["criterion.empty_weight"] = torch.ones(model.cfg.num_classes + 1)
    out["syncvis_module.query_feat.weight"] = torch.randn(100, c)
    out[f"{_PRED}bogus.weight"] = torch.randn(3)
    return out


def _assert_all_landed(dst, src, single_query_set: bool):
    s, d = src.state_dict(), dst.state_dict()
    for key, value in d.items():
        if single_query_set and key in (f"{_PRED}query_feat1.weight", f"{_PRED}query_embed1.weight"):
            torch.testing.assert_close(value, s[key.replace("1.weight", ".weight")], rtol=0, atol=0)
        else:
            torch.testing.assert_close(value, s[key], rtol=0, atol=0, msg=key)


@pytest.fixture(scope="module")
def r50_pair():
    torch.manual_seed(10)
    src = build_model(_r50_small())
    torch.manual_seed(11)
    return src, _r50_small()


def test_official_layout_lands_every_tensor(r50_pair):
    src, cfg = r50_pair
    official = {"model": _official_from(src, single_query_set=False), "iteration": 1000}
    dst = build_model(cfg)
    assert not torch.equal(dst.state_dict()[f"{_PRED}sync_attn.in_proj_weight"],
                           src.state_dict()[f"{_PRED}sync_attn.in_proj_weight"])
    report = load_official_state_dict(dst, official)
    _assert_all_landed(dst, src, single_query_set=False)
    assert report.missing == [] and report.mismatched == [] and report.reinitialized == []
    assert report.unexpected == [f"{_PRED}bogus.weight"]
    assert len(report.loaded) == len(dst.state_dict())
    assert f"{_PRED}query_feat3.weight" in report.ignored and "criterion.empty_weight" in report.ignored
    assert "syncvis_module.query_feat.weight" in report.ignored
    assert f"{_PRED}FFN_1.linear1.weight" in report.ignored
    mapped = dict(report.mapped)
    assert mapped["backbone.res2.0.shortcut.norm.running_var"] == "backbone.layer1.0.downsample.1.running_var"
    assert mapped["backbone.stem.conv1.weight"] == "backbone.conv1.weight"
    assert mapped["backbone.res4.5.conv3.norm.weight"] == "backbone.layer3.5.bn3.weight"
    assert mapped[f"{_PRED}multi_attn.in_proj_weight"] == f"{_PRED}sync_attn.in_proj_weight"
    assert mapped[f"{_PRED}FFN_2.linear1.weight"] == f"{_PRED}phi_frame.linear1.weight"
    assert mapped[f"{_PRED}FFN_3.norm.bias"] == f"{_PRED}phi_video.norm.bias"


def test_single_query_set_initialises_both(r50_pair, tmp_path):
    """Mask2Former / VITA sources have one query set: it fills the frame- and the video-level queries."""
    src, cfg = r50_pair
    official = _official_from(src, single_query_set=True)
    # as a detectron2 .pkl: a pickle of numpy arrays under "model"
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in official.items()}, "__author__": "test"}, f)
    dst = build_model(cfg)
    report = load_official_checkpoint(dst, path)
    _assert_all_landed(dst, src, single_query_set=True)
    assert report.missing == [] and report.unexpected == [f"{_PRED}bogus.weight"]
    assert (f"{_PRED}query_feat.weight", f"{_PRED}query_feat1.weight") in report.mapped
    # the same through a .pth written by torch.save
    path2 = tmp_path / "model.pth"
    torch.save({"model": official}, path2)
    dst2 = build_model(cfg)
    load_official_checkpoint(dst2, path2)
    _assert_all_landed(dst2, src, single_query_set=True)


def test_class_head_reinitialised_or_row_mapped_by_name():
    torch.manual_seed(20)
    src = build_model(_tiny(num_classes=3))
    source_classes = ["person", "car", "dog"]
    target_classes = ["dog", "cat", "person", "zebra"]
    torch.manual_seed(21)
    dst = build_model(_tiny(num_classes=4))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    sd = src.state_dict()

    # different vocabulary and no names: the class head keeps its fresh init, everything else loads
    report = load_official_state_dict(dst, {"model": sd})
    assert report.reinitialized == [f"{_PRED}class_embed.weight", f"{_PRED}class_embed.bias"]
    torch.testing.assert_close(dst.state_dict()[f"{_PRED}class_embed.weight"],
                               before[f"{_PRED}class_embed.weight"])
    torch.testing.assert_close(dst.state_dict()[f"{_PRED}mask_embed.layers.0.weight"],
                               sd[f"{_PRED}mask_embed.layers.0.weight"])
    assert report.missing == []

    # names given: rows of the same class are copied, the no-object row too, new classes keep their init
    torch.manual_seed(21)
    dst = build_model(_tiny(num_classes=4))
    report = load_official_state_dict(dst, sd, source_classes, target_classes)
    w, b = dst.state_dict()[f"{_PRED}class_embed.weight"], dst.state_dict()[f"{_PRED}class_embed.bias"]
    ws, bs = sd[f"{_PRED}class_embed.weight"], sd[f"{_PRED}class_embed.bias"]
    wi = before[f"{_PRED}class_embed.weight"]
    torch.testing.assert_close(w[0], ws[2])       # dog
    torch.testing.assert_close(w[2], ws[0])       # person
    torch.testing.assert_close(w[4], ws[3])       # no-object
    torch.testing.assert_close(b[0], bs[2])
    torch.testing.assert_close(w[1], wi[1])       # cat: fresh
    torch.testing.assert_close(w[3], wi[3])       # zebra: fresh
    assert report.class_rows == {"dog": "dog", "person": "person"}
    assert report.new_classes == ["cat", "zebra"] and report.reinitialized == []


def test_shape_mismatch_is_reported_not_fatal():
    torch.manual_seed(30)
    src = build_model(_tiny())
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    sd[f"{_PRED}decoder_norm.weight"] = torch.ones(7)
    torch.manual_seed(31)
    dst = build_model(_tiny())
    before = dst.state_dict()[f"{_PRED}decoder_norm.weight"].clone()
    report = load_official_state_dict(dst, {"model": sd})
    assert report.mismatched == [(f"{_PRED}decoder_norm.weight", (7,), (64,))]
    torch.testing.assert_close(dst.state_dict()[f"{_PRED}decoder_norm.weight"], before)
    torch.testing.assert_close(dst.state_dict()[f"{_PRED}decoder_norm.bias"], sd[f"{_PRED}decoder_norm.bias"])
    assert "shape mismatch" in report.summary()


def _spec_official_state_dict(cfg: ModelConfig, single_query_set: bool) -> dict[str, torch.Tensor]:
    """An official SyncVIS (R-B) R-50 state dict written from the key and shape tables of spec §10.1-§10.3
    alone, so our module names are checked against the spec, not against themselves."""
    g = torch.Generator().manual_seed(5)
    sd: dict[str, torch.Tensor] = {}

    def put(name, *shape):
        sd[name] = torch.randn(*shape, generator=g)

    def norm(prefix, ch, bn=True):
        for leaf in ("weight", "bias") + (("running_mean", "running_var") if bn else ()):
            put(f"{prefix}.{leaf}", ch)

    # §10.1 backbone: detectron2 ResNet-50
    put("backbone.stem.conv1.weight", 64, 3, 7, 7)
    norm("backbone.stem.conv1.norm", 64)
    c_in = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=2):
        out = width * 4
        for b in range(blocks):
            p = f"backbone.res{stage}.{b}"
            put(f"{p}.conv1.weight", width, c_in if b == 0 else out, 1, 1)
            put(f"{p}.conv2.weight", width, width, 3, 3)
            put(f"{p}.conv3.weight", out, width, 1, 1)
            for k in (1, 2, 3):
                norm(f"{p}.conv{k}.norm", out if k == 3 else width)
            if b == 0:
                put(f"{p}.shortcut.weight", out, c_in, 1, 1)
                norm(f"{p}.shortcut.norm", out)
        c_in = out
    # §10.2 pixel decoder
    c, h = cfg.conv_dim, cfg.nheads
    px = "sem_seg_head.pixel_decoder"
    for i, ch in enumerate((2048, 1024, 512)):
        put(f"{px}.input_proj.{i}.0.weight", c, ch, 1, 1)
        put(f"{px}.input_proj.{i}.0.bias", c)
        norm(f"{px}.input_proj.{i}.1", c, bn=False)
    put(f"{px}.transformer.level_embed", 3, c)
    for layer in range(cfg.enc_layers):
        p = f"{px}.transformer.encoder.layers.{layer}"
        for name, rows in (("sampling_offsets", h * 3 * cfg.enc_n_points * 2),
                           ("attention_weights", h * 3 * cfg.enc_n_points),
                           ("value_proj", c), ("output_proj", c)):
            put(f"{p}.self_attn.{name}.weight", rows, c)
            put(f"{p}.self_attn.{name}.bias", rows)
        norm(f"{p}.norm1", c, bn=False)
        norm(f"{p}.norm2", c, bn=False)
        put(f"{p}.linear1.weight", cfg.enc_dim_feedforward, c)
        put(f"{p}.linear1.bias", cfg.enc_dim_feedforward)
        put(f"{p}.linear2.weight", c, cfg.enc_dim_feedforward)
        put(f"{p}.linear2.bias", c)
    put(f"{px}.mask_features.weight", cfg.mask_dim, c, 1, 1)
    put(f"{px}.mask_features.bias", cfg.mask_dim)
    put(f"{px}.adapter_1.weight", c, 256, 1, 1)
    norm(f"{px}.adapter_1.norm", c, bn=False)
    put(f"{px}.layer_1.weight", c, c, 3, 3)
    norm(f"{px}.layer_1.norm", c, bn=False)
    # §10.3 predictor
    d, f, q = cfg.hidden_dim, cfg.dim_feedforward, cfg.num_frame_queries

    def attention(prefix):
        put(f"{prefix}.in_proj_weight", 3 * d, d)
        put(f"{prefix}.in_proj_bias", 3 * d)
        put(f"{prefix}.out_proj.weight", d, d)
        put(f"{prefix}.out_proj.bias", d)

    def ffn(prefix):
        put(f"{prefix}.linear1.weight", f, d)
        put(f"{prefix}.linear1.bias", f)
        put(f"{prefix}.linear2.weight", d, f)
        put(f"{prefix}.linear2.bias", d)
        norm(f"{prefix}.norm", d, bn=False)

    for i in range(cfg.dec_layers):
        attention(f"{_PRED}transformer_self_attention_layers.{i}.self_attn")
        norm(f"{_PRED}transformer_self_attention_layers.{i}.norm", d, bn=False)
        attention(f"{_PRED}transformer_cross_attention_layers.{i}.multihead_attn")
        norm(f"{_PRED}transformer_cross_attention_layers.{i}.norm", d, bn=False)
        ffn(f"{_PRED}transformer_ffn_layers.{i}")
    for name in ("FFN_1", "FFN_2", "FFN_3"):
        ffn(_PRED + name)
    attention(_PRED + "multi_attn")
    norm(_PRED + "decoder_norm", d, bn=False)
    for suffix in ("",) if single_query_set else ("", "1", "2", "3", "4", "5"):
        put(f"{_PRED}query_feat{suffix}.weight", q, d)
        if suffix in ("", "1"):
            put(f"{_PRED}query_embed{suffix}.weight", q, d)
    put(f"{_PRED}level_embed.weight", 3, d)
    put(f"{_PRED}class_embed.weight", cfg.num_classes + 1, d)
    put(f"{_PRED}class_embed.bias", cfg.num_classes + 1)
    for i, rows in enumerate((d, d, cfg.mask_dim)):
        put(f"{_PRED}mask_embed.layers.{i}.weight", rows, d)
        put(f"{_PRED}mask_embed.layers.{i}.bias", rows)
    sd["criterion.empty_weight"] = torch.ones(cfg.num_classes + 1)
    return sd


@pytest.mark.parametrize("single_query_set", [False, True])
def test_spec_key_table_loads_completely(r50_pair, single_query_set):
    _, cfg = r50_pair
    sd = _spec_official_state_dict(cfg, single_query_set)
    model = build_model(cfg)
    report = load_official_state_dict(model, {"model": sd, "iteration": 7})
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.reinitialized == [] and len(report.loaded) == len(model.state_dict())
    own = model.state_dict()
    pairs = {"backbone.res3.1.conv2.norm.running_var": "backbone.layer2.1.bn2.running_var",
             "backbone.res5.0.shortcut.weight": "backbone.layer4.0.downsample.0.weight",
             "backbone.stem.conv1.norm.bias": "backbone.bn1.bias",
             f"{_PRED}FFN_3.linear2.weight": f"{_PRED}phi_video.linear2.weight",
             f"{_PRED}multi_attn.in_proj_bias": f"{_PRED}sync_attn.in_proj_bias",
             "sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight":
                 "sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight",
             f"{_PRED}query_feat.weight": f"{_PRED}query_feat1.weight" if single_query_set
             else f"{_PRED}query_feat.weight"}
    if not single_query_set:
        pairs[f"{_PRED}query_embed1.weight"] = f"{_PRED}query_embed1.weight"
    for theirs, ours in pairs.items():
        torch.testing.assert_close(own[ours], sd[theirs], rtol=0, atol=0, msg=f"{theirs} -> {ours}")


# ------------------------------------------------------------------------------------------ official Swin
def _swin_small(num_classes: int = 3) -> ModelConfig:
    """swin_t trunk (the code path of swin_l, smaller) under the small head."""
    cfg = _r50_small(num_classes)
    cfg.backbone, cfg.frozen_bn, cfg.nheads = "swin_t", False, 8
    return cfg


def _official_relative_index(w: int) -> torch.Tensor:
    """relative_position_index as the official Swin code builds it (a (w², w²) buffer)."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


def _official_swin_backbone(embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7,
                            seed: int = 0) -> dict[str, torch.Tensor]:
    """Backbone tensors of Mask2Former's D2SwinTransformer under their official names and shapes (from the
    official Swin code: patch_embed, layers.i.blocks.j.{norm1, attn.{qkv, proj, relative_position_bias_table,
    relative_position_index}, norm2, mlp.fc1, mlp.fc2}, layers.i.downsample.{reduction, norm}, norm0..3),
    written without our key map; plus the shift-window attn_mask buffers of the classification code."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def put(name, *shape):
        sd["backbone." + name] = torch.randn(*shape, generator=g)

    put("patch_embed.proj.weight", embed, 3, 4, 4)
    put("patch_embed.proj.bias", embed)
    put("patch_embed.norm.weight", embed)
    put("patch_embed.norm.bias", embed)
    for i, (depth, h) in enumerate(zip(depths, heads, strict=True)):
        c = embed * 2 ** i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            for n in ("norm1", "norm2"):
                put(p + n + ".weight", c)
                put(p + n + ".bias", c)
            put(p + "attn.relative_position_bias_table", (2 * window - 1) ** 2, h)
            sd["backbone." + p + "attn.relative_position_index"] = _official_relative_index(window)
            put(p + "attn.qkv.weight", 3 * c, c)
            put(p + "attn.qkv.bias", 3 * c)
            put(p + "attn.proj.weight", c, c)
            put(p + "attn.proj.bias", c)
            put(p + "mlp.fc1.weight", 4 * c, c)
            put(p + "mlp.fc1.bias", 4 * c)
            put(p + "mlp.fc2.weight", c, 4 * c)
            put(p + "mlp.fc2.bias", c)
            if j % 2 == 1:
                sd["backbone." + p + "attn_mask"] = torch.zeros(4, window ** 2, window ** 2)
        if i < 3:
            put(f"layers.{i}.downsample.reduction.weight", 2 * c, 4 * c)
            put(f"layers.{i}.downsample.norm.weight", 4 * c)
            put(f"layers.{i}.downsample.norm.bias", 4 * c)
        put(f"norm{i}.weight", c)
        put(f"norm{i}.bias", c)
    return sd


def _with_head(backbone_sd: dict, cfg: ModelConfig, seed: int = 1) -> dict:
    torch.manual_seed(seed)
    head = {k: v for k, v in build_model(cfg).state_dict().items() if not k.startswith("backbone.")}
    return {**backbone_sd, **head}


def test_official_swin_layout_loads_every_backbone_tensor():
    cfg = _swin_small()
    official = _official_swin_backbone()
    sd = _with_head(official, cfg)
    model = build_model(cfg)
    report = load_official_state_dict(model, {"model": sd})
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    own = model.state_dict()
    backbone = [k for k in own if k.startswith("backbone.")]
    assert len(backbone) == 189 and all(k in report.loaded for k in backbone)
    assert sorted(report.ignored) == sorted(k for k in official if k.endswith("attn_mask"))
    pairs = {"backbone.patch_embed.proj.weight": "backbone.features.0.0.weight",
             "backbone.patch_embed.norm.bias": "backbone.features.0.2.bias",
             "backbone.layers.2.blocks.5.mlp.fc1.weight": "backbone.features.5.5.mlp.0.weight",
             "backbone.layers.3.blocks.1.mlp.fc2.bias": "backbone.features.7.1.mlp.3.bias",
             "backbone.layers.1.blocks.0.attn.relative_position_bias_table":
                 "backbone.features.3.0.attn.relative_position_bias_table",
             "backbone.layers.0.downsample.reduction.weight": "backbone.features.2.reduction.weight",
             "backbone.layers.2.downsample.norm.weight": "backbone.features.6.norm.weight",
             "backbone.norm3.weight": "backbone.norm3.weight"}
    for theirs, ours in pairs.items():
        torch.testing.assert_close(own[ours], sd[theirs], rtol=0, atol=0, msg=f"{theirs} -> {ours}")
    # the (49, 49) official index buffers are our flattened (2401,) ones, value for value
    torch.testing.assert_close(own["backbone.features.1.0.attn.relative_position_index"],
                               _official_relative_index(7).flatten())
    with torch.no_grad():
        out = model.eval()(_clip())
    assert out["video"]["masks"].shape[:3] == (1, 4, 2)


def test_trunk_that_mostly_fails_to_load_is_an_error(tmp_path):
    swin_file = _with_head(_official_swin_backbone(), _swin_small())
    r50 = build_model(_r50_small())
    before = {k: v.clone() for k, v in r50.state_dict().items()}
    with pytest.raises(ValueError, match="backbone does not fit this model: 0 of"):
        load_official_state_dict(r50, {"model": swin_file})
    assert all(torch.equal(v, before[k]) for k, v in r50.state_dict().items())   # nothing was changed
    # the other way round, through the file loader: an R-50 file into a Swin model
    torch.save({"model": _with_head(build_model(_r50_small()).state_dict(), _r50_small())}, tmp_path / "r50.pth")
    with pytest.raises(CheckpointError, match=r"r50\.pth: the file's backbone does not fit"):
        load_official_checkpoint(build_model(_swin_small()), tmp_path / "r50.pth")
    # another window size: only the 2 window tensors of each of the 12 blocks differ -> reported, not fatal
    report = load_official_state_dict(build_model(_swin_small()),
                                      {"model": _with_head(_official_swin_backbone(window=5), _swin_small())})
    assert len(report.mismatched) == 24
    assert ("backbone.features.1.0.attn.relative_position_index", (25, 25), (2401,)) in report.mismatched


def test_checkpoint_info_official_swin_and_ours(tmp_path, capsys):
    import json

    from engine.cli import is_command, run_cli

    assert is_command(["checkpoint-info"])          # registers the engine commands
    cli_main = run_cli

    cfg = _swin_small()
    official = _with_head(_official_swin_backbone(), cfg)
    official[_PRED + "multi_attn.in_proj_bias"] = official.pop(_PRED + "sync_attn.in_proj_bias")
    official["criterion.empty_weight"] = torch.ones(4)
    torch.save({"model": official, "iteration": 5}, tmp_path / "swin.pth")
    assert cli_main(["checkpoint-info", str(tmp_path / "swin.pth"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"].startswith("official") and "SyncVIS" in info["layout"]
    arch = info["architecture"]
    assert (arch["backbone"], arch["num_classes"], arch["num_frame_queries"], arch["dec_layers"]) == \
        ("swin_t", 3, 4, 2)
    assert len([k for k in info["loaded"] if k.startswith("backbone.")]) == 189
    assert info["missing"] == info["unexpected"] == info["mismatched"] == []
    assert ["criterion.empty_weight", "loss buffer"] in info["ignored"]
    assert any(k.endswith("attn_mask") and "rebuilt" in why for k, why in info["ignored"])
    assert [_PRED + "multi_attn.in_proj_bias", _PRED + "sync_attn.in_proj_bias"] in info["renamed"]
    assert cli_main(["checkpoint-info", str(tmp_path / "swin.pth")]) == 0
    text = capsys.readouterr().out
    assert "official detectron2-style" in text and "ignored 1: loss buffer" in text

    model = build_model(_tiny())
    save_checkpoint(tmp_path / "ours.pt", model, NAMES, {"note": "t"})
    assert cli_main(["checkpoint-info", str(tmp_path / "ours.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"]["backbone"] == "tf_efficientnet_lite0"
    assert info["architecture"]["classes"] == NAMES and len(info["loaded"]) == len(model.state_dict())
    assert all(info[k] == [] for k in ("ignored", "missing", "unexpected", "mismatched"))
    (tmp_path / "x.pt").write_bytes(b"junk")
    assert cli_main(["checkpoint-info", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'x.pt'}: not a SyncVIS Studio")
