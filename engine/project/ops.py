"""Edit operations: each reads the document and returns the `Edit` that does it (nothing is changed here).

The window's undo commands, the `project apply` command line and the tests call these same functions, so an edit
made by a script is the edit the GUI would have made. An operation that cannot apply raises `OpError` with a
message for the user (the CLI prefixes it with the file and line).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from engine.data import masks as rle_ops
from engine.project.document import CategoryAtom, Edit, LockAtom, MaskAtom, ProjectDocument, TrackAtom
from engine.project.model import Category, Mask, Provenance, TrackFields

DELETE_POLICIES = ("delete_tracks", "unlabel", "reassign")


class OpError(ValueError):
    """An operation that does not fit the document (unknown track, frame out of range, ...)."""


# ---------------------------------------------------------------- helpers
def _track(doc: ProjectDocument, tid: int):
    if tid not in doc.tracks:
        raise OpError(f"no track {tid}")
    return doc.tracks[tid]


def _frame(doc: ProjectDocument, frame: int) -> int:
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < doc.num_frames:
        raise OpError(f"frame {frame!r} is outside the video (0..{doc.num_frames - 1})")
    return frame


def _category_id(doc: ProjectDocument, category: int | str | None) -> int | None:
    """A category given by name or id; None means unlabelled."""
    if category is None:
        return None
    if isinstance(category, str):
        c = doc.category_by_name(category)
        if c is None:
            raise OpError(f"no category named {category!r} (add it first with add_category)")
        return c.id
    if category not in doc.categories:
        raise OpError(f"no category with id {category}")
    return int(category)


def check_rle(doc: ProjectDocument, rle: dict) -> dict:
    """An RLE from outside (JSON, a widget) must be compressed with the video's size; normalised to str counts."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise OpError("rle must be an object with 'size' and 'counts'")
    size = [int(v) for v in rle["size"]]
    if doc.video is not None and size != [doc.video.height, doc.video.width]:
        raise OpError(f"rle size {size} is not the video's [{doc.video.height}, {doc.video.width}]")
    try:
        out = rle_ops.to_compressed(rle, size[0], size[1])
        rle_ops.area(out)
    except Exception as e:  # noqa: BLE001 - pycocotools raises several types on garbage
        raise OpError(f"rle does not decode: {e}") from None
    return out


def _lock_guard(doc: ProjectDocument, tid: int, frames: Iterable[int], what: str) -> None:
    locked = sorted(f for f in frames if doc.is_locked(tid, f))
    if locked:
        raise OpError(f"track {tid} is locked on frame(s) {_frames_text(locked)}: unlock before you {what}")


def _frames_text(frames: list[int]) -> str:
    return ", ".join(map(str, frames[:8])) + (" ..." if len(frames) > 8 else "")


def _remove_track_atoms(doc: ProjectDocument, tid: int) -> list:
    t = doc.tracks[tid]
    atoms: list = [LockAtom(tid, f, True, False) for f in sorted(t.locked)]
    atoms += [MaskAtom(tid, f, m, None) for f, m in sorted(t.masks.items())]
    atoms.append(TrackAtom(tid, t.fields, None))
    return atoms


# ---------------------------------------------------------------- categories
def add_category(doc: ProjectDocument, name: str, colour: tuple[int, int, int] | None = None,
                 category_id: int | None = None) -> Edit:
    name = str(name).strip()
    if not name:
        raise OpError("a category needs a name")
    if doc.category_by_name(name) is not None:
        raise OpError(f"category {name!r} exists")
    cid = category_id if category_id is not None else doc.next_category_id()
    if cid in doc.categories:
        raise OpError(f"category id {cid} is taken")
    colour = tuple(colour) if colour is not None else category_colour(cid)
    return Edit(f"add category {name}", (CategoryAtom(cid, None, Category(cid, name, colour)),))


