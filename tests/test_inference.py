"""Whole-video inference (engine/inference.py) with the real network at a reduced tiny size."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.config import InferConfig, preset
from engine.data import masks as mask_utils
from engine.data.ytvis import Dataset, load_results, save_results
from engine.inference import FrameFiles, infer, inference_size, resolve_mode
from engine.model.syncvis import build_model

H, W = 45, 67   # odd on purpose: padding, crop and resize must give masks of exactly this size


def _model(mode: str = "sync", seed: int = 0):
    cfg = preset("tiny", mode).model
    cfg.dec_layers, cfg.enc_layers = 2, 1
    torch.manual_seed(seed)
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def sync_model():
    return _model("sync")


def _video(n: int = 10, seed: int = 0) -> np.ndarray:
    """Frames with a few bright moving blobs on a dark textured background."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(H, W, 3), dtype=np.uint8)
    out = np.repeat(base[None], n, axis=0)
    yy, xx = np.mgrid[:H, :W]
    for k in range(3):
        cx, cy = rng.uniform(10, W - 10), rng.uniform(8, H - 8)
        vx, vy = rng.uniform(-1.5, 1.5, size=2)
        col = rng.integers(120, 255, size=3)
        for t in range(n):
            m = (xx - cx - vx * t) ** 2 + (yy - cy - vy * t) ** 2 < (5 + k) ** 2
            out[t][m] = col
    return out


def _cfg(**kw) -> InferConfig:
    return replace(InferConfig(window=4, short_side=0, device="cpu"), **kw)


def test_shapes_sizes_and_windows(sync_model):
    video = _video(10)
    pred = infer(video, sync_model, _cfg(), internals=True, class_names=[f"c{i}" for i in range(8)])
    assert pred.complete and pred.mode == "sync" and (pred.num_frames, pred.height, pred.width) == (10, H, W)
    assert [(w.start, w.end) for w in pred.windows] == [(0, 4), (4, 8), (8, 10)]
    assert [t.id for t in pred.tracks] == list(range(1, 11))
    scores = [t.score for t in pred.tracks]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    nv, nf = sync_model.cfg.num_video_queries, sync_model.cfg.num_frame_queries
    for tracks in (pred.tracks, pred.frame_tracks):
        assert len(tracks) == 10
        for t in tracks:
            assert 1 <= t.category_id <= 8 and len(t.masks) == 10 and len(t.scores) == 10
            assert all(m["size"] == [H, W] for m in t.masks)
            assert mask_utils.decode(t.masks[3]).shape == (H, W)
            assert all(0 <= s <= 1 for s in t.scores)
    assert all(0 <= t.query < nv for t in pred.tracks) and all(0 <= t.query < nf for t in pred.frame_tracks)
    L = sync_model.cfg.dec_layers
    k = sync_model.cfg.sync.top_k
    for w in pred.windows:
        T = w.end - w.start
        assert w.video_probs.shape == (L + 1, nv, 9) and w.frame_probs.shape == (L + 1, T, nf, 9)
        assert w.f2v_weights.shape == (L, nv, T * k) and w.v2f_weights.shape == (L, T, nf, k)
        assert w.f2v_selected.shape == (L, T, k) and w.v2f_selected.shape == (L, k)
        np.testing.assert_allclose(w.f2v_weights.sum(-1), 1.0, atol=1e-4)
        assert set(w.track_queries) == {t.id for t in pred.tracks}
        assert all(0 <= q < nv for q in w.track_queries.values())
    # in the first window a track's query is the query it was named after
    assert all(pred.windows[0].track_queries[t.id] == t.query for t in pred.tracks)
    # per-frame scores are the window's probability of the track's class
    t0 = pred.tracks[0]
    w1 = pred.windows[1]
    p = w1.video_probs[-1, w1.track_queries[t0.id], t0.category_id - 1]
    assert t0.scores[5] == pytest.approx(p, abs=2e-3)


def test_streaming_partials_and_cancel(sync_model):
    video = _video(10)
    partials = []
    progress = []
    final = infer(video, sync_model, _cfg(), on_window=partials.append,
                  progress=lambda d, t: progress.append((d, t)))
    assert len(partials) == 3 and progress == [(0, 10), (4, 10), (8, 10), (10, 10)]
    for p, done in zip(partials, (4, 8, 10), strict=False):
        assert len(p.tracks) == 10
        for t in p.tracks:
            assert all(m is not None for m in t.masks[:done]) and all(m is None for m in t.masks[done:])
    assert [t.masks for t in partials[-1].tracks] == [t.masks for t in final.tracks]

    calls = []
    cancelled = infer(video, sync_model, _cfg(), on_window=calls.append, cancel=lambda: len(calls) >= 1)
    assert not cancelled.complete and len(calls) == 1
    for t in cancelled.tracks:
        assert all(m is not None for m in t.masks[:4]) and all(m is None for m in t.masks[4:])
        assert all(s is not None for s in t.scores[:4]) and all(s is None for s in t.scores[4:])
    # what was done equals the first window of the full run
    first = partials[0]
    assert [(t.category_id, t.query, t.masks[:4]) for t in cancelled.tracks] == \
        [(t.category_id, t.query, t.masks[:4]) for t in first.tracks]


