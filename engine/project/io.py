"""YouTube-VIS import into a project and export out of projects. Qt-free.

Import builds one `Edit` (categories added, tracks created, masks set with provenance "imported") after validating
the whole file against the project's video, so a bad file changes nothing. Export writes what the reference
YouTube-VIS API reads (`file_names`, RLE `segmentations`, `areas`, `bboxes`), ground truth or results.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.data import masks as rle_ops
from engine.data.ytvis import Category as YCategory
from engine.data.ytvis import Dataset, DatasetFormatError, Instance, VideoEntry, _read_json, check_results
from engine.errors import InputError
from engine.project import ops
from engine.project.document import CategoryAtom, Edit, MaskAtom, ProjectDocument, TrackAtom
from engine.project.model import Category, Mask, Provenance, TrackFields
from engine.project.ops import category_colour
from engine.types import VideoPrediction


# ---------------------------------------------------------------- import
def read_annotations(path: str | Path) -> tuple[Dataset | None, list[dict] | None]:
    """A YTVIS ground-truth file (-> Dataset) or results file (-> list of results); errors name the file."""
    path = Path(path)
    doc = _read_json(path)
    if isinstance(doc, list):
        return None, check_results(doc, None, path)
    return Dataset.from_json(doc, path), None


def import_file(doc: ProjectDocument, path: str | Path, video_name: str | None = None) -> Edit:
    """The edit that adds the annotations (or results) of the project's video in `path`."""
    path = Path(path)
    dataset, results = read_annotations(path)
    prov = Provenance.now("imported", str(path))
    if dataset is not None:
        video = _pick_video(doc, path, dataset.videos, video_name)
        _check_video(doc, path, video.length, video.width, video.height)
        names = dataset.category_names()
        tracks = [(a.id, names.get(a.category_id, f"class {a.category_id}"), a.category_id, None, a.segmentations)
                  for a in dataset.instances_of(video.id)]
        classes = [(c.name, c.id, c.supercategory) for c in sorted(dataset.categories, key=lambda c: c.id)]
        return _import_edit(doc, tracks, prov, f"import {path.name}", path, classes)
    vids = sorted({r["video_id"] for r in results})
    if video_name is not None:
        try:
            vid = int(video_name)
        except ValueError:
            raise InputError(path, f"results name videos by id only ({_list(vids)}); --video-name must be one of "
                                   "those ids") from None
        if vid not in vids:
            raise InputError(path, f"no results for video {vid} (the file has {_list(vids)})")
    elif len(vids) > 1:
        raise InputError(path, f"results for {len(vids)} videos ({_list(vids)}); pick one with --video-name ID")
    else:
        vid = vids[0] if vids else None
    rows = [r for r in results if r["video_id"] == vid]
    for i, r in enumerate(rows):  # lengths here; each mask's size is checked with the others in _import_edit
        _check_video(doc, path, len(r["segmentations"]), doc.video.width, doc.video.height, where=f"result {i}")
    tracks = [(None, _existing_name(doc, r["category_id"]), r["category_id"], r["score"], r["segmentations"])
              for r in rows]
    return _import_edit(doc, tracks, prov, f"import {path.name}", path)


def import_prediction(doc: ProjectDocument, pred: VideoPrediction, run: str = "", replace: bool = True) -> Edit:
    """A model run's tracks as project tracks (provenance model: run, checkpoint, mode), as one undo step.

    With `replace`, the tracks of earlier runs that nobody touched (every mask still the model's) give way to the
    new run's; any track with a human, assist or imported mask is kept as it is, so re-running never costs
    work. Tracks keep the run's ids where those are free (the analysis views find their queries by id); tracks
    with no mask on any frame are not imported."""
    path = Path(pred.checkpoint or "prediction")
    _check_video(doc, path, pred.num_frames, pred.width, pred.height)
    detail = " · ".join(p for p in (run, Path(pred.checkpoint).name if pred.checkpoint else "", pred.mode) if p)
    prov = Provenance.now("model", detail)
    removed = [tid for tid in doc.track_ids() if replace and _untouched_model_track(doc, tid)]
    atoms: list = []
    for tid in removed:
        atoms += ops.delete_track(doc, tid).atoms
    tracks = [(t.id if t.id >= 1 else None,
               pred.categories[t.category_id - 1] if 1 <= t.category_id <= len(pred.categories)
               else f"class {t.category_id}", t.category_id, float(t.score), t.masks)
              for t in pred.tracks if rle_ops.any_pixels(t.masks)]
    imported = _import_edit(doc, tracks, prov, "", path, free=set(removed))
    return Edit(f"model run {detail}", tuple(atoms) + imported.atoms)


