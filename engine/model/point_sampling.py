"""Point sampling for the mask costs and losses (spec §4.1).

Mask2Former supervises masks on a few thousand points instead of every pixel: it keeps memory flat in the
image size and lets prediction logits (stride 4) and ground truth (full resolution) be compared at the same
continuous locations. Coordinates are normalised to [0, 1] x [0, 1] of the padded image, (x, y) order, so one
coordinate means the same place on any grid that covers the padded image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(input: Tensor, point_coords: Tensor, **kwargs) -> Tensor:
    """Bilinear values of `input` (N, C, H, W) at `point_coords` (N, P, 2) in [0, 1]^2 -> (N, C, P).

    `grid_sample` wants [-1, 1] and a 2-D grid; align_corners=False so pixel centres sit at (i + 0.5) / H,
    which is how a stride-4 prediction and a full-resolution mask of the same padded image line up.
    """
    kwargs.setdefault("align_corners", False)
    grid = (2.0 * point_coords - 1.0).unsqueeze(2)               # (N, P, 1, 2)
    out = F.grid_sample(input, grid.to(input.dtype), **kwargs)   # (N, C, P, 1)
    return out.squeeze(3)


def calculate_uncertainty(logits: Tensor) -> Tensor:
    """Class-agnostic mask logits are least certain near 0: uncertainty = -|logit|."""
    return -torch.abs(logits)


def random_point_coords(n: int, num_points: int, device: torch.device | str = "cpu",
                        generator: torch.Generator | None = None) -> Tensor:
    """(n, num_points, 2) uniform points in [0, 1]^2."""
    return torch.rand(n, num_points, 2, device=device, generator=generator)


def get_uncertain_point_coords_with_randomness(
    coarse_logits: Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
    uncertainty_func=calculate_uncertainty,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance sampling of mask points (PointRend / Mask2Former training rule).

    Draw `oversample_ratio * num_points` uniform candidates, keep the `importance_sample_ratio * num_points`
    most uncertain ones (by `uncertainty_func` of the logit there) and fill the rest with fresh uniform
    points, so the loss looks mostly at the boundary without forgetting the interior.

    coarse_logits: (N, 1, H, W) mask logits. Returns (N, num_points, 2). Callers run it under no_grad.
    """
    if oversample_ratio < 1:
        raise ValueError(f"oversample_ratio must be >= 1, got {oversample_ratio}")
    if not 0.0 <= importance_sample_ratio <= 1.0:
        raise ValueError(f"importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}")
    n = coarse_logits.shape[0]
    device = coarse_logits.device
    num_candidates = int(num_points * oversample_ratio)
    candidates = random_point_coords(n, num_candidates, device, generator)
    uncertainty = uncertainty_func(point_sample(coarse_logits, candidates))[:, 0, :]   # (N, S)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    parts = []
    if num_uncertain > 0:
        idx = torch.topk(uncertainty, k=num_uncertain, dim=1).indices                  # (N, U)
        parts.append(torch.gather(candidates, 1, idx.unsqueeze(-1).expand(-1, -1, 2)))
    if num_random > 0:
        parts.append(random_point_coords(n, num_random, device, generator))
    return torch.cat(parts, dim=1)
