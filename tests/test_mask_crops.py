"""engine/data/masks.py: RLE decoded straight to a box (every k-th row and column) equals the full decode."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.masks import decode, decode_crop, decode_subsampled, encode, rle_counts


def _shapes(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = [np.zeros((h, w), bool), np.ones((h, w), bool)]
    for _ in range(6):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, max(1.5, h / 2)), rng.uniform(1, max(1.5, w / 2))
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        m ^= rng.random((h, w)) < 0.02          # speckles: many short runs, long counts strings
        out.append(m)
    return out


@pytest.mark.parametrize("h,w", [(720, 1280), (192, 320), (37, 53), (1, 9)])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 7])
def test_decode_subsampled_equals_full_decode(h, w, k):
    for m in _shapes(h, w, h * 31 + w):
        rle = encode(m)
        got = decode_subsampled(rle, k)
        np.testing.assert_array_equal(got, decode(rle)[::k, ::k])


def test_rle_counts_sum_to_the_pixels():
    m = _shapes(64, 80, 5)[3]
    cnt = rle_counts(encode(m)["counts"])
    assert cnt.sum() == m.size and (cnt >= 0).all()


@pytest.mark.parametrize("h,w", [(720, 1280), (37, 53), (1, 9)])
@pytest.mark.parametrize("k", [1, 3])
def test_decode_crop_is_the_tight_box_of_the_mask(h, w, k):
    for m in _shapes(h, w, h + w):
        full = decode(encode(m))[::k, ::k]
        crop = decode_crop(encode(m), k)
        if not full.any():
            assert crop is None
            continue
        ys, xs = np.nonzero(full)
        assert crop.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) and crop.size == full.shape
        x0, y0, x1, y1 = crop.box
        np.testing.assert_array_equal(crop.mask, full[y0:y1, x0:x1])
        assert crop.mask.flags.c_contiguous and crop.mask.dtype == bool
        np.testing.assert_array_equal(crop.full(), full)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_decode_crop_of_ragged_masks_and_runs_that_touch_after_subsampling(k):
    """Both ways of decoding agree with pycocotools: the numpy one (runs that subsampling makes touch in a
    column become one) and, past masks._MANY_COUNTS characters of counts, pycocotools' own decode of the frame."""
    from engine.data import masks

    rng = np.random.default_rng(7)
    m = np.zeros((90, 64), bool)
    m[4:5, 3] = m[6:8, 3] = True                   # rows 4 and 6-7: at step 2 rows 2 and 3, one run
    m[10:13, 5] = m[13:20, 6] = True               # a run that goes on across the column break
    ragged = rng.random((720, 1280)) > 0.6         # tens of thousands of runs
    assert len(encode(ragged)["counts"]) > masks._MANY_COUNTS
    for mask in (m, ragged):
        full = decode(encode(mask))[::k, ::k]
        crop = decode_crop(encode(mask), k)
        np.testing.assert_array_equal(crop.full(), full)
        ys, xs = np.nonzero(full)
        assert crop.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert crop.mask.flags.c_contiguous and crop.mask.dtype == bool
