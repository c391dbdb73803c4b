"""Sine position encodings (DETR family): 2-D for one frame, 3-D for a clip (spec §2.3, §2.4, §3.1).

Both are pure functions of the map size, so they are cached per (shape, device, dtype); they carry no
parameters and never need gradients. No padding mask is used anywhere (spec §2.1: padding is not masked), so
the normalised coordinates are simply 1..H / H etc.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _axis_embed(n: int, device: torch.device, scale: float, eps: float = 1e-6) -> torch.Tensor:
    """Normalised cumulative coordinate of every cell along one axis: (1..n) / n * scale."""
    pos = torch.arange(1, n + 1, dtype=torch.float32, device=device)
    return pos / (pos[-1:] + eps) * scale


def _sine(coord: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """(...,) coordinates -> (..., num_feats) interleaved sin/cos code (sin on even, cos on odd channels)."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coord.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos = coord[..., None] / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """2-D code of `2 * num_pos_feats` channels, channel order (y-block, x-block); returns (C, H, W)."""

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, scale: float = 2 * math.pi):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale
        self._cache: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def forward(
        self, h: int, w: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        key = (h, w, str(device), dtype)
        pos = self._cache.get(key)
        if pos is None:
            y = _sine(_axis_embed(h, device, self.scale), self.num_pos_feats, self.temperature)  # (H, F)
            x = _sine(_axis_embed(w, device, self.scale), self.num_pos_feats, self.temperature)  # (W, F)
            pos = torch.cat((y[:, None, :].expand(h, w, -1), x[None, :, :].expand(h, w, -1)), dim=-1)
            pos = pos.permute(2, 0, 1).contiguous().to(dtype)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = pos
        return pos


class PositionEmbeddingSine3D(nn.Module):
    """Mask2Former-VIS clip code: (y, x) 2-D code plus a `2 * num_pos_feats` temporal code added on top.

    Returns (T, C, H, W). With T = 1 the temporal term is a constant vector, as in Mask2Former-VIS.
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, scale: float = 2 * math.pi):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale
        self.spatial = PositionEmbeddingSine(num_pos_feats, temperature, scale)
        self._cache: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def forward(
        self, t: int, h: int, w: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        key = (t, h, w, str(device), dtype)
        pos = self._cache.get(key)
        if pos is None:
            spatial = self.spatial(h, w, device, torch.float32)  # (C, H, W)
            z = _sine(_axis_embed(t, device, self.scale), 2 * self.num_pos_feats, self.temperature)  # (T, C)
            pos = (spatial[None] + z[:, :, None, None]).contiguous().to(dtype)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = pos
        return pos
