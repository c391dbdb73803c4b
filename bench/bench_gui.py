"""The window's own costs, measured through the real MainWindow (offscreen Qt):

    python bench/bench_gui.py [--frames 60] [--tracks 20] [--width 1280 --height 720] [--no-run]

1. Frame-change latency at 1280x720 with 20 tracks on screen: from `seek(i)` to the event loop having
   drawn everything that follows the frame (canvas, timeline, track list, status bar, the open analysis
   panel), median and p95 over a sweep of frames, with the Compare dock closed and open (three panes: this
   run's video-level and frame-level read-outs and a third model's result). Target: <= 20 ms median both ways.
2. The longest GUI-thread stall while a real run goes (the bundled tiny-sync model on the same 720p video,
   at the window's test size): the gaps of a precise 5 ms QTimer, max and p99. A gap is the stall plus at most
   the timer's 5 ms, so the longest gap bounds the longest stall. The 20 ms timer of the earlier reports runs
   alongside and is printed too: its gap overstates a stall by up to 20 ms (a 21 ms turn just before a tick
   is due reads as a 41 ms gap).

The video is the synthetic generator's at 1280x720 (written to a temporary mp4); the tracks of (1) are moving
ellipses made here (the model's own tracks are few and small), so the cost is that of 20 real masks.
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
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.data.masks import encode  # noqa: E402
from engine.types import Track, VideoPrediction  # noqa: E402

TICK_MS = 5   # the stall probe's timer: a gap is the stall plus at most this


def pct(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    return f"median {np.median(a):.1f} ms, p95 {np.percentile(a, 95):.1f} ms (n={a.size})"


def ellipse_tracks(h: int, w: int, n_tracks: int, frames: int, seed: int, first_id: int = 1) -> list[Track]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(n_tracks):
        cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.1, 0.9) * w
        ry, rx = rng.uniform(0.04, 0.12) * h, rng.uniform(0.03, 0.09) * w
        vx, vy = rng.uniform(-4, 4), rng.uniform(-2, 2)
        masks = []
        for f in range(frames):
            m = ((yy - (cy + vy * f) % h) / ry) ** 2 + ((xx - (cx + vx * f) % w) / rx) ** 2 <= 1
            masks.append(encode(m))
        score = float(rng.uniform(0.2, 0.9))
        out.append(Track(first_id + t, int(rng.integers(1, 9)), score, masks, [score] * frames, query=t))
    return out


def profile(fn) -> None:
    """BENCH_PROFILE=closed|open: where one sweep's time goes (cumulative, top 40)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    st = pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "cumulative"))
    st.print_callers(os.environ["BENCH_CALLERS"]) if os.environ.get("BENCH_CALLERS") else st.print_stats(40)


