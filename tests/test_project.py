"""The Qt-free edit layer: operations, exact undo, the SQLite store and its failure modes, import and export."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest

from engine.data.masks import decode, encode
from engine.errors import InputError
from engine.project import ops
from engine.project.document import EditConflict, ProjectDocument
from engine.project.io import export_dataset, export_results, import_file
from engine.project.model import Provenance, VideoInfo
from engine.project.project import Project, VideoMissing
from engine.project.store import ProjectError, ProjectInUse, WriteFailed
from tests.media import write_frame_folder

H, W, N = 24, 32, 12
HUMAN = Provenance("human", "brush", 1000.0)


def box(y0, y1, x0, x1) -> dict:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return encode(m)


def make_doc() -> ProjectDocument:
    """Two categories, three tracks with masks on several frames, one lock."""
    doc = ProjectDocument(VideoInfo("/nowhere/v.mp4", N, W, H, 25.0))
    doc.apply(ops.add_category(doc, "car"))
    doc.apply(ops.add_category(doc, "dog"))
    for tid, cat, score in ((1, "car", 0.9), (2, "dog", 0.8), (3, "car", None)):
        doc.apply(ops.new_track(doc, tid, cat, score))
    for f in range(0, 8):
        doc.apply(ops.set_mask(doc, 1, f, box(2, 10, f, f + 8), HUMAN))
    for f in range(4, 12):
        doc.apply(ops.set_mask(doc, 2, f, box(6, 14, f + 2, f + 10), HUMAN))
    ring = np.zeros((H, W), bool)
    ring[10:20, 10:20] = True
    ring[13:17, 13:17] = False
    doc.apply(ops.set_mask(doc, 3, 5, encode(ring), HUMAN))
    doc.apply(ops.lock(doc, 2, 9))
    return doc


OPERATIONS = {
    "add_category": lambda d: ops.add_category(d, "bird"),
    "rename_category": lambda d: ops.rename_category(d, "car", "auto"),
    "recolour_category": lambda d: ops.recolour_category(d, "dog", (1, 2, 3)),
    "delete_category_unlabel": lambda d: ops.delete_category(d, "car", "unlabel"),
    "delete_category_tracks": lambda d: ops.delete_category(d, "car", "delete_tracks"),
    "delete_category_reassign": lambda d: ops.delete_category(d, "car", "reassign", "dog"),
    "new_track": lambda d: ops.new_track(d, None, "dog"),
    "delete_track": lambda d: ops.delete_track(d, 2),
    "relabel": lambda d: ops.relabel(d, 1, "dog"),
    "set_mask": lambda d: ops.set_mask(d, 1, 3, box(0, 5, 0, 5), HUMAN),
    "set_mask_exclusive": lambda d: ops.set_mask(d, 3, 6, box(0, 24, 0, 16), HUMAN, exclusive=True),
    "erase_to_empty": lambda d: ops.set_mask(d, 1, 2, encode(np.zeros((H, W), bool)), HUMAN),
    "set_masks": lambda d: ops.set_masks(d, 2, {f: box(0, 3, 0, 3) for f in range(8, 12)}, HUMAN, "propagate"),
    "delete_mask": lambda d: ops.delete_mask(d, 1, 4),
    "delete_mask_range": lambda d: ops.delete_mask(d, 1, range(2, 7)),
    "merge_into": lambda d: ops.merge(d, 1, 2, "into"),
    "merge_track": lambda d: ops.merge(d, 1, 2, "track", {5: "into"}),
    "split": lambda d: ops.split(d, 2, 8),
    "swap": lambda d: ops.swap(d, 1, 2, 5),
    "lock": lambda d: ops.lock(d, 1, 3),
    "unlock": lambda d: ops.lock(d, 2, 9, False),
    "fill_holes": lambda d: ops.fill_holes(d, 3, 5),
}


def bitwise(doc: ProjectDocument) -> dict:
    """Every mask decoded, for a pixel-by-pixel comparison independent of the RLE strings."""
    return {(tid, f): decode(m.rle) for tid, t in doc.tracks.items() for f, m in t.masks.items()}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_undoes_and_redoes_exactly(name):
    doc = make_doc()
    before, before_px = doc.snapshot(), bitwise(doc)
    edit = OPERATIONS[name](doc)
    assert edit, f"{name} produced no change"
    doc.apply(edit)
    after, after_px = doc.snapshot(), bitwise(doc)
    assert after != before
    doc.apply(edit.inverse())
    assert doc.snapshot() == before
    px = bitwise(doc)
    assert px.keys() == before_px.keys() and all(np.array_equal(px[k], before_px[k]) for k in px)
    doc.apply(edit)
    assert doc.snapshot() == after
    px = bitwise(doc)
    assert px.keys() == after_px.keys() and all(np.array_equal(px[k], after_px[k]) for k in px)


def test_operations_do_what_they_say():
    doc = make_doc()
    doc.apply(ops.split(doc, 2, 8))
    assert doc.tracks[2].frames() == [4, 5, 6, 7] and doc.tracks[4].frames() == [8, 9, 10, 11]
    assert doc.tracks[4].locked == {9} and not doc.tracks[2].locked and doc.tracks[4].category_id == 2

    doc = make_doc()
    m1, m2 = doc.mask(1, 6), doc.mask(2, 6)
    doc.apply(ops.swap(doc, 1, 2, 6))
    assert doc.mask(1, 6) == m2 and doc.mask(2, 6) == m1 and doc.mask(1, 5) != m2
    assert doc.tracks[1].locked == {9} and doc.tracks[1].frames() == list(range(12))
    assert doc.tracks[2].frames() == [4, 5, 6, 7] and not doc.tracks[2].locked

    doc = make_doc()
    mine, theirs = doc.mask(1, 5), doc.mask(2, 5)
    doc.apply(ops.merge(doc, 1, 2, "track", {6: "into"}))
    assert 1 not in doc.tracks and doc.tracks[2].frames() == list(range(12))
    assert doc.mask(2, 5) == mine and doc.mask(2, 6) != mine and doc.mask(2, 0) is not None and theirs != mine

    doc = make_doc()
    doc.apply(ops.set_mask(doc, 3, 6, box(0, 24, 0, 10), HUMAN, exclusive=True))
    a, b, c = (decode(doc.mask(t, 6).rle) for t in (3, 1, 2))
    assert not (a & b).any() and not (a & c).any()
    assert b.sum() == 8 * 4 and c.sum() == 8 * 6  # track 1 keeps columns 10-13, track 2 columns 10-15
    locked_before = doc.mask(2, 9)
    doc.apply(ops.set_mask(doc, 3, 9, box(0, 24, 0, 32), HUMAN, exclusive=True))
    assert doc.mask(2, 9) == locked_before  # a locked mask is never taken from

    doc = make_doc()
    doc.apply(ops.fill_holes(doc, 3, 5))
    assert decode(doc.mask(3, 5).rle).sum() == 100 and doc.mask(3, 5).provenance.kind == "human"


def test_locked_frames_refuse_edits_and_propagation_skips_them():
    doc = make_doc()
    with pytest.raises(ops.OpError, match="locked"):
        ops.set_mask(doc, 2, 9, box(0, 2, 0, 2), HUMAN)
    with pytest.raises(ops.OpError, match="locked"):
        ops.delete_mask(doc, 2, range(8, 11))
    edit = ops.set_masks(doc, 2, {f: box(0, 2, 0, 2) for f in (8, 9, 10)}, HUMAN, "propagate")
    assert sorted(a.frame for a in edit.atoms) == [8, 10]


def test_stale_edit_is_refused_and_leaves_document_unchanged():
    doc = make_doc()
    edit = ops.delete_mask(doc, 1, range(0, 4))
    doc.apply(ops.set_mask(doc, 1, 3, box(0, 1, 0, 1), HUMAN))
    snap = doc.snapshot()
    with pytest.raises(EditConflict):
        doc.apply(edit)
    assert doc.snapshot() == snap


def test_change_events_are_fine_grained():
    doc = make_doc()
    got = []
    doc.subscribe(got.append)
    doc.apply(ops.set_mask(doc, 1, 3, box(0, 5, 0, 5), HUMAN))
    doc.apply(ops.new_track(doc, 9, "dog"))
    doc.apply(ops.relabel(doc, 9, "car"))
    doc.apply(ops.delete_track(doc, 2))
    assert got[0].masks == {1: {3}} and not got[0].tracks_added and not got[0].fields_changed
    assert got[1].tracks_added == {9} and not got[1].masks
    assert got[2].fields_changed == {9} and not got[2].masks
    assert got[3].tracks_removed == {2} and got[3].masks[2] == set(range(4, 12)) and got[3].locks == {2: {9}}


def test_bad_operation_inputs_name_the_problem():
    doc = make_doc()
    with pytest.raises(ops.OpError, match="no track 42"):
        ops.relabel(doc, 42, "car")
    with pytest.raises(ops.OpError, match="outside the video"):
        ops.set_mask(doc, 1, N, box(0, 1, 0, 1), HUMAN)
    with pytest.raises(ops.OpError, match="size"):
        ops.set_mask(doc, 1, 0, encode(np.ones((H + 1, W), bool)), HUMAN)
    with pytest.raises(ops.OpError, match="no category named"):
        ops.new_track(doc, 7, "zebra")
    with pytest.raises(ops.OpError, match="unknown op"):
        ops.edit_from_json(doc, {"op": "explode"})


# ---------------------------------------------------------------- the store
def new_project(tmp_path, name="p.svproj") -> Project:
    return Project.create(tmp_path / name, VideoInfo(str(tmp_path / "v"), N, W, H, 25.0))


def replay(project: Project, doc: ProjectDocument) -> None:
    """Apply the edits that built `doc` (make_doc's recipe) through the project."""
    src = doc
    for cat in sorted(src.categories.values(), key=lambda c: c.id):
        project.apply(ops.add_category(project.doc, cat.name, cat.colour, cat.id))
    for tid, t in sorted(src.tracks.items()):
        project.apply(ops.new_track(project.doc, tid, t.category_id, t.fields.score))
        project.apply(ops.set_masks(project.doc, tid, {f: m.rle for f, m in t.masks.items()}, HUMAN, "masks"))
        for f in t.locked:
            project.apply(ops.lock(project.doc, tid, f))


def test_store_round_trip_restores_everything(tmp_path):
    p = new_project(tmp_path)
    replay(p, make_doc())
    p.apply(ops.swap(p.doc, 1, 2, 6))
    p.store.set_view_state({"frame": 7, "selected": 2})
    snap, edits = p.doc.snapshot(), p.store.edit_count()
    p.close()
    q = Project.open(tmp_path / "p.svproj", require_video=False)
    assert q.doc.snapshot() == snap and q.store.edit_count() == edits
    assert q.store.view_state() == {"frame": 7, "selected": 2}
    assert q.doc.mask(1, 0).provenance == HUMAN
    q.close()


def test_second_open_is_refused_while_the_first_holds_it(tmp_path):
    p = new_project(tmp_path)
    with pytest.raises(ProjectInUse, match="open in another window"):
        Project.open(tmp_path / "p.svproj", require_video=False)
    p.close()
    Project.open(tmp_path / "p.svproj", require_video=False).close()


def test_newer_schema_is_refused_and_not_touched(tmp_path):
    new_project(tmp_path).close()
    path = tmp_path / "p.svproj"
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA user_version = 99")
    c.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ProjectError, match="newer SyncVIS Studio .*schema 99"):
        Project.open(path, require_video=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_not_a_project_is_refused(tmp_path):
    bad = tmp_path / "x.svproj"
    bad.write_text("hello, I am not a database" * 50)
    with pytest.raises(ProjectError, match="not a SyncVIS Studio project"):
        Project.open(bad)


@pytest.mark.parametrize("failure", ["read-only", "disk-full"])
def test_failed_write_keeps_edit_unsaved_and_file_at_last_commit(tmp_path, failure):
    p = new_project(tmp_path)
    replay(p, make_doc())
    committed = p.doc.snapshot()
    states = []
    p.on_saved_changed = states.append
    conn = p.store._conn  # noqa: SLF001 - make this very connection fail the way a full or read-only disk does
    if failure == "read-only":
        conn.execute("PRAGMA query_only = ON")
    else:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    big = encode(np.random.default_rng(0).random((H, W)) > 0.5)  # incompressible RLE: needs new pages
    edits = [ops.set_masks(p.doc, 3, {f: big for f in range(N)}, HUMAN, "paint")]
    with pytest.raises(WriteFailed, match="could not save"):
        p.apply(edits[0])
    assert not p.saved and states == [False]
    assert p.doc.mask(3, 0) is not None  # the user's edit is still in the document
    edits.append(ops.delete_track(p.doc, 1))
    with pytest.raises(WriteFailed):
        p.apply(edits[1])
    assert len(p.pending) == 2
    # What the file holds now, seen from a second reader: exactly the last committed state.
    p.store.close()
    reopened = Project.open(tmp_path / "p.svproj", require_video=False)
    assert reopened.doc.snapshot() == committed
    reopened.close()
    # The disk comes back: Ctrl+S writes the pending edits and the file catches up with the document.
    from engine.project.store import Store

    p.store = Store.open(tmp_path / "p.svproj")
    assert p.save() and p.saved and states == [False, True]
    want = p.doc.snapshot()
    p.close()
    again = Project.open(tmp_path / "p.svproj", require_video=False)
    assert again.doc.snapshot() == want
    again.close()


def test_save_as_continues_in_the_new_file(tmp_path):
    p = new_project(tmp_path)
    replay(p, make_doc())
    p.save_as(tmp_path / "copy.svproj")
    p.apply(ops.delete_track(p.doc, 3))
    snap = p.doc.snapshot()
    p.close()
    q = Project.open(tmp_path / "copy.svproj", require_video=False)
    assert q.doc.snapshot() == snap
    q.close()


# ---------------------------------------------------------------- the video moves
def test_moved_video_is_found_checked_and_remembered(tmp_path):
    src = write_frame_folder(tmp_path / "clips" / "v1", 10)
    p = Project.create(tmp_path / "p.svproj", src)
    p.close()
    moved = tmp_path / "elsewhere" / "v1"
    shutil.move(str(src), moved)
    with pytest.raises(VideoMissing, match="10 frames, 64x48"):
        Project.open(tmp_path / "p.svproj")
    other = write_frame_folder(tmp_path / "other" / "v1", 10)
    for img in other.iterdir():  # same length and size, other pictures
        import cv2

        cv2.imwrite(str(img), np.full((48, 64, 3), 30, np.uint8))
    with pytest.raises(InputError, match="frames differ"):
        Project.open(tmp_path / "p.svproj", video=other)
    short = write_frame_folder(tmp_path / "short" / "v1", 7)
    with pytest.raises(InputError, match="7 frames"):
        Project.open(tmp_path / "p.svproj", video=short)
    q = Project.open(tmp_path / "p.svproj", video=moved)
    assert q.doc.video.path == str(moved.resolve())
    q.close()
    Project.open(tmp_path / "p.svproj").close()  # remembered: no question the next time


# ---------------------------------------------------------------- import / export
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from engine.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth"), preset="default", num_videos=2, seed=3,
                         size=(96, 64))


