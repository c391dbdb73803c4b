"""Open the window: `python main.py [VIDEO] [--checkpoint CKPT] [--classes NAME|FILE] [--run] [--screenshot PNG]`.

`--screenshot` is for docs, CI and bug reports: it waits until the video is open and every job has finished,
saves the window as a PNG and exits (status 0, or 1 when the wait timed out or the video failed to open).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

DEMO_VIDEO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.mp4"
# The window's size bounds (--size): under 320x240 the docks cannot lay out; past 16384 px a side Qt cannot
# allocate the backing store (it aborted with status 134 before this check).
MIN_SIZE, MAX_SIDE = (320, 240), 16384


class BadArgument(ValueError):
    """A command-line value the window cannot use: `error: <flag>: <problem>`, exit status 2."""

    def __init__(self, flag: str, problem: str):
        super().__init__(f"{flag}: {problem}")


def parse_size(text: str) -> tuple[int, int]:
    """'1600x1000' (also 'X', '*' or spaces around) -> (1600, 1000); BadArgument when it is not WxH or out of
    bounds (MIN_SIZE .. MAX_SIDE)."""
    import re

    m = re.fullmatch(r"\s*(\d{1,9})\s*[xX*×]\s*(\d{1,9})\s*", text or "")
    if m is None:
        raise BadArgument("--size", f"must look like WIDTHxHEIGHT (e.g. 1600x1000), got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        raise BadArgument("--size", f"{w}x{h} is too small (at least {MIN_SIZE[0]}x{MIN_SIZE[1]})")
    if max(w, h) > MAX_SIDE:
        raise BadArgument("--size", f"{w}x{h} is too large (at most {MAX_SIDE} px a side)")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="SyncVIS Studio: open the window "
                                "(headless commands: "
                                "`main.py --help` lists them when given as the first argument).")
    p.add_argument("video", nargs="?", help="video file or frame folder to open")
    p.add_argument("--demo", action="store_true",
                   help=f"open the bundled demo video ({DEMO_VIDEO.name}, with its "
                   "ground truth)")
    p.add_argument("--checkpoint", help="model checkpoint (default: resources/models/tiny-sync.pt)")
    p.add_argument("--classes", metavar="NAME|FILE",
                   help="class names of an official --checkpoint (Mask2Former / VITA / SyncVIS .pth or .pkl): "
                        "ytvis2019, ytvis2021, ovis, coco or a FILE; needed when its 40 classes could be "
                        "YouTube-VIS 2019 or 2021 and its name does not say")
    p.add_argument("--device", choices=("cpu", "cuda"), help="where the model runs (default: last used)")
    p.add_argument("--run", action="store_true", help="run the model on the video at once")
    p.add_argument("--gt", help="ground truth YTVIS JSON to score runs against")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save the window as PNG when all work is done, then exit")
    p.add_argument("--size", default=None, help="window size WxH (e.g. 1600x1000), handy with --screenshot")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="--screenshot: give up waiting after this many seconds")
    return p


def launch(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        size = parse_size(args.size) if args.size is not None else None
    except BadArgument as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.classes is not None:
        from engine.data.vocabularies import check_classes_option
        from engine.errors import InputError

        try:
            if not args.checkpoint:
                raise InputError(None, "--classes: names the classes of an official --checkpoint; none given")
            check_classes_option(args.classes)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY") \
            and sys.platform.startswith("linux") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "syncvis-studio"])
    app.setApplicationName("SyncVIS Studio")
    app.setOrganizationName("SyncVIS")
    apply_theme(app)

    from app.main_window import MainWindow

    splash = None
    if not args.screenshot:   # the engine's imports take a few seconds before the window can show
        from PySide6.QtCore import Qt
        from PySide6.QtGui import QColor, QPixmap
        from PySide6.QtWidgets import QSplashScreen

        pix = QPixmap(420, 90)
        pix.fill(QColor(32, 33, 36))
        splash = QSplashScreen(pix)
        splash.showMessage("SyncVIS Studio\nstarting the engine (PyTorch)…", Qt.AlignmentFlag.AlignCenter,
                           QColor(230, 230, 230))
        splash.show()
        app.processEvents()
    win = MainWindow()
    if args.screenshot:
        win.show_message_boxes = False  # messages go to the status bar (and the log), never block the exit
    if size is not None:
        win.resize(*size)
    if args.checkpoint:
        if args.classes is not None:
            from app.official_classes import remember

            remember(Path(args.checkpoint).resolve(), args.classes)
        win.set_checkpoint(str(Path(args.checkpoint).resolve()))
    win.show()
    if splash is not None:
        splash.finish(win)

    video = args.video or (str(DEMO_VIDEO) if args.demo else None)
    state = {"ok": True, "t0": time.monotonic(), "code": 0}

    def start() -> None:
        if video:
            state["ok"] = win.open_video(video)
        if args.gt:
            win.load_ground_truth(args.gt)
        if args.run and state["ok"] and video:
            if args.device == "cuda" and not win.worker.info:
                QTimer.singleShot(200, start_run)  # wait for the worker to report the GPU
            else:
                start_run()

    def start_run() -> None:
        if args.device == "cuda" and not win.worker.info:
            QTimer.singleShot(200, start_run)
            return
        if args.device == "cuda":
            if win.worker.info.get("cuda"):
                win.device_combo.setCurrentIndex(1)
            else:
                win.show_message("GPU", "No CUDA GPU is available to torch: running on the CPU instead.")
        win.run_model()

    QTimer.singleShot(0, start)

    if args.screenshot:
        out = Path(args.screenshot)

        def poll() -> None:
            waited = time.monotonic() - state["t0"]
            busy = win.is_busy() or (args.run and state["ok"] and win.doc.run is None and not win.messages)
            if busy and waited < args.timeout:
                QTimer.singleShot(200, poll)
                return
            app.processEvents()
            out.parent.mkdir(parents=True, exist_ok=True)
            if not win.grab().save(str(out)):
                print(f"error: could not write {out}", file=sys.stderr)
                state["code"] = 2
            else:
                print(f"wrote {out}")
                state["code"] = 0 if state["ok"] and waited < args.timeout else 1
            for title, text in win.messages:
                print(f"{title}: {text}", file=sys.stderr)
            win.close()
            app.quit()

        QTimer.singleShot(300, poll)
    app.exec()
    return int(state["code"])


def apply_theme(app) -> None:
    """Fusion with a dark palette: the canvas and plots are dark, a light frame around them would glare."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    p = QPalette()
    base, window, text = QColor(30, 31, 34), QColor(43, 45, 49), QColor(220, 222, 226)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(38, 40, 44))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(20, 20, 22))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.Highlight, QColor(76, 155, 232))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor(138, 143, 152))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 113, 120))
    app.setPalette(p)
