"""YouTube-VIS (YTVIS) dataset model: ground truth and results JSON in and out.

Field names and conventions follow the reference YouTube-VIS API (the youtubevos fork of cocoapi, `ytvos.py`):
one annotation is one object through a whole video, `segmentations[i]` is its COCO RLE on frame i or null
where the object is absent, and `areas` / `bboxes` ([x, y, w, h]) are null on those frames too. Masks are held
as compressed RLE with `counts` as str; polygons and uncompressed RLE are accepted on input and normalised.

Loading validates everything and stops at the first problem, naming its JSON location
(`annotations[12].segmentations[40]: ...`), because a silently dropped annotation skews every metric after it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data import masks
from engine.errors import DatasetFormatError

ANNOTATION_FILE = "annotations.json"
FRAME_DIR = "JPEGImages"


# ---------------------------------------------------------------- model
@dataclass
class VideoEntry:
    """One video: its frames as paths relative to the dataset's JPEGImages folder (`<video>/00000.jpg`)."""

    id: int
    file_names: list[str]
    width: int
    height: int
    extra: dict = field(default_factory=dict)  # other keys of the video record, kept for the round trip

    @property
    def length(self) -> int:
        return len(self.file_names)

    @property
    def name(self) -> str:
        """The video's folder name (first path part of its frames), or its id."""
        if self.file_names:
            parts = Path(self.file_names[0]).parts
            if len(parts) > 1:
                return parts[0]
        return str(self.id)


@dataclass
class Category:
    id: int
    name: str
    supercategory: str = "object"


@dataclass
class Instance:
    """One tracked object (a ground-truth annotation); `segmentations[i]` is None where it is absent."""

    id: int
    video_id: int
    category_id: int
    segmentations: list[dict | None]
    iscrowd: int = 0
    extra: dict = field(default_factory=dict)

    def areas(self) -> list[int | None]:
        return [None if s is None else masks.area(s) for s in self.segmentations]

    def bboxes(self) -> list[list[float] | None]:
        return [masks.bbox(s) for s in self.segmentations]


