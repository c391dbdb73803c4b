"""Mask2Former's MSDeformAttn pixel decoder (spec §2.3) without detectron2.

Deformable-attention encoder over strides 8/16/32, one FPN step down to stride 4, and the 1x1 mask-feature
projection. Attribute names follow the official checkpoint (spec §10.2): input_proj, transformer.level_embed,
transformer.encoder.layers.N.{self_attn, norm1, linear1, linear2, norm2}, mask_features, adapter_1, layer_1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ms_deform_attn import MSDeformAttn
from .position_encoding import PositionEmbeddingSine


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(32) as in the recipe; fewer groups when a small model's width is not a multiple of 32."""
    groups = 32
    while channels % groups:
        groups //= 2
    return nn.GroupNorm(groups, channels)


class Conv2dNorm(nn.Conv2d):
    """Conv -> norm -> optional ReLU, with the norm stored as `.norm` (detectron2 layout, so keys match)."""

    def __init__(self, *args, norm: nn.Module | None = None, relu: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


def _c2_xavier_fill(conv: nn.Conv2d) -> None:
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm: x = norm1(x + deform_attn(x + pos)); x = norm2(x + linear2(relu(linear1(x))))."""

    def __init__(self, d_model: int, d_ffn: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src, pos, reference_points, spatial_shapes):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class MSDeformAttnEncoder(nn.Module):
    def __init__(self, layers: list[MSDeformAttnEncoderLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def reference_points(spatial_shapes: list[tuple[int, int]], n: int, device, dtype) -> torch.Tensor:
        """Cell centres of every level in [0, 1]; (N, S, L, 2). No padding mask, so valid ratios are 1."""
        refs = []
        for h, w in spatial_shapes:
            ys, xs = torch.meshgrid(
                torch.arange(h, device=device, dtype=dtype) + 0.5,
                torch.arange(w, device=device, dtype=dtype) + 0.5,
                indexing="ij",
            )
            refs.append(torch.stack((xs.reshape(-1) / w, ys.reshape(-1) / h), -1))
        ref = torch.cat(refs, 0)
        return ref[None, :, None, :].expand(n, -1, len(spatial_shapes), -1)

    def forward(self, src, pos, spatial_shapes):
        ref = self.reference_points(spatial_shapes, src.shape[0], src.device, src.dtype)
        for layer in self.layers:
            src = layer(src, pos, ref, spatial_shapes)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    def __init__(
        self,
        d_model: int,
        nhead: int,
        num_encoder_layers: int,
        dim_feedforward: int,
        num_feature_levels: int,
        enc_n_points: int,
    ):
        super().__init__()
        self.encoder = MSDeformAttnEncoder(
            [
                MSDeformAttnEncoderLayer(d_model, dim_feedforward, num_feature_levels, nhead, enc_n_points)
                for _ in range(num_encoder_layers)
            ]
        )
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: list[torch.Tensor], pos_embeds: list[torch.Tensor]) -> torch.Tensor:
        """srcs/pos_embeds: per level (N, C, H, W) -> encoded tokens (N, S, C), levels concatenated."""
        spatial_shapes = [tuple(s.shape[-2:]) for s in srcs]
        src = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos = torch.cat(
            [(p.flatten(1).transpose(0, 1) + self.level_embed[i])[None] for i, p in enumerate(pos_embeds)], 1
        )
        return self.encoder(src, pos, spatial_shapes)


class MSDeformAttnPixelDecoder(nn.Module):
    """Backbone maps {res2..res5} -> (mask_features at stride 4, [memory at stride 32, 16, 8])."""

    def __init__(
        self,
        in_channels: dict[str, int],
        conv_dim: int = 256,
        mask_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 6,
        enc_dim_feedforward: int = 1024,
        enc_n_points: int = 4,
    ):
        super().__init__()
        self.in_features = ["res5", "res4", "res3"]  # low -> high resolution, as the official order
        self.input_proj = nn.ModuleList()
        for name in self.in_features:
            proj = nn.Sequential(nn.Conv2d(in_channels[name], conv_dim, kernel_size=1), group_norm(conv_dim))
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)
            self.input_proj.append(proj)
        self.transformer = MSDeformAttnTransformerEncoderOnly(
            conv_dim, nheads, enc_layers, enc_dim_feedforward, len(self.in_features), enc_n_points
        )
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2)
        self.mask_dim = mask_dim
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        _c2_xavier_fill(self.mask_features)
        self.maskformer_num_feature_levels = 3
        # FPN step from stride 8 to stride 4 (the official model has one such step: adapter_1 / layer_1)
        self.adapter_1 = Conv2dNorm(
            in_channels["res2"], conv_dim, kernel_size=1, bias=False, norm=group_norm(conv_dim)
        )
        self.layer_1 = Conv2dNorm(
            conv_dim, conv_dim, kernel_size=3, padding=1, bias=False, norm=group_norm(conv_dim), relu=True
        )
        _c2_xavier_fill(self.adapter_1)
        _c2_xavier_fill(self.layer_1)

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # the recipe keeps the pixel decoder in float32 even under mixed precision (spec §2.3)
        device_type = features["res2"].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            features = {k: v.float() for k, v in features.items()}
            srcs, pos = [], []
            for i, name in enumerate(self.in_features):
                x = self.input_proj[i](features[name])
                srcs.append(x)
                pos.append(self.pe_layer(x.shape[-2], x.shape[-1], x.device, x.dtype))
            memory = self.transformer(srcs, pos)
            n = memory.shape[0]
            outs, start = [], 0
            for x in srcs:
                h, w = x.shape[-2:]
                outs.append(memory[:, start : start + h * w].transpose(1, 2).reshape(n, -1, h, w))
                start += h * w
            y = self.adapter_1(features["res2"]) + F.interpolate(
                outs[-1], size=features["res2"].shape[-2:], mode="bilinear", align_corners=False
            )
            y = self.layer_1(y)
            return self.mask_features(y), outs[: self.maskformer_num_feature_levels]