def _untouched_model_track(doc: ProjectDocument, tid: int) -> bool:
    t = doc.tracks[tid]
    return not t.locked and all(m.provenance.kind == "model" for m in t.masks.values())


def _import_edit(doc: ProjectDocument, tracks: list, prov: Provenance, description: str, path: Path,
                 classes: list[tuple[str, int, str]] = (), free: set[int] = frozenset()) -> Edit:
    """tracks: (wanted id or None, category name, wanted category id or None, score, per-frame segmentations);
    classes: (name, wanted id, supercategory) of a ground truth's whole class list, added even where no track uses them.
    Categories match by name; a new one keeps its id when that is free. `free`: track ids the same edit deletes
    first. Every mask must have the video's size: a wrong one stops the import before anything changes."""
    size = [doc.video.height, doc.video.width] if doc.video else None
    atoms: list = []
    cat_ids: dict[str, int] = {c.name: c.id for c in doc.categories.values()}
    taken_cats = set(doc.categories)

    def category(cname: str, want_cat: int | None, sup: str = "object") -> int:
        if cname not in cat_ids:
            cid = want_cat if want_cat is not None and want_cat not in taken_cats else max(taken_cats, default=0) + 1
            taken_cats.add(cid)
            cat_ids[cname] = cid
            atoms.append(CategoryAtom(cid, None, Category(cid, cname, category_colour(cid), sup)))
        return cat_ids[cname]

    for cname, cid, sup in classes:
        category(cname, cid, sup)
    taken_tracks = set(doc.tracks) - set(free)
    next_tid = max(taken_tracks, default=0) + 1
    for want_id, cname, want_cat, score, segs in tracks:
        category(cname, want_cat)
        if want_id is not None and want_id not in taken_tracks:
            tid = want_id
        else:
            tid = max(max(taken_tracks, default=0) + 1, next_tid)
        taken_tracks.add(tid)
        next_tid = max(next_tid, tid + 1)
        atoms.append(TrackAtom(tid, None, TrackFields(cat_ids[cname], score)))
        for f, s in enumerate(segs):
            if s is not None and size is not None and [int(v) for v in s["size"]] != size:
                raise InputError(path, f"mask of frame {f} is {s['size'][1]}x{s['size'][0]}, the project's video "
                                       f"is {size[1]}x{size[0]}")
        frames = [f for f, s in enumerate(segs) if s is not None]
        areas = rle_ops.areas([segs[f] for f in frames])   # one C call a track: empty masks are not imported
        for f, a in zip(frames, areas, strict=True):
            if a > 0:
                atoms.append(MaskAtom(tid, f, None, Mask(segs[f], prov)))
    return Edit(description, tuple(atoms))


def _existing_name(doc: ProjectDocument, cid: int) -> str:
    c = doc.categories.get(cid)
    return c.name if c else f"class {cid}"


def _pick_video(doc: ProjectDocument, path: Path, videos: Sequence[VideoEntry], name: str | None) -> VideoEntry:
    names = [v.name for v in videos]
    if name is not None:
        for v in videos:
            if v.name == name or str(v.id) == name:
                return v
        raise InputError(path, f"no video named {name!r} in the file (it has {_list(names)})")
    own = doc.video.name if doc.video else ""
    for v in videos:
        if v.name == own:
            return v
    raise InputError(path, f"no video named {own!r} in the file (it has {_list(names)}); pick one with "
                           "--video-name")


def _check_video(doc: ProjectDocument, path: Path, length: int, width: int, height: int, where: str = "") -> None:
    v = doc.video
    if v is None:
        return
    what = f"{where}: " if where else ""
    if length != v.num_frames:
        raise InputError(path, f"{what}{length} frames, the project's video has {v.num_frames}")
    if (width, height) != (v.width, v.height):
        raise InputError(path, f"{what}masks are {width}x{height}, the project's video is {v.width}x{v.height}")