@dataclass
class Dataset:
    videos: list[VideoEntry]
    categories: list[Category]
    instances: list[Instance]
    info: dict = field(default_factory=dict)
    licenses: list = field(default_factory=list)
    root: Path | None = field(default=None, compare=False)  # folder holding JPEGImages/, when known

    # ------------------------------------------------------------ queries
    def video(self, video_id: int) -> VideoEntry:
        for v in self.videos:
            if v.id == video_id:
                return v
        raise KeyError(f"no video with id {video_id}")

    def category_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.categories}

    def category_ids_for(self, class_names: list[str]) -> list[int | None]:
        """A model's label index -> this dataset's category id, the one policy of the CLI, training's evaluation
        and the app. By name; when no name matches but the counts do, by position (the same classes exported
        under other names). A class with no counterpart maps to None: its predictions cannot be right, so
        callers drop them rather than file them under some other category."""
        by_name = {c.name: c.id for c in self.categories}
        mapped = [by_name.get(n) for n in class_names]
        if not any(m is not None for m in mapped) and len(self.categories) == len(class_names):
            return sorted(c.id for c in self.categories)
        return mapped

    def instances_of(self, video_id: int) -> list[Instance]:
        return [a for a in self.instances if a.video_id == video_id]

    def subset(self, video_ids: Iterable[int]) -> Dataset:
        """The same dataset restricted to `video_ids` (all categories kept, dataset order kept)."""
        keep = set(video_ids)
        missing = keep - {v.id for v in self.videos}
        if missing:
            raise KeyError(f"videos not in the dataset: {sorted(missing)}")
        return Dataset(
            [v for v in self.videos if v.id in keep],
            list(self.categories),
            [a for a in self.instances if a.video_id in keep],
            dict(self.info),
            list(self.licenses),
            self.root,
        )

    def frame_paths(self, video: VideoEntry | int) -> list[Path]:
        if self.root is None:
            raise ValueError("dataset has no root folder; load it with Dataset.from_folder")
        return frame_paths(video if isinstance(video, VideoEntry) else self.video(video), self.root)

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        vids = {v.id: v for v in self.videos}
        anns = []
        for a in self.instances:
            v = vids[a.video_id]
            anns.append(
                {
                    **a.extra,
                    "id": a.id,
                    "video_id": a.video_id,
                    "category_id": a.category_id,
                    "segmentations": a.segmentations,
                    "areas": a.areas(),
                    "bboxes": a.bboxes(),
                    "iscrowd": a.iscrowd,
                    "width": v.width,
                    "height": v.height,
                    "length": v.length,
                }
            )
        return {
            "info": self.info,
            "licenses": self.licenses,
            "videos": [
                {
                    **v.extra,
                    "id": v.id,
                    "width": v.width,
                    "height": v.height,
                    "length": v.length,
                    "file_names": v.file_names,
                }
                for v in self.videos
            ],
            "annotations": anns,
            "categories": [
                {"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in self.categories
            ],
        }

    def save(self, path: str | Path) -> None:
        """Write the GT JSON (areas, bboxes derived from the masks) via a temp file: no half-written file."""
        _write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        return cls.from_json(_read_json(Path(path)), path)

    @classmethod
    def from_json(cls, doc: Any, path: str | Path | None = None) -> Dataset:
        return _parse_gt(doc, path)

    @classmethod
    def from_folder(cls, folder: str | Path, check_frames: bool = True) -> Dataset:
        """A dataset folder in the YTVIS layout: DIR/annotations.json + DIR/JPEGImages/<video>/00000.jpg."""
        folder = Path(folder)
        ann = folder / ANNOTATION_FILE
        if not folder.is_dir():
            raise DatasetFormatError(folder, "", "not a dataset folder")
        if not ann.is_file():
            raise DatasetFormatError(folder, "", f"no {ANNOTATION_FILE} in the dataset folder")
        ds = cls.load(ann)
        ds.root = folder
        if check_frames:
            _check_frames(ds, ann)
        return ds


def frame_paths(video: VideoEntry, root: str | Path) -> list[Path]:
    """Absolute frame paths of `video` in a dataset folder (`root/JPEGImages/<file_name>`)."""
    base = Path(root) / FRAME_DIR
    return [base / f for f in video.file_names]


def _check_frames(ds: Dataset, ann_path: Path) -> None:
    assert ds.root is not None
    listed: dict[Path, set[str]] = {}
    for vi, v in enumerate(ds.videos):
        for fi, p in enumerate(frame_paths(v, ds.root)):
            names = listed.get(p.parent)
            if names is None:
                try:
                    names = set(os.listdir(p.parent))
                except OSError:
                    names = set()
                listed[p.parent] = names
            if p.name not in names:
                raise DatasetFormatError(
                    ann_path, f"videos[{vi}].file_names[{fi}]", f"frame file not found: {p}"
                )


# ---------------------------------------------------------------- results
@dataclass
class ResultEntry:
    """One predicted object through a video, as in the YTVIS results format."""

    video_id: int
    category_id: int
    score: float
    segmentations: list[dict | None]

    def to_json(self) -> dict:
        return {
            "video_id": self.video_id,
            "category_id": self.category_id,
            "score": self.score,
            "segmentations": self.segmentations,
        }


def save_results(path: str | Path, results: Iterable[dict | ResultEntry]) -> None:
    out = []
    for r in results:
        d = r.to_json() if isinstance(r, ResultEntry) else r
        out.append(
            {
                "video_id": d["video_id"],
                "category_id": d["category_id"],
                "score": float(d["score"]),
                "segmentations": d["segmentations"],
            }
        )
    _write_json(Path(path), out)


def load_results(path: str | Path, dataset: Dataset | None = None) -> list[dict]:
    """Results JSON -> list of {video_id, category_id, score, segmentations} with compressed RLE.

    With `dataset`, every entry is also checked against it (video and category exist, one mask per frame, mask
    size    equal to the video's)."""
    return check_results(_read_json(Path(path)), dataset, path)


def check_results(doc: Any, dataset: Dataset | None = None, path: str | Path | None = None) -> list[dict]:
    """Validate and normalise results (dicts or ResultEntry); DatasetFormatError at the first problem."""
    if isinstance(doc, dict):
        hint = " (this looks like a ground-truth file)" if "annotations" in doc else ""
        raise DatasetFormatError(path, "", f"expected a list of results, got a JSON object{hint}")
    if not isinstance(doc, list):
        raise DatasetFormatError(path, "", f"expected a list of results, got {_tname(doc)}")
    vids = {v.id: v for v in dataset.videos} if dataset is not None else None
    cats = {c.id for c in dataset.categories} if dataset is not None else None
    out = []
    for i, r in enumerate(doc):
        loc = f"results[{i}]"
        if isinstance(r, ResultEntry):
            r = r.to_json()
        if not isinstance(r, dict):
            raise DatasetFormatError(path, loc, f"expected an object, got {_tname(r)}")
        for k in ("video_id", "category_id", "score", "segmentations"):
            if k not in r:
                raise DatasetFormatError(path, loc, f"missing key '{k}'")
        vid = _int(r["video_id"], path, f"{loc}.video_id")
        cat = _int(r["category_id"], path, f"{loc}.category_id")
        score = r["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DatasetFormatError(path, f"{loc}.score", f"expected a finite number, got {score!r}")
        segs = r["segmentations"]
        if not isinstance(segs, list):
            raise DatasetFormatError(path, f"{loc}.segmentations", f"expected a list, got {_tname(segs)}")
        if vids is not None:
            if vid not in vids:
                raise DatasetFormatError(path, f"{loc}.video_id", f"video {vid} is not in the ground truth")
            if cat not in cats:
                raise DatasetFormatError(
                    path, f"{loc}.category_id", f"category {cat} is not in the ground truth"
                )
            v = vids[vid]
            if len(segs) != v.length:
                raise DatasetFormatError(
                    path, f"{loc}.segmentations", f"{len(segs)} masks but video {vid} has {v.length} frames"
                )
            norm = _segs(segs, v.height, v.width, vid, path, f"{loc}.segmentations")
        else:
            norm = _segs(segs, None, None, vid, path, f"{loc}.segmentations")
        out.append({"video_id": vid, "category_id": cat, "score": float(score), "segmentations": norm})
    return out


# ---------------------------------------------------------------- parsing
def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetFormatError(path, "", "no such file") from None
    except IsADirectoryError:
        raise DatasetFormatError(path, "", "is a folder, expected a JSON file") from None
    except UnicodeDecodeError:
        raise DatasetFormatError(path, "", "not JSON (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(path, "", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(tmp, path)


def _tname(x: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(x), type(x).__name__)


def _int(x: Any, path, loc: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise DatasetFormatError(path, loc, f"expected an integer, got {_tname(x)} {x!r}"[:200])
    return x


def _list(x: Any, path, loc: str) -> list:
    if not isinstance(x, list):
        raise DatasetFormatError(path, loc, f"expected a list, got {_tname(x)}")
    return x


def _require(obj: Any, keys: tuple[str, ...], path, loc: str) -> dict:
    if not isinstance(obj, dict):
        raise DatasetFormatError(path, loc, f"expected an object, got {_tname(obj)}")
    for k in keys:
        if k not in obj:
            raise DatasetFormatError(path, loc, f"missing key '{k}'")
    return obj


def _segs(segs: list, h: int | None, w: int | None, vid: int, path, loc: str) -> list[dict | None]:
    """Normalise one object's per-frame masks to compressed RLE; check each mask fits its video."""
    out: list[dict | None] = []
    hw = [h, w]
    for i, s in enumerate(segs):
        if s is None:
            out.append(None)
        elif type(s) is dict and type(s.get("counts")) is str and s.get("size") == hw:
            out.append({"size": hw[:], "counts": s["counts"]})  # the common case: compressed, right size
        else:
            out.append(_seg(s, h, w, vid, path, f"{loc}[{i}]"))
    return out


def _seg(s: Any, h: int | None, w: int | None, vid: int, path, loc: str) -> dict | None:
    if s is None:
        return None
    if isinstance(s, dict):
        if "size" not in s or "counts" not in s:
            raise DatasetFormatError(path, loc, "RLE needs 'size' and 'counts'")
        size = s["size"]
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
        ):
            raise DatasetFormatError(path, loc, f"RLE size must be [height, width], got {size!r}"[:200])
        counts = s["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
                raise DatasetFormatError(path, loc, "uncompressed RLE counts must be non-negative integers")
            if sum(counts) != size[0] * size[1]:
                raise DatasetFormatError(
                    path, loc, f"uncompressed RLE counts sum to {sum(counts)}, not {size[0]}x{size[1]}"
                )
        elif not isinstance(counts, str):
            raise DatasetFormatError(
                path, loc, f"RLE counts must be a string or a list, got {_tname(counts)}"
            )
        if h is not None and (size[0] != h or size[1] != w):
            raise DatasetFormatError(
                path, loc, f"mask size {size[0]}x{size[1]} does not match video {vid} ({h}x{w})"
            )
        hh, ww = size
    elif isinstance(s, list):
        if h is None:
            raise DatasetFormatError(path, loc, "polygons need the ground truth for the frame size")
        if not s:
            raise DatasetFormatError(
                path, loc, "empty polygon list (use null for a frame without the object)"
            )
        for j, poly in enumerate(s):
            if (
                not isinstance(poly, list)
                or len(poly) < 6
                or len(poly) % 2
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in poly)
            ):
                raise DatasetFormatError(
                    path, f"{loc}[{j}]", "a polygon is a list of at least 3 x,y pairs of numbers"
                )
        hh, ww = h, w
    else:
        raise DatasetFormatError(
            path, loc, f"expected an RLE object, a polygon list or null, got {_tname(s)}"
        )
    try:
        rle = masks.to_compressed(s, hh, ww)
    except Exception as e:  # pycocotools raises bare exceptions on malformed input
        raise DatasetFormatError(path, loc, f"unreadable mask ({e})") from None
    return rle


def _parse_gt(doc: Any, path) -> Dataset:
    if isinstance(doc, list):
        raise DatasetFormatError(
            path, "", "expected a ground-truth JSON object, got a list (this looks like a results file)"
        )
    _require(doc, ("videos", "annotations", "categories"), path, "")
    info = doc.get("info") or {}
    if not isinstance(info, dict):
        raise DatasetFormatError(path, "info", f"expected an object, got {_tname(info)}")
    licenses = doc.get("licenses") or []
    if not isinstance(licenses, list):
        raise DatasetFormatError(path, "licenses", f"expected a list, got {_tname(licenses)}")

    videos: list[VideoEntry] = []
    vids: dict[int, VideoEntry] = {}
    for i, v in enumerate(_list(doc["videos"], path, "videos")):
        loc = f"videos[{i}]"
        _require(v, ("id", "width", "height", "file_names"), path, loc)
        vid = _int(v["id"], path, f"{loc}.id")
        if vid in vids:
            raise DatasetFormatError(path, f"{loc}.id", f"duplicate video id {vid}")
        width = _int(v["width"], path, f"{loc}.width")
        height = _int(v["height"], path, f"{loc}.height")
        if width <= 0 or height <= 0:
            raise DatasetFormatError(path, loc, f"frame size must be positive, got {width}x{height} (WxH)")
        names = _list(v["file_names"], path, f"{loc}.file_names")
        for j, n in enumerate(names):
            if not isinstance(n, str) or not n:
                raise DatasetFormatError(
                    path, f"{loc}.file_names[{j}]", f"expected a file name, got {n!r}"[:200]
                )
        if "length" in v and v["length"] != len(names):
            raise DatasetFormatError(
                path, f"{loc}.length", f"length {v['length']!r} but {len(names)} file_names"[:200]
            )
        extra = {k: val for k, val in v.items() if k not in ("id", "width", "height", "length", "file_names")}
        entry = VideoEntry(vid, list(names), width, height, extra)
        vids[vid] = entry
        videos.append(entry)

    categories: list[Category] = []
    cat_ids: set[int] = set()
    for i, c in enumerate(_list(doc["categories"], path, "categories")):
        loc = f"categories[{i}]"
        _require(c, ("id", "name"), path, loc)
        cid = _int(c["id"], path, f"{loc}.id")
        if cid in cat_ids:
            raise DatasetFormatError(path, f"{loc}.id", f"duplicate category id {cid}")
        if not isinstance(c["name"], str):
            raise DatasetFormatError(path, f"{loc}.name", f"expected a string, got {_tname(c['name'])}")
        sup = c.get("supercategory", "object")
        if not isinstance(sup, str):
            raise DatasetFormatError(path, f"{loc}.supercategory", f"expected a string, got {_tname(sup)}")
        cat_ids.add(cid)
        categories.append(Category(cid, c["name"], sup))

    instances: list[Instance] = []
    ann_ids: set[int] = set()
    derived = (
        "id",
        "video_id",
        "category_id",
        "segmentations",
        "areas",
        "bboxes",
        "iscrowd",
        "width",
        "height",
        "length",
    )
    for i, a in enumerate(_list(doc["annotations"], path, "annotations")):
        loc = f"annotations[{i}]"
        _require(a, ("id", "video_id", "category_id", "segmentations"), path, loc)
        aid = _int(a["id"], path, f"{loc}.id")
        if aid in ann_ids:
            raise DatasetFormatError(path, f"{loc}.id", f"duplicate annotation id {aid}")
        vid = _int(a["video_id"], path, f"{loc}.video_id")
        if vid not in vids:
            raise DatasetFormatError(path, f"{loc}.video_id", f"unknown video_id {vid}")
        cid = _int(a["category_id"], path, f"{loc}.category_id")
        if cid not in cat_ids:
            raise DatasetFormatError(path, f"{loc}.category_id", f"unknown category_id {cid}")
        iscrowd = a.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, float):
            raise DatasetFormatError(path, f"{loc}.iscrowd", f"expected 0 or 1, got {iscrowd!r}"[:200])
        v = vids[vid]
        segs = _list(a["segmentations"], path, f"{loc}.segmentations")
        if len(segs) != v.length:
            raise DatasetFormatError(
                path, f"{loc}.segmentations", f"{len(segs)} masks but video {vid} has {v.length} frames"
            )
        for key in ("areas", "bboxes"):
            if key in a and a[key] is not None and (not isinstance(a[key], list) or len(a[key]) != v.length):
                raise DatasetFormatError(path, f"{loc}.{key}", f"expected a list of {v.length} entries")
        norm = _segs(segs, v.height, v.width, vid, path, f"{loc}.segmentations")
        ann_ids.add(aid)
        instances.append(
            Instance(aid, vid, cid, norm, int(iscrowd), {k: val for k, val in a.items() if k not in derived})
        )
    return Dataset(videos, categories, instances, info, licenses)
