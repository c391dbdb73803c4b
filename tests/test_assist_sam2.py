"""SAM 2 through the real `sam2` package code path: the tiny model built from its packaged config with random
weights at a 64-pixel input (seconds on one CPU thread), prompted and propagated on small synthetic frames. Random
weights make meaningless masks, so these tests check the plumbing: shapes, frames, objects, locks, cancel,
memory, checkpoints, the out-of-memory fallback and the command line, not mask quality."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sam2")

from engine.assist import AssistConfig  # noqa: E402
from engine.assist.sam2_tool import (  # noqa: E402
    Sam2Config,
    Sam2Model,
    checkpoint_names,
    config_name,
)
from engine.cli import run_cli  # noqa: E402
from engine.data.synthetic import generate_video, write_mp4  # noqa: E402
from engine.errors import CheckpointError, InputError  # noqa: E402

H, W = 48, 64
KEEP_GOING = AssistConfig(lost_after=10**6)   # random weights: never call an object lost


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Sam2Model(Sam2Config(size="tiny", random_weights=True, image_size=64, device="cpu"))


@pytest.fixture(scope="module")
def video():
    return generate_video("default", 0, size=(W, H))


class LazyVideo:
    """A long video made on demand (never held in memory): a square that drifts right and back."""

    def __init__(self, n: int):
        self.n, self.reads = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        self.reads += 1
        img = np.full((H, W, 3), 40, np.uint8)
        x = 8 + abs((i % 40) - 20)
        img[14:30, x:x + 14] = (220, 60, 60)
        return img


def state_bytes(session) -> int:
    """Bytes of every tensor SAM 2 keeps in the session's per-object states (frames and features excluded)."""
    seen, total = set(), 0

    def walk(o):
        nonlocal total
        if isinstance(o, torch.Tensor):
            key = (o.untyped_storage().data_ptr(), o.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += key[1]
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)

    for st in session._states.values():
        for k in ("output_dict_per_obj", "temp_output_dict_per_obj", "point_inputs_per_obj", "mask_inputs_per_obj"):
            walk(st[k])
    return total


def test_config_names():
    assert config_name("tiny") == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert config_name("base+", "2") == "configs/sam2/sam2_hiera_b+.yaml"
    assert checkpoint_names("large") == ["sam2.1_hiera_large.pt", "sam2_hiera_large.pt"]
    with pytest.raises(InputError, match="must be one of"):
        config_name("huge")


def test_prompts_answer_with_the_frames_mask(model, video):
    s = model.open(video.frames, KEEP_GOING)
    assert s.window == 16           # tiny: num_maskmem 7, 16 object pointers
    for kw in ({"points": [(30, 20), (5, 5)], "labels": [1, 0]}, {"box": (10, 10, 40, 30)},
               {"mask": video.mask(3, 4)}):
        m = s.add_prompt(4, 1, **kw)
        assert m.shape == (H, W) and m.dtype == bool
    # a mask prompt comes back (through SAM 2's 16x16 low-resolution mask) close to itself: measured IoU 0.89
    m = s.add_prompt(4, 2, mask=video.mask(3, 4))
    gt = video.mask(3, 4)
    assert (m & gt).sum() / (m | gt).sum() > 0.6
    # one image, no video state: SAM2ImagePredictor on the same weights
    assert model.segment_image(video.frames[0], points=[(30, 20)]).shape == (H, W)


def test_propagate_both_ways_several_objects(model, video):
    s = model.open(video.frames, KEEP_GOING)
    s.add_prompt(4, 1, box=(10, 10, 40, 30))
    s.add_prompt(4, 2, points=[(50, 30)], labels=[1])
    fwd = list(s.propagate(4, "forward", 9))
    assert [f for f, _ in fwd] == [5, 6, 7, 8, 9]
    assert all(set(d) == {1, 2} and d[1].shape == (H, W) and d[2].dtype == bool for _, d in fwd)
    bwd = list(s.propagate(4, "backward"))
    assert [f for f, _ in bwd] == [3, 2, 1, 0]
    assert set(s.results(1)) == set(range(10)) and set(s.results(2)) == set(range(10))
    # only object 2, from frame 9 on: object 1 keeps what it had
    before = s.results(1)
    assert [f for f, _ in s.propagate(9, "forward", 11, objects=[2])] == [10, 11]
    assert s.results(1) == before


def test_locked_frames_cancel_and_reprompt(model, video):
    s = model.open(video.frames, KEEP_GOING)
    s.add_prompt(2, 1, box=(10, 10, 40, 30))
    s.add_prompt(2, 2, box=(30, 20, 60, 44))
    s.lock(1, [6])
    frames = {f: set(d) for f, d in s.propagate(2, "forward", 9)}
    assert [frames[f] for f in range(3, 10)] == [{1, 2}] * 3 + [{2}] * 4
    assert 6 not in s.results(1)
    # cancel after two frames keeps those two
    s.unlock(1, [6])
    run = s.propagate(5, "forward", objects=[1])
    assert [next(run)[0], next(run)[0]] == [6, 7]
    run.close()
    assert {6, 7} <= set(s.results(1)) and 8 not in s.results(1)
    # a correction on frame 7 becomes a conditioning frame; the run from there recomputes what follows
    s.add_prompt(7, 1, points=[(20, 20)], labels=[1])
    cond = s._states[1]["output_dict_per_obj"][0]["cond_frame_outputs"]
    assert [f for f, _ in s.propagate(7, "forward", 9, objects=[1])] == [8, 9]
    assert {2, 7} <= set(cond)
    # a start frame whose SAM 2 output was dropped is re-entered from the kept mask
    s2 = model.open(video.frames, KEEP_GOING)
    s2.set_mask(3, 5, video.mask(3, 3))
    s2._states[5]["output_dict_per_obj"][0]["cond_frame_outputs"].clear()
    s2._states[5]["temp_output_dict_per_obj"][0]["cond_frame_outputs"].clear()
    assert [f for f, _ in s2.propagate(3, "forward", 5)] == [4, 5]