def test_import_export_round_trip_is_exact(tmp_path, synth):
    from engine.data.ytvis import Dataset
    from engine.evaluation import evaluate

    gt = Dataset.from_folder(synth)
    video = gt.videos[1]
    p = Project.create(tmp_path / "p.svproj", synth / "JPEGImages" / video.name)
    p.apply(import_file(p.doc, synth / "annotations.json"))
    assert {m.provenance.kind for t in p.doc.tracks.values() for m in t.masks.values()} == {"imported"}
    out = export_dataset([p.doc])
    p.close()
    want = gt.subset([video.id])
    assert [c.__dict__ for c in out.categories] == [c.__dict__ for c in want.categories]
    assert out.videos[0].file_names == video.file_names
    a = {i.id: i for i in want.instances}
    b = {i.id: i for i in out.instances}
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].category_id == b[k].category_id
        assert [None if s is None or not decode(s).any() else decode(s).tobytes() for s in a[k].segmentations] == \
               [None if s is None else decode(s).tobytes() for s in b[k].segmentations]
    res = [{**r, "video_id": video.id} for r in export_results(out)]
    assert evaluate(want, res).stats["AP"] == pytest.approx(1.0, abs=1e-9)


def test_bad_import_names_the_problem_and_changes_nothing(tmp_path, synth):
    from engine.data.ytvis import Dataset

    gt = Dataset.from_folder(synth)
    v = gt.videos[0]
    p = Project.create(tmp_path / "p.svproj", synth / "JPEGImages" / v.name)
    doc = json.loads((synth / "annotations.json").read_text())
    cases = {}
    (tmp_path / "broken.json").write_text("{\"videos\": [")
    cases["broken.json"] = "not JSON"
    doc2 = json.loads(json.dumps(doc))
    doc2["videos"] = [x for x in doc2["videos"] if x["id"] != v.id]
    doc2["annotations"] = [a for a in doc2["annotations"] if a["video_id"] != v.id]
    (tmp_path / "other.json").write_text(json.dumps(doc2))
    cases["other.json"] = "no video named"
    doc3 = json.loads(json.dumps(doc))
    for x in doc3["videos"]:
        x["file_names"] = x["file_names"][:-2]
        x["length"] = len(x["file_names"])
    for a in doc3["annotations"]:
        a["segmentations"] = a["segmentations"][:-2]
        a.pop("areas", None), a.pop("bboxes", None)
    (tmp_path / "short.json").write_text(json.dumps(doc3))
    cases["short.json"] = f"{v.length - 2} frames, the project's video has {v.length}"
    res = [{"video_id": v.id, "category_id": 1, "score": 0.5,
            "segmentations": [encode(np.zeros((10, 10), bool))] * v.length}]
    (tmp_path / "res.json").write_text(json.dumps(res))
    cases["res.json"] = "10x10"
    for name, msg in cases.items():
        with pytest.raises(InputError, match=msg) as e:
            import_file(p.doc, tmp_path / name)
        assert name in str(e.value)
        assert not p.doc.tracks and not p.doc.categories
    p.close()


