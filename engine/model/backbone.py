"""torchvision backbones returning {res2, res3, res4, res5} at strides 4/8/16/32 (spec §2.2).

Weights are randomly initialised (`weights=None`): nothing can be downloaded, and trained models are loaded from our
own checkpoints. The module *is* torchvision's `IntermediateLayerGetter`, so parameter names are torchvision's
under `backbone.` (e.g. `backbone.layer1.0.conv1.weight`); `d2_resnet_key` maps detectron2 ResNet names onto them.
"""
from __future__ import annotations

import re

import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d

# For the feature-list backbones: index of the last block of each stride in `model.features`, and its channels.
_FEATURE_TAPS: dict[str, dict[str, tuple[str, int]]] = {
    # mobilenet_v3_large: strides 4/8/16/32 end at blocks 3/6/12/15 (block 16 is the 960-ch head conv; dropped)
    "mobilenet_v3_large": {"res2": ("3", 24), "res3": ("6", 40), "res4": ("12", 112), "res5": ("15", 160)},
    # mobilenet_v3_small: blocks 1/3/8/11 (block 12 is the 576-ch head conv; dropped)
    "mobilenet_v3_small": {"res2": ("1", 16), "res3": ("3", 24), "res4": ("8", 48), "res5": ("11", 96)},
}
_RESNETS = {"resnet18": (64, 128, 256, 512), "resnet34": (64, 128, 256, 512),
            "resnet50": (256, 512, 1024, 2048), "resnet101": (256, 512, 1024, 2048)}
SUPPORTED = tuple(_RESNETS) + tuple(_FEATURE_TAPS)


class Backbone(IntermediateLayerGetter):
    """Runs the trunk and returns {res2..res5}; `out_channels` and `strides` describe them."""

    def __init__(self, model: nn.Module, return_layers: dict[str, str], out_channels: dict[str, int]):
        super().__init__(model, return_layers)
        self.out_channels = dict(out_channels)
        self.strides = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(super().forward(x))


def build_backbone(name: str, frozen_bn: bool = True) -> Backbone:
    norm_layer = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    if name in _RESNETS:
        model = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
        ch = _RESNETS[name]
        return Backbone(model, {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"},
                        dict(zip(("res2", "res3", "res4", "res5"), ch)))
    if name in _FEATURE_TAPS:
        taps = _FEATURE_TAPS[name]
        # keep torchvision's own BatchNorm settings (eps 1e-3) unless frozen norms are asked for
        kwargs = {"norm_layer": FrozenBatchNorm2d} if frozen_bn else {}
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
        last = int(taps["res5"][0])
        features = nn.Sequential(*list(model.features.children())[: last + 1])
        return Backbone(features, {idx: key for key, (idx, _) in taps.items()},
                        {key: c for key, (_, c) in taps.items()})
    if name.startswith("swin"):
        raise NotImplementedError(
            f"backbone {name!r} (preset 'swinl') is not implemented yet; use preset 'r50' or 'tiny'")
    raise ValueError(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED)}")


def d2_resnet_key(key: str) -> str:
    """detectron2 ResNet parameter name (spec §10.1, without the `backbone.` prefix) -> torchvision name.

    stem.conv1.weight -> conv1.weight; stem.conv1.norm.X -> bn1.X; res{s}.{b}.conv{k}.weight -> layer{s-1}.{b}.conv{k}
    .weight; res{s}.{b}.conv{k}.norm.X -> layer{s-1}.{b}.bn{k}.X; res{s}.0.shortcut[.norm].X -> layer{s-1}.0
    .downsample.{0|1}.X.
    """
    if key.startswith("stem.conv1.norm."):
        return "bn1." + key[len("stem.conv1.norm."):]
    if key.startswith("stem.conv1."):
        return "conv1." + key[len("stem.conv1."):]
    m = re.fullmatch(r"res(\d)\.(\d+)\.(conv\d|shortcut)\.(norm\.)?(\w+)", key)
    if m is None:
        return key
    stage, block, conv, norm, leaf = m.groups()
    prefix = f"layer{int(stage) - 1}.{block}."
    if conv == "shortcut":
        return prefix + ("downsample.1." if norm else "downsample.0.") + leaf
    return prefix + (f"bn{conv[-1]}." if norm else f"{conv}.") + leaf
