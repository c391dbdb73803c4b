"""YouTube-VIS dataset model: ground truth and results JSON in and out (work in progress)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.data import masks


@dataclass
class VideoEntry:
    id: int
    file_names: list[str]
    width: int
    height: int

    @property
    def length(self) -> int:
        return len(self.file_names)


@dataclass
class Category:
    id: int
    name: str
    supercategory: str = "object"


@dataclass
class Instance:
    id: int
    video_id: int
    category_id: int
    segmentations: list[dict | None]
    iscrowd: int = 0


@dataclass
class Dataset:
    videos: list[VideoEntry]
    categories: list[Category]
    instances: list[Instance]
    info: dict = field(default_factory=dict)

    def save(self, path) -> None:
        vids = {v.id: v for v in self.videos}
        anns = []
        for a in self.instances:
            v = vids[a.video_id]
            anns.append({"id": a.id, "video_id": a.video_id, "category_id": a.category_id,
                         "segmentations": a.segmentations,
                         "areas": [None if s is None else masks.area(s) for s in a.segmentations],
                         "bboxes": [masks.bbox(s) for s in a.segmentations], "iscrowd": a.iscrowd,
                         "width": v.width, "height": v.height, "length": v.length})
        doc = {"info": self.info, "licenses": [],
               "videos": [{"id": v.id, "width": v.width, "height": v.height, "length": v.length,
                           "file_names": v.file_names} for v in self.videos],
               "annotations": anns,
               "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory}
                              for c in self.categories]}
        Path(path).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path) -> "Dataset":
        d = json.loads(Path(path).read_text())
        return cls([VideoEntry(v["id"], v["file_names"], v["width"], v["height"]) for v in d["videos"]],
                   [Category(c["id"], c["name"], c.get("supercategory", "object")) for c in d["categories"]],
                   [Instance(a["id"], a["video_id"], a["category_id"], a["segmentations"], a.get("iscrowd", 0))
                    for a in d["annotations"]], d.get("info", {}))
