"""Association by cosine-cost Hungarian matching, running means and the top-k read-out (engine/linking.py)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.inference import _Tubes
from engine.linking import QueryLinker, RunningMean, cosine_cost, link_sequence, match, topk


def _embeds(n=12, c=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, c))


def test_match_recovers_known_permutation_under_noise_and_scale():
    ref = _embeds()
    rng = np.random.default_rng(1)
    p = rng.permutation(len(ref))
    cur = ref[p] * rng.uniform(0.5, 3.0, size=(len(ref), 1)) + rng.normal(scale=0.05, size=ref.shape)
    perm = match(ref, cur)
    # cur[perm[i]] is the (scaled, noisy) copy of ref[i]
    np.testing.assert_array_equal(p[perm], np.arange(len(ref)))


def test_cosine_cost_values():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    expected = 1 - np.array([[1.0, 1 / np.sqrt(2), 0.0], [0.0, 1 / np.sqrt(2), -1.0]])
    np.testing.assert_allclose(cosine_cost(a, b), expected, atol=1e-12)


def test_linker_follows_slots_over_steps():
    base = _embeds(8, 10, seed=2)
    rng = np.random.default_rng(3)
    perms_true = [np.arange(8)] + [rng.permutation(8) for _ in range(4)]
    steps = [base[p] + rng.normal(scale=0.02, size=base.shape) for p in perms_true]
    perms = link_sequence(np.stack(steps))
    for p_true, p in zip(perms_true, perms, strict=False):
        np.testing.assert_array_equal(p_true[p], np.arange(8))   # slot s always holds object s
    linker = QueryLinker()
    linker(base)
    with pytest.raises(ValueError):
        linker(base[:5])


def test_linker_tracks_slow_drift():
    """The reference is the previous step, so an embedding that drifts far from where it started is still
    followed while a static other object keeps its slot."""
    a0, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    linker = QueryLinker()
    linker(np.stack([a0, b]))
    for ang in np.linspace(0.2, 1.4, 7):  # a rotates from x towards y, ending closer to y than to x
        a = np.array([np.cos(ang), np.sin(ang), 0.0])
        perm = linker(np.stack([b, a]))       # order swapped each time on purpose
        np.testing.assert_array_equal(perm, [1, 0])


def test_running_mean_and_topk():
    rm = RunningMean()
    rm.add(np.array([[0.2, 0.4], [0.6, 0.0]]))
    rm.add(np.array([[0.4, 0.0], [0.2, 0.2]]))
    rm.add(np.array([[0.0, 0.2], [0.4, 0.1]]))
    mean = rm.mean()
    np.testing.assert_allclose(mean, [[0.2, 0.2], [0.4, 0.1]])
    scores = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.95]])
    got = topk(scores, 3)
    assert [(q, lab) for q, lab, _ in got] == [(1, 2), (0, 1), (1, 0)]   # query = idx // K, label = idx % K
    assert [s for _, _, s in got] == pytest.approx([0.95, 0.9, 0.8])
    assert len(topk(scores, 100)) == 6


def _tag_rle(w: int, j: int) -> dict:
    """A real mask that says which window and query it came from (its area, 16 + 4w + j pixels, is above the
    engine's empty-track threshold and unique per (w, j))."""
    from engine.data.masks import encode

    m = np.zeros(64, bool)
    m[: 16 + 4 * w + j] = True
    return encode(m.reshape(8, 8))


def test_class_scores_averaged_over_linked_windows():
    """Three windows whose queries come in a different order each time: the class probabilities of a track are
    the mean over windows of the probabilities of the query linked to it, not of the query with its index."""
    n, k, c = 4, 3, 8
    emb = _embeds(n, c, seed=4)
    rng = np.random.default_rng(5)
    probs_slot = rng.dirichlet(np.ones(k + 1), size=(3, n))   # per window, per object: K+1 probabilities
    tubes = _Tubes("probs")
    orders = [np.arange(n), np.array([2, 0, 3, 1]), np.array([3, 2, 1, 0])]
    for w, order in enumerate(orders):
        # query j of window w shows object order[j]
        logits = np.log(probs_slot[w][order])
        rles = [[_tag_rle(w, j)] for j in range(n)]
        tubes.add(w, w + 1, emb[order], logits, rles, (np.zeros(n), np.zeros(n)))
    expected = probs_slot[:, :, :k].mean(0)
    np.testing.assert_allclose(tubes.class_scores(False), expected, atol=1e-9)
    tracks = tubes.tracks(n * k, 3, False)
    best = tracks[0]
    slot, label = np.unravel_index(np.argmax(expected), expected.shape)
    assert (best.query, best.category_id) == (slot, label + 1)
    assert best.score == pytest.approx(expected[slot, label])
    # each window's mask comes from the query that showed the same object
    assert [m["counts"] for m in best.masks] == [_tag_rle(w, list(o).index(slot))["counts"]
                                                 for w, o in enumerate(orders)]
    assert best.scores == pytest.approx([probs_slot[w, slot, label] for w in range(3)], abs=1e-3)