def _list(items) -> str:
    items = list(items)
    return ", ".join(map(str, items[:6])) + (f" and {len(items) - 6} more" if len(items) > 6 else "")


# ---------------------------------------------------------------- export
def frame_names(doc: ProjectDocument) -> list[str]:
    """`<video>/<frame>.jpg` per frame: the source's own file names for a frame folder, 00000.jpg... otherwise."""
    v = doc.video
    src = Path(v.path)
    if src.is_dir():
        from engine.data.video import VideoReader

        with VideoReader(src, cache_size=1) as r:
            files = getattr(r._folder, "files", None)  # noqa: SLF001 - the reader's own sorted frame list
        if files is not None and len(files) == v.num_frames:
            return [f"{v.name}/{Path(f).stem}.jpg" for f in files]
    return [f"{v.name}/{i:05d}.jpg" for i in range(v.num_frames)]


def export_dataset(docs: Sequence[ProjectDocument]) -> Dataset:
    """Ground truth of one or more projects (one video each): categories merged by name, masks as RLE."""
    categories: dict[str, int] = {}
    ycats: list[YCategory] = []
    videos, instances = [], []
    single = len(docs) == 1
    names_seen: set[str] = set()
    for vid, doc in enumerate(docs, start=1):
        names = frame_names(doc)
        vname = names[0].split("/")[0] if names else str(vid)
        if vname in names_seen:
            raise InputError(doc.video.path, f"two projects have a video named {vname!r}")
        names_seen.add(vname)
        v = doc.video
        videos.append(VideoEntry(vid, names, v.width, v.height))
        for c in sorted(doc.categories.values(), key=lambda c: c.id):
            if c.name not in categories:
                cid = c.id if single else len(categories) + 1
                categories[c.name] = cid
                ycats.append(YCategory(cid, c.name, c.supercategory))
        for tid in doc.track_ids():
            t = doc.tracks[tid]
            if t.category_id is None or not t.masks:
                continue  # YTVIS has no unlabelled objects; the CLI says how many were left out
            segs = [t.masks[f].rle if f in t.masks else None for f in range(v.num_frames)]
            ann_id = tid if single else len(instances) + 1
            instances.append(Instance(ann_id, vid, categories[doc.category_name(t.category_id)], segs,
                                      extra={"score": t.fields.score} if t.fields.score is not None else {}))
    return Dataset(videos, sorted(ycats, key=lambda c: c.id), instances)


def skipped_tracks(doc: ProjectDocument) -> list[int]:
    """Tracks an export leaves out: no class, or no mask on any frame."""
    return [tid for tid in doc.track_ids() if doc.tracks[tid].category_id is None or not doc.tracks[tid].masks]


def export_results(dataset: Dataset) -> list[dict]:
    """The same objects in the results format (score: the model's track score, 1.0 for a human's track)."""
    out = []
    for a in dataset.instances:
        score = a.extra.get("score")
        out.append({"video_id": a.video_id, "category_id": a.category_id,
                    "score": float(1.0 if score is None else score), "segmentations": a.segmentations})
    return out


def write_frames(doc: ProjectDocument, root: str | Path, progress=None) -> int:
    """Write `root/JPEGImages/<video>/<frame>.jpg` from the project's video (decoded, not copied)."""
    import cv2

    from engine.data.video import VideoReader

    root = Path(root) / "JPEGImages"
    names = frame_names(doc)
    (root / names[0].split("/")[0]).mkdir(parents=True, exist_ok=True)
    with VideoReader(doc.video.path, cache_size=2) as r:
        for i, frame in enumerate(r):
            if i >= len(names):
                break
            out = root / names[i]
            if not cv2.imwrite(str(out), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise InputError(out, "could not write the frame")
            if progress is not None:
                progress(i + 1, len(names))
    return len(names)


__all__ = ["DatasetFormatError", "export_dataset", "export_results", "import_file", "import_prediction",
           "read_annotations", "skipped_tracks", "write_frames"]
