"""engine.assist: the shared session rules, GrabCut and flow on synthetic videos, and the track-object command.
SAM 2 (random weights, the real package code path) is in tests/test_assist_sam2.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.assist import (
    AssistConfig,
    AssistSession,
    FlowConfig,
    FlowSession,
    GrabCutSession,
    make_prompt,
    open_session,
)
from engine.assist.flow import DenseFlow, warp_mask
from engine.assist.grabcut import grabcut_prompt
from engine.cli import run_cli
from engine.data import masks as mask_utils
from engine.data.synthetic import generate_video, write_mp4
from engine.errors import InputError

SIZE = (160, 96)     # small frames keep GrabCut and DIS fast; the bench measures 320x192 and 720p


def iou(a: np.ndarray, b: np.ndarray) -> float | None:
    u = np.logical_or(a, b).sum()
    return None if u == 0 else float(np.logical_and(a, b).sum() / u)


def track_iou(make, seeds, horizon, min_area=150, size=SIZE):
    """Mean over objects of the mean IoU over the `horizon` frames after the first frame where the object shows
    at least `min_area` pixels, seeded with its ground-truth mask there (frames where both are empty skipped)."""
    per_object = []
    for seed in seeds:
        v = generate_video("default", seed, size=size)
        for k in range(len(v.instances)):
            big = np.flatnonzero(v.visible_area[k] >= min_area)
            if not len(big) or big[0] >= v.num_frames - 1:
                continue
            s = int(big[0])
            stop = min(v.num_frames - 1, s + horizon)
            sess = make(v.frames)
            sess.set_mask(s, 1, v.mask(k, s))
            got = {f: m[1] for f, m in sess.propagate(s, "forward", stop)}
            vals = [iou(got.get(f, np.zeros(v.labels.shape[1:], bool)), v.mask(k, f)) for f in range(s + 1, stop + 1)]
            vals = [x for x in vals if x is not None]
            if vals:
                per_object.append(np.mean(vals))
    return float(np.mean(per_object)), len(per_object)


# ---------------------------------------------------------------------------------------------------- prompts
def test_prompt_checks():
    with pytest.raises(InputError, match="needs points"):
        make_prompt()
    with pytest.raises(InputError, match="labels"):
        make_prompt(points=[(1, 2)], labels=[1, 0])
    with pytest.raises(InputError, match="x1 > x0"):
        make_prompt(box=(10, 10, 5, 20))
    with pytest.raises(InputError, match="outside"):
        make_prompt(points=[(200, 5)], size=(96, 160))
    p = make_prompt(points=[(1, 2), (3, 4)], labels=[1, 0], size=(96, 160))
    assert p.labels.tolist() == [1, 0] and p.points.shape == (2, 2)


def test_flow_warp_follows_a_shift():
    v = generate_video("default", 3, size=SIZE)
    img, m = v.frames[0], v.mask(0, 0)
    moved, moved_mask = np.roll(img, (2, 3), axis=(0, 1)), np.roll(m, (2, 3), axis=(0, 1))
    flow = DenseFlow().backward(moved, img)
    assert np.allclose(np.median(flow[moved_mask], axis=0), (-3, -2), atol=0.3)
    assert iou(warp_mask(m, flow), moved_mask) > 0.95


def test_grabcut_from_box_and_clicks():
    """A ground-truth box (and clicks inside the object) give the object's mask on synthetic frames."""
    scores_box, scores_click = [], []
    for seed in range(4):
        v = generate_video("default", seed, size=(320, 192))
        for k in range(len(v.instances)):
            t = int(np.argmax(v.visible_area[k]))
            if v.visible_area[k, t] < 600:
                continue
            gt = v.mask(k, t)
            x0, y0, x1, y1 = v.boxes[k, t]
            scores_box.append(iou(grabcut_prompt(v.frames[t], make_prompt(box=(x0, y0, x1, y1))), gt))
            ys, xs = np.nonzero(gt)
            c = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)
            p = make_prompt(box=(x0, y0, x1, y1), points=[(xs[c], ys[c])], labels=[1])
            scores_click.append(iou(grabcut_prompt(v.frames[t], p), gt))
    # measured: box 0.94 mean over 11 objects (worst 0.69), box + a click 0.94
    assert len(scores_box) >= 8
    assert np.mean(scores_box) > 0.8, scores_box
    assert np.mean(scores_click) > 0.8, scores_click


