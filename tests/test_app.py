"""The window end to end (pytest-qt, offscreen): opening videos, keys, playback, settings, bad input, and
the real
engine through the worker thread (a tiny SyncVIS model, random weights unless the bundled one exists).

Screenshots of the window and each analysis panel are written to the test's temp folder (and to
$SYNCVIS_SCREENSHOT_DIR when set) so a person can look at them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from app import keymap
from app.launch import apply_theme
from app.main_window import RUN_FRAME, RUN_VIDEO, MainWindow
from app.settings import Settings
from engine import review
from engine.data.masks import decode
from tests.media import write_video
from widgets.colors import track_color

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "models" / "tiny-sync.pt"
W, H, N = 96, 64, 12
RUN_TIMEOUT_MS = 240_000


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", n=N, size=(W, H))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The bundled tiny sync model when present, else the same architecture with random weights, saved through
    the real checkpoint code."""
    if BUNDLED.exists():
        return BUNDLED
    import torch

    from engine.config import PRESETS
    from engine.model.checkpoint import save_checkpoint
    from engine.model.syncvis import build_model

    torch.manual_seed(0)
    preset = PRESETS["tiny"]()
    model = build_model(preset.model)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-random.pt"
    names = [f"shape{i}" for i in range(preset.model.num_classes)]
    save_checkpoint(path, model, names, {"source": "tests: random weights"})
    return path


@pytest.fixture
def win(qtbot, tmp_path):
    apply_theme(QApplication.instance())
    w = MainWindow(Settings(tmp_path / "settings"))
    qtbot.addWidget(w)
    w.resize(1440, 900)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    yield w
    w.cancel_run()
    w.close()


def shots_dir(tmp_path: Path) -> list[Path]:
    out = [tmp_path / "screenshots"]
    if os.environ.get("SYNCVIS_SCREENSHOT_DIR"):
        out.append(Path(os.environ["SYNCVIS_SCREENSHOT_DIR"]))
    for d in out:
        d.mkdir(parents=True, exist_ok=True)
    return out


def save_shot(widget, name: str, tmp_path: Path) -> Path:
    from PySide6.QtTest import QTest

    QTest.qWait(50)  # let deferred layout work (fit-to-view after a pane change) happen first
    pix = widget.grab()
    paths = [d / f"{name}.png" for d in shots_dir(tmp_path)]
    for p in paths:
        assert pix.save(str(p)), p
    return paths[0]


def run_and_wait(qtbot, win, **kw):
    with qtbot.waitSignal(win.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        job = win.run_model(**kw)
        assert job is not None
    return blocker.args[0]


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.canvas, k, mod)


# ------------------------------------------------------------------------------------------------ no engine
def test_keymap_is_one_conflict_free_table(win):
    assert keymap.conflicts() == {}
    for b in keymap.KEYMAP:
        got = [s.toString() for s in win.act[b.action].shortcuts()]
        from PySide6.QtGui import QKeySequence

        assert got == [QKeySequence(k).toString() for k in b.keys], b.action
        from app.actions import ACTIONS

        needs_video = {"run", "cancel"} | {s.id for s in ACTIONS if s.needs_video}
        assert win.act[b.action].isEnabled() == (b.available and b.action not in needs_video)
    html = keymap.sheet_html()
    for text in ("Shift+→", "Next uncertain frame", "Ctrl+Shift+Z", "Alt+M", "Propagate forward", "Right click"):
        assert text in html