def test_windows_of_a_static_video_agree_with_one_window(sync_model):
    """Identical windows give identical embeddings: linking is the identity, averaging changes nothing, so the
    windowed result is the single-window result repeated."""
    frame = _video(1)[0]
    clip = np.repeat(frame[None], 4, axis=0)
    one = infer(clip, sync_model, _cfg(window=4))
    many = infer(np.repeat(frame[None], 12, axis=0), sync_model, _cfg(window=4))
    assert [(t.category_id, t.query) for t in many.tracks] == [(t.category_id, t.query) for t in one.tracks]
    for a, b in zip(one.tracks, many.tracks, strict=False):
        assert b.score == pytest.approx(a.score, rel=1e-5)
        assert b.masks == a.masks * 3
    # the same holds for the frame-level read-out (every frame links to itself)
    one_f = infer(clip[:1], sync_model, _cfg(window=1, mode="frame"))
    many_f = infer(clip, sync_model, _cfg(window=3, mode="frame"))
    for a, b in zip(one_f.tracks, many_f.tracks, strict=False):
        assert (b.category_id, b.query) == (a.category_id, a.query)
        assert b.score == pytest.approx(a.score, rel=1e-5) and b.masks == a.masks * 4


def test_frame_readout_and_modes(sync_model):
    video = _video(6)
    both = infer(video, sync_model, _cfg(window=3), internals=True)
    frame = infer(video, sync_model, _cfg(window=3, mode="frame"))
    assert frame.mode == "frame" and frame.frame_tracks is None
    # the frame read-out is exactly the linked frame-level predictions a sync run returns beside its tracks
    assert [(t.category_id, t.query, t.masks) for t in frame.tracks] == \
        [(t.category_id, t.query, t.masks) for t in both.frame_tracks]
    for a, b in zip(frame.tracks, both.frame_tracks, strict=False):
        assert a.score == pytest.approx(b.score)
    video_only = infer(video, sync_model, _cfg(window=3, mode="video"))
    assert [t.masks for t in video_only.tracks] == [t.masks for t in both.tracks]

    frame_model = _model("frame", seed=1)
    out = infer(video, frame_model, _cfg(window=4))
    assert out.mode == "frame" and len(out.tracks) == 10 and all(len(t.masks) == 6 for t in out.tracks)
    with pytest.raises(ValueError, match="no video read-out"):
        infer(video, frame_model, _cfg(mode="video"))
    assert resolve_mode("sync", "frame") == "frame" and resolve_mode("video", None) == "video"
    with pytest.raises(ValueError):
        resolve_mode("video", "sync")


def test_resize_and_top_k(sync_model):
    assert inference_size(45, 67, 0, 1333) == (45, 67)
    assert inference_size(45, 67, 90, 1333) == (90, 134)
    assert inference_size(45, 67, 90, 100) == (67, 100)
    pred = infer(_video(4), sync_model, _cfg(short_side=64, top_k=3))
    assert len(pred.tracks) == 3 and all(m["size"] == [H, W] for t in pred.tracks for m in t.masks)


