"""YTVIS metrics: hand-computed cases, single-frame equivalence with pycocotools' COCOeval, and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.data import masks
from engine.data.ytvis import Category, Dataset, Instance, VideoEntry, save_results
from engine.errors import DatasetFormatError
from engine.evaluation import AREA_RANGES, STAT_KEYS, evaluate, evaluate_files, video_iou

ROOT = Path(__file__).resolve().parents[1]
H, W = 40, 60


def _video(vid: int, t: int, h: int = H, w: int = W) -> VideoEntry:
    return VideoEntry(vid, [f"v{vid}/{i:05d}.jpg" for i in range(t)], width=w, height=h)


def _track(t: int, boxes: dict[int, tuple[int, int, int, int]], h: int = H, w: int = W) -> list:
    """Per-frame masks from {frame: (y0, y1, x0, x1)}; None on the other frames."""
    out = []
    for i in range(t):
        if i in boxes:
            m = np.zeros((h, w), dtype=bool)
            y0, y1, x0, x1 = boxes[i]
            m[y0:y1, x0:x1] = True
            out.append(masks.encode(m))
        else:
            out.append(None)
    return out


def _pred(vid, cat, score, segs):
    return {"video_id": vid, "category_id": cat, "score": score, "segmentations": segs}


def test_video_iou_sums_over_frames():
    # GT on frames 0-3 (10x10 each); prediction equal on 0-1, absent on 2-3, present on 4 where GT is absent,
    # both absent on 5: I = 200, U = 400 + 100 -> 0.4
    T = 6
    g = _track(T, {i: (0, 10, 0, 10) for i in range(4)})
    d = _track(T, {0: (0, 10, 0, 10), 1: (0, 10, 0, 10), 4: (0, 10, 0, 10)})
    assert video_iou([d], [g])[0, 0] == pytest.approx(0.4, abs=1e-15)
    # partial overlap on one frame: 10x10 vs 10x5 shifted -> I=50+0, U=100+... hand: frame0 I=50,U=100
    d2 = _track(T, {0: (0, 10, 5, 15)})
    assert video_iou([d2], [g])[0, 0] == pytest.approx(50 / (150 + 300), abs=1e-15)
    # nothing anywhere -> 0, not NaN
    e = _track(T, {})
    assert video_iou([e], [e])[0, 0] == 0.0


def test_video_iou_matches_numpy_decode():
    rng = np.random.default_rng(0)
    T, D, G = 7, 5, 4

    def rand_track():
        m = rng.random((T, H, W)) < rng.uniform(0.05, 0.6)
        segs = masks.encode_stack(m)
        return [s if rng.random() > 0.3 else None for s in segs]

    ds, gs = [rand_track() for _ in range(D)], [rand_track() for _ in range(G)]
    got = video_iou(ds, gs)
    for i in range(D):
        for j in range(G):
            inter = union = 0
            for t in range(T):
                a = masks.decode(ds[i][t]) if ds[i][t] is not None else np.zeros((H, W), bool)
                b = masks.decode(gs[j][t]) if gs[j][t] is not None else np.zeros((H, W), bool)
                inter += int((a & b).sum())
                union += int((a | b).sum())
            assert got[i, j] == inter / union


@pytest.mark.parametrize("width,passed", [(7, 5), (10, 10), (5, 1), (4, 0)])
def test_single_match_ap_counts_thresholds(width, passed):
    # GT: 10x10 box on 3 frames; prediction: 10 x `width` inside it on all 3 -> video IoU = width / 10
    T = 3
    gt = Dataset(
        [_video(1, T)],
        [Category(1, "a")],
        [Instance(1, 1, 1, _track(T, {i: (0, 10, 0, 10) for i in range(T)}))],
    )
    res = [_pred(1, 1, 0.9, _track(T, {i: (0, 10, 0, width) for i in range(T)}))]
    r = evaluate(gt, res)
    thrs = np.linspace(0.5, 0.95, 10)
    assert passed == int((width / 10 >= thrs - 1e-12).sum())
    assert r.stats["AP"] == pytest.approx(passed / 10, abs=1e-12)
    # precision is tp / (tp + fp + eps) in the reference, so "1" is 1 - 1e-16
    assert r.stats["AP50"] == pytest.approx(1.0 if width >= 5 else 0.0, abs=1e-12)
    assert r.stats["AP75"] == pytest.approx(1.0 if width >= 8 else 0.0, abs=1e-12)
    assert r.stats["AR1"] == pytest.approx(passed / 10, abs=1e-12)
    assert r.stats["APs"] == r.stats["AP"]  # 100 px objects are small (< 128^2)
    assert r.stats["APm"] == -1 and r.stats["APl"] == -1 and r.stats["ARm"] == -1
    assert r.per_category == {"a": r.stats["AP"]}
    pv = r.per_video[1]
    assert pv["best_iou"] == {1: pytest.approx(width / 10)}
    assert (pv["matched"], pv["missed"], pv["false_positives"]) == ((1, 0, 0) if width >= 5 else (0, 1, 1))


def test_false_positive_ranked_first_hand_computed_ap():
    # three GT objects; predictions by score: TP(g1), FP, TP(g2); g3 is missed.
    # rc = [1/3, 1/3, 2/3], pr = [1, 1/2, 2/3] -> interpolated [1, 2/3, 2/3];
    # recall points 0.00..0.33 (34) take 1, 0.34..0.66 (33) take 2/3, above 2/3 none -> AP = (34 + 22) / 101
    T = 2
    boxes = [(0, 8, 0, 8), (0, 8, 20, 28), (20, 28, 0, 8)]
    gts = [Instance(i + 1, 1, 1, _track(T, {0: b, 1: b})) for i, b in enumerate(boxes)]
    gt = Dataset([_video(1, T)], [Category(1, "a"), Category(2, "b")], gts)
    res = [
        _pred(1, 1, 0.7, _track(T, {0: boxes[1], 1: boxes[1]})),
        _pred(1, 1, 0.9, _track(T, {0: boxes[0], 1: boxes[0]})),
        _pred(1, 1, 0.8, _track(T, {0: (30, 38, 40, 48)})),
    ]
    r = evaluate(gt, res)
    assert r.stats["AP"] == pytest.approx(56 / 101, abs=1e-12)
    assert r.stats["AP50"] == pytest.approx(56 / 101, abs=1e-12)
    assert r.stats["AR1"] == pytest.approx(1 / 3)
    assert r.stats["AR10"] == pytest.approx(2 / 3) and r.stats["AR100"] == pytest.approx(2 / 3)
    assert r.per_category == {"a": pytest.approx(56 / 101), "b": -1.0}
    pv = r.per_video[1]
    assert (pv["gt"], pv["pred"], pv["matched"], pv["missed"], pv["false_positives"]) == (3, 3, 2, 1, 1)
    assert pv["best_iou"] == {1: 1.0, 2: 1.0, 3: 0.0}
    assert r.mean_best_iou() == pytest.approx(2 / 3)


def test_crowd_ground_truth_is_ignored():
    T = 2
    b = (0, 10, 0, 10)
    gt = Dataset(
        [_video(1, T)],
        [Category(1, "a")],
        [
            Instance(1, 1, 1, _track(T, {0: b, 1: b})),
            Instance(2, 1, 1, _track(T, {0: (20, 30, 20, 40), 1: (20, 30, 20, 40)}), iscrowd=1),
        ],
    )
    # a prediction on the crowd region is neither TP nor FP; the real object is found -> AP 1
    res = [
        _pred(1, 1, 0.9, _track(T, {0: (20, 30, 20, 40), 1: (20, 30, 20, 40)})),
        _pred(1, 1, 0.5, _track(T, {0: b, 1: b})),
    ]
    r = evaluate(gt, res)
    assert r.stats["AP"] == pytest.approx(1.0, abs=1e-12) and r.stats["AR100"] == 1.0


def _random_single_frame_set(seed: int, n_videos: int = 40, h: int = 300, w: int = 400):
    """Single-frame videos: objects of all three YTVIS size classes, several classes, noisy predictions."""
    rng = np.random.default_rng(seed)
    videos, instances, results = [], [], []
    ann_id = 1
    for vid in range(1, n_videos + 1):
        videos.append(_video(vid, 1, h, w))
        for _ in range(rng.integers(0, 4)):
            side = int(rng.choice([40, 150, 300]) * rng.uniform(0.6, 1.2))
            bh, bw = min(side, h - 1), min(int(side * rng.uniform(0.7, 1.3)), w - 1)
            y0, x0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
            m = np.zeros((h, w), bool)
            m[y0 : y0 + bh, x0 : x0 + bw] = True
            cat = int(rng.integers(1, 4))
            instances.append(Instance(ann_id, vid, cat, [masks.encode(m)]))
            ann_id += 1
            for _ in range(rng.integers(0, 3)):  # perturbed predictions, sometimes with a wrong class
                dy, dx = rng.integers(-bh // 3, bh // 3 + 1), rng.integers(-bw // 3, bw // 3 + 1)
                p = np.roll(m, (int(dy), int(dx)), axis=(0, 1)) & (rng.random((h, w)) < 0.97)
                pc = cat if rng.random() < 0.85 else int(rng.integers(1, 4))
                results.append(_pred(vid, pc, float(np.round(rng.random(), 2)), [masks.encode(p)]))
        for _ in range(rng.integers(0, 2)):  # pure false positives
            m = np.zeros((h, w), bool)
            y0, x0 = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 30))
            m[y0 : y0 + 30, x0 : x0 + int(rng.integers(5, 30))] = True
            results.append(
                _pred(vid, int(rng.integers(1, 4)), float(np.round(rng.random(), 2)), [masks.encode(m)])
            )
    cats = [Category(1, "a"), Category(2, "b"), Category(3, "c"), Category(4, "unused")]
    return Dataset(videos, cats, instances), results


def _coco_stats(ds: Dataset, results: list[dict]) -> np.ndarray:
    """pycocotools' own COCO segm evaluation of the same masks as images, with YTVIS's area ranges."""
    coco = COCO()
    coco.dataset = {
        "images": [{"id": v.id, "width": v.width, "height": v.height} for v in ds.videos],
        "categories": [{"id": c.id, "name": c.name} for c in ds.categories],
        "annotations": [
            {
                "id": a.id,
                "image_id": a.video_id,
                "category_id": a.category_id,
                "segmentation": a.segmentations[0],
                "area": masks.area(a.segmentations[0]),
                "bbox": masks.bbox(a.segmentations[0]),
                "iscrowd": 0,
            }
            for a in ds.instances
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        dt = coco.loadRes(
            [
                {
                    "image_id": r["video_id"],
                    "category_id": r["category_id"],
                    "score": r["score"],
                    "segmentation": dict(r["segmentations"][0]),
                }
                for r in results
            ]
        )
        E = COCOeval(coco, dt, "segm")
        E.params.areaRng = [list(a) for a in AREA_RANGES]
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E.stats


@pytest.mark.parametrize("seed", [0, 1])
def test_single_frame_videos_equal_coco_eval(seed):
    ds, results = _random_single_frame_set(seed)
    ours = evaluate(ds, results)
    ref = _coco_stats(ds, results)
    got = np.array([ours.stats[k] for k in STAT_KEYS])
    # all three size classes present, so no metric is trivially -1
    assert (got[[3, 4, 5]] > -1).all() and 0 < got[0] < 1
    np.testing.assert_array_equal(got, ref)


def test_results_for_unknown_video_rejected():
    ds, results = _random_single_frame_set(0, n_videos=3)
    with pytest.raises(DatasetFormatError, match="video 99 is not in the ground truth"):
        evaluate(ds, results + [_pred(99, 1, 0.5, [None])])


def test_no_results_gives_zero_and_files_api(tmp_path):
    ds, results = _random_single_frame_set(2, n_videos=10)
    assert evaluate(ds, []).stats["AP"] == 0.0
    ds.save(tmp_path / "gt.json")
    save_results(tmp_path / "pred.json", results)
    a = evaluate_files(tmp_path / "gt.json", tmp_path / "pred.json")
    assert a.stats == evaluate(ds, results).stats
    folder = tmp_path / "set"
    folder.mkdir()
    ds.save(folder / "annotations.json")  # no frames on disk: eval does not need them
    assert evaluate_files(folder, tmp_path / "pred.json").stats == a.stats
    assert "AP50" in a.format_table() and "unused" in a.format_table(per_category=True)


def test_cli_eval_end_to_end(tmp_path):
    ds, results = _random_single_frame_set(3, n_videos=8)
    ds.save(tmp_path / "gt.json")
    save_results(tmp_path / "pred.json", results)
    cmd = [
        sys.executable,
        "main.py",
        "eval",
        "--gt",
        str(tmp_path / "gt.json"),
        "--pred",
        str(tmp_path / "pred.json"),
        "--json",
        str(tmp_path / "out" / "m.json"),
    ]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Average Precision" in p.stdout
    stats = json.loads((tmp_path / "out" / "m.json").read_text())
    assert list(stats) == STAT_KEYS
    assert stats == pytest.approx(evaluate(ds, results).stats)

    doc = json.loads((tmp_path / "pred.json").read_text())
    doc[2]["segmentations"] = doc[2]["segmentations"] + [None]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    cmd[cmd.index("--pred") + 1] = str(tmp_path / "bad.json")
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "bad.json" in lines[0] and "results[2].segmentations" in lines[0]


def test_long_tracks_areas_beyond_255_frames():
    """pycocotools' area() overflows a uint8 scratch array past 255 RLEs under numpy 2; long videos must work."""
    import numpy as np

    from engine.data import masks

    frames = [np.zeros((8, 9), dtype=bool) for _ in range(321)]
    for t, f in enumerate(frames):
        f[: 1 + t % 8, :3] = True
    rles = [masks.encode(f) for f in frames]
    assert masks.areas(rles).tolist() == [int(f.sum()) for f in frames]
