"""app/fit_note.py: a shapes model on a real video gets a note pointing to fine-tuning; on the synthetic
generator's videos (or with a model of other classes) there is none. The banner is not modal."""
from __future__ import annotations

import json

from app.fit_note import class_fit_note, from_synthetic_generator, trained_on_shapes
from engine.data.synthetic_shapes import CATEGORY_NAMES

SHAPES = list(CATEGORY_NAMES)


def test_shapes_model_on_a_real_video_gets_the_note(tmp_path):
    video = tmp_path / "bikes.mp4"
    video.write_bytes(b"")
    note = class_fit_note(SHAPES, video, "/x/tiny-sync.pt")
    assert note is not None and "tiny-sync.pt" in note and "Fine-tune" in note and "--init" in note


def test_no_note_on_synthetic_videos_or_for_other_classes(tmp_path):
    assert class_fit_note(SHAPES, "resources/demo/demo.mp4") is None
    assert class_fit_note(SHAPES, tmp_path / "synth_default_s3_0002.mp4") is None
    assert class_fit_note(SHAPES, tmp_path / "JPEGImages" / "synth_hard_s102_0000") is None
    side = tmp_path / "clip.mp4"
    side.with_suffix(".ytvis.json").write_text(json.dumps({"categories": [{"id": 1, "name": "ring"}]}))
    assert from_synthetic_generator(side)
    assert class_fit_note(["person", "car"], tmp_path / "street.mp4") is None
    assert not trained_on_shapes([]) and trained_on_shapes(reversed(SHAPES))


def test_banner_is_a_label_over_the_canvas_not_a_dialog(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.main_window import MainWindow
    from app.settings import Settings

    win = MainWindow(Settings(tmp_path / "s"))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    win.status.show_banner(class_fit_note(SHAPES, tmp_path / "street.mp4", "tiny-sync.pt"))
    assert "synthetic shapes" in win.status.banner_text()
    assert not any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets())
    banner = win.status._banner
    assert banner.parent() is win.canvas and banner.geometry().bottom() <= win.canvas.height()
    win.status.hide_banner()
    assert win.status.banner_text() == ""
