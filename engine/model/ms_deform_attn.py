"""Multi-scale deformable attention (Deformable DETR) in plain PyTorch, via `F.grid_sample`.

The official model uses a compiled CUDA kernel; this version computes the same function on any device and
keeps the parameter names and shapes of the official module (spec §10.2: sampling_offsets, attention_weights,
value_proj, output_proj) so checkpoints load by identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn_core(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Bilinear sampling of every level at the given locations and weighted sum over levels and points.

    value: (N, S, M, D) with S = sum(H_l * W_l), M heads of D channels;
    sampling_locations: (N, Lq, M, L, P, 2) as (x, y) in [0, 1] of each level (cell centres at (i + 0.5) / W);
    attention_weights: (N, Lq, M, L, P), already normalised over L * P.
    Returns (N, Lq, M * D). Locations outside the map read zeros (as the CUDA kernel does).
    """
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    # Layout (N*M, P, Lq): grid_sample then returns (N*M, D, P, Lq), and the weighted sum over points is a
    # reduction over a leading axis of contiguous rows (faster on CPU than over a trailing axis of size P).
    grids = (
        (2 * sampling_locations - 1).permute(0, 2, 3, 4, 1, 5).reshape(n * m, num_levels, num_points, lq, 2)
    )
    weights = attention_weights.permute(0, 2, 3, 4, 1).reshape(n * m, num_levels, 1, num_points, lq)
    out = None
    for lvl, (h, w) in enumerate(spatial_shapes):
        v = values[lvl].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        s = F.grid_sample(v, grids[:, lvl], mode="bilinear", padding_mode="zeros", align_corners=False)
        s = (s * weights[:, lvl]).sum(2)  # (N*M, D, Lq)
        out = s if out is None else out + s
    out = out.view(n, m * d, lq)
    return out.transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    """Deformable attention over `n_levels` maps, `n_heads` heads, `n_points` samples per head and level."""

    def __init__(self, d_model: int = 256, n_levels: int = 3, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Offsets start as a ring of points around the reference, one direction per head, growing with the
        # point index; attention starts uniform. This is the Deformable DETR initialisation.
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        for i in range(self.n_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        input_flatten: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """(N, Lq, C) queries, (N, Lq, L, 2) reference points in [0, 1], (N, S, C) inputs -> (N, Lq, C)."""
        n, lq, _ = query.shape
        m, nl, p = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(input_flatten).view(n, input_flatten.shape[1], m, self.d_model // m)
        offsets = self.sampling_offsets(query).view(n, lq, m, nl, p, 2)
        weights = self.attention_weights(query).view(n, lq, m, nl * p).softmax(-1).view(n, lq, m, nl, p)
        normalizer = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device)
        locations = (
            reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        )
        out = ms_deform_attn_core(value, spatial_shapes, locations, weights)
        return self.output_proj(out)