def category_colour(cid: int) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((0.137 + 0.38196601125 * cid) % 1.0, 0.55, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def rename_category(doc: ProjectDocument, category: int | str, name: str) -> Edit:
    cid = _category_id(doc, category)
    other = doc.category_by_name(name)
    if other is not None and other.id != cid:
        raise OpError(f"category {name!r} exists")
    c = doc.categories[cid]
    return Edit(f"rename {c.name} to {name}", (CategoryAtom(cid, c, replace(c, name=name)),))


def recolour_category(doc: ProjectDocument, category: int | str, colour: tuple[int, int, int]) -> Edit:
    cid = _category_id(doc, category)
    c = doc.categories[cid]
    return Edit(f"recolour {c.name}", (CategoryAtom(cid, c, replace(c, colour=tuple(colour))),))


def delete_category(doc: ProjectDocument, category: int | str, policy: str = "unlabel",
                    reassign_to: int | str | None = None) -> Edit:
    """Delete a category; its tracks are deleted, left unlabelled, or moved to `reassign_to`."""
    cid = _category_id(doc, category)
    if policy not in DELETE_POLICIES:
        raise OpError(f"policy must be one of {', '.join(DELETE_POLICIES)}")
    target = None
    if policy == "reassign":
        target = _category_id(doc, reassign_to)
        if target is None or target == cid:
            raise OpError("reassign needs another category")
    atoms: list = []
    for tid in doc.track_ids():
        t = doc.tracks[tid]
        if t.category_id != cid:
            continue
        if policy == "delete_tracks":
            atoms += _remove_track_atoms(doc, tid)
        else:
            atoms.append(TrackAtom(tid, t.fields, t.fields.with_(category_id=target)))
    c = doc.categories[cid]
    atoms.append(CategoryAtom(cid, c, None))
    return Edit(f"delete category {c.name}", tuple(atoms))


# ---------------------------------------------------------------- tracks
def new_track(doc: ProjectDocument, track_id: int | None = None, category: int | str | None = None,
              score: float | None = None, name: str = "") -> Edit:
    tid = doc.next_track_id() if track_id is None else int(track_id)
    if tid < 1:
        raise OpError("track ids start at 1")
    if tid in doc.tracks:
        raise OpError(f"track {tid} exists")
    return Edit(f"new track {tid}", (TrackAtom(tid, None, TrackFields(_category_id(doc, category), score, name)),))


def delete_track(doc: ProjectDocument, tid: int) -> Edit:
    _track(doc, tid)
    return Edit(f"delete track {tid}", tuple(_remove_track_atoms(doc, tid)))


def relabel(doc: ProjectDocument, tid: int, category: int | str | None) -> Edit:
    t = _track(doc, tid)
    cid = _category_id(doc, category)
    atom = TrackAtom(tid, t.fields, t.fields.with_(category_id=cid))
    return Edit(f"track {tid} to {doc.category_name(cid)}", (atom,))


def set_mask(doc: ProjectDocument, tid: int, frame: int, rle: dict, provenance: Provenance,
             exclusive: bool = False, description: str | None = None) -> Edit:
    """Put `rle` as track `tid`'s mask on `frame` (an empty mask removes it). With `exclusive`, the pixels are
    taken away from the other tracks on that frame (the "no overlap" option); a locked mask is never touched."""
    t = _track(doc, tid)
    _frame(doc, frame)
    rle = check_rle(doc, rle)
    _lock_guard(doc, tid, [frame], "paint")
    after = Mask(rle, provenance) if rle_ops.area(rle) > 0 else None
    atoms: list = []
    if t.masks.get(frame) != after:
        atoms.append(MaskAtom(tid, frame, t.masks.get(frame), after))
    if exclusive and after is not None:
        mine = rle_ops.decode(rle)
        for other, m in list(doc.masks_on(frame)):
            if other == tid or doc.is_locked(other, frame):
                continue
            theirs = rle_ops.decode(m.rle)
            overlap = theirs & mine
            if overlap.any():
                rest = theirs & ~mine
                new = Mask(rle_ops.encode(rest), provenance) if rest.any() else None
                atoms.append(MaskAtom(other, frame, m, new))
    return Edit(description or f"{provenance.detail or provenance.kind} on track {tid}, frame {frame}", tuple(atoms))


def set_masks(doc: ProjectDocument, tid: int, rles: dict[int, dict], provenance: Provenance,
              description: str) -> Edit:
    """Many frames of one track in one undo step (a propagation run, an import); locked frames are skipped."""
    t = _track(doc, tid)
    atoms = []
    for frame in sorted(rles):
        _frame(doc, frame)
        if doc.is_locked(tid, frame):
            continue
        rle = check_rle(doc, rles[frame])
        after = Mask(rle, provenance) if rle_ops.area(rle) > 0 else None
        if t.masks.get(frame) != after:
            atoms.append(MaskAtom(tid, frame, t.masks.get(frame), after))
    return Edit(description, tuple(atoms))


def delete_mask(doc: ProjectDocument, tid: int, frames: int | Iterable[int]) -> Edit:
    """Delete the mask on one frame or a range of frames (frames without a mask are ignored)."""
    t = _track(doc, tid)
    frames = [frames] if isinstance(frames, int) else list(frames)
    for f in frames:
        _frame(doc, f)
    _lock_guard(doc, tid, [f for f in frames if f in t.masks], "delete its mask")
    atoms = tuple(MaskAtom(tid, f, t.masks[f], None) for f in sorted(set(frames)) if f in t.masks)
    what = f"frame {frames[0]}" if len(frames) == 1 else f"frames {min(frames)}-{max(frames)}"
    return Edit(f"delete mask of track {tid} on {what}", atoms)


def merge(doc: ProjectDocument, tid: int, into: int, prefer: str = "into",
          choices: dict[int, str] | None = None) -> Edit:
    """Move track `tid`'s masks into `into` and delete `tid`. Where both have a mask, `prefer` ("track" or "into")
    says which wins, overridable per frame by `choices` (frame -> "track" | "into"); locked masks of `into` win."""
    a, b = _track(doc, tid), _track(doc, into)
    if tid == into:
        raise OpError("cannot merge a track into itself")
    if prefer not in ("track", "into"):
        raise OpError("prefer must be 'track' or 'into'")
    choices = choices or {}
    atoms: list = []
    for f, m in sorted(a.masks.items()):
        keep_mine = choices.get(f, prefer) == "track"
        if f in b.masks and (not keep_mine or f in b.locked):
            continue
        if b.masks.get(f) != m:
            atoms.append(MaskAtom(into, f, b.masks.get(f), m))
    atoms += [LockAtom(into, f, False, True) for f in sorted(a.locked - b.locked) if f not in b.masks or
              choices.get(f, prefer) == "track"]
    atoms += _remove_track_atoms(doc, tid)
    if b.fields.category_id is None and a.fields.category_id is not None:
        atoms.append(TrackAtom(into, b.fields, b.fields.with_(category_id=a.fields.category_id)))
    return Edit(f"merge track {tid} into {into}", tuple(atoms))


def split(doc: ProjectDocument, tid: int, frame: int, new_id: int | None = None) -> Edit:
    """Frames >= `frame` of track `tid` move to a new track (same class) from `frame` on."""
    t = _track(doc, tid)
    _frame(doc, frame)
    nid = doc.next_track_id() if new_id is None else int(new_id)
    if nid in doc.tracks:
        raise OpError(f"track {nid} exists")
    moving = {f: m for f, m in t.masks.items() if f >= frame}
    if not moving:
        raise OpError(f"track {tid} has no mask on frame {frame} or later")
    if not any(f < frame for f in t.masks):
        raise OpError(f"track {tid} starts at frame {min(t.masks)}: nothing to split off before frame {frame}")
    atoms: list = [TrackAtom(nid, None, t.fields.with_(name=""))]
    locks = sorted(f for f in t.locked if f >= frame)
    atoms += [LockAtom(tid, f, True, False) for f in locks]
    for f, m in sorted(moving.items()):
        atoms += [MaskAtom(tid, f, m, None), MaskAtom(nid, f, None, m)]
    atoms += [LockAtom(nid, f, False, True) for f in locks]
    return Edit(f"split track {tid} at frame {frame} (new track {nid})", tuple(atoms))


def swap(doc: ProjectDocument, tid: int, other: int, frame: int) -> Edit:
    """Swap the identities of two tracks from `frame` on: their masks (and locks) on frames >= frame trade places."""
    a, b = _track(doc, tid), _track(doc, other)
    _frame(doc, frame)
    if tid == other:
        raise OpError("cannot swap a track with itself")
    frames = sorted(f for f in set(a.masks) | set(b.masks) | a.locked | b.locked if f >= frame)
    atoms: list = []
    # Locks first off, masks swapped, locks back on the other side: each atom's "before" stays valid.
    atoms += [LockAtom(tid, f, True, False) for f in frames if f in a.locked]
    atoms += [LockAtom(other, f, True, False) for f in frames if f in b.locked]
    for f in frames:
        ma, mb = a.masks.get(f), b.masks.get(f)
        if ma != mb:
            atoms += [MaskAtom(tid, f, ma, mb), MaskAtom(other, f, mb, ma)]
    atoms += [LockAtom(tid, f, False, True) for f in frames if f in b.locked]
    atoms += [LockAtom(other, f, False, True) for f in frames if f in a.locked]
    return Edit(f"swap tracks {tid} and {other} from frame {frame}", tuple(atoms))


def lock(doc: ProjectDocument, tid: int, frame: int, locked: bool = True) -> Edit:
    t = _track(doc, tid)
    _frame(doc, frame)
    if (frame in t.locked) == locked:
        return Edit("", ())
    return Edit(f"{'lock' if locked else 'unlock'} track {tid} on frame {frame}", (LockAtom(tid, frame, not locked,
                                                                                              locked),))


def fill_holes(doc: ProjectDocument, tid: int, frame: int) -> Edit:
    from scipy.ndimage import binary_fill_holes

    m = _track(doc, tid).masks.get(_frame(doc, frame))
    if m is None:
        raise OpError(f"track {tid} has no mask on frame {frame}")
    filled = binary_fill_holes(rle_ops.decode(m.rle))
    return set_mask(doc, tid, frame, rle_ops.encode(filled), Provenance.now("human", "fill holes"),
                    description=f"fill holes of track {tid} on frame {frame}")


def sequence(doc: ProjectDocument, description: str, *makers) -> Edit:
    """Several dependent operations as ONE edit (a stroke that first creates its track, a merge that relabels):
    each maker(doc) -> Edit is computed on the document as the previous ones left it, silently, and everything
    is rolled back before returning, so the document is unchanged and the caller applies the result once."""
    applied: list[Edit] = []
    try:
        for make in makers:
            e = make(doc)
            doc.apply(e, notify=False)
            applied.append(e)
    finally:
        for e in reversed(applied):
            doc.apply(e.inverse(), notify=False)
    return Edit(description, tuple(a for e in applied for a in e.atoms))


# ---------------------------------------------------------------- edits as JSON (the `project apply` lines)
def _req(obj: dict, key: str):
    if key not in obj:
        raise OpError(f"'{obj.get('op')}' needs '{key}'")
    return obj[key]


def _int_field(obj: dict, key: str) -> int:
    v = _req(obj, key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise OpError(f"'{key}' must be an integer, got {v!r}")
    return v


def _frames_field(obj: dict) -> list[int]:
    if "frames" in obj:
        lo, hi = obj["frames"]
        return list(range(int(lo), int(hi) + 1))
    return [_int_field(obj, "frame")]


def edit_from_json(doc: ProjectDocument, obj: dict, provenance: Provenance | None = None) -> Edit:
    """One `project apply` line -> the edit the window would make. Tracks are named by id, categories by name
    (or id). Masks set this way carry `provenance` (default: human, "script")."""
    if not isinstance(obj, dict) or "op" not in obj:
        raise OpError("each line must be a JSON object with an 'op'")
    op = obj["op"]
    prov = provenance or Provenance.now("human", "script")
    if op == "add_category":
        return add_category(doc, _req(obj, "name"), obj.get("colour"), obj.get("id"))
    if op == "rename_category":
        return rename_category(doc, _req(obj, "category"), _req(obj, "name"))
    if op == "recolour_category":
        return recolour_category(doc, _req(obj, "category"), _req(obj, "colour"))
    if op == "delete_category":
        return delete_category(doc, _req(obj, "category"), obj.get("policy", "unlabel"), obj.get("to"))
    if op == "new_track":
        return new_track(doc, _int_field(obj, "track") if "track" in obj else None, obj.get("category"),
                         obj.get("score"), obj.get("name", ""))
    if op == "set_mask":
        return set_mask(doc, _int_field(obj, "track"), _int_field(obj, "frame"), _req(obj, "rle"), prov,
                        bool(obj.get("exclusive", False)))
    if op == "delete_mask":
        return delete_mask(doc, _int_field(obj, "track"), _frames_field(obj))
    if op == "delete_track":
        return delete_track(doc, _int_field(obj, "track"))
    if op == "relabel":
        return relabel(doc, _int_field(obj, "track"), _req(obj, "category"))
    if op == "merge":
        return merge(doc, _int_field(obj, "track"), _int_field(obj, "into"), obj.get("prefer", "into"),
                     {int(k): v for k, v in obj.get("choices", {}).items()})
    if op == "split":
        return split(doc, _int_field(obj, "track"), _int_field(obj, "frame"), obj.get("new"))
    if op == "swap":
        return swap(doc, _int_field(obj, "track"), _int_field(obj, "with"), _int_field(obj, "frame"))
    if op in ("lock", "unlock"):
        return lock(doc, _int_field(obj, "track"), _int_field(obj, "frame"), op == "lock")
    if op == "fill_holes":
        return fill_holes(doc, _int_field(obj, "track"), _int_field(obj, "frame"))
    raise OpError(f"unknown op {op!r}")
