"""The window opens an official checkpoint (issue 10 §4): Engine › Choose checkpoint… takes a detectron2 .pkl, asks
which dataset's classes a 40-class file has (app/official_classes.py), and the worker runs it with those names; a
cancelled question or an unreadable file leaves the model (and the remembered default) as it was."""
from __future__ import annotations

import json
import time

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

from app import official_classes
from app.main_window import MainWindow
from app.settings import Settings
from engine.data.vocabularies import YTVIS_2021
from tests.media import write_video
from tests.test_official_checkpoints import _mask2former_vis, _save_pkl

RUN_TIMEOUT_S = 240


@pytest.fixture
def official(tmp_path):
    return _save_pkl(_mask2former_vis(40, YTVIS_2021.index("zebra")), tmp_path / "model_final_3c8ec9.pkl")


@pytest.fixture
def win(qtbot, tmp_path):
    official_classes.forget_all()
    w = MainWindow(Settings(tmp_path / "settings"))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.cancel_run()
    w.close()
    official_classes.forget_all()


def _answer_later(answer: str | None, seen: list) -> None:
    """When the modal question comes up: pick `answer` and press OK (None: Cancel). What was asked goes to
    `seen`."""
    def act():
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(20, act)
            return
        seen.append(dlg)
        if isinstance(dlg, QInputDialog):
            seen.append((dlg.labelText(), dlg.comboBoxItems()))
            if answer is None:
                dlg.reject()
            else:
                dlg.setTextValue(answer)
                dlg.accept()
        else:
            seen.append(dlg.text() if isinstance(dlg, QMessageBox) else None)
            dlg.close()

    QTimer.singleShot(20, act)


def _choose(win, monkeypatch, path) -> None:
    """Engine › Choose checkpoint… with the file dialog answered by `path`."""
    import app.run_controller as rc

    monkeypatch.setattr(rc.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    win.act["choose_checkpoint"].trigger()


def test_choose_an_official_file_asks_and_the_run_uses_those_classes(qtbot, win, official, tmp_path, monkeypatch):
    before = win.checkpoint
    # cancelled: nothing changes, nothing is remembered
    seen = []
    _answer_later(None, seen)
    _choose(win, monkeypatch, official)
    assert seen and "40 classes but no class names" in seen[1][0]
    assert seen[1][1] == ["YouTube-VIS 2019 (40 classes)", "YouTube-VIS 2021 (40 classes)"]
    assert win.checkpoint == before and win.settings.checkpoint() != str(official)
    assert official_classes.chosen_classes(official) is None

    # not a checkpoint: said, and not made the default
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all" * 50)
    seen = []
    _answer_later("unused", seen)
    _choose(win, monkeypatch, junk)
    assert seen and isinstance(seen[0], QMessageBox) and "junk.pkl" in seen[1]
    assert win.checkpoint == before and win.settings.checkpoint() != str(junk)

    # answered: the file is the model, the answer is kept for the worker and the next session
    seen = []
    _answer_later("YouTube-VIS 2021 (40 classes)", seen)
    _choose(win, monkeypatch, official)
    assert win.checkpoint == str(official) and win.settings.checkpoint() == str(official)
    assert official_classes.chosen_classes(official) == "ytvis2021"
    official_classes.forget_all()
    assert official_classes.chosen_classes(official) == "ytvis2021"          # read back from the store
    assert json.loads(official_classes.store_path().read_text())[str(official.resolve())] == "ytvis2021"

    video = write_video(tmp_path / "clip.mp4", n=6, size=(64, 48))
    assert win.open_video(video)
    finished = []
    win.run_finished.connect(finished.append)
    assert win.run_model() is not None
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: bool(finished) or bool(win.messages), timeout=RUN_TIMEOUT_S * 1000)
    assert finished, win.messages
    pred = finished[0]
    assert pred.complete and pred.categories == list(YTVIS_2021)
    # every query says class row 39 (the rigged head); the window's top 10 also lists 4 near-zero others
    strong = [t for t in pred.tracks if t.score > 0.5]
    assert strong and {pred.categories[t.category_id - 1] for t in strong} == {"zebra"}
    assert all(t.score < 1e-3 for t in pred.tracks if t not in strong)
    assert time.monotonic() - t0 < RUN_TIMEOUT_S


