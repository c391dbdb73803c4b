"""Hungarian matching of predictions to ground truth (spec §4.1).

One matcher serves frames and tubes: a prediction set is (B', Q) queries with class logits and masks of T'
frames (T' = 1 for a frame, T' = sub-clip or clip length for a tube). The mask costs are evaluated on P random
points drawn once per batch element and shared by every prediction, every GT instance and every frame of the
tube, so the cost of a tube is computed on T'·P values.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from engine.model.point_sampling import point_sample, random_point_coords


def batch_sigmoid_bce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Mean BCE-with-logits of every prediction (Q, L) against every target (N, L) -> (Q, N)."""
    length = inputs.shape[1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    return (pos @ targets.T + neg @ (1.0 - targets).T) / length


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """1 - (2·Σσ(x)y + 1) / (Σσ(x) + Σy + 1) for every (prediction, target) pair -> (Q, N)."""
    probs = inputs.sigmoid()
    numerator = 2.0 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


class HungarianMatcher:
    """cost = w_cls·(−p[gt class]) + w_bce·BCE + w_dice·dice on shared random points; scipy's LSA."""

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544):
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def cost_matrices(self, logits: Tensor, masks: Tensor, targets: list[dict],
                      generator: torch.Generator | None = None,
                      point_coords: list[Tensor | None] | None = None) -> list[Tensor]:
        """Per batch element the (Q, N) float32 cost matrix.

        logits (B', Q, K+1); masks (B', Q, T', h, w) mask logits; targets[b] = {"labels": (N,), "masks":
        (N, T', H, W) float in [0, 1] on the same (padded) image extent as the predictions}. `point_coords[b]`
        (P, 2) overrides the random draw (tests); otherwise P points are drawn per element with `generator`.
        """
        if logits.shape[0] != len(targets) or masks.shape[:2] != logits.shape[:2]:
            raise ValueError(f"matcher got logits {tuple(logits.shape)}, masks {tuple(masks.shape)} "
                             f"and {len(targets)} targets")
        costs = []
        with torch.autocast(device_type=logits.device.type, enabled=False):
            for b, tgt in enumerate(targets):
                labels = tgt["labels"]
                num_queries = logits.shape[1]
                if labels.numel() == 0:
                    costs.append(logits.new_zeros((num_queries, 0), dtype=torch.float32))
                    continue
                prob = logits[b].float().softmax(-1)                      # (Q, K+1)
                cost_class = -prob[:, labels]                             # (Q, N)

                pred = masks[b].float()                                   # (Q, T', h, w)
                gt = tgt["masks"].to(device=pred.device, dtype=torch.float32)   # (N, T', H, W)
                if gt.shape[1] != pred.shape[1]:
                    raise ValueError(f"target has {gt.shape[1]} frames, prediction {pred.shape[1]}")
                coords = None if point_coords is None else point_coords[b]
                if coords is None:
                    coords = random_point_coords(1, self.num_points, pred.device, generator)[0]
                coords = coords.to(device=pred.device, dtype=torch.float32)
                # channels = frames: the same P points on every frame of the tube, flattened to T'·P values
                pred_pts = point_sample(pred, coords[None].expand(pred.shape[0], -1, -1)).flatten(1)
                gt_pts = point_sample(gt, coords[None].expand(gt.shape[0], -1, -1)).flatten(1)

                cost = self.cost_class * cost_class
                if self.cost_mask:
                    cost = cost + self.cost_mask * batch_sigmoid_bce_cost(pred_pts, gt_pts)
                if self.cost_dice:
                    cost = cost + self.cost_dice * batch_dice_cost(pred_pts, gt_pts)
                costs.append(torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8))
        return costs

    @torch.no_grad()
    def __call__(self, logits: Tensor, masks: Tensor, targets: list[dict],
                 generator: torch.Generator | None = None,
                 point_coords: list[Tensor | None] | None = None) -> list[tuple[Tensor, Tensor]]:
        """Per batch element (prediction indices, target indices), int64, sorted by prediction index."""
        out = []
        for cost in self.cost_matrices(logits, masks, targets, generator, point_coords):
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            out.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return out
