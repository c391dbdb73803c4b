"""Screenshots of the window and every analysis view after a run (docs/app.md links them).

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screens/make_screens.py VIDEO NAME [--frame F]

Writes docs/screens/NAME-window.png, NAME-review.png, NAME-frame_video.png, NAME-aggregation.png and
NAME-compare.png (this run's video-level and frame-level read-outs and the run's own checkpoint), scaled to at
most 1000 px wide so the docs stay small.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("video")
    p.add_argument("name")
    p.add_argument("--frame", type=int, default=None)
    args = p.parse_args()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.compare import RUN_FRAME, RUN_VIDEO
    from app.launch import apply_theme
    from app.main_window import MainWindow
    from app.run_controller import RESOURCES
    from app.settings import Settings

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    tmp = tempfile.TemporaryDirectory()
    win = MainWindow(Settings(Path(tmp.name)))
    win.show_message_boxes = False
    win.resize(1600, 1000)
    win.show()
    assert win.open_video(args.video), win.messages
    ckpt = str(RESOURCES / "models" / "tiny-sync.pt")
    win.set_checkpoint(ckpt)
    done = []
    win.run_finished.connect(done.append)
    win.run_model()

    def wait(cond, secs=900):
        end = time.monotonic() + secs
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    wait(lambda: bool(done))
    wait(lambda: not win.is_busy())
    pred = done[0]
    frame = args.frame if args.frame is not None else pred.num_frames // 3
    win.seek(frame)
    if pred.tracks:
        win.view.select(pred.tracks[0].id)
    out = ROOT / "docs" / "screens"

    def save(widget, what):
        for _ in range(10):
            app.processEvents()
        img = widget.grab()
        if img.width() > 1000:
            img = img.scaledToWidth(1000, Qt.TransformationMode.SmoothTransformation)
        path = out / f"{args.name}-{what}.png"
        img.save(str(path))
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")

    save(win, "window")
    for dock, what in ((win.dock_review, "review"), (win.dock_frame_video, "frame_video"),
                       (win.dock_aggregation, "aggregation")):
        dock.show()
        dock.raise_()
        save(dock, what)
    win.set_compare_sources([RUN_VIDEO, RUN_FRAME, ckpt])
    win.dock_compare.show()
    win.dock_compare.raise_()
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    win.comparison.update_panes()
    save(win.dock_compare, "compare")
    print("pane titles:", win.compare.titles())
    print("banner:", win.status.banner_text()[:120])
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
