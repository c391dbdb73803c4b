"""A loaded YouTube-VIS ground truth and the AP of a run on the open video against it. Qt-free.

Which video of the file is the open one: the one with the same name (stem or file name) and frame count, else
the only one with that frame count; no match means no AP (said once, when the file is loaded).
"""
from __future__ import annotations

import logging
from pathlib import Path

from app.document import VideoRef
from engine.data.ytvis import Dataset, VideoEntry
from engine.types import VideoPrediction

log = logging.getLogger(__name__)


def sidecar_for(video: Path) -> Path | None:
    """`clip.ytvis.json` next to `clip.mp4` (how the bundled demo ships its ground truth)."""
    p = video.with_name(video.stem + ".ytvis.json") if video.is_file() else None
    return p if p is not None and p.is_file() else None


class GroundTruth:
    def __init__(self, dataset: Dataset, path: str | Path):
        self.dataset = dataset
        self.path = str(path)

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        """Raises InputError (naming the file and the JSON location) or whatever reading the file raised."""
        return cls(Dataset.load(path), path)

    def video_for(self, ref: VideoRef | None) -> VideoEntry | None:
        if ref is None:
            return None
        stem = Path(ref.path).stem
        same_len = [v for v in self.dataset.videos if v.length == ref.num_frames]
        for v in same_len:
            if v.name == stem or Path(ref.path).name == v.name:
                return v
        return same_len[0] if len(same_len) == 1 else None

    def ap(self, pred: VideoPrediction | None, ref: VideoRef | None) -> float | None:
        """Mask AP of `pred` on the matching video, classes mapped by name (Dataset.category_ids_for); None when
        there is no matching video, no track, or the evaluation failed (a metric is a nicety, never a crash)."""
        v = self.video_for(ref)
        if v is None or pred is None or not pred.tracks:
            return None
        from engine.evaluation import evaluate

        cat_of = self.dataset.category_ids_for(list(pred.categories))
        results = []
        for r in pred.to_ytvis_results(v.id):
            cid = r["category_id"]
            if 1 <= cid <= len(cat_of) and cat_of[cid - 1] is not None:
                results.append({**r, "category_id": cat_of[cid - 1]})
        try:
            res = evaluate(self.dataset.subset([v.id]), results)
        except Exception as e:  # noqa: BLE001 - a metric is a nicety; never a crash
            log.warning("AP failed: %s", e)
            return None
        ap = float(res.stats.get("AP", -1))
        return ap if ap >= 0 else None