def make_video(path: Path, frames: int, w: int, h: int) -> None:
    from engine.data.synthetic import generate_video, write_mp4

    v = generate_video("default", 7, (w, h))
    reps = int(np.ceil(frames / len(v.frames)))
    write_mp4(path, np.concatenate([v.frames] * reps)[:frames], fps=25)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--tracks", type=int, default=20)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--sweeps", type=int, default=2, help="passes over the frames per measurement")
    p.add_argument("--no-run", action="store_true", help="skip the stall measurement (no model run)")
    p.add_argument("--side", choices=["review", "frame_video", "aggregation"], default="review",
                   help="the right-hand analysis tab in front during the sweeps (default: the window's default)")
    p.add_argument("--keep-video", metavar="MP4", help="write the 720p video here instead of a temp file")
    args = p.parse_args()

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.compare import RUN_FRAME, RUN_VIDEO
    from app.launch import apply_theme
    from app.main_window import MainWindow
    from app.run_controller import RESOURCES
    from app.settings import Settings

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    tmp = tempfile.TemporaryDirectory()
    video = Path(args.keep_video) if args.keep_video else Path(tmp.name) / "bench_720p.mp4"
    h, w, n = args.height, args.width, args.frames
    t0 = time.perf_counter()
    make_video(video, n, w, h)
    tracks = ellipse_tracks(h, w, args.tracks, n, 0)
    frame_tracks = ellipse_tracks(h, w, args.tracks, n, 1)
    other = ellipse_tracks(h, w, args.tracks, n, 2)
    print(f"setup: {n} frames at {w}x{h}, {args.tracks} tracks per source ({time.perf_counter() - t0:.1f} s)")

    win = MainWindow(Settings(Path(tmp.name) / "settings"))
    win.resize(1600, 1000)
    win.show()
    assert win.open_video(str(video)), win.messages
    names = ["disc", "square", "triangle", "star", "ring", "cross", "ellipse", "hexagon"]
    pred = VideoPrediction("sync", n, h, w, names, tracks, frame_tracks=frame_tracks, checkpoint="bench")
    win.doc.set_prediction(pred)
    win.view.select(tracks[0].id)
    win.analysis_docks()[args.side].raise_()
    t0 = time.perf_counter()
    while win.analysis.pending():  # the review queue ranks in a thread: not part of a frame change
        app.processEvents()
        time.sleep(0.005)
    print(f"review queue ranked off the GUI thread in {time.perf_counter() - t0:.1f} s")
    for _ in range(20):
        app.processEvents()

    def sweep() -> list[float]:
        lat = []
        for _ in range(args.sweeps):
            for i in range(n):
                t0 = time.perf_counter()
                win.seek(i)
                app.processEvents()
                lat.append(time.perf_counter() - t0)
        return lat

    sweep()  # warm the reader's and the masks' caches, as playback would after the first pass
    if os.environ.get("BENCH_PROFILE") == "closed":
        profile(sweep)
    closed = sweep()
    print(f"frame change, Compare closed: {pct(closed)}  (target <= 20 ms median)")

    third = str(RESOURCES / "models" / "tiny-video.pt")
    win.set_compare_sources([RUN_VIDEO, RUN_FRAME, third])
    src = win.comparison.sources[2]
    src.doc = win.comparison._doc_of(VideoPrediction("video", n, h, w, names, other, checkpoint=third))
    win.dock_compare.show()
    win.dock_compare.raise_()
    for _ in range(20):
        app.processEvents()
    sizes = [f"{c.width()}x{c.height()}" for c in win.comparison.view_widget.panes()]
    sweep()
    if os.environ.get("BENCH_PROFILE") == "open":
        profile(sweep)
    opened = sweep()
    print(f"frame change, Compare open ({len(sizes)} panes of {', '.join(sizes)} px): {pct(opened)}  "
          "(target <= 20 ms median)")
    win.dock_compare.hide()
    win.dock_timeline.raise_()
    t_settle = time.perf_counter()
    while time.perf_counter() - t_settle < 0.5:   # the docks' relayout and repaint are not part of the run
        app.processEvents()
        time.sleep(0.005)

    if not args.no_run:
        import gc

        from app.heap import freeze_heap

        freeze_heap()   # the 20-track sources made above are long-lived, as a run's import is (the window freezes it)
        gc_pauses: list[float] = []
        gc_t0 = [0.0]

        def on_gc(phase: str, _info: dict) -> None:
            if phase == "start":
                gc_t0[0] = time.perf_counter()
            else:
                gc_pauses.append(time.perf_counter() - gc_t0[0])

        gaps: list[float] = []
        gap_report = float(os.environ.get("BENCH_GAP_MS", "40")) / 1000   # BENCH_VERBOSE lists gaps longer
        last = [time.perf_counter()]

        marks: list[tuple[float, str]] = []
        long_gaps: list[tuple[float, float]] = []

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            if now - last[0] > gap_report:
                long_gaps.append((last[0] - t_run, now - last[0]))
            last[0] = now

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(TICK_MS)
        timer.timeout.connect(tick)
        # The measure of the earlier reports, for comparison: a 20 ms timer, whose gap is the stall plus up to 20 ms.
        coarse_gaps: list[float] = []
        coarse_last = [0.0]

        def coarse_tick() -> None:
            now = time.perf_counter()
            coarse_gaps.append(now - coarse_last[0])
            coarse_last[0] = now

        coarse = QTimer()
        coarse.setInterval(20)
        coarse.timeout.connect(coarse_tick)
        done: list = []
        win.run_finished.connect(done.append)
        t_run = time.perf_counter()
        job = win.run_model(str(RESOURCES / "models" / "tiny-sync.pt"))
        etas: list[tuple[int, float]] = []
        job.progress.connect(lambda d, _t, eta: etas.append((d, eta)))
        job.progress.connect(lambda d, _t, _e: marks.append((time.perf_counter() - t_run, f"progress {d}")))
        job.partial.connect(lambda _p: marks.append((time.perf_counter() - t_run, "partial")))
        job.started.connect(lambda m: marks.append((time.perf_counter() - t_run, m)))
        job.ended.connect(lambda _o: marks.append((time.perf_counter() - t_run, "ended")))
        last[0] = coarse_last[0] = time.perf_counter()
        gc.callbacks.append(on_gc)
        timer.start()
        coarse.start()
        prof = None
        if os.environ.get("BENCH_PROFILE") == "run":   # the GUI thread only: what it does while the worker runs
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        while not done and time.perf_counter() - t_run < 900:
            app.processEvents()
            time.sleep(0.002)
        while win.analysis.pending() and time.perf_counter() - t_run < 900:  # the queue ranks after the run
            app.processEvents()
            time.sleep(0.002)
        timer.stop()
        coarse.stop()
        gc.callbacks.remove(on_gc)
        if prof is not None:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        if os.environ.get("BENCH_VERBOSE"):
            print(f"gaps > {gap_report * 1000:.0f} ms (start s, length ms):",
                  [(round(a, 2), round(b * 1000)) for a, b in long_gaps])
            print("events (s):", [(round(a, 2), m) for a, m in marks])
        secs = time.perf_counter() - t_run
        a = np.asarray(gaps) * 1000
        first_eta = next(((d, e) for d, e in etas if e >= 0), None)
        eta_text = f"first ETA after {first_eta[0]} frames" if first_eta else "no ETA"
        print(f"run of tiny-sync.pt on {n} frames at {w}x{h} (network input {win.runs.test_size_text()}): "
              f"{secs:.1f} s, {eta_text}")
        print(f"GUI-thread stall during the run ({TICK_MS} ms timer): longest gap {a.max():.0f} ms, p99 "
              f"{np.percentile(a, 99):.0f} ms, median {np.median(a):.0f} ms (n={a.size}; target: longest <= "
              "one frame's budget, 40 ms at 25 fps)")
        print(f"  the same run through a 20 ms timer (the earlier reports' measure, up to 20 ms over the stall): "
              f"longest gap {max(coarse_gaps) * 1000:.0f} ms, p99 {np.percentile(coarse_gaps, 99) * 1000:.0f} ms")
        print(f"garbage-collector passes during the run: {len(gc_pauses)}, longest "
              f"{max(gc_pauses, default=0) * 1000:.0f} ms (any thread)")
    win.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
