"""The torch batch encoder and the vectorised counts writer give pycocotools' RLE strings byte for byte."""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from engine.data.mask_encode import encode_batch
from engine.data.masks import counts_string, decode, encode_stack, rle_counts


def _coco(masks: np.ndarray) -> list[str]:
    return [r["counts"] for r in encode_stack(masks)]


def _cases() -> np.ndarray:
    rng = np.random.default_rng(0)
    h, w = 37, 53
    m = np.zeros((10, h, w), bool)
    m[1] = True                                   # full: runs [0, h*w]
    m[2, 0, 0] = True                             # first pixel only
    m[3, -1, -1] = True                           # last pixel only
    m[4] = rng.random((h, w)) > 0.5               # noise: many short runs, negative deltas
    m[5, 5:30, 10:40] = True                      # a blob
    m[6] = rng.random((h, w)) > 0.98              # sparse speckle: long runs, big deltas
    m[7, :, ::2] = True                           # every other column
    m[8, ::3] = True                              # every third row
    m[9, -3:, 3] = m[9, :2, 4] = True             # one run across a column break (bottom of 3, top of 4)
    m[9, 10:20, 4] = True
    return m                                      # m[0] stays empty: one run of h*w


def test_batch_encoder_matches_pycocotools_exactly():
    masks = _cases()
    ours = encode_batch(torch.from_numpy(masks))
    assert [r["counts"] for r in ours] == _coco(masks)
    assert all(r["size"] == [37, 53] for r in ours)
    for r, m in zip(ours, masks, strict=True):
        assert np.array_equal(decode(r), m)


def test_batch_encoder_on_a_720p_frame_of_model_like_masks():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(4, 90, 160)).astype(np.float32))
    up = torch.nn.functional.interpolate(logits[:, None], size=(720, 1280), mode="bilinear")[:, 0]
    binary = up > 0.8                             # ragged blobs, counts up to 921,600 (four 5-bit groups)
    assert [r["counts"] for r in encode_batch(binary)] == _coco(binary.numpy())


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 7), (2, 7, 1), (3, 2, 2)])
def test_batch_encoder_tiny_shapes(shape):
    rng = np.random.default_rng(2)
    masks = rng.random(shape) > 0.5
    assert [r["counts"] for r in encode_batch(torch.from_numpy(masks))] == _coco(masks)


def test_counts_string_is_rle_counts_inverse_and_pycocotools_writer():
    rng = np.random.default_rng(3)
    for _ in range(20):
        counts = rng.integers(0, 2 ** rng.integers(1, 21), size=rng.integers(1, 40))   # sums fit a uint32
        s = counts_string(counts)
        assert np.array_equal(rle_counts(s), counts)
        h = int(counts.sum()) or 1
        coco = mask_utils.frPyObjects({"size": [h, 1], "counts": counts.tolist()}, h, 1)
        assert s == coco["counts"].decode("ascii")


def test_batch_encoder_rejects_a_single_mask():
    with pytest.raises(ValueError, match="N, H, W"):
        encode_batch(torch.zeros(4, 4, dtype=torch.bool))


def test_counts_string_round_trips_numbers_past_32_bits():
    counts = np.array([0, 2 ** 40 + 3, 5, 2 ** 33, 1, 7], np.int64)   # deltas both ways, eight 5-bit groups
    assert np.array_equal(rle_counts(counts_string(counts)), counts)


def test_batch_encoder_takes_strided_and_integer_masks():
    masks = _cases()
    strided = torch.from_numpy(masks).transpose(1, 2)            # a view, not contiguous
    assert [r["counts"] for r in encode_batch(strided)] == _coco(np.ascontiguousarray(masks.transpose(0, 2, 1)))
    as_int = torch.from_numpy(masks.astype(np.int64))             # 0/1 integers
    assert [r["counts"] for r in encode_batch(as_int)] == _coco(masks)