def test_an_ambiguous_file_nobody_chose_for_fails_with_what_to_do(qtbot, win, official):
    video = write_video(official.parent / "clip.mp4", n=4, size=(64, 48))
    assert win.open_video(video)
    win.set_checkpoint(str(official), remember=False)      # e.g. given without --classes: nothing was asked
    assert win.run_model() is not None
    qtbot.waitUntil(lambda: bool(win.messages), timeout=RUN_TIMEOUT_S * 1000)
    title, text = win.messages[-1]
    assert title == "SyncVIS run failed"
    assert "40 classes: YouTube-VIS 2019 or 2021? Choose the file with Engine › Choose checkpoint" in text
    if win.last_message_box is not None:
        win.last_message_box.close()


def test_confirm_checkpoint_without_a_question(qtbot, official, tmp_path):
    """Ours and files whose name or class count says the dataset open without asking."""
    from engine.config import preset
    from engine.model import build_model
    from engine.model.checkpoint import save_checkpoint

    official_classes.forget_all()
    asked = []
    hinted = official.with_name("syncvis_r18_ytvis21.pkl")
    hinted.write_bytes(official.read_bytes())
    assert official_classes.confirm_checkpoint(None, hinted, ask=lambda *a: asked.append(a))
    cfg = preset("tiny").model
    cfg.num_classes, cfg.dec_layers, cfg.enc_layers = 3, 2, 1
    ours = save_checkpoint(tmp_path / "ours.pt", build_model(cfg), ["a", "b", "c"], {})
    assert official_classes.confirm_checkpoint(None, ours, ask=lambda *a: asked.append(a))
    assert asked == []
    warned = []
    assert not official_classes.confirm_checkpoint(None, tmp_path / "missing.pkl", warn=lambda p, t: warned.append(t))
    assert warned and "file not found" in warned[0]


def test_launch_with_classes_runs_the_official_file(official, tmp_path):
    """`main.py VIDEO --checkpoint OFFICIAL.pkl --classes ytvis2021 --run --screenshot PNG`: answered in advance,
    nothing asked, the run ends without a failure message; a bad --classes is a one-line error, exit 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    video = write_video(tmp_path / "clip.mp4", n=4, size=(64, 48))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SYNCVIS_SETTINGS_DIR=str(tmp_path / "settings"),
               OMP_NUM_THREADS="1")
    base = [sys.executable, str(root / "main.py"), str(video), "--checkpoint", str(official)]
    r = subprocess.run(base + ["--classes", "ytvis2020"], capture_output=True, text=True, timeout=120, env=env,
                       cwd=root)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == \
        ["error: ytvis2020: --classes: neither one of ytvis2019, ytvis2021, ovis, coco nor a file"], r.stderr
    shot = tmp_path / "shot.png"
    r = subprocess.run(base + ["--classes", "ytvis2021", "--run", "--screenshot", str(shot)], capture_output=True,
                       text=True, timeout=300, env=env, cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.is_file() and "run failed" not in r.stderr and "Traceback" not in r.stderr
    stored = json.loads((tmp_path / "settings" / official_classes.STORE_NAME).read_text())
    assert stored == {str(official.resolve()): "ytvis2021"}


def test_compare_pane_other_checkpoint_asks_for_an_official_files_classes(qtbot, win, official, tmp_path,
                                                                          monkeypatch):
    import app.compare as cmp

    monkeypatch.setattr(cmp.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(official), "")))
    combo = win.comparison.combos[2]
    before = combo.currentData()

    seen = []
    _answer_later(None, seen)                                   # cancelled: the pane keeps what it had
    combo.setCurrentIndex(combo.findData(cmp.OTHER))
    assert seen and "40 classes but no class names" in seen[1][0]
    assert combo.currentData() == before and combo.findData(str(official)) < 0
    assert official_classes.chosen_classes(official) is None

    seen = []
    _answer_later("YouTube-VIS 2019 (40 classes)", seen)      # answered: the pane shows the file
    combo.setCurrentIndex(combo.findData(cmp.OTHER))
    assert combo.currentData() == str(official)
    assert str(official) in [s.key for s in win.comparison.sources]
    assert official_classes.chosen_classes(official) == "ytvis2019"
