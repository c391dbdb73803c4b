"""torchvision backbones returning {res2, res3, res4, res5} at strides 4/8/16/32 (spec §2.2).

Weights are randomly initialised (`weights=None`): nothing can be downloaded, and trained models are loaded
from our own checkpoints. The module *is* torchvision's `IntermediateLayerGetter`, so parameter names are
torchvision's under `backbone.` (e.g. `backbone.layer1.0.conv1.weight`); `d2_resnet_key` maps detectron2
ResNet names onto them.
"""

from __future__ import annotations

import re
from functools import partial

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
SUPPORTED = tuple(_RESNETS) + tuple(_FEATURE_TAPS) + tuple(_SWINS)


class Backbone(IntermediateLayerGetter):
    """Runs the trunk and returns {res2..res5}; `out_channels` and `strides` describe them."""

    def __init__(self, model: nn.Module, return_layers: dict[str, str], out_channels: dict[str, int]):
        super().__init__(model, return_layers)
        self.out_channels = dict(out_channels)
        self.strides = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(super().forward(x))


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

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)  # channels-last (N, H, W, C) after the patch embed
            if i % 2 == 1:
                stage = i // 2
                out[f"res{stage + 2}"] = getattr(self, f"norm{stage}")(x).permute(0, 3, 1, 2).contiguous()
        return out


def build_backbone(name: str, frozen_bn: bool = True) -> Backbone | SwinBackbone:
    norm_layer = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    if name in _RESNETS:
        model = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
        ch = _RESNETS[name]
        return Backbone(
            model,
            {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"},
            dict(zip(("res2", "res3", "res4", "res5"), ch, strict=False)),
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
            features, {idx: key for key, (idx, _) in taps.items()}, {key: c for key, (_, c) in taps.items()}
        )
    if name in _SWINS:
        return SwinBackbone(*_SWINS[name])
    raise ValueError(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED)}")


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
