"""YTVIS JSON in and out: lossless round trips, input normalisation, and first-problem validation messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from engine.data import masks
from engine.data.ytvis import (
    Category,
    Dataset,
    Instance,
    ResultEntry,
    VideoEntry,
    check_results,
    frame_paths,
    load_results,
    save_results,
)
from engine.errors import DatasetFormatError


def _box(t: int, h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((t, h, w), dtype=bool)
    m[:, y0:y1, x0:x1] = True
    return m


def _dataset() -> Dataset:
    v1 = VideoEntry(1, [f"cat/{i:05d}.jpg" for i in range(5)], width=40, height=30)
    v2 = VideoEntry(7, [f"dog/{i:05d}.jpg" for i in range(3)], width=20, height=16)
    s1 = masks.encode_stack(_box(5, 30, 40, 2, 10, 3, 13))
    s1[3] = None
    s2 = masks.encode_stack(_box(5, 30, 40, 15, 25, 20, 39))
    s3 = masks.encode_stack(_box(3, 16, 20, 0, 4, 0, 5))
    s3[0] = None
    return Dataset(
        [v1, v2],
        [Category(1, "cat"), Category(2, "dog", "animal")],
        [Instance(1, 1, 1, s1), Instance(2, 1, 2, s2, iscrowd=1), Instance(5, 7, 2, s3)],
        info={"description": "test"},
    )


def _gt_doc() -> dict:
    return _dataset().to_json()


def _write(tmp_path: Path, doc, name="gt.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def test_round_trip_is_lossless(tmp_path):
    ds = _dataset()
    p1, p2 = tmp_path / "a.json", tmp_path / "b.json"
    ds.save(p1)
    back = Dataset.load(p1)
    assert back == ds
    back.save(p2)
    assert p1.read_bytes() == p2.read_bytes()


def test_saved_fields_follow_reference_conventions(tmp_path):
    ds = _dataset()
    ds.save(tmp_path / "gt.json")
    doc = json.loads((tmp_path / "gt.json").read_text())
    assert set(doc) == {"info", "licenses", "videos", "annotations", "categories"}
    assert doc["videos"][0] == {
        "id": 1,
        "width": 40,
        "height": 30,
        "length": 5,
        "file_names": [f"cat/{i:05d}.jpg" for i in range(5)],
    }
    a = doc["annotations"][0]
    assert set(a) == {
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
    }
    assert a["areas"] == [80, 80, 80, None, 80]  # 8 rows x 10 cols, absent on frame 3
    assert a["bboxes"][0] == [3.0, 2.0, 10.0, 8.0] and a["bboxes"][3] is None  # [x, y, w, h]
    assert a["segmentations"][3] is None and isinstance(a["segmentations"][0]["counts"], str)
    assert (a["width"], a["height"], a["length"]) == (40, 30, 5)
    assert doc["annotations"][1]["iscrowd"] == 1
    assert doc["categories"][1] == {"id": 2, "name": "dog", "supercategory": "animal"}


def test_polygons_and_uncompressed_rle_normalised_to_compressed(tmp_path):
    doc = _gt_doc()
    want = _box(1, 30, 40, 2, 10, 3, 13)[0]
    # uncompressed RLE (column-major run lengths, as COCO writes them) of the same box
    flat = want.flatten(order="F").astype(np.uint8)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    segs = doc["annotations"][0]["segmentations"]
    segs[0] = {"size": [30, 40], "counts": runs}
    segs[1] = [[3, 2, 13, 2, 13, 10, 3, 10]]  # polygon of the same box
    p = _write(tmp_path, doc)
    ds = Dataset.load(p)
    s = ds.instances[0].segmentations
    assert isinstance(s[0]["counts"], str) and isinstance(s[1]["counts"], str)
    assert np.array_equal(masks.decode(s[0]), want)
    assert masks.area(s[1]) > 0 and masks.bbox(s[1])[:2] == [3.0, 2.0]
    ds.save(tmp_path / "out.json")
    again = Dataset.load(tmp_path / "out.json")
    assert again == ds
    assert json.loads((tmp_path / "out.json").read_text())["annotations"][0]["segmentations"][0] == s[0]


def test_extra_keys_and_licenses_survive(tmp_path):
    doc = _gt_doc()
    doc["licenses"] = [{"id": 1, "name": "CC"}]
    doc["videos"][0]["date_captured"] = "2019"
    doc["annotations"][0]["note"] = "occluded"
    p = _write(tmp_path, doc)
    Dataset.load(p).save(tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["licenses"] == [{"id": 1, "name": "CC"}]
    assert out["videos"][0]["date_captured"] == "2019"
    assert out["annotations"][0]["note"] == "occluded"


def _mutate(fn):
    doc = _gt_doc()
    fn(doc)
    return doc


BAD_GT = [
    ("missing videos", lambda d: d.pop("videos"), "", "missing key 'videos'"),
    (
        "ann missing key",
        lambda d: d["annotations"][1].pop("category_id"),
        "annotations[1]",
        "missing key 'category_id'",
    ),
    (
        "unknown video",
        lambda d: d["annotations"][2].update(video_id=99),
        "annotations[2].video_id",
        "unknown video_id 99",
    ),
    (
        "unknown category",
        lambda d: d["annotations"][0].update(category_id=5),
        "annotations[0].category_id",
        "unknown category_id 5",
    ),
    (
        "seg length",
        lambda d: d["annotations"][0]["segmentations"].pop(),
        "annotations[0].segmentations",
        "4 masks but video 1 has 5 frames",
    ),
    ("dup video", lambda d: d["videos"][1].update(id=1), "videos[1].id", "duplicate video id 1"),
    ("dup ann", lambda d: d["annotations"][2].update(id=1), "annotations[2].id", "duplicate annotation id 1"),
    ("dup cat", lambda d: d["categories"][1].update(id=1), "categories[1].id", "duplicate category id 1"),
    ("id type", lambda d: d["annotations"][1].update(id="2"), "annotations[1].id", "expected an integer"),
    ("width type", lambda d: d["videos"][0].update(width=40.5), "videos[0].width", "expected an integer"),
    ("length", lambda d: d["videos"][0].update(length=9), "videos[0].length", "length 9 but 5 file_names"),
    (
        "seg type",
        lambda d: d["annotations"][0]["segmentations"].__setitem__(2, 5),
        "annotations[0].segmentations[2]",
        "expected an RLE object",
    ),
    (
        "counts type",
        lambda d: d["annotations"][0]["segmentations"][1].update(counts=7),
        "annotations[0].segmentations[1]",
        "RLE counts must be",
    ),
    ("iscrowd", lambda d: d["annotations"][0].update(iscrowd=3), "annotations[0].iscrowd", "expected 0 or 1"),
]


@pytest.mark.parametrize("name,mutate,location,problem", BAD_GT, ids=[b[0] for b in BAD_GT])
def test_first_problem_reported_with_location(tmp_path, name, mutate, location, problem):
    p = _write(tmp_path, _mutate(mutate))
    with pytest.raises(DatasetFormatError) as ei:
        Dataset.load(p)
    assert ei.value.location == location
    assert problem in ei.value.problem
    assert str(p) in str(ei.value)


def test_mask_size_mismatch_message(tmp_path):
    doc = _gt_doc()
    doc["annotations"][2]["segmentations"][1] = masks.encode(np.zeros((720, 1280), bool))
    p = _write(tmp_path, doc)
    with pytest.raises(DatasetFormatError) as ei:
        Dataset.load(p)
    assert str(ei.value).endswith(
        "annotations[2].segmentations[1]: mask size 720x1280 does not match video 7 (16x20)"
    )


def test_not_json_and_wrong_shape(tmp_path):
    with pytest.raises(DatasetFormatError, match="not JSON"):
        Dataset.load(_write(tmp_path, '{"videos": [', "bad.json"))
    with pytest.raises(DatasetFormatError, match="looks like a results file"):
        Dataset.load(_write(tmp_path, [], "list.json"))
    with pytest.raises(DatasetFormatError, match="no such file"):
        Dataset.load(tmp_path / "nope.json")


def test_results_round_trip_and_validation(tmp_path):
    ds = _dataset()
    segs = masks.encode_stack(_box(5, 30, 40, 1, 9, 3, 12))
    segs[4] = None
    res = [
        ResultEntry(1, 1, 0.75, segs),
        {
            "video_id": 7,
            "category_id": 2,
            "score": 1,
            "segmentations": [None, [[0, 0, 5, 0, 5, 4, 0, 4]], None],
        },
    ]
    save_results(tmp_path / "r.json", res)
    raw = json.loads((tmp_path / "r.json").read_text())
    assert set(raw[0]) == {"video_id", "category_id", "score", "segmentations"}
    back = load_results(tmp_path / "r.json", ds)
    assert back[0] == {"video_id": 1, "category_id": 1, "score": 0.75, "segmentations": segs}
    assert back[1]["score"] == 1.0 and isinstance(back[1]["segmentations"][1]["counts"], str)
    save_results(tmp_path / "r2.json", back)
    assert load_results(tmp_path / "r2.json", ds) == back

    def bad(entry, loc, problem):
        with pytest.raises(DatasetFormatError) as ei:
            check_results([back[0], entry], ds, tmp_path / "r.json")
        assert ei.value.location == loc and problem in ei.value.problem

    bad({**back[0], "video_id": 3}, "results[1].video_id", "video 3 is not in the ground truth")
    bad({**back[0], "category_id": 9}, "results[1].category_id", "category 9 is not in the ground truth")
    bad(
        {**back[0], "segmentations": segs[:4]}, "results[1].segmentations", "4 masks but video 1 has 5 frames"
    )
    bad({**back[0], "score": float("nan")}, "results[1].score", "finite number")
    bad({k: v for k, v in back[0].items() if k != "score"}, "results[1]", "missing key 'score'")
    bad({**back[0], "video_id": 7}, "results[1].segmentations", "5 masks but video 7 has 3 frames")
    with pytest.raises(DatasetFormatError, match="looks like a ground-truth file"):
        check_results(_gt_doc(), ds)


def test_from_folder_checks_frames(tmp_path):
    ds = _dataset()
    root = tmp_path / "set"
    root.mkdir()
    ds.save(root / "annotations.json")
    for v in ds.videos:
        for p in frame_paths(v, root):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"jpg")
    loaded = Dataset.from_folder(root)
    assert loaded == ds and loaded.root == root
    assert loaded.frame_paths(7)[2] == root / "JPEGImages" / "dog" / "00002.jpg"
    missing = root / "JPEGImages" / "dog" / "00001.jpg"
    missing.unlink()
    with pytest.raises(DatasetFormatError) as ei:
        Dataset.from_folder(root)
    assert ei.value.location == "videos[1].file_names[1]" and str(missing) in str(ei.value)
    assert Dataset.from_folder(root, check_frames=False) == ds
    with pytest.raises(DatasetFormatError, match="no annotations.json"):
        Dataset.from_folder(tmp_path)


def test_category_ids_for_one_policy():
    ds = _dataset()   # categories 1 cat, 2 dog
    assert ds.category_ids_for(["dog", "cat"]) == [2, 1]                 # by name, any order
    assert ds.category_ids_for(["cat", "zebra", "dog"]) == [1, None, 2]  # no counterpart: None (dropped)
    assert ds.category_ids_for(["class 1", "class 2"]) == [1, 2]         # no name matches, counts do: position
    assert ds.category_ids_for(["a", "b", "c"]) == [None, None, None]
    assert ds.category_ids_for(["dog", "b"]) == [2, None]                # one name matches: never by position


def test_convenience_queries():
    ds = _dataset()
    assert ds.category_names() == {1: "cat", 2: "dog"}
    assert [a.id for a in ds.instances_of(1)] == [1, 2]
    assert ds.video(7).length == 3 and ds.video(7).name == "dog"
    sub = ds.subset([7])
    assert [v.id for v in sub.videos] == [7] and [a.id for a in sub.instances] == [5]
    assert sub.categories == ds.categories
    with pytest.raises(KeyError):
        ds.subset([42])
    # subset is a copy: editing it leaves the original alone
    sub2 = copy.deepcopy(ds).subset([1])
    sub2.instances.clear()
    assert len(ds.instances_of(1)) == 2