def test_flow_and_grabcut_propagation_iou_on_default_videos():
    """Seeded with the ground-truth mask, flow + GrabCut refinement keeps the object over the next 10 and 30
    frames; GrabCut alone (no flow) less well. Measured at 160x96 on seeds 0-3 (11 objects): flow 0.92 / 0.84,
    grabcut 0.72 / 0.63 (bench/bench_assist.py gives 320x192 numbers)."""
    flow10, n = track_iou(lambda fr: FlowSession(fr), range(4), 10)
    flow30, _ = track_iou(lambda fr: FlowSession(fr), range(4), 30)
    gc10, _ = track_iou(lambda fr: GrabCutSession(fr), range(4), 10)
    assert n >= 8
    assert flow10 > 0.8 and flow30 > 0.75, (flow10, flow30)
    assert gc10 > 0.6, gc10
    assert flow10 > gc10


# ---------------------------------------------------------------------------------------------- session rules
@pytest.fixture(scope="module")
def video():
    return generate_video("default", 0, size=SIZE)


def _two_objects(video, tool="flow"):
    s = open_session(tool, video.frames, flow=FlowConfig(refine="morph"))
    s.set_mask(5, 1, video.mask(2, 5))      # instances 2 and 3 are in view from frame 0 on
    s.set_mask(5, 2, video.mask(3, 5))
    return s


def test_propagate_both_ways_lands_on_the_right_frames(video):
    s = _two_objects(video)
    fwd = list(s.propagate(5, "forward", 12))
    assert [f for f, _ in fwd] == list(range(6, 13))
    assert all(set(d) == {1, 2} and d[1].shape == (96, 160) and d[1].dtype == bool for _, d in fwd)
    bwd = list(s.propagate(5, "backward"))
    assert [f for f, _ in bwd][:3] == [4, 3, 2]
    assert set(s.results(2)) == set(range(0, 13))
    # the start frame is the source, never an output: it keeps the mask it was given
    assert np.array_equal(s.mask(5, 1), video.mask(2, 5))


def test_locked_frame_stops_that_object_only(video):
    s = _two_objects(video)
    s.lock(1, [9])
    frames = {f: set(d) for f, d in s.propagate(5, "forward", 14)}
    assert all(frames[f] == {1, 2} for f in range(6, 9))
    assert all(frames[f] == {2} for f in range(9, 15))      # object 1 stopped before its locked frame
    assert 9 not in s.results(1) and 10 not in s.results(1)


def test_cancel_keeps_frames_done_and_a_new_prompt_reruns(video):
    s = _two_objects(video)
    run = s.propagate(5, "forward")
    got = [next(run)[0] for _ in range(3)]
    run.close()                                   # the user pressed cancel
    assert got == [6, 7, 8]
    assert {6, 7, 8} <= set(s.results(1)) and 9 not in s.results(1)
    old2 = s.mask(7, 2)
    # a correction on frame 7 of object 1, then a run from there: object 2 keeps its masks
    s.set_mask(7, 1, video.mask(2, 7))
    assert [f for f, _ in s.propagate(7, "forward", 10, objects=[1])] == [8, 9, 10]
    assert np.array_equal(s.mask(7, 2), old2) and 9 not in s.results(2)
    # a prompt while a run is suspended cancels that run
    run = s.propagate(10, "forward", objects=[1])
    next(run)
    s.set_mask(3, 2, video.mask(3, 3))
    with pytest.raises(StopIteration):
        next(run)


class _VanishingTool(AssistSession):
    """A stub tool whose object is gone after frame 2 (the driver's rules, without a real tool's noise)."""

    tool = "stub"

    def _segment(self, frame, obj_id, prompt):
        return prompt.mask

    def _run_begin(self, obj_id, start, d, stop):
        pass

    def _run_step(self, obj_id, frame, d):
        m = np.zeros((self.height, self.width), bool)
        m[:4, :4] = frame <= 2
        return m


