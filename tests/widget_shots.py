"""Realistic fake data for the widgets and a helper that saves a screenshot of every view.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.widget_shots /tmp/shots

The synthetic scene (a road with a car, two people and a dog moving over a few frames) gives the views what a
real run gives them: masks that overlap, tracks that start and end, scores that dip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from widgets.colors import track_color

H, W = 360, 640
CATEGORIES = {1: "person", 2: "car", 3: "person", 4: "dog", 5: "bicycle"}


def _ellipse(cx: float, cy: float, rx: float, ry: float, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def demo_frame(t: int, h: int = H, w: int = W) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Frame t of the scene (RGB uint8) and the mask of each track present on it."""
    rng = np.random.default_rng(t)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w, 3), np.float32)
    sky = yy < h * 0.45
    img[sky] = np.stack([110 + 60 * yy / h, 150 + 50 * yy / h, 205 + 0 * yy], -1)[sky]
    img[~sky] = np.stack([90 + 0 * yy, 95 + 0 * yy, 88 + 0 * yy], -1)[~sky]
    img[(yy > h * 0.7) & (yy < h * 0.72)] = (220, 210, 120)  # road line
    img += rng.normal(0, 4, img.shape)
    masks: dict[int, np.ndarray] = {}
    car = (xx > 60 + 6 * t) & (xx < 300 + 6 * t) & (yy > 170) & (yy < 270)
    car |= _ellipse(180 + 6 * t, 175, 80, 40, h, w) & (yy < 175)
    masks[2] = car
    masks[1] = _ellipse(420 - 2 * t, 190, 22, 70, h, w) | _ellipse(420 - 2 * t, 110, 16, 16, h, w)
    if t >= 3:
        masks[3] = _ellipse(520, 200, 20, 66, h, w) | _ellipse(520, 126, 15, 15, h, w)
    masks[4] = _ellipse(460 - 3 * t, 270, 40, 22, h, w)
    shades = {2: (40, 60, 140), 1: (170, 80, 60), 3: (60, 130, 70), 4: (140, 110, 70)}
    for tid, m in masks.items():
        img[m] = np.array(shades[tid]) + rng.normal(0, 10, (int(m.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8), masks


def demo_overlays(t: int, selected: int = 1):
    from widgets.video_canvas import MaskOverlay

    frame, masks = demo_frame(t)
    scores = {1: 0.94, 2: 0.97, 3: 0.71, 4: 0.58}
    ovs = [
        MaskOverlay(tid, m, track_color(tid), f"{CATEGORIES[tid]} {scores[tid]:.2f}", tid == selected)
        for tid, m in masks.items()
    ]
    return frame, ovs


def demo_tracks(num_frames: int = 300, seed: int = 0):
    """Per track: presence (bool) and per-frame scores, with gaps, late starts and a score dip."""
    rng = np.random.default_rng(seed)
    out = {}
    for tid in range(1, 9):
        start = int(rng.integers(0, num_frames // 2)) if tid > 2 else 0
        end = int(rng.integers(start + num_frames // 5, num_frames + 1))
        p = np.zeros(num_frames, bool)
        p[start:end] = True
        if tid % 3 == 0:
            p[start + (end - start) // 3 : start + (end - start) // 3 + 12] = False
        s = np.clip(
            0.85 + 0.05 * np.sin(np.arange(num_frames) / 9 + tid) + rng.normal(0, 0.02, num_frames), 0, 1
        )
        if tid == 2:
            s[120:150] = 0.25
        s[~p] = np.nan
        out[tid] = (p, s)
    return out


def build_views() -> dict:
    """Every view filled with demo data, sized like a docked panel; name -> widget."""
    from widgets import (
        AggregationView,
        CompareView,
        FrameVideoView,
        Lane,
        MaskOverlay,
        ReviewItem,
        ReviewQueue,
        Timeline,
        TrackList,
        TrackRow,
        VideoCanvas,
    )

    views = {}
    canvas = VideoCanvas()
    frame, ovs = demo_overlays(4)
    canvas.set_frame(frame)
    canvas.set_overlays(ovs)
    canvas.resize(800, 470)
    views["canvas"] = canvas

    # Masks that all start in the top row (scene-wide "stuff" and a mask covering the whole frame): their
    # labels must not pile up in one corner.
    crowded = VideoCanvas()
    frame, ovs = demo_overlays(4, selected=2)
    yy, xx = np.mgrid[:H, :W]
    wide = [
        MaskOverlay(10, yy < H * 0.45, track_color(10), "sky 0.88"),
        MaskOverlay(11, np.ones((H, W), bool), track_color(11), "scene 0.41"),
        MaskOverlay(12, (yy < 60) | (xx < 40), track_color(12), "frame edge 0.35"),
    ]
    crowded.set_frame(frame)
    crowded.set_overlays(wide + ovs)
    crowded.set_opacity(0.25)
    crowded.resize(800, 470)
    views["canvas_crowded"] = crowded

    empty = VideoCanvas()
    empty.resize(640, 360)
    views["canvas_empty"] = empty

    n = 300
    tracks = demo_tracks(n)
    cats = ["person", "car", "person", "dog", "bicycle", "person", "car", "horse"]
    tl = Timeline()
    tl.set_lanes(
        n, [Lane(tid, track_color(tid), p, s, f"{tid} {cats[tid - 1]}") for tid, (p, s) in tracks.items()]
    )
    tl.set_current_frame(137)
    tl.set_selected(2)
    tl.resize(900, 200)
    views["timeline"] = tl

    big = Timeline()
    rng = np.random.default_rng(3)
    big_lanes = []
    for i in range(200):
        p = np.zeros(10_000, bool)
        a = int(rng.integers(0, 9_000))
        p[a : a + int(rng.integers(100, 10_000 - a))] = True
        s = np.clip(rng.normal(0.8, 0.1, 10_000), 0, 1)
        big_lanes.append(Lane(i, track_color(i), p, s, f"{i} {cats[i % len(cats)]}"))
    big.set_lanes(10_000, big_lanes)
    big.set_current_frame(4_200)
    big.set_selected(7)
    big.resize(900, 260)
    views["timeline_200x10000"] = big

    lst = TrackList()
    lst.set_tracks(
        [
            TrackRow(tid, track_color(tid), cats[tid - 1], float(np.nanmean(s)), p, visible=tid != 5)
            for tid, (p, s) in tracks.items()
        ]
    )
    lst.set_selected(2)
    lst.set_current_frame(137)
    lst.resize(420, 260)
    views["track_list"] = lst

    short = TrackList()  # a 12-frame clip: each frame is a wide block, consecutive frames touch
    pattern = ["111111111111", "000111111000", "110011100111", "000000000001"]
    short.set_tracks(
        [
            TrackRow(i + 1, track_color(i + 1), cats[i], 0.9 - 0.1 * i, np.array([c == "1" for c in pat]))
            for i, pat in enumerate(pattern)
        ]
    )
    short.set_current_frame(4)
    short.resize(420, 140)
    views["track_list_12_frames"] = short

    lst_empty = TrackList()
    lst_empty.resize(420, 160)
    views["track_list_empty"] = lst_empty

    fv = FrameVideoView()
    frame, masks = demo_frame(4)
    fmask = masks[2].copy()
    fmask[:, 300:] = False
    fv.set_track_label("Track 2 · car · video query 12")
    fv.set_frame_pair(frame, masks[2], fmask, track_color(2))
    x = np.arange(n)
    vs = np.clip(0.9 + 0.04 * np.sin(x / 11), 0, 1)
    fs = np.clip(0.8 + 0.1 * np.sin(x / 5), 0, 1)
    fs[120:150] = 0.3
    iou = np.clip(0.85 + 0.05 * np.cos(x / 7), 0, 1)
    iou[120:150] = 0.4
    vs[250:], fs[250:], iou[250:] = np.nan, np.nan, np.nan
    fv.set_curves(vs, fs, iou)
    fv.set_current_frame(137)
    fv.resize(760, 480)
    views["frame_video"] = fv

    cv = CompareView(num_panes=3)
    for i, (title, ap) in enumerate(
        (("video-only · tiny-video.pt", 0.384), ("frame-only · linked", 0.351), ("sync · SyncVIS", 0.412))
    ):
        frame, ovs = demo_overlays(4, selected=-1)
        cv.set_pane(i, title, frame, ovs[: 4 - i] if i < 2 else ovs, ap)
    cv.resize(1200, 300)
    views["compare"] = cv

    cv2 = CompareView(num_panes=3)  # as the app does: three panes built, two shown
    for i, (title, ap) in enumerate((("video-level", 0.384), ("sync · SyncVIS", 0.412), ("unused", None))):
        frame, ovs = demo_overlays(4, selected=-1)
        cv2.set_pane(i, title, frame, ovs, ap)
    cv2.set_num_panes(2)
    cv2.resize(1000, 420)
    views["compare_two"] = cv2

    ag = AggregationView()
    rng = np.random.default_rng(1)
    frames, layers = 36, 6
    w = rng.gamma(2.0, 1.0, (frames, layers)) * np.exp(-(((np.arange(frames)[:, None] - 14) / 6.0) ** 2))
    w += 0.05
    w[32:] = np.nan  # frames outside the windows with internals
    sel = [sorted(rng.choice(100, 5, replace=False).tolist()) for _ in range(frames)]
    ag.set_forward(w, sel, "video query 12 · track 2 car")
    ag.set_current_frame(14)
    ag.resize(760, 300)
    views["aggregation"] = ag

    ag_rev = AggregationView()
    ag_rev.set_current_frame(14)
    ag_rev.set_direction("reverse")
    rw = rng.gamma(1.0, 1.0, (100, layers)) * (rng.random((100, 1)) < 0.2)
    ag_rev.set_reverse(rw, [3, 12, 40])
    ag_rev.resize(760, 300)
    views["aggregation_reverse"] = ag_rev

    ag_empty = AggregationView()
    ag_empty.resize(600, 220)
    views["aggregation_empty"] = ag_empty

    rq = ReviewQueue()
    rq.set_items(
        [
            ReviewItem(134, 0.91, ["score drop", "frame/video disagreement"]),
            ReviewItem(121, 0.77, ["mask jump"]),
            ReviewItem(3, 0.64, ["track appears"]),
            ReviewItem(250, 0.52, ["track vanishes", "class flip"]),
            ReviewItem(77, 0.31, ["mask jump"]),
        ]
    )
    rq.next_item(-1)
    rq.resize(420, 220)
    views["review_queue"] = rq
    return views


def save_shots(folder: Path) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    views = build_views()
    paths = []
    for w in views.values():
        w.show()
    QApplication.processEvents()
    for name, w in views.items():
        if hasattr(w, "fit_view"):
            w.fit_view()
        QApplication.processEvents()
        p = folder / f"{name}.png"
        w.grab().save(str(p))
        paths.append(p)
    from PySide6.QtCore import QEvent

    for w in views.values():
        w.close()
        w.deleteLater()
    # Delete now, while Python still owns the wrappers (pyqtgraph items torn down at exit print errors).
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return paths


if __name__ == "__main__":
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    for p in save_shots(Path(sys.argv[1] if len(sys.argv) > 1 else "widget_shots")):
        print(p)
    # (PySide6 6.12.0 aborted here at teardown, see tests/test_qt_runtime.py; pyproject.toml excludes it)
