"""The window end to end (pytest-qt, offscreen): opening videos, keys, playback, settings, bad input, and the real
engine through the worker thread (a tiny SyncVIS model, random weights unless the bundled one exists).

Screenshots of the window and each analysis panel are written to the test's temp folder (and to
$SYNCVIS_SCREENSHOT_DIR when set) so a person can look at them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
W, H, N = 128, 96, 24
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
    _save(save_checkpoint, model, path, preset, names)
    return path


def _save(save_checkpoint, model, path, preset, names):
    import inspect

    params = inspect.signature(save_checkpoint).parameters
    kwargs = {}
    if "class_names" in params:
        kwargs["class_names"] = names
    if "preset" in params:
        kwargs["preset"] = "tiny"
    if "cfg" in params:
        kwargs["cfg"] = preset.model
    if "meta" in params:
        kwargs["meta"] = {"class_names": names, "preset": "tiny"}
    save_checkpoint(model, path, **kwargs) if "model" in params or True else None


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
        assert win.act[b.action].isEnabled() == (b.available and b.action not in
                                                  {"run", "cancel", "next_frame", "prev_frame", "jump_forward",
                                                   "jump_back", "first_frame", "last_frame", "play", "prev_event",
                                                   "next_event", "next_uncertain", "fit_view", "toggle_overlays"})
    html = keymap.sheet_html()
    for text in ("Shift+→", "Next uncertain frame", "Ctrl+Shift+Z", "Alt+M", "coming soon", "Right click"):
        assert text in html


def test_open_video_and_keyboard_navigation(qtbot, win, video):
    assert win.open_video(video)
    assert win.doc.num_frames == N and win.current == 0
    assert win.frame_label.text() == f"Frame 0 / {N - 1}"
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
    w.resize(1100, 760)
    w.dock_review.close()
    w.open_video(video)
    w.close()
    w2 = MainWindow(Settings(tmp_path / "st"))
    qtbot.addWidget(w2)
    w2.show()
    assert (w2.width(), w2.height()) == (1100, 760)
    assert not w2.dock_review.isVisible() and w2.dock_tracks.isVisible()
    assert [a.toolTip() for a in w2.recent_menu.actions()][0] == str(video.resolve())
    w2.close()
    assert (tmp_path / "st" / "syncvis-studio.ini").exists()
    # the test session never writes the user's settings
    assert os.environ["SYNCVIS_SETTINGS_DIR"] and Settings().q.fileName().startswith(
        os.environ["SYNCVIS_SETTINGS_DIR"])


def test_shortcut_sheet_opens_with_f1(qtbot, win):
    qtbot.keyClick(win.canvas, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: getattr(win, "sheet", None) is not None and win.sheet.isVisible(), timeout=2000)
    assert "Next uncertain frame" in win.sheet.text.toPlainText()
    win.sheet.close()


def test_run_without_video_explains(win):
    assert win.run_model() is None
    assert win.messages[-1][0] == "Run SyncVIS" and "Open a video" in win.messages[-1][1]