def test_model_run_replaces_only_untouched_model_tracks(tmp_path):
    from engine.project.io import import_prediction
    from engine.types import Track, VideoPrediction

    def pred(offset: int) -> VideoPrediction:
        tracks = [Track(i, 1 + i % 2, 0.5 + 0.1 * i, [box(1, 6, f + i + offset, f + i + offset + 4)
                                                      for f in range(N)], [0.5] * N) for i in (1, 2, 3)]
        empty = Track(4, 1, 0.9, [None] * N, [None] * N)  # no mask anywhere: never imported
        return VideoPrediction("sync", N, H, W, ["car", "dog"], tracks + [empty], checkpoint="/m/tiny-sync.pt")

    doc = ProjectDocument(VideoInfo("/v.mp4", N, W, H, 25.0))
    doc.apply(import_prediction(doc, pred(0), "run 1"))
    assert doc.track_ids() == [1, 2, 3]
    assert doc.mask(1, 0).provenance.detail == "run 1 · tiny-sync.pt · sync"
    assert doc.tracks[2].fields.score == pytest.approx(0.7) and doc.category_name(doc.tracks[2].category_id) == "car"
    doc.apply(ops.set_mask(doc, 2, 0, box(10, 20, 10, 20), HUMAN))  # a human touched track 2
    kept = doc.tracks[2].masks.copy()
    edit = import_prediction(doc, pred(5), "run 2")
    doc.apply(edit)
    assert doc.tracks[2].masks == kept  # human work survives the re-run
    assert sorted(doc.track_ids()) == [1, 2, 3, 4]  # run 2's tracks: 1 and 3 replaced in place, its 2 is new
    assert doc.mask(1, 0).provenance.detail.startswith("run 2") and doc.mask(4, 0).provenance.detail.startswith("run 2")
    doc.apply(edit.inverse())
    assert sorted(doc.track_ids()) == [1, 2, 3] and doc.mask(1, 0).provenance.detail.startswith("run 1")


def test_snapshot_is_a_frozen_copy_another_process_can_open(tmp_path):
    p = new_project(tmp_path)
    replay(p, make_doc())
    snap = p.doc.snapshot()
    copy = p.snapshot(tmp_path / "frozen.svproj")
    p.apply(ops.delete_track(p.doc, 1))  # work goes on in the original
    q = Project.open(copy, require_video=False)  # not locked by the original
    assert q.doc.snapshot() == snap
    q.close()
    p.close()
