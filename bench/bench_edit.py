"""Editing costs: opening a big project, one committed edit, and (with Qt) a brush dab to the redraw.

    python bench/bench_edit.py [--frames 1000] [--tracks 20] [--width 1280 --height 720]

Prints medians and p95 measured in this run (the machines are noisy; targets: open < 1 s for 1,000 frames x 20
tracks, one committed edit < 5 ms, brush dab to redraw <= 16 ms median at 1280x720 with 20 tracks).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data.masks import encode  # noqa: E402
from engine.project import ops  # noqa: E402
from engine.project.model import Category, Mask, Provenance, TrackFields, TrackState, VideoInfo  # noqa: E402
from engine.project.project import Project  # noqa: E402


def _masks(h: int, w: int, tracks: int, frames: int, rng: np.random.Generator) -> list[list[dict]]:
    """Moving ellipses: one RLE per track and frame (encoded once per track shape, shifted per frame)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(tracks):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.1, 0.9) * w
        ry, rx = rng.uniform(0.04, 0.12) * h, rng.uniform(0.03, 0.1) * w
        vx = rng.uniform(-1, 1)
        row = []
        for f in range(0, frames, 25):  # 40 distinct shapes per track; the rest repeat (RLE size is what counts)
            m = ((yy - cy) / ry) ** 2 + ((xx - (cx + vx * f) % w) / rx) ** 2 <= 1
            row.append(encode(m))
        out.append([row[f // 25] for f in range(frames)])
    return out


def build_project(path: Path, frames: int, tracks: int, h: int, w: int) -> Project:
    info = VideoInfo(str(path.with_suffix(".mp4")), frames, w, h, 25.0)
    proj = Project.create(path, info)
    prov = Provenance.now("model", "bench")
    rles = _masks(h, w, tracks, frames, np.random.default_rng(0))
    cats = [Category(1, "thing", (200, 80, 80))]
    states = []
    for t in range(tracks):
        st = TrackState(t + 1, TrackFields(1, 0.9))
        st.masks = {f: Mask(rles[t][f], prov) for f in range(frames)}
        states.append(st)
    proj.store.write_all(cats, states)
    proj.doc.load(cats, states)
    return proj


def pct(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    return f"median {np.median(a):.2f} ms, p95 {np.percentile(a, 95):.2f} ms (n={a.size})"


def bench_store(args) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.svproj"
        t0 = time.perf_counter()
        proj = build_project(path, args.frames, args.tracks, args.height, args.width)
        print(f"build {args.frames} frames x {args.tracks} tracks at {args.width}x{args.height}: "
              f"{time.perf_counter() - t0:.2f} s, file {path.stat().st_size / 2**20:.1f} MB")
        proj.close()
        opens = []
        for _ in range(5):
            t0 = time.perf_counter()
            proj = Project.open(path, require_video=False)
            opens.append(time.perf_counter() - t0)
            proj.close()
        print(f"open project: {pct(opens)}  (target < 1000 ms)")
        proj = Project.open(path, require_video=False)
        rng = np.random.default_rng(1)
        h, w = args.height, args.width
        costs, changes = [], []
        for i in range(200):
            m = np.zeros((h, w), bool)
            y, x = rng.integers(0, h - 80), rng.integers(0, w - 80)
            m[y:y + 60, x:x + 70] = True
            edit = ops.set_mask(proj.doc, int(rng.integers(1, args.tracks + 1)), int(rng.integers(0, args.frames)),
                                encode(m), Provenance.now("human", "brush"))
            t0 = time.perf_counter()
            proj.doc.apply(edit)
            t1 = time.perf_counter()
            proj.store.commit(edit)
            costs.append(time.perf_counter() - t1)
            changes.append(t1 - t0)
            del i
        print(f"one committed edit (SQLite transaction, WAL, synchronous=FULL): {pct(costs)}  (target < 5 ms)")
        print(f"applying it to the document: {pct(changes)}")
        proj.close()


def bench_brush(args) -> None:
    """Brush dab -> canvas redraw through the window's own canvas and edit tool (offscreen Qt): a 1280x720 frame
    with `--tracks` masks on screen, each dab timed from the mouse move to the repainted viewport."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from widgets.colors import track_color
    from widgets.edit_tools import CanvasTools
    from widgets.video_canvas import MaskOverlay, VideoCanvas

    app = QApplication.instance() or QApplication([])
    h, w = args.height, args.width
    rng = np.random.default_rng(0)
    canvas = VideoCanvas()
    canvas.resize(1280, 800)
    canvas.show()
    canvas.set_frame(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    from engine.data.masks import decode

    rles = _masks(h, w, args.tracks, 1, rng)
    canvas.set_overlays([MaskOverlay(t + 1, decode(rles[t][0]), track_color(t + 1), f"thing {t + 1}")
                         for t in range(args.tracks)])
    canvas.fit_view()
    app.processEvents()
    tools = CanvasTools(canvas)
    tools.set_tool("brush")
    tools.set_brush_size(24)

    def send(kind, x, y):
        pos = canvas.map_image_to_widget(x, y)
        glob = QPointF(canvas.viewport.mapToGlobal(pos.toPoint()))
        b = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        QApplication.sendEvent(canvas.viewport, QMouseEvent(kind, pos, glob, b, Qt.MouseButton.LeftButton,
                                                            Qt.KeyboardModifier.NoModifier))

    lat = []
    for stroke in range(10):
        y = 100 + 50 * stroke
        send(QEvent.Type.MouseButtonPress, 100, y)
        for i in range(60):
            t0 = time.perf_counter()
            send(QEvent.Type.MouseMove, 100 + 15 * i, y + 10 * np.sin(i / 5))
            canvas.viewport.repaint()
            lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        send(QEvent.Type.MouseButtonRelease, 100 + 15 * 59, y)
        app.processEvents()
    print(f"brush dab to redraw at {w}x{h}, {args.tracks} tracks on screen: {pct(lat)}  (target <= 16 ms median)")
    canvas.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--tracks", type=int, default=20)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--no-brush", action="store_true")
    args = p.parse_args()
    bench_store(args)
    if not args.no_brush:
        bench_brush(args)


if __name__ == "__main__":
    main()
