"""YouTube-VIS metrics (AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l), equal to the reference ytvoseval.py.

The reference evaluator is COCOeval with two changes: the IoU of a predicted and a ground-truth object is
taken over the whole video (sum over frames of intersections / sum over frames of unions; frames where both
are absent count for nothing), and an object's area is its mean mask area over the frames where the mask is
non-empty. Area ranges are YTVIS's own: small < 128², medium 128²..256², large > 256² (not COCO's 32²/96²).

So matching, accumulation and summary are pycocotools' own COCOeval, and only the video IoU is computed
here: per frame, one pycocotools `iou` call (in C) over the objects gives the IoU matrix, from which the
intersection is recovered exactly as iou·(a+b)/(1+iou); unions are the two area sums minus the intersection.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from engine.data import masks
from engine.data.masks import RLE
from engine.data.ytvis import Dataset, check_results, load_results
from engine.errors import Cancelled

# [all, small, medium, large], as in ytvoseval.Params.setDetParams
AREA_RANGES = [[0**2, 1e5**2], [0**2, 128**2], [128**2, 256**2], [256**2, 1e5**2]]
AREA_LABELS = ["all", "small", "medium", "large"]
MAX_DETS = [1, 10, 100]
STAT_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
_STAT_LINES = [  # (AP?, IoU, area, maxDets) in the order COCOeval.summarize prints them
    (1, None, "all", 100),
    (1, 0.5, "all", 100),
    (1, 0.75, "all", 100),
    (1, None, "small", 100),
    (1, None, "medium", 100),
    (1, None, "large", 100),
    (0, None, "all", 1),
    (0, None, "all", 10),
    (0, None, "all", 100),
    (0, None, "small", 100),
    (0, None, "medium", 100),
    (0, None, "large", 100),
]


@dataclass
class EvalResult:
    """`stats` on the 0–1 scale (-1 where undefined, as the reference prints it); `per_category`: AP by name;
    `per_video[video_id]` holds diagnostics at IoU 0.5 (all areas, 100 detections) for the app to show."""

    stats: dict[str, float]
    per_category: dict[str, float]
    per_video: dict[int, dict] = field(default_factory=dict)
    num_videos: int = 0
    num_gt: int = 0
    num_pred: int = 0

    def mean_best_iou(self) -> float:
        """Mean over ground-truth objects of the best video IoU any same-class prediction reaches ("tube IoU"),
        whatever its score: it moves with mask and tracking quality when scores are too poor for AP to (0 when
        there is no object)."""
        best = [iou for v in self.per_video.values() for iou in v["best_iou"].values()]
        return float(np.mean(best)) if best else 0.0

    def format_table(self, per_category: bool = False) -> str:
        lines = []
        for key, (ap, thr, area, md) in zip(STAT_KEYS, _STAT_LINES, strict=True):
            title = "Average Precision  (AP)" if ap else "Average Recall     (AR)"
            iou = "0.50:0.95" if thr is None else f"{thr:0.2f}"
            lines.append(
                f" {title} @[ IoU={iou:<9} | area={area:>6s} | maxDets={md:>3d} ] = "
                f"{self.stats[key]:0.3f}   {key}"
            )
        lines.append(
            f" {self.num_videos} videos, {self.num_gt} ground-truth objects, {self.num_pred} predictions"
        )
        if per_category and self.per_category:
            width = max(8, *(len(n) for n in self.per_category))
            lines.append("")
            lines.append(f" {'category':<{width}}  AP")
            for name, ap in self.per_category.items():
                lines.append(f" {name:<{width}}  {'  n/a' if ap < 0 else f'{ap:0.3f}'}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "stats": self.stats,
            "per_category": self.per_category,
            "per_video": {
                str(k): {**v, "best_iou": {str(g): x for g, x in v["best_iou"].items()}}
                for k, v in self.per_video.items()
            },
        }


# ---------------------------------------------------------------- video IoU
def frame_areas(tracks: list[list[RLE | None]], length: int) -> np.ndarray:
    """N x T mask areas (0 where absent), one pycocotools call per object."""
    out = np.zeros((len(tracks), length), dtype=np.int64)
    for i, segs in enumerate(tracks):
        idx = [t for t, s in enumerate(segs) if s is not None]
        if idx:
            out[i, idx] = masks.areas([segs[t] for t in idx])
    return out


def mean_area(areas: np.ndarray) -> float:
    """Mean over frames with a non-empty mask, 0 if none, as ytvos does (zero and null areas both skipped)."""
    nz = areas[areas > 0]
    return float(nz.mean()) if nz.size else 0


def video_iou(
    dts: list[list[RLE | None]],
    gts: list[list[RLE | None]],
    dt_areas: np.ndarray | None = None,
    gt_areas: np.ndarray | None = None,
) -> np.ndarray:
    """D x G video IoU: sum_t |d_t ∩ g_t| / sum_t |d_t ∪ g_t|, 0 where the union is empty."""
    D, G = len(dts), len(gts)
    if D == 0 or G == 0:
        return np.zeros((D, G))
    T = len(gts[0])
    ad = frame_areas(dts, T) if dt_areas is None else dt_areas
    ag = frame_areas(gts, T) if gt_areas is None else gt_areas
    # per frame, the IoU matrix of all objects, an absent one standing in as an empty mask: pycocotools
    # rejects it on its (empty) bbox before touching the RLE, so its IoU is 0 and so is its intersection
    size = next(s for tr in gts for s in tr if s is not None)["size"] if ag.any() else None
    frame_iou = np.zeros((T, D, G))
    if size is not None:
        empty = masks.empty(*size)
        d_fill = [[empty if s is None else s for s in d] for d in dts]
        g_fill = [[empty if s is None else s for s in g] for g in gts]
        zeros = [0] * G
        live = ((ad > 0).any(0) & (ag > 0).any(0)).tolist()
        for t in range(T):
            if live[t]:
                frame_iou[t] = mask_utils.iou([d[t] for d in d_fill], [g[t] for g in g_fill], zeros)
    pair_area = ad.T[:, :, None] + ag.T[:, None, :]  # T x D x G, a + b
    inter = np.rint(frame_iou * pair_area / (1.0 + frame_iou)).astype(np.int64).sum(0)
    union = ad.sum(1)[:, None] + ag.sum(1)[None, :] - inter
    out = np.zeros((D, G))
    np.divide(inter, union, out=out, where=union > 0)
    return out


IouFn = Callable[[list, list], np.ndarray]


# ---------------------------------------------------------------- COCOeval with video IoU
class _VideoEval(COCOeval):
    """COCOeval over videos: imgIds are video ids, 'area' is the mean area; ious are precomputed."""

    def __init__(self, gts: dict, dts: dict, ious: dict, video_ids: list[int], cat_ids: list[int]):
        super().__init__(None, None, "segm")
        p = self.params
        p.imgIds, p.catIds, p.areaRng, p.areaRngLbl, p.maxDets = (
            sorted(video_ids),
            sorted(cat_ids),
            [list(r) for r in AREA_RANGES],
            list(AREA_LABELS),
            list(MAX_DETS),
        )
        self._given = (gts, dts)
        self._ious = ious

    def _prepare(self) -> None:
        gts, dts = self._given
        self._gts = defaultdict(list, {k: list(v) for k, v in gts.items()})
        self._dts = defaultdict(list, {k: list(v) for k, v in dts.items()})
        self.evalImgs = defaultdict(list)
        self.eval = {}

    def computeIoU(self, vid, cat):  # noqa: N802 (COCOeval's name)
        return self._ious.get((int(vid), int(cat)), [])


def evaluate(
    gt: Dataset,
    results: list[dict],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    validate: bool = True,
    iou_fn: IouFn | None = None,
) -> EvalResult:
    """YTVIS metrics of `results` (dicts {video_id, category_id, score, segmentations}) against `gt`.

    `iou_fn(dt_tracks, gt_tracks) -> D x G` replaces the video IoU (the benchmark plugs its baseline in)."""
    if validate:
        results = check_results(results, gt)
    max_det = MAX_DETS[-1]
    videos = {v.id: v for v in gt.videos}
    cat_ids = [c.id for c in gt.categories]

    gts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    dts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    gt_by_vid: dict[int, list[int]] = defaultdict(list)
    dt_by_vid: dict[int, list[int]] = defaultdict(list)
    for i, a in enumerate(gt.instances):
        gt_by_vid[a.video_id].append(i)
    for i, r in enumerate(results):
        dt_by_vid[r["video_id"]].append(i)

    ious: dict[tuple[int, int], np.ndarray] = {}
    gt_real_id: dict[int, int] = {}
    vid_list = sorted(videos)
    for n, vid in enumerate(vid_list):
        if cancel is not None and cancel():
            raise Cancelled()
        T = videos[vid].length
        g_idx, d_idx = gt_by_vid.get(vid, []), dt_by_vid.get(vid, [])
        g_tracks = [gt.instances[i].segmentations for i in g_idx]
        d_all = [results[i]["segmentations"] for i in d_idx]
        g_area = frame_areas(g_tracks, T)
        d_area = frame_areas(d_all, T)
        for row, i in enumerate(g_idx):
            a = gt.instances[i]
            # internal ids are 1-based positions: COCOeval treats id 0 as "unmatched"
            gt_real_id[i + 1] = a.id
            gts[vid, a.category_id].append(
                {
                    "id": i + 1,
                    "area": mean_area(g_area[row]),
                    "iscrowd": a.iscrowd,
                    "ignore": int(a.iscrowd),
                    "_row": row,
                }
            )
        for row, i in enumerate(d_idx):
            r = results[i]
            dts[vid, r["category_id"]].append(
                {"id": i + 1, "area": mean_area(d_area[row]), "iscrowd": 0, "score": r["score"], "_row": row}
            )
        # rows kept for each category: the top max_det by score, stably sorted as COCOeval does
        keys = {(vid, gt.instances[i].category_id) for i in g_idx} | {
            (vid, results[i]["category_id"]) for i in d_idx
        }
        kept: dict[int, list[int]] = {}
        for key in keys:
            ds = dts.get(key, [])
            order = np.argsort([-d["score"] for d in ds], kind="mergesort")[:max_det]
            kept[key[1]] = [ds[j]["_row"] for j in order]
        rows = sorted({r for v in kept.values() for r in v})
        if iou_fn is None:
            full = video_iou([d_all[r] for r in rows], g_tracks, d_area[rows], g_area)
        else:
            full = np.asarray(iou_fn([d_all[r] for r in rows], g_tracks)).reshape(len(rows), len(g_tracks))
        pos = {r: k for k, r in enumerate(rows)}
        for key in keys:
            g_rows = [g["_row"] for g in gts.get(key, [])]
            d_rows = [pos[r] for r in kept[key[1]]]
            if not g_rows and not d_rows:
                continue
            ious[key] = (
                full[np.ix_(d_rows, g_rows)] if d_rows and g_rows else np.zeros((len(d_rows), len(g_rows)))
            )
        if progress is not None:
            progress(n + 1, len(vid_list))

    E = _VideoEval(dict(gts), dict(dts), ious, vid_list, cat_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        E.evaluate()
        E.accumulate()
        E.summarize()
    stats = {k: float(v) for k, v in zip(STAT_KEYS, E.stats, strict=True)}

    names = gt.category_names()
    prec = E.eval["precision"]  # T x R x K x A x M
    per_category = {}
    for k, cid in enumerate(E.params.catIds):
        s = prec[:, :, k, 0, -1]
        name = names[int(cid)]
        name = f"{name} ({int(cid)})" if name in per_category else name  # two categories, one name
        per_category[name] = float(s[s > -1].mean()) if (s > -1).any() else -1.0

    per_video = _diagnostics(E, ious, gts, gt_real_id, vid_list)
    return EvalResult(stats, per_category, per_video, len(vid_list), len(gt.instances), len(results))


def _diagnostics(
    E: _VideoEval, ious: dict, gts: dict, gt_real_id: dict, vid_list: list[int]
) -> dict[int, dict]:
    per_video = {
        vid: {"gt": 0, "pred": 0, "matched": 0, "missed": 0, "false_positives": 0, "best_iou": {}}
        for vid in vid_list
    }
    I0, A0 = len(E.params.imgIds), len(E.params.areaRng)
    for k, cid in enumerate(E.params.catIds):
        for i, vid in enumerate(E.params.imgIds):
            e = E.evalImgs[k * A0 * I0 + i]  # area range 0 = all, maxDet 100
            if e is None:
                continue
            vid = int(vid)
            pv = per_video[vid]
            gt_ig = np.asarray(e["gtIgnore"], dtype=bool)
            gtm, dtm, dt_ig = e["gtMatches"][0], e["dtMatches"][0], e["dtIgnore"][0]
            pv["gt"] += len(e["gtIds"])
            pv["pred"] += len(e["dtIds"])
            pv["matched"] += int(np.count_nonzero((gtm > 0) & ~gt_ig))
            pv["missed"] += int(np.count_nonzero((gtm == 0) & ~gt_ig))
            pv["false_positives"] += int(np.count_nonzero((dtm == 0) & ~dt_ig))
            m = ious.get((vid, int(cid)))
            for col, g in enumerate(gts.get((vid, int(cid)), [])):
                best = float(m[:, col].max()) if m is not None and len(m) and m.shape[0] else 0.0
                pv["best_iou"][gt_real_id[g["id"]]] = best
    return per_video


def evaluate_files(gt_path: str | Path, pred_path: str | Path, **kw) -> EvalResult:
    """GT JSON (or a dataset folder with annotations.json) and a results JSON -> metrics."""
    gt_path = Path(gt_path)
    gt = Dataset.from_folder(gt_path, check_frames=False) if gt_path.is_dir() else Dataset.load(gt_path)
    results = load_results(pred_path, gt)
    return evaluate(gt, results, validate=False, **kw)
