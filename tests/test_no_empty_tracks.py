"""Inference never returns a track without a mask worth the name (issue 12): a query slot whose largest mask on
any frame has fewer than engine.inference.MIN_TRACK_AREA pixels is dropped, whatever its class score, and the
next best slot takes its place among the top k."""
from __future__ import annotations

import numpy as np

from engine.data import masks
from engine.inference import MIN_TRACK_AREA, _Tubes


def _rles(areas_px: list[int], h=20, w=20) -> list[dict]:
    out = []
    for a in areas_px:
        m = np.zeros(h * w, bool)
        m[:a] = True
        out.append(masks.encode(m.reshape(h, w)))
    return out


def test_slot_without_masks_is_not_a_track():
    tubes = _Tubes("probs")
    n_q, k = 3, 2
    emb = np.eye(n_q, 8)
    # slot 0 has the highest class score but an empty mask on both frames; slot 1 a speck below the limit;
    # slot 2 a real object
    logits = np.array([[9.0, 0.0, -9.0], [5.0, 0.0, -9.0], [2.0, 0.0, -9.0]])
    rles = [_rles([0, 0]), _rles([MIN_TRACK_AREA - 1, 3]), _rles([40, 60])]
    zeros = (np.zeros(n_q), np.zeros(n_q))
    tubes.add(0, 2, emb, logits, rles, zeros)
    tracks = tubes.tracks(k, 2, use_quality=False)
    assert [t.query for t in tracks] == [2, 2]            # only slot 2, with its two labels
    assert [t.id for t in tracks] == [1, 2]               # ids stay 1..k in score order
    assert all(max(masks.area(m) for m in t.masks) >= MIN_TRACK_AREA for t in tracks)


def test_real_run_has_no_empty_track():
    from pathlib import Path

    import torch

    from engine.data.synthetic import generate_video
    from engine.inference import infer, infer_config_for
    from engine.model.checkpoint import load_checkpoint

    ckpt = Path(__file__).resolve().parents[1] / "resources/models/tiny-sync.pt"
    torch.set_num_threads(1)
    model, meta = load_checkpoint(ckpt)
    v = generate_video("default", 7)
    pred = infer(v.frames, model, infer_config_for(meta), internals=True)
    for t in pred.tracks + (pred.frame_tracks or []):
        assert max(masks.area(m) for m in t.masks) >= MIN_TRACK_AREA, t.id


def test_any_pixels_finds_the_one_mask_with_a_pixel_wherever_it_is():
    """The import's empty-track rule (engine.project.io): a track is kept when any mask has a pixel, however
    late in the video that mask comes, and dropped when all are empty or missing."""
    for where in (0, 7, 8, 29):
        areas_px = [0] * 30
        areas_px[where] = 1
        rles = _rles(areas_px)
        rles[3] = None
        assert masks.any_pixels(rles)
    assert not masks.any_pixels(_rles([0] * 30) + [None])
    assert not masks.any_pixels([])
