"""Assist in the window (pytest-qt, offscreen): a box drag with the Click tool gives a GrabCut proposal, Enter
puts it in the project; propagation with optical flow runs in the engine worker, stops at a locked frame, is one
undo step, and a cancel keeps the frames done."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.data.masks import decode, iou_matrix
from engine.data.ytvis import Dataset
from tests.test_app_editing import drag, make_window


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from engine.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth"), preset="default", num_videos=1, seed=4,
                         size=(160, 96))


def biggest_object(gt: Dataset, frame: int):
    v = gt.videos[0]
    objs = [o for o in gt.instances_of(v.id) if o.segmentations[frame] is not None]
    return max(objs, key=lambda o: decode(o.segmentations[frame]).sum())


def test_click_box_propagate_lock_undo_cancel(qtbot, tmp_path, synth):
    gt = Dataset.from_folder(synth)
    v = gt.videos[0]
    w = make_window(qtbot, tmp_path / "settings")
    assert w.open_video(synth / "JPEGImages" / v.name)
    w.canvas.fit_view()
    qtbot.wait(20)
    f0 = 6
    obj = biggest_object(gt, f0)
    m0 = decode(obj.segmentations[f0])
    ys, xs = np.nonzero(m0)
    w.seek(f0)
    w.act["click_tool"].trigger()
    assert w.view.tool == "click"
    with qtbot.waitSignal(w.assist.proposal_changed, timeout=60_000) as got:
        drag(w.canvas, [(xs.min() - 3, ys.min() - 3), ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2),
                        (xs.max() + 3, ys.max() + 3)])
    proposal = got.args[0]
    assert proposal is not None and proposal.shape == m0.shape
    assert (proposal & m0).sum() / (proposal | m0).sum() > 0.6  # GrabCut from a box on a synthetic shape
    w.act["accept"].trigger()  # Enter
    tid = w.view.selected
    pd = w.editing.pdoc
    assert tid is not None and pd.mask(tid, f0).provenance.kind == "assist"
    assert pd.mask(tid, f0).provenance.detail == "grabcut" and not w.assist.has_proposal()

    # Lock frame f0 + 5 (with no mask there), propagate forward: frames f0+1..f0+4 filled, the lock stops it.
    w.seek(f0 + 5)
    w.editing.toggle_lock()
    w.seek(f0)
    before = pd.snapshot()
    with qtbot.waitSignal(w.assist.propagated, timeout=120_000) as done:
        qtbot.keyClick(w.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert done.args[0] == 4
    assert sorted(pd.tracks[tid].frames()) == [f0, f0 + 1, f0 + 2, f0 + 3, f0 + 4]
    assert {pd.mask(tid, f).provenance.detail for f in range(f0 + 1, f0 + 5)} == {"flow"}
    ious = [iou_matrix([pd.mask(tid, f).rle], [obj.segmentations[f]])[0, 0] for f in range(f0 + 1, f0 + 5)
            if obj.segmentations[f] is not None]
    assert np.mean(ious) > 0.5
    first_run = pd.snapshot()
    first_masks = {f: pd.mask(tid, f) for f in range(f0, f0 + 5)}

    # Correct a middle frame with a click, propagate again from there: only the frames after it change.
    mid = f0 + 2
    w.seek(mid)
    mm = decode(obj.segmentations[mid])
    ys2, xs2 = np.nonzero(mm)
    with qtbot.waitSignal(w.assist.proposal_changed, timeout=60_000):
        drag(w.canvas, [(xs2.min() - 3, ys2.min() - 3), (xs2.max() + 3, ys2.max() + 3)])
    w.act["accept"].trigger()
    assert pd.mask(tid, mid).provenance.detail == "grabcut"
    untouched = {f: pd.mask(tid, f) for f in (f0, f0 + 1)}
    with qtbot.waitSignal(w.assist.propagated, timeout=120_000) as done:
        w.act["propagate_forward"].trigger()
    assert done.args[0] == 2  # frames mid+1, mid+2; the lock at f0+5 stops it again
    assert {f: pd.mask(tid, f) for f in (f0, f0 + 1)} == untouched
    assert pd.mask(tid, f0 + 3) != first_masks[f0 + 3] and pd.tracks[tid].frames() == list(range(f0, f0 + 5))
    assert pd.is_locked(tid, f0 + 5) and pd.mask(tid, f0 + 5) is None
    after_correction = pd.snapshot()
    w.act["undo"].trigger()  # the second run is one step: back to the corrected middle frame
    assert pd.mask(tid, mid).provenance.detail == "grabcut" and pd.snapshot() != after_correction
    w.act["undo"].trigger()  # the correction
    assert pd.snapshot() == first_run
    w.act["undo"].trigger()  # the whole first run is one step too
    assert pd.snapshot() == before

    # Backward from f0, cancelled at once: whatever was done is kept, the window carries on.
    w.seek(f0)
    handle = w.assist.propagate(-1)
    assert handle is not None
    with qtbot.waitSignal(w.assist.propagated, timeout=120_000) as done:
        w.cancel_run()
    kept = done.args[0]
    assert 0 <= kept <= f0
    frames = pd.tracks[tid].frames()
    assert max(frames) == f0 and len(frames) == 1 + kept  # the cancelled run's frames, all before f0
    assert w.assist.run is None
    w.close()