def test_long_video_memory_stays_bounded(model):
    """SAM 2's own state grows by one output per frame; the session keeps a window. Measured at the 64 input
    size with a window of 4: 28,720 bytes and 6 outputs after 20, 40 and 80 frames alike, where SAM 2 without
    the window holds 90 / 172 / 336 KB (4.1 KB a frame here, about 0.8 MB a frame at the 1024 input); frames
    are decoded on demand, once each."""
    from dataclasses import replace

    small = Sam2Model.__new__(Sam2Model)        # the same weights with a 4-frame window
    small.config, small.predictor, small._image_predictor = replace(model.config, memory_window=4), \
        model.predictor, None
    vid = LazyVideo(81)
    s = small.open(vid, KEEP_GOING)
    s.add_prompt(0, 1, box=(8, 14, 22, 30))
    sizes = {}
    for f, _ in s.propagate(0):
        if f in (20, 80):
            sizes[f] = (state_bytes(s), s.stored_outputs(1))
    assert sizes[20] == sizes[80], sizes
    assert sizes[80][1] <= 2 * 4 + 1 + 1
    assert vid.reads <= 81 + 2          # each frame decoded once (frame 0 also by the session's size check)
    assert len(s._images._cache) <= small.config.frame_cache


def test_checkpoint_round_trip_and_clear_errors(model, video, tmp_path):
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.predictor.state_dict()}, path)      # the official layout
    loaded = Sam2Model(Sam2Config(size="tiny", checkpoint=path, image_size=64, device="cpu"))
    assert loaded.predictor.sam2_version == "2.1"
    a = model.open(video.frames).add_prompt(4, 1, box=(10, 10, 40, 30))
    b = loaded.open(video.frames).add_prompt(4, 1, box=(10, 10, 40, 30))
    assert np.array_equal(a, b)

    with pytest.raises(CheckpointError, match="no such file"):
        Sam2Model(Sam2Config(checkpoint=tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read as a PyTorch file") as e:
        Sam2Model(Sam2Config(checkpoint=junk))
    assert str(junk) in str(e.value)
    other = tmp_path / "other.pt"
    torch.save({"model": {"backbone.weight": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint"):
        Sam2Model(Sam2Config(checkpoint=other))
    with pytest.raises(CheckpointError, match="is a SAM 2 tiny checkpoint, but the model size is set to small"):
        Sam2Model(Sam2Config(size="small", checkpoint=path))
    with pytest.raises(CheckpointError, match="no SAM 2 checkpoint is set"):
        Sam2Model(Sam2Config())
    broken = tmp_path / "broken.pt"
    sd = dict(model.predictor.state_dict())
    sd.pop("sam_mask_decoder.iou_token.weight")
    torch.save({"model": sd}, broken)
    with pytest.raises(CheckpointError, match="does not fit"):
        Sam2Model(Sam2Config(checkpoint=broken, image_size=64))


def test_out_of_memory_falls_back_and_says_so(model, video, monkeypatch):
    """Simulated (no GPU here): the device reads as CUDA and track_step fails twice with OutOfMemoryError. The
    first fallback shrinks the window and moves the state to the CPU, the second moves the model; each is
    announced and the run goes on from the frame that failed, missing none."""
    fake_cuda = {"on": True}
    real = type(model).device
    monkeypatch.setattr(type(model), "device", property(
        lambda self: torch.device("cuda") if fake_cuda["on"] else real.fget(self)))
    monkeypatch.setattr(model.config, "mixed_precision", False)
    notices = []
    s = model.open(video.frames, KEEP_GOING, notice=notices.append)
    s.add_prompt(1, 1, box=(10, 10, 40, 30))
    calls = {"n": 0}
    track_step = model.predictor.track_step

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] in (3, 6):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return track_step(*a, **k)

    monkeypatch.setattr(model.predictor, "track_step", flaky)
    frames = [f for f, _ in s.propagate(1, "forward", 9)]
    assert frames == list(range(2, 10))
    assert len(notices) == 2 and "window now 7" in notices[0] and "CPU" in notices[1]
    fake_cuda["on"] = False


def test_track_object_with_a_sam2_checkpoint(model, tmp_path, capsys):
    v = generate_video("default", 0, size=(W, H))
    mp4 = write_mp4(tmp_path / "v.mp4", v.frames[:8])
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.predictor.state_dict()}, ckpt)
    out = tmp_path / "r.json"
    base = ["track-object", str(mp4), "--frame", "3", "--box", "10,10,30,20", "--tool", "sam2",
            "--sam2-checkpoint", str(ckpt), "--sam2-image-size", "64", "--device", "cpu", "-o", str(out)]
    assert run_cli([*base, "--both"]) == 0
    segs = json.loads(out.read_text())[0]["segmentations"]
    assert len(segs) == 8 and segs[3] is not None and all(s is None or s["size"] == [H, W] for s in segs)
    assert run_cli([*base, "--sam2-size", "large"]) == 2
    assert "is a SAM 2 tiny checkpoint, but the model size is set to large" in capsys.readouterr().err