def test_open_video_and_keyboard_navigation(qtbot, win, video):
    assert win.open_video(video)
    assert win.doc.num_frames == N and win.current == 0
    assert win.status.frame_label.text() == f"Frame 0 / {N - 1}"
    np.testing.assert_array_equal(win.canvas.frame, win.reader[0])
    K = Qt.Key
    key(qtbot, win, K.Key_D)
    assert win.current == 1
    key(qtbot, win, K.Key_Right)
    assert win.current == 2
    key(qtbot, win, K.Key_A)
    assert win.current == 1
    key(qtbot, win, K.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert win.current == 11
    key(qtbot, win, K.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert win.current == 1
    key(qtbot, win, K.Key_End)
    assert win.current == N - 1 and win.slider.value() == N - 1 and win.spin.value() == N - 1
    key(qtbot, win, K.Key_D)  # stays on the last frame
    assert win.current == N - 1
    key(qtbot, win, K.Key_Home)
    assert win.current == 0
    win.slider.setValue(7)
    assert win.current == 7 and win.spin.value() == 7 and win.timeline.current_frame == 7
    win.spin.setValue(3)
    assert win.current == 3
    from tests.media import frame_index

    assert frame_index(win.canvas.frame) == 3
    assert win.settings.recent_files()[0] == str(video.resolve())


def test_playback_at_video_fps(qtbot, win, video):
    win.open_video(video)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Space)
    assert win.is_playing() and win.play_timer.interval() == round(1000 / win.reader.fps)
    qtbot.waitUntil(lambda: win.current >= 5, timeout=5000)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Space)
    assert not win.is_playing()
    stopped = win.current
    qtbot.wait(150)
    assert win.current == stopped
    win.seek(N - 3)
    win.toggle_play()
    qtbot.waitUntil(lambda: not win.is_playing(), timeout=3000)  # stops at the last frame
    assert win.current == N - 1


@pytest.mark.parametrize("kind", ["missing", "not_a_video", "empty_folder"])
def test_bad_video_gives_a_message_and_the_window_stays(qtbot, win, video, tmp_path, kind):
    win.open_video(video)
    win.seek(4)
    if kind == "missing":
        bad = tmp_path / "gone.mp4"
    elif kind == "not_a_video":
        bad = tmp_path / "notes.mp4"
        bad.write_text("this is not a video\n" * 50)
    else:
        bad = tmp_path / "frames"
        bad.mkdir()
    assert not win.open_video(bad)
    title, text = win.messages[-1]
    assert title == "Cannot open video" and bad.name in text
    box = win.last_message_box
    assert box is not None and box.isVisible() and bad.name in box.text()
    box.close()
    assert win.isVisible() and win.doc.video.path == str(video) and win.current == 4


def test_frame_folder_opens(qtbot, win, tmp_path):
    from tests.media import frame_index, write_frame_folder

    folder = write_frame_folder(tmp_path / "JPEGImages" / "vid", 6, ext="png")
    assert win.open_video(folder)
    assert win.doc.num_frames == 6
    win.seek(5)
    assert frame_index(win.canvas.frame) == 5


def test_window_state_and_settings_are_remembered(qtbot, tmp_path, video):
    s = Settings(tmp_path / "st")
    w = MainWindow(s)
    qtbot.addWidget(w)
    w.show()
    w.resize(790, 700)
    w.dock_review.close()
    w.open_video(video)
    w.close()
    w2 = MainWindow(Settings(tmp_path / "st"))
    qtbot.addWidget(w2)
    w2.show()
    assert (w2.width(), w2.height()) == (790, 700)
    assert not w2.dock_review.isVisible() and w2.dock_tracks.isVisible()
    assert [a.toolTip() for a in w2.recent_menu.actions()][0] == str(video.resolve())
    w2.close()
    assert (tmp_path / "st" / "syncvis-studio.ini").exists()
    # the test session never writes the user's settings
    assert os.environ["SYNCVIS_SETTINGS_DIR"] and Settings().q.fileName().startswith(
        os.environ["SYNCVIS_SETTINGS_DIR"])


def test_drop_a_file_and_cursor_position(qtbot, win, video):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video))])
    ev = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    win.canvas.dropEvent(ev)  # (QApplication refuses a synthetic drop without a drag session)
    assert win.doc.video is not None and win.doc.video.path == str(video)
    win.doc.close_video()
    win.dropEvent(ev)  # dropped on the window outside the canvas
    assert win.doc.video is not None and win.doc.video.path == str(video)
    win.canvas.hovered.emit(-1, 17, 9)
    assert win.status.cursor_label.text() == "x 17, y 9"
    win.canvas.hovered.emit(-1, -1, -1)
    assert win.status.cursor_label.text() == "x –, y –"
    assert win.status.memory_label.text().startswith("RSS ")


def test_gpu_choice_follows_cuda(qtbot, win):
    qtbot.waitUntil(lambda: bool(win.worker.info), timeout=RUN_TIMEOUT_MS)
    gpu_item = win.device_combo.model().item(1)
    assert gpu_item.isEnabled() == bool(win.worker.info["cuda"])
    if not win.worker.info["cuda"]:
        assert win.device() == "cpu" and win.status.device_label.text() == "CPU"