class _OOMAbove(torch.nn.Module):
    """The real network behind a memory limit: clips longer than `limit` frames raise out-of-memory."""

    def __init__(self, model, limit):
        super().__init__()
        self.inner, self.cfg, self.limit, self.calls = model, model.cfg, limit, []

    def forward(self, frames, return_internals=False):
        self.calls.append(frames.shape[1])
        if frames.shape[1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(frames, return_internals)


def test_out_of_memory_halves_the_window(sync_model):
    video = _video(8)
    wrapped = _OOMAbove(sync_model, 2)
    notes = []
    pred = infer(video, wrapped, _cfg(window=8), on_notice=notes.append)
    assert wrapped.calls == [8, 4, 2, 2, 2, 2] and pred.complete
    assert len(notes) == 2 and "window reduced to 2" in notes[-1] and pred.notices == notes
    direct = infer(video, sync_model, _cfg(window=2))
    assert [t.masks for t in pred.tracks] == [t.masks for t in direct.tracks]
    with pytest.raises(torch.OutOfMemoryError):   # on the CPU at one frame there is nothing left to try
        infer(video, _OOMAbove(sync_model, 0), _cfg(window=2))


def test_results_json_loads_and_evaluates(tmp_path, sync_model):
    from engine.data.synthetic import write_dataset
    from engine.evaluation import evaluate

    root = write_dataset(tmp_path / "ds", num_videos=2, seed=3, size=(67, 45))
    ds = Dataset.from_folder(root)
    results = []
    for v in ds.videos:
        pred = infer(FrameFiles(ds.frame_paths(v), v.width, v.height), sync_model, _cfg(window=12, top_k=5))
        results += pred.to_ytvis_results(v.id)
    save_results(tmp_path / "r.json", results)
    loaded = load_results(tmp_path / "r.json", ds)
    assert len(loaded) == 10 and json.loads((tmp_path / "r.json").read_text())[0]["video_id"] == 1
    stats = evaluate(ds, loaded).stats
    assert set(stats) >= {"AP", "AP50", "AP75", "AR1", "AR10"}
    assert all(-1 <= v <= 1 for v in stats.values())


def test_cli_infer_eval_and_export(tmp_path, capsys):
    from PIL import Image

    from engine.cli import run_cli
    from engine.data.synthetic import CATEGORY_NAMES, write_dataset
    from engine.model.checkpoint import save_checkpoint

    root = write_dataset(tmp_path / "ds", num_videos=2, seed=4, size=(67, 45))
    ck = save_checkpoint(tmp_path / "m.pt", _model("sync"), list(CATEGORY_NAMES), {"preset": "tiny"})
    out = tmp_path / "res.json"
    assert run_cli(["infer", str(root), "--checkpoint", str(ck), "-o", str(out), "--window", "6", "--eval",
                    "--device", "cpu", "--top-k", "4"]) == 0
    text = capsys.readouterr().out
    assert "wrote 8 predictions for 2 video(s)" in text and "Average Precision" in text
    ds = Dataset.from_folder(root)
    results = load_results(out, ds)
    assert len(results) == 8 and {r["video_id"] for r in results} == {1, 2}
    # a checkpoint whose vocabulary shares nothing with the dataset's (and differs in size): named error
    cfg3 = preset("tiny", "sync").model
    cfg3.dec_layers, cfg3.enc_layers, cfg3.num_classes = 2, 1, 3
    ck_x = save_checkpoint(tmp_path / "x.pt", build_model(cfg3), ["x0", "x1", "x2"], {})
    assert run_cli(["infer", str(root), "--checkpoint", str(ck_x), "-o", str(tmp_path / "x.json"),
                    "--window", "6", "--device", "cpu"]) == 2
    assert "none of the checkpoint's classes" in capsys.readouterr().err

    # a single video file, with the frame read-out of the same sync network
    from engine.data.synthetic import write_mp4

    mp4 = write_mp4(tmp_path / "v.mp4", _video(5))
    assert run_cli(["infer", str(mp4), "--checkpoint", str(ck), "-o", str(tmp_path / "v.json"),
                    "--mode", "frame", "--device", "cpu"]) == 0
    single = json.loads((tmp_path / "v.json").read_text())
    assert len(single) == 10 and all(len(r["segmentations"]) == 5 for r in single)
    # a frame-only network has no video read-out: one-line error, status 2
    ck_f = save_checkpoint(tmp_path / "f.pt", _model("frame"), list(CATEGORY_NAMES), {})
    assert run_cli(["infer", str(mp4), "--checkpoint", str(ck_f), "-o", str(tmp_path / "x.json"),
                    "--mode", "video"]) == 2
    assert "no video read-out" in capsys.readouterr().err

    # DAVIS palette PNGs: one per frame, object ids by descending score
    assert run_cli(["export", "--format", "davis", "--data", str(root), "--results", str(out), "-o",
                    str(tmp_path / "davis"), "--min-score", "0"]) == 0
    pngs = sorted((tmp_path / "davis").rglob("*.png"))
    assert len(pngs) == sum(v.length for v in ds.videos)
    img = Image.open(pngs[0])
    assert img.mode == "P" and img.size == (67, 45) and np.asarray(img).max() <= 4
    # the GT itself, exported the same way, reproduces the masks of object 1
    assert run_cli(["export", "--format", "davis", "--data", str(root), "-o", str(tmp_path / "gt")]) == 0
    v = ds.videos[0]
    first = ds.instances_of(v.id)[0]
    lab = np.asarray(Image.open(tmp_path / "gt" / v.name / "00000.png"))
    if first.segmentations[0] is not None:
        assert (lab == 1)[mask_utils.decode(first.segmentations[0])].mean() > 0.5
    # ytvis: validate + normalise a results file against the dataset
    assert run_cli(["export", "--format", "ytvis", "--data", str(root), "--results", str(out), "-o",
                    str(tmp_path / "norm.json")]) == 0
    assert load_results(tmp_path / "norm.json", ds) == results


def test_device_choice_and_oom_detection():
    from engine.device import autocast_dtype, choose_device, is_oom, trim_host_memory

    assert choose_device("cpu").type == "cpu" and autocast_dtype(torch.device("cpu")) is None
    assert choose_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            choose_device("cuda")
    with pytest.raises(ValueError):
        choose_device("tpu")
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ... out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    trim_host_memory()   # a no-op off glibc; must never raise


def test_infer_config_for_follows_the_checkpoint():
    """A checkpoint's own inference settings win; else its preset's; else the model config is recognised."""
    from engine.config import preset, to_dict
    from engine.inference import infer_config_for

    tiny = preset("tiny")
    assert infer_config_for({"extra": {"infer": {"window": 5, "short_side": 0, "unknown": 1}}}).window == 5
    assert infer_config_for({"extra": {"preset": "tiny"}}) == tiny.infer
    by_config = infer_config_for({"config": to_dict(tiny.model)})
    assert by_config.short_side == 0 and by_config.window == tiny.infer.window
    assert infer_config_for({}).short_side == preset("r50").infer.short_side