@pytest.mark.parametrize("recover, expected_last", [(False, 3), (True, 6)])
def test_lost_object_ends_its_run(recover, expected_last):
    frames = np.zeros((12, 16, 16, 3), np.uint8)
    s = _VanishingTool(frames, AssistConfig(lost_after=4))
    s.can_recover = recover      # flow / GrabCut stop at the first empty frame, SAM 2 after lost_after
    s.set_mask(0, 1, np.ones((16, 16), bool))
    out = [f for f, _ in s.propagate(0)]
    assert out[-1] == expected_last and not s.mask(expected_last, 1).any()


def test_propagate_checks_arguments(video):
    s = _two_objects(video)
    with pytest.raises(InputError, match="no mask on frame"):
        s.propagate(3, "forward", objects=[1])
    with pytest.raises(InputError, match="before"):
        s.propagate(5, "forward", 2)
    with pytest.raises(InputError, match="direction"):
        s.propagate(5, "sideways")
    with pytest.raises(InputError, match="outside the video"):
        s.add_prompt(99, 1, box=(1, 1, 5, 5))


# ------------------------------------------------------------------------------------------------ command line
@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    v = generate_video("default", 0, size=SIZE)
    path = write_mp4(tmp_path_factory.mktemp("assist") / "v.mp4", v.frames)
    return path, v


@pytest.mark.parametrize("tool", ["flow", "grabcut"])
def test_track_object_command(mp4, tmp_path, capsys, tool):
    path, v = mp4
    k, t = 3, 2
    x0, y0, x1, y1 = v.boxes[k, t]
    ys, xs = np.nonzero(v.mask(k, t))
    out = tmp_path / "r.json"
    argv = ["track-object", str(path), "--frame", str(t), "--box", f"{x0},{y0},{x1 - x0},{y1 - y0}",
            "--point", f"{int(np.median(xs))},{int(np.median(ys))},+", "--tool", tool, "--both",
            "--category", "square", "-o", str(out)]
    assert run_cli(argv) == 0
    assert "wrote" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert len(doc) == 1 and doc[0]["video_id"] == 1 and doc[0]["category_id"] == 2
    segs = doc[0]["segmentations"]
    assert len(segs) == v.num_frames
    ious = [iou(mask_utils.decode(s) if s else np.zeros((96, 160), bool), v.mask(k, f))
            for f, s in enumerate(segs[:t + 11])]
    ious = [x for x in ious if x is not None]
    # measured on this video (mp4-compressed frames), frames 0..12: flow 0.98, grabcut 0.72 (GrabCut alone
    # loses the object at frame 23; flow keeps it to the end, 0.97 over all 32 frames)
    assert np.mean(ious) > {"flow": 0.9, "grabcut": 0.6}[tool], ious


def test_track_object_bad_input(mp4, tmp_path, capsys):
    path, _ = mp4
    out = str(tmp_path / "r.json")
    cases = [
        (["--frame", "0", "--box", "1,2,3"], "--box must look like"),
        (["--frame", "0"], "give the object"),
        (["--frame", "999", "--box", "1,2,3,4"], "outside the video"),
        (["--frame", "0", "--point", "4,5,?"], "sign must be"),
        (["--frame", "0", "--box", "1,2,30,30", "--tool", "sam2"], "needs --sam2-checkpoint"),
        (["--frame", "0", "--box", "1,2,30,30", "--tool", "sam2", "--sam2-checkpoint", out], "no such file"),
        (["--frame", "0", "--box", "1,2,30,30", "--category", "blob"], "--category must be"),
    ]
    for extra, message in cases:
        assert run_cli(["track-object", str(path), *extra, "-o", out]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert run_cli(["track-object", str(tmp_path / "missing.mp4"), "--frame", "0", "--box", "1,1,4,4",
                    "-o", out]) == 2
    assert "no such file" in capsys.readouterr().err
