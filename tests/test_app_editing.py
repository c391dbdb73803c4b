"""Editing in the window (pytest-qt, offscreen): run the bundled model on a synthetic video, fix its tracks with
the window's own operations until they equal the generator's ground truth on a stretch of frames, export, and
check the export; brush strokes by real mouse events, undo keys, projects that reopen, refuse a second window,
and survive a moved video."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.settings import Settings
from engine.data.masks import decode, iou_matrix
from engine.data.ytvis import Dataset
from engine.project.project import Project

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "models" / "tiny-sync.pt"
RUN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from engine.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth"), preset="default", num_videos=1, seed=11,
                         size=(160, 96))


def make_window(qtbot, settings_dir: Path) -> MainWindow:
    w = MainWindow(Settings(settings_dir))
    w.status.show_message_boxes = False
    w.editing.ask = False
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def win(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path / "settings")
    yield w
    w.cancel_run()
    w.close()


def drag(canvas, points, button=Qt.MouseButton.LeftButton):
    """A real press-move-release drag on the canvas through image points."""
    def send(kind, x, y):
        pos = canvas.map_image_to_widget(x + 0.5, y + 0.5)
        glob = QPointF(canvas.viewport.mapToGlobal(pos.toPoint()))
        b = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else button
        QApplication.sendEvent(canvas.viewport, QMouseEvent(kind, pos, glob, b, button,
                                                            Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, *points[0])
    for p in points[1:]:
        send(QEvent.Type.MouseMove, *p)
    send(QEvent.Type.MouseButtonRelease, *points[-1])


@pytest.mark.skipif(not BUNDLED.exists(), reason="needs the bundled model")
def test_fix_a_model_run_to_the_ground_truth_and_export_it(qtbot, win, synth, tmp_path):
    gt = Dataset.from_folder(synth)
    video = gt.videos[0]
    assert win.open_video(synth / "JPEGImages" / video.name)
    win.set_checkpoint(str(BUNDLED))
    with qtbot.waitSignal(win.run_finished, timeout=RUN_TIMEOUT_MS):
        win.run_model()
    ed, pdoc = win.editing, win.editing.pdoc
    assert pdoc.tracks and {m.provenance.kind for t in pdoc.tracks.values() for m in t.masks.values()} == {"model"}
    prediction = win.doc.prediction
    lo, hi = 4, 12  # the stretch we correct
    objects = gt.instances_of(video.id)
    names = gt.category_names()

    # Classes: the model knows the 8 shapes already; add one it lacks, rename and recolour it (all undoable).
    assert ed.add_category("scribble") and ed.rename_category("scribble", "doodle")
    assert ed.recolour_category("doodle", (10, 200, 30))
    assert pdoc.category_by_name("doodle").colour == (10, 200, 30)

    # Match each ground-truth object to the predicted track that overlaps it most on the stretch.
    def overlap(tid: int, obj) -> float:
        t = pdoc.tracks[tid]
        ious = [iou_matrix([t.masks[f].rle], [obj.segmentations[f]])[0, 0] for f in range(lo, hi + 1)
                if f in t.masks and obj.segmentations[f] is not None]
        return float(np.mean(ious)) if ious else 0.0

    used: dict[int, int] = {}
    for obj in objects:
        scores = {tid: overlap(tid, obj) for tid in pdoc.track_ids() if tid not in used.values()}
        best = max(scores, key=scores.get, default=None)
        if best is not None and scores[best] > 0.1:
            used[obj.id] = best
    for tid in [t for t in pdoc.track_ids() if t not in used.values()]:
        win.view.select(tid)
        assert ed.delete_track()  # Shift+Del: tracks that match nothing
    shape = (video.height, video.width)
    for obj in objects:
        tid = used.get(obj.id)
        if tid is None:
            win.view.select(None)
            tid = ed.new_track(names[obj.category_id])  # N
            assert tid is not None
        win.view.select(tid)
        assert pdoc.tracks[tid].category_id is not None
        if pdoc.category_name(pdoc.tracks[tid].category_id) != names[obj.category_id]:
            assert ed.relabel(names[obj.category_id])
        ed.delete_mask(range(0, lo))  # masks outside the stretch go (an empty range is a no-op)
        ed.delete_mask(range(hi + 1, video.length))
        assert all(lo <= f <= hi for f in pdoc.tracks[tid].masks)
        for f in range(lo, hi + 1):
            win.seek(f)
            if pdoc.mask(tid, f) is not None:
                assert ed.paint(np.ones(shape, bool), erase=True)  # the eraser over the whole frame
            seg = obj.segmentations[f]
            if seg is not None and decode(seg).any():
                assert ed.paint(decode(seg), erase=False)  # the brush, painting the object's true mask
        win.seek(hi)
        assert ed.toggle_lock()  # L: the corrected last frame is locked
    # Every corrected mask is the human's now, and the timeline shows it.
    kinds = {m.provenance.kind for t in pdoc.tracks.values() for m in t.masks.values()}
    assert kinds == {"human"}
    lanes = win.timeline._lanes  # noqa: SLF001 - what the timeline was given to draw
    assert any(ln.marks is not None and (ln.marks[lo:hi + 1] > 0).all() for ln in lanes)
    assert "human · brush" in win.prop_labels["this_frame"].text()

    out = tmp_path / "fixed.json"
    assert ed.export_ytvis(out)
    exported = Dataset.load(out)
    want = {(names[o.category_id], tuple(_px(o.segmentations[f]) for f in range(lo, hi + 1))) for o in objects
            if any(_px(o.segmentations[f]) for f in range(lo, hi + 1))}
    got = {(exported.category_names()[a.category_id], tuple(_px(a.segmentations[f]) for f in range(lo, hi + 1)))
           for a in exported.instances}
    assert got == want
    assert all(all(s is None for i, s in enumerate(a.segmentations) if not lo <= i <= hi)
               for a in exported.instances)
    # The model's prediction (and so what a compare pane shows) is untouched by all of this.
    assert win.doc.prediction is prediction and all(len(t.masks) == video.length for t in prediction.tracks)

    # Undo walks everything back to the model run, redo forward again, bitwise.
    fixed = pdoc.snapshot()
    steps = ed.session.stack.index()
    for _ in range(steps - 1):
        win.act["undo"].trigger()
    assert {m.provenance.kind for t in pdoc.tracks.values() for m in t.masks.values()} == {"model"}
    for _ in range(steps - 1):
        win.act["redo"].trigger()
    assert pdoc.snapshot() == fixed


def _px(seg):
    if seg is None:
        return None
    m = decode(seg)
    return m.tobytes() if m.any() else None


def test_brush_by_mouse_undo_by_key_and_the_project_reopens(qtbot, tmp_path, synth):
    video = synth / "JPEGImages" / Dataset.from_folder(synth).videos[0].name
    settings = tmp_path / "settings"
    w = make_window(qtbot, settings)
    assert w.open_video(video)
    w.canvas.fit_view()
    qtbot.wait(20)
    ed = w.editing
    assert ed.add_category("car")
    qtbot.keyClick(w.canvas, Qt.Key.Key_N)  # N: a new track, selected, with the brush
    tid = w.view.selected
    assert tid is not None and w.view.tool == "brush"
    w.view.set_brush_size(6)
    w.seek(2)
    drag(w.canvas, [(20, 30), (40, 30), (60, 32)])
    m = w.editing.pdoc.mask(tid, 2)
    assert m is not None and m.provenance.kind == "human" and m.provenance.detail == "brush"
    px = decode(m.rle)
    assert px[30, 20:61].all() and px.sum() > 40 * 5
    assert w.doc.mask(tid, 2) is not None  # the canvas' document shows it at once
    qtbot.keyClick(w.canvas, Qt.Key.Key_E)  # eraser
    drag(w.canvas, [(30, 30), (35, 30)])
    assert decode(w.editing.pdoc.mask(tid, 2).rle).sum() < px.sum()
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the eraser stroke
    assert np.array_equal(decode(w.editing.pdoc.mask(tid, 2).rle), px)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo it
    assert decode(w.editing.pdoc.mask(tid, 2).rle).sum() < px.sum()
    qtbot.keyClick(w.canvas, Qt.Key.Key_L)  # lock this frame
    assert w.editing.pdoc.is_locked(tid, 2)
    snap = w.editing.pdoc.snapshot()
    path = w.editing.session.project.path

    # A second window on the same project is refused with a clear message; the first keeps it.
    w2 = make_window(qtbot, settings)
    assert w2.open_video(video)
    assert w2.editing.pdoc is None and any("open in another window" in m.text for m in w2.messages)
    w2.close()
    w.seek(5)
    qtbot.wait(1000)  # the view state (frame, selection) settles and is written
    w.close()

    # Reopening the video brings the edits back, with the frame and selection.
    w3 = make_window(qtbot, settings)
    assert w3.open_video(video)
    assert w3.editing.pdoc.snapshot() == snap and w3.view.selected == tid and w3.current == 5
    w3.close()
    assert Project.open(path).doc.snapshot() == snap


def test_project_file_with_a_moved_video(qtbot, win, tmp_path, synth):
    src = synth / "JPEGImages" / Dataset.from_folder(synth).videos[0].name
    copy = tmp_path / "clips" / src.name
    shutil.copytree(src, copy)
    proj = tmp_path / "work.svproj"
    assert win.new_project(copy, proj)
    assert win.editing.add_category("dog") and win.editing.new_track("dog")
    win.close()
    moved = tmp_path / "moved" / src.name
    shutil.move(str(copy), moved)
    w = make_window(qtbot, tmp_path / "settings2")
    assert not w.open_project(proj)  # the video is missing: said, nothing opened
    assert any("missing" in m.text for m in w.messages)
    assert w.open_project(proj, moved)
    assert w.editing.pdoc.category_by_name("dog") is not None and w.editing.pdoc.tracks
    assert "work.svproj" in w.windowTitle()
    w.close()


def test_merge_split_swap_and_classes_from_the_window(qtbot, win, synth):
    video = synth / "JPEGImages" / Dataset.from_folder(synth).videos[0].name
    assert win.open_video(video)
    ed = win.editing
    pd = ed.pdoc
    ed.add_category("car")
    ed.add_category("dog")
    a = ed.new_track("car")
    for f in range(0, 6):
        win.seek(f)
        m = np.zeros((96, 160), bool)
        m[10:20, 10 + f:30 + f] = True
        ed.paint(m, erase=False)
    win.view.select(None)
    b = ed.new_track("dog")
    for f in range(4, 10):
        win.seek(f)
        m = np.zeros((96, 160), bool)
        m[50:60, 40:60] = True
        ed.paint(m, erase=False)
    before = pd.snapshot()
    win.seek(5)
    win.view.select(a)
    assert ed.swap(b)  # identities from frame 5 on
    assert pd.tracks[a].frames() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and pd.tracks[b].frames() == [4, 5]
    win.act["undo"].trigger()
    assert pd.snapshot() == before
    win.view.select(a)
    assert ed.merge(b, prefer="track")  # M: a into b, a's masks win on 4 and 5
    assert a not in pd.tracks and pd.tracks[b].frames() == list(range(10)) and win.view.selected == b
    win.seek(6)
    new = ed.split()  # Alt+M at frame 6
    assert pd.tracks[b].frames() == list(range(6)) and pd.tracks[new].frames() == [6, 7, 8, 9]
    assert ed.delete_category("dog", "reassign", "car")
    assert {pd.category_name(t.category_id) for t in pd.tracks.values()} == {"car"}
    win.view.select(new)
    assert win.prop_labels["class"].text() == "car"  # the properties panel shows what the document holds
    for _ in range(3):
        win.act["undo"].trigger()
    assert pd.snapshot() == before
