"""Hungarian matcher and point sampling: optimality vs brute force, hand-computed costs, sampling rules."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from engine.model.matcher import HungarianMatcher
from engine.model.point_sampling import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)


def _pixel_centres(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h], dim=1).float()   # (x, y)


def test_point_sample_reads_pixel_centres_exactly():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 5, 7)
    coords = _pixel_centres(5, 7)[None].expand(2, -1, -1)
    values = point_sample(img, coords)
    assert values.shape == (2, 3, 35)
    torch.testing.assert_close(values, img.flatten(2))


def test_point_sample_same_place_on_coarse_and_fine_grids():
    """A coordinate means the same spot at stride 1 and 4: a block-constant image reads the same value."""
    coarse = torch.arange(12.0).reshape(1, 1, 3, 4)
    fine = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3)          # (1, 1, 12, 16)
    coords = torch.tensor([[[(1 + 0.5) / 4, (2 + 0.5) / 3], [(3 + 0.5) / 4, (0 + 0.5) / 3]]])
    torch.testing.assert_close(point_sample(coarse, coords), point_sample(fine, coords))
    torch.testing.assert_close(point_sample(coarse, coords)[0, 0], torch.tensor([9.0, 3.0]))


def test_importance_sampling_prefers_uncertain_points():
    # logits ~0 only in the left column block, large elsewhere
    logits = torch.full((3, 1, 16, 16), 8.0)
    logits[:, :, :, :4] = 0.0
    gen = torch.Generator().manual_seed(0)
    coords = get_uncertain_point_coords_with_randomness(logits, num_points=200, oversample_ratio=3.0,
                                                        importance_sample_ratio=0.75, generator=gen)
    assert coords.shape == (3, 200, 2)
    assert float(coords.min()) >= 0.0 and float(coords.max()) <= 1.0
    # the first 150 are the most uncertain of 600 uniform candidates: ~150 of them have x < 4/16
    important = coords[:, :150, 0]
    assert float((important < 0.25 + 1 / 32).float().mean()) > 0.95
    # the last 50 are fresh uniform points: spread over the whole width
    assert float((coords[:, 150:, 0] > 0.5).float().mean()) > 0.3
    # uncertainty is -|logit|
    torch.testing.assert_close(calculate_uncertainty(torch.tensor([-2.0, 0.5])), torch.tensor([-2.0, -0.5]))


def test_importance_sampling_seeded_is_reproducible():
    logits = torch.randn(4, 1, 8, 8)
    a = get_uncertain_point_coords_with_randomness(logits, 64, 3.0, 0.75,
                                                   generator=torch.Generator().manual_seed(3))
    b = get_uncertain_point_coords_with_randomness(logits, 64, 3.0, 0.75,
                                                   generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def _brute_force(cost: torch.Tensor) -> float:
    q, n = cost.shape
    best = math.inf
    if n <= q:
        for perm in itertools.permutations(range(q), n):
            best = min(best, sum(float(cost[perm[j], j]) for j in range(n)))
    else:
        for perm in itertools.permutations(range(n), q):
            best = min(best, sum(float(cost[i, perm[i]]) for i in range(q)))
    return best


@pytest.mark.parametrize("seed,q,n,t", [(0, 5, 3, 1), (1, 4, 4, 2), (2, 6, 2, 3), (3, 3, 4, 2), (4, 5, 5, 1)])
def test_matcher_is_optimal_against_brute_force(seed, q, n, t):
    gen = torch.Generator().manual_seed(seed)
    k, b = 4, 2
    logits = torch.randn(b, q, k + 1, generator=gen)
    masks = torch.randn(b, q, t, 6, 8, generator=gen) * 3
    targets = [{"labels": torch.randint(0, k, (n,), generator=gen),
                "masks": (torch.rand(n, t, 24, 32, generator=gen) > 0.6).float()} for _ in range(b)]
    points = [torch.rand(50, 2, generator=gen) for _ in range(b)]
    matcher = HungarianMatcher(2.0, 5.0, 5.0, num_points=50)
    costs = matcher.cost_matrices(logits, masks, targets, point_coords=points)
    indices = matcher(logits, masks, targets, point_coords=points)
    for cost, (rows, cols) in zip(costs, indices, strict=True):
        assert cost.shape == (q, n) and cost.dtype == torch.float32
        assert len(rows) == min(q, n)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert torch.all(rows[1:] > rows[:-1])
        total = float(cost[rows, cols].sum())
        assert total == pytest.approx(_brute_force(cost), abs=1e-4)


def test_matcher_costs_equal_hand_computed_values():
    # 2 queries, 1 GT, 2 classes (+ no-object), a 2-frame tube on a 2x2 grid read at its pixel centres
    logits = torch.tensor([[[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]]])
    pred = torch.tensor([[[[0.0, 2.0], [-1.0, 1.0]], [[3.0, -2.0], [0.5, 0.0]]],
                         [[[-1.0, -1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 4.0]]]])[None]     # (1, 2, 2, 2, 2)
    gt = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]]])                 # (1, 2, 2, 2)
    targets = [{"labels": torch.tensor([1]), "masks": gt}]
    points = [_pixel_centres(2, 2)]
    matcher = HungarianMatcher(2.0, 5.0, 5.0, num_points=4)
    cost = matcher.cost_matrices(logits, pred, targets, point_coords=points)[0]

    y = gt[0].flatten().tolist()
    expected = []
    for qi in range(2):
        probs = [math.exp(v) for v in logits[0, qi].tolist()]
        c_cls = -probs[1] / sum(probs)
        x = pred[0, qi].flatten().tolist()               # frame 0 then frame 1: T'·P = 8 values
        bce = sum(-(yi * math.log(1 / (1 + math.exp(-xi))) + (1 - yi) * math.log(1 - 1 / (1 + math.exp(-xi))))
                  for xi, yi in zip(x, y, strict=True)) / len(x)
        s = [1 / (1 + math.exp(-xi)) for xi in x]
        dice = 1 - (2 * sum(si * yi for si, yi in zip(s, y, strict=True)) + 1) / (sum(s) + sum(y) + 1)
        expected.append(2 * c_cls + 5 * bce + 5 * dice)
    torch.testing.assert_close(cost[:, 0], torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_matcher_handles_no_targets_and_shared_points():
    matcher = HungarianMatcher(num_points=30)
    logits = torch.randn(2, 3, 4)
    masks = torch.randn(2, 3, 2, 4, 4)
    targets = [{"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 2, 16, 16)},
               {"labels": torch.tensor([2]), "masks": torch.ones(1, 2, 16, 16)}]
    out = matcher(logits, masks, targets, generator=torch.Generator().manual_seed(0))
    assert out[0][0].numel() == 0 and out[1][0].numel() == 1
    # the same generator seed gives the same costs: points are the only randomness
    c1 = matcher.cost_matrices(logits, masks, targets, generator=torch.Generator().manual_seed(5))
    c2 = matcher.cost_matrices(logits, masks, targets, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(c1[1], c2[1])


def test_matcher_prefers_the_right_tube():
    """Two GT tubes, three predictions; each GT tube is one prediction's sharp mask -> matched to it."""
    h = w = 8
    gt = torch.zeros(2, 2, h * 4, w * 4)
    gt[0, :, :16, :16] = 1
    gt[1, 0, 16:, 16:] = 1            # second instance only visible in frame 0
    pred = torch.full((1, 3, 2, h, w), -10.0)
    pred[0, 2, :, :4, :4] = 10.0
    pred[0, 0, 0, 4:, 4:] = 10.0
    logits = torch.zeros(1, 3, 4)
    targets = [{"labels": torch.tensor([0, 1]), "masks": gt}]
    matcher = HungarianMatcher(num_points=400)
    rows, cols = matcher(logits, pred, targets, generator=torch.Generator().manual_seed(0))[0]
    assert dict(zip(cols.tolist(), rows.tolist(), strict=True)) == {0: 2, 1: 0}