def test_shortcut_sheet_opens_with_f1(qtbot, win):
    qtbot.keyClick(win.canvas, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: getattr(win, "sheet", None) is not None and win.sheet.isVisible(), timeout=2000)
    assert "Next uncertain frame" in win.sheet.text.toPlainText()
    win.sheet.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_engine_thread_yields_the_cpu_to_the_gui_thread(win):
    from app.engine_worker import WORKER_NICE

    wait_until(lambda: win.worker._thread.native_id is not None, 30_000)
    gui = os.getpriority(os.PRIO_PROCESS, 0)
    worker = os.getpriority(os.PRIO_PROCESS, win.worker._thread.native_id)
    assert worker == min(19, gui + WORKER_NICE)


def test_run_without_video_explains(win):
    assert win.run_model() is None
    assert win.messages[-1][0] == "Run SyncVIS" and "Open a video" in win.messages[-1][1]


# ------------------------------------------------------------------------------------------------ real engine
def wait_until(cond, timeout_ms=RUN_TIMEOUT_MS):
    from PySide6.QtTest import QTest

    end = time.monotonic() + timeout_ms / 1000
    while not cond():
        assert time.monotonic() < end, "timed out"
        QTest.qWait(20)


@pytest.fixture(scope="module")
def ran(qapp, video, checkpoint, tmp_path_factory):
    """One window that ran the real engine on the test video (shared: inference is the slow part)."""
    apply_theme(qapp)
    w = MainWindow(Settings(tmp_path_factory.mktemp("settings-ran")))
    w.resize(1440, 900)
    w.show()
    partials, finished, progress = [], [], []
    w.run_finished.connect(finished.append)
    # the end of a run is spread over event-loop turns, and the window announces it when they are done
    w.turns_at_end = []
    w.runs.run_finished.connect(lambda _p: w.turns_at_end.append(("ended", w.turns.pending())))
    w.run_finished.connect(lambda _p: w.turns_at_end.append(("announced", w.turns.pending(),
                                                            w.track_list.model.rowCount())))
    assert w.open_video(video)
    w.set_checkpoint(str(checkpoint))
    doc_events = []
    w.doc.subscribe(lambda name, payload: doc_events.append((name, payload.get("partial"))))
    job = w.run_model(window=N // 2)  # two windows, so results stream in twice
    assert job is not None
    job.partial.connect(partials.append)  # nothing is delivered before the event loop runs: none is missed
    job.progress.connect(lambda done, total, eta: progress.append((done, total, eta)))
    assert w.status.progress.isVisible() and w.status.cancel_button.isVisible()
    wait_until(lambda: bool(finished))
    w.partials = partials
    w.progress_seen = progress
    w.doc_events = doc_events
    yield w, finished[0]
    w.close()


def visible_tracks_on(pred, frame):
    out = []
    for t in pred.tracks:
        m = t.masks[frame]
        if m is not None:
            d = decode(m)
            if d.any():
                out.append((t.id, d))
    return out


def test_run_engine_fills_every_view(ran, qtbot):
    win, pred = ran
    assert pred.complete and pred.num_frames == N and pred.tracks and pred.frame_tracks and pred.windows
    assert win.doc.run.complete and win.doc.run.frames_done == N
    assert [p.windows[-1].end for p in win.partials] == [N // 2, N]  # streamed window by window
    # The views redraw for the first window's partial result and once at the end (the project's import of the
    # run), not also for the last window's partial and the bare run (three full redraws stalled the GUI).
    assert [partial for name, partial in win.doc_events if name == "tracks"] == [True, False]
    assert win.turns_at_end == [("ended", True), ("announced", False, len(pred.tracks))]
    wait_until(lambda: not win.is_busy())  # the review queue is ranked off the GUI thread after the run
    assert not win.status.progress.isVisible() and not win.is_busy()
    assert "Done: " in win.statusBar().currentMessage()
    done = [p[0] for p in win.progress_seen]
    assert done == sorted(done) and done[-1] == N and all(p[1] == N for p in win.progress_seen)
    assert all(p[2] >= 0 for p in win.progress_seen if p[0] > 0)  # an ETA once a window is done
    # track list: one row per track, same ids
    assert win.track_list.model.rowCount() == len(pred.tracks)
    assert sorted(win.track_list.track_ids()) == sorted(t.id for t in pred.tracks)
    # timeline: lane presence equals track presence
    img = win.timeline.lane_image()
    assert img.shape[:2] == (len(pred.tracks), N)
    for row, t in enumerate(win.doc.tracks):
        lit = np.any(img[row, :, :3] != np.array([44, 46, 51]), axis=-1)
        np.testing.assert_array_equal(lit, review.presence(t), err_msg=f"lane of track {t.id}")
    # canvas: overlay pixels are exactly the decoded masks of the current frame, in each track's colour
    for frame in (0, N // 2, N - 1):
        win.seek(frame)
        rgba = win.canvas.overlay_rgba()
        masks = visible_tracks_on(pred, frame)
        union = np.zeros((H, W), bool)
        top = np.full((H, W), -1)
        for tid, m in masks:
            union |= m
            top[m] = tid
        np.testing.assert_array_equal(rgba[..., 3] > 0, union)
        for tid, _m in masks:
            sel = top == tid
            if sel.any() and tid != win.view.selected:
                want = np.tile(track_color(tid), (int(sel.sum()), 1))
                np.testing.assert_array_equal(rgba[sel][:, :3], want)
    # hiding a track (V toggles all) removes its pixels
    tid = masks[0][0] if masks else pred.tracks[0].id
    win.view.set_visible(tid, False)
    assert not any(o_tid == tid for o_tid, _ in win.doc.masks_at(win.current, win.view.shows))
    win.view.set_visible(tid, True)
    qtbot.keyClick(win.canvas, Qt.Key.Key_V)
    assert not win.canvas.overlays_visible() and win.doc.masks_at(win.current, win.view.shows) == []
    qtbot.keyClick(win.canvas, Qt.Key.Key_V)
    assert win.canvas.overlays_visible() and len(win.doc.masks_at(win.current, win.view.shows)) == len(masks)


def test_review_queue_and_u_key(ran, qtbot):
    win, pred = ran
    wait_until(lambda: not win.analysis.pending())  # the queue is ranked off the GUI thread, with the motion cue
    assert win.analysis.motion() is not None
    expected = sorted(review.review_queue(pred, win.analysis.motion()), key=lambda it: (-it.score, it.frame))
    assert [it.frame for it in win.review.items()] == [it.frame for it in expected]
    assert [it.details for it in win.review.items()] == [it.reasons for it in expected]  # reasons in words
    if expected:
        win.analysis.refresh_review_queue()  # a fresh queue: U starts from the top, skipping frames already seen
        wait_until(lambda: not win.analysis.pending())
        ranked = [it.frame for it in expected]
        start = next((f for f in range(N) if f not in ranked), ranked[0])
        win.seek(start)
        visited = win.review.visited()
        # from a frame outside the queue U goes to the top; from a queued frame, to the items ranked after it
        after = ranked[ranked.index(start) + 1:] + ranked[:ranked.index(start) + 1] if start in ranked else ranked
        first = next((f for f in after if f not in visited), after[0])
        qtbot.keyClick(win.canvas, Qt.Key.Key_U)
        assert win.current == first and first in win.review.visited()


def test_track_events_keys(ran, qtbot):
    win, pred = ran
    events = review.track_events(pred.tracks)
    win.seek(0)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Period)
    later = events[events > 0]
    assert win.current == (int(later[0]) if later.size else 0)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Comma)
    assert win.current == 0 or win.current in events


def test_frame_vs_video_panel(ran, tmp_path):
    win, pred = ran
    tid = pred.tracks[0].id
    win.view.select(tid)
    assert win.track_list.selected == tid and win.timeline.selected == tid
    assert win.prop_labels["class"].text() == win.doc.category_name(pred.tracks[0].category_id)
    win.dock_frame_video.show()
    win.dock_frame_video.raise_()
    win.seek(3)
    lanes = review.frame_video_lanes(pred, tid)
    _, y = win.frame_video.video_curve.getData()
    np.testing.assert_allclose(y, lanes.video_scores, equal_nan=True)
    _, iou = win.frame_video.iou_curve.getData()
    np.testing.assert_allclose(iou, lanes.iou, equal_nan=True)
    if lanes.frame_track_id is not None and np.isfinite(lanes.iou[3]):
        assert win.frame_video.iou == pytest.approx(lanes.iou[3])
    save_shot(win.dock_frame_video, "frame_vs_video", tmp_path)


def test_panels_behind_a_tab_wait_until_brought_to_the_front(ran, qtbot):
    """A dock that is a tab behind another is not on screen (though Qt calls it visible): a frame change does
    not redraw it, and bringing it to the front draws the frame on screen then."""
    win, pred = ran
    win.view.select(pred.tracks[0].id)
    win.dock_frame_video.show()
    win.dock_frame_video.raise_()
    win.seek(1)
    fv = win.frame_video.video_pane
    shown = fv.frame.copy()
    win.dock_review.raise_()
    assert win.dock_frame_video.isVisible() and not win.analysis._shown("frame_video")
    win.seek(6)
    assert np.array_equal(fv.frame, shown)   # behind the Review tab: left as it was
    win.dock_frame_video.raise_()
    qtbot.wait(10)
    step = fv.draw_step(win.frame(6).shape[:2])
    assert np.array_equal(fv.frame, np.asarray(win.frame(6))[::step, ::step])
    win.set_compare_sources([RUN_VIDEO, RUN_FRAME])
    win.dock_compare.show()
    win.dock_compare.raise_()
    qtbot.wait(10)
    pane = win.compare.pane(0)
    shown = pane.frame.copy()
    win.dock_timeline.raise_()
    win.seek(2)
    assert np.array_equal(pane.frame, shown)
    win.dock_compare.raise_()
    qtbot.wait(10)
    step = win.comparison.pane_step(win.frame(2).shape[:2])
    assert np.array_equal(pane.frame, np.asarray(win.frame(2))[::step, ::step])


def test_aggregation_panel_and_frame_query_hover(ran, tmp_path):
    win, pred = ran
    tid = pred.tracks[0].id
    win.view.select(tid)
    win.dock_aggregation.show()
    win.dock_aggregation.raise_()
    win.seek(2)
    heat = win.aggregation.heatmap()
    mass = review.aggregation_mass(pred, tid, "f2v")
    assert heat is not None and heat.shape == (mass.shape[1], N)
    save_shot(win.dock_aggregation, "aggregation", tmp_path)
    # hovering a selected frame query shows its mask (the window is re-run once in the worker)
    q = review.selected_frame_queries(pred, 2, -1)[0]
    win.aggregation.frame_query_hovered.emit(2, int(q))
    wait_until(lambda: not win.analysis.pending())
    assert win.analysis.cache.pred is pred
    masks = win.analysis.cache.for_window(pred.windows[0].start)
    assert sorted(masks) == list(range(pred.windows[0].start, pred.windows[0].end))
    m = decode(masks[2][int(q)])
    rgba = win.canvas.overlay_rgba()
    if m.any():
        assert (rgba[m][:, :3] == 255).all()
    win.aggregation.frame_query_hovered.emit(2, -1)
    win.aggregation.set_direction("reverse", emit=True)
    rev = review.reverse_weights(pred, tid, 2)
    assert win.aggregation.heatmap().shape == (rev[0].shape[1], rev[0].shape[0])
    win.aggregation.set_direction("forward", emit=True)


def test_compare_panes_with_a_checkpoint_and_ground_truth(ran, tmp_path, video_checkpoint):
    win, pred = ran
    # ground truth = this run's own video-level tracks: its AP must be 100
    names = [f"clip/{i:05d}.jpg" for i in range(N)]
    gt = {"videos": [{"id": 1, "width": W, "height": H, "file_names": names}],
          "categories": [{"id": i + 1, "name": n} for i, n in enumerate(pred.categories)],
          "annotations": []}
    for k, t in enumerate(pred.tracks):
        segs = [m if m is not None and decode(m).any() else None for m in t.masks]
        if any(s is not None for s in segs):
            gt["annotations"].append({"id": k + 1, "video_id": 1, "category_id": t.category_id, "iscrowd": 0,
                                      "segmentations": segs})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    assert win.load_ground_truth(path)
    assert win.main_ap == pytest.approx(1.0)
    assert "AP 100.0" in win.prop_labels["run"].text()
    win.set_compare_sources([RUN_VIDEO, RUN_FRAME, str(video_checkpoint)])
    win.dock_compare.show()
    win.dock_compare.raise_()
    jobs = win.run_compare()
    assert len(jobs) == 1
    wait_until(lambda: not win.comparison.jobs())
    win.seek(5)
    assert win.compare.num_panes == 3
    titles = win.compare.titles()
    assert titles[0] == "This run · video-level · AP 100.0"
    assert titles[1].startswith("This run · frame-level")
    assert titles[2].startswith(video_checkpoint.name)
    for i, src in enumerate(win.comparison.sources):
        rgba = win.compare.pane(i).overlay_rgba()
        expect = np.zeros((H, W), bool)
        for _tid, m in visible_tracks_on(src.doc.prediction, 5):
            expect |= m
        np.testing.assert_array_equal(rgba[..., 3] > 0, expect)
    assert win.comparison.sources[2].doc.prediction.mode == "video"
    save_shot(win.dock_compare, "compare", tmp_path)
    # the main run's own checkpoint is not run again: its result is reused
    win.set_compare_sources([RUN_VIDEO, pred.checkpoint])
    assert win.run_compare() == []
    assert win.comparison.sources[1].doc.prediction is pred and win.compare.titles()[1].endswith("AP 100.0")


def test_window_and_panel_screenshots(ran, tmp_path):
    win, pred = ran
    win.view.select(pred.tracks[0].id)
    win.seek(N // 2)
    win.dock_review.raise_()
    win.dock_timeline.raise_()
    paths = [save_shot(win, "window", tmp_path), save_shot(win.dock_review, "review_queue", tmp_path),
             save_shot(win.dock_tracks, "tracks", tmp_path),
             save_shot(win.dock_timeline, "timeline", tmp_path)]
    for p in paths:
        img = QImage(str(p))
        assert not img.isNull() and img.width() > 100 and img.height() > 80


@pytest.fixture(scope="module")
def video_checkpoint(tmp_path_factory) -> Path:
    """A video-only model (the bundled tiny-video.pt when present) for a compare pane."""
    bundled = ROOT / "resources" / "models" / "tiny-video.pt"
    if bundled.exists():
        return bundled
    import torch

    from engine.config import PRESETS
    from engine.model.checkpoint import save_checkpoint
    from engine.model.syncvis import build_model

    torch.manual_seed(1)
    preset = PRESETS["tiny"]()
    preset.model.mode = "video"
    path = tmp_path_factory.mktemp("ckpt-video") / "tiny-video-random.pt"
    names = [f"shape{i}" for i in range(preset.model.num_classes)]
    save_checkpoint(path, build_model(preset.model), names, {"source": "tests: random weights"})
    return path


def test_cancel_keeps_the_finished_windows(qtbot, win, video, checkpoint):
    win.open_video(video)
    win.set_checkpoint(str(checkpoint))
    win.worker.submitted.connect(lambda job: job.partial.connect(lambda _pred: win.cancel_run()))
    pred = run_and_wait(qtbot, win, window=3)
    assert not pred.complete
    done = win.doc.run.frames_done
    assert 0 < done < N and done % 3 == 0
    assert not win.doc.run.complete and win.doc.tracks
    for t in win.doc.prediction.tracks:  # the run's own output: a mask (maybe empty) on every frame done
        assert all(m is not None for m in t.masks[:done]) and all(m is None for m in t.masks[done:])
    for t in win.doc.tracks:  # the project's tracks (empty masks dropped): nothing past the frames done
        assert all(m is None for m in t.masks[done:])
    assert "Cancelled" in win.statusBar().currentMessage()
    lanes = win.timeline.lane_image()
    assert (lanes[:, done:, :3] == np.array([44, 46, 51])).all()  # nothing drawn past the frames done


def test_bad_checkpoint_gives_a_message(qtbot, win, video, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint at all" * 100)
    win.open_video(video)
    win.set_checkpoint(str(bad))
    assert win.run_model() is not None
    qtbot.waitUntil(lambda: bool(win.messages), timeout=RUN_TIMEOUT_MS)
    title, text = win.messages[-1]
    assert title == "SyncVIS run failed" and "broken.pt" in text
    assert win.isVisible() and not win.is_busy() and not win.status.progress.isVisible()
    assert win.act["run"].isEnabled()
    win.last_message_box.close()


def test_screenshot_mode_writes_a_png(tmp_path, video, checkpoint):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SYNCVIS_SETTINGS_DIR=str(tmp_path / "settings"))
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), str(video), "--checkpoint", str(checkpoint),
                        "--run", "--screenshot", str(out)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    img = QImage(str(out))
    assert not img.isNull() and img.width() >= 700 and img.height() >= 500
    for d in shots_dir(tmp_path)[1:]:
        shutil.copy(out, d / "screenshot_mode.png")
