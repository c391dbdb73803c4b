"""The synthetic VIS benchmark: determinism, exact masks under occlusion, the hard cases it promises, and the
files it writes (frames, YTVIS annotations, mp4s) through the API and the CLI."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.data import masks as mask_utils
from engine.data.synthetic import (
    CATEGORY_NAMES,
    PRESETS,
    SynthConfig,
    generate_video,
    video_seed,
    write_dataset,
    write_mp4,
)
from engine.data.ytvis import Dataset
from engine.errors import Cancelled, InputError

ROOT = Path(__file__).resolve().parents[1]
SMALL = (96, 64)


def _runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D bool array."""
    out, n = [], 0
    for f in flags:
        if f:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out + ([n] if n else [])


def _clean(preset: str) -> SynthConfig:
    """The preset with one flat colour per instance, black background, no blur or noise."""
    return dataclasses.replace(PRESETS[preset], textures=("flat",), noise=0.0, blur_prob=0.0,
                               backgrounds=False)


# ----------------------------------------------------------------------------------------- determinism
def test_same_seed_same_video_other_seed_other_video():
    a = generate_video("hard", 11, SMALL)
    b = generate_video("hard", 11, SMALL)
    c = generate_video("hard", 12, SMALL)
    assert a.frames.dtype == np.uint8 and a.frames.shape == (a.num_frames, 64, 96, 3)
    assert a.labels.shape == (a.num_frames, 64, 96)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert [i.category_id for i in a.instances] == [i.category_id for i in b.instances]
    assert [a.rles(k) for k in range(len(a.instances))] == [b.rles(k) for k in range(len(b.instances))]
    assert a.frames.shape != c.frames.shape or a.frames.tobytes() != c.frames.tobytes()


def test_video_seed_is_stable_and_distinct():
    seeds = [video_seed(3, i) for i in range(50)]
    assert len(set(seeds)) == 50
    assert seeds == [video_seed(3, i) for i in range(50)]
    assert video_seed(4, 0) != video_seed(3, 0)
    with pytest.raises(InputError):
        video_seed(-1, 0)


def test_video_i_does_not_depend_on_count(tmp_path):
    one = write_dataset(tmp_path / "one", num_videos=1, seed=5, size=SMALL)
    three = write_dataset(tmp_path / "three", num_videos=3, seed=5, size=SMALL)
    d1, d3 = Dataset.load(one / "annotations.json"), Dataset.load(three / "annotations.json")
    assert len(d3.videos) == 3
    assert d1.videos[0].file_names == d3.videos[0].file_names
    assert [a.segmentations for a in d1.instances] == [a.segmentations for a in d3.instances_of(1)]
    for name in d1.videos[0].file_names:
        assert (one / "JPEGImages" / name).read_bytes() == (three / "JPEGImages" / name).read_bytes()


# ------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("preset,seed", [("default", 1), ("hard", 2), ("hard", 3)])
def test_visible_masks_are_painted_pixels_and_drawn_minus_front(preset, seed):
    v = generate_video(_clean(preset), seed, (128, 80), keep_amodal=True)
    colours = [inst.colour for inst in v.instances]
    assert all(c is not None for c in colours) and len(set(colours)) == len(colours)
    n = len(v.instances)
    assert n >= 1
    for t in range(v.num_frames):
        frame = v.frames[t]
        # background stays black; every visible pixel of instance k has exactly k's flat colour
        assert not frame[v.labels[t] == 0].any()
        for k in range(n):
            m = v.mask(k, t)
            assert (frame[m] == np.array(colours[k], np.uint8)).all()
            assert v.visible_area[k, t] == m.sum()
        # visible = drawn minus the union of drawn masks of instances in front (higher z), recomputed here
        drawn = [v.amodal_mask(k, t) for k in range(n)]
        for k in range(n):
            front = np.zeros_like(drawn[k])
            for j in range(n):
                if v.instances[j].z > v.instances[k].z:
                    front |= drawn[j]
            np.testing.assert_array_equal(drawn[k] & ~front, v.mask(k, t))
            assert v.amodal_area[k, t] == drawn[k].sum()
            x0, y0, x1, y1 = v.boxes[k, t]
            assert drawn[k][y0:y1, x0:x1].sum() == drawn[k].sum()  # the box holds everything drawn
    # every kept instance is visible somewhere
    assert (v.visible_area.sum(axis=1) > 0).all()


def test_rles_are_none_exactly_where_absent_and_decode_to_masks():
    v = generate_video("hard", 4, SMALL)
    for k in range(len(v.instances)):
        rles = v.rles(k)
        assert len(rles) == v.num_frames
        for t, rle in enumerate(rles):
            if v.visible_area[k, t] == 0:
                assert rle is None
            else:
                assert rle["size"] == [64, 96] and isinstance(rle["counts"], str)
                np.testing.assert_array_equal(mask_utils.decode(rle), v.mask(k, t))


def test_json_masks_equal_memory_masks_and_jpegs_match_frames(tmp_path):
    out = write_dataset(tmp_path / "ds", preset="hard", num_videos=2, seed=7, size=SMALL)
    ds = Dataset.from_folder(out)
    for i, entry in enumerate(ds.videos):
        v = generate_video("hard", video_seed(7, i), SMALL)
        anns = ds.instances_of(entry.id)
        assert [a.category_id for a in anns] == [inst.category_id for inst in v.instances]
        for k, ann in enumerate(anns):
            for t, seg in enumerate(ann.segmentations):
                if seg is None:
                    assert v.visible_area[k, t] == 0
                else:
                    np.testing.assert_array_equal(mask_utils.decode(seg), v.mask(k, t))
        # the JPEGs are these RGB frames (lossy, so close, not equal)
        for t, path in enumerate(ds.frame_paths(entry)):
            jpg = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            assert np.abs(jpg.astype(int) - v.frames[t].astype(int)).mean() < 10


# ------------------------------------------------------------------------------------- the hard cases
def test_hard_has_partial_and_long_full_occlusion():
    partial = full = 0
    for seed in range(4):
        v = generate_video("hard", seed, (160, 96))
        in_frame = v.amodal_area > 0
        partial += int(((v.visible_area > 0) & (v.visible_area < v.amodal_area)).sum())
        hidden = in_frame & (v.visible_area == 0)
        full = max(full, max((max(_runs(h), default=0) for h in hidden), default=0))
    assert partial >= 20
    assert full >= 3  # some instance is completely hidden for three frames or more in a row


def test_instances_enter_and_leave_mid_video():
    late = early_end = 0
    for seed in range(4):
        v = generate_video("default", seed, SMALL)
        for k in range(len(v.instances)):
            ts = np.flatnonzero(v.visible_area[k] > 0)
            late += ts[0] > 0
            early_end += ts[-1] < v.num_frames - 1
        # out-of-frame part of the motion: some instance is cut by the border on some frame
    assert late >= 1 and early_end >= 1


def test_long_videos_have_reentries_after_leaving_the_frame():
    gaps = 0
    for seed in range(3):
        v = generate_video("long", seed, (64, 48))
        for k in range(len(v.instances)):
            ts = np.flatnonzero(v.amodal_area[k] > 0)
            gaps += int((np.diff(ts) >= 5).any()) if len(ts) > 1 else 0
    assert gaps >= 1


def test_lookalikes_share_class_and_look():
    found = 0
    for seed in range(3):
        v = generate_video("hard", seed, (128, 80))
        for k, inst in enumerate(v.instances):
            j = inst.lookalike_of
            if j is None:
                continue
            assert v.instances[j].category_id == inst.category_id
            both = (v.visible_area[k] > 50) & (v.visible_area[j] > 50)
            for t in np.flatnonzero(both)[:1]:
                # same texture: the mean colours of their visible pixels are close
                ck, cj = v.frames[t][v.mask(k, t)].mean(0), v.frames[t][v.mask(j, t)].mean(0)
                assert np.abs(ck - cj).max() < 60
                found += 1
    assert found >= 1


def test_all_categories_appear_and_colour_is_not_the_class():
    cats, colours = set(), {c: [] for c in range(1, 9)}
    for i in range(6):
        v = generate_video(_clean("default"), video_seed(0, i), SMALL)
        for inst in v.instances:
            cats.add(inst.category_id)
            colours[inst.category_id].append(inst.colour)
    assert cats == set(range(1, len(CATEGORY_NAMES) + 1))
    assert any(len(set(c)) >= 2 for c in colours.values())


@pytest.mark.parametrize("preset,size,seeds",
                         [("default", SMALL, 8), ("hard", SMALL, 4), ("long", (48, 32), 3)])
def test_presets_respect_their_frame_and_instance_ranges(preset, size, seeds):
    cfg = PRESETS[preset]
    lengths = []
    for seed in range(seeds):
        v = generate_video(preset, seed, size)
        lengths.append(v.num_frames)
        assert cfg.frames[0] <= v.num_frames <= cfg.frames[1]
        assert 1 <= len(v.instances) <= cfg.instances[1]
    assert len(set(lengths)) > 1


def test_shapes_have_their_outline():
    """The class is carried by the outline: area, corner count, hole and axis ratio of each rendered shape."""
    cfg = dataclasses.replace(_clean("default"), frames=(1, 1), instances=(1, 1), radius=(0.3, 0.3),
                              rotation=0.0, wobble=0.0, scale_ratio=1.0, late_entry_prob=0.0, exit_prob=0.0,
                              chase_prob=0.0, shake=0.0, speed=(0.0, 0.0))
    # (area, perimeter) of the unit outlines: disc, square 1.6^2, triangle (R=1.1), 5-point star (1.1 / 0.45),
    # ring (hole 0.55), cross (arms 2 x 0.6), ellipse (1 x 0.55), hexagon (R=1); a filled raster adds about
    # half a pixel along the perimeter (the ring's hole is cleared with its boundary: half a pixel back)
    star_edge = np.sqrt(1.1 ** 2 + 0.45 ** 2 - 2 * 1.1 * 0.45 * np.cos(np.pi / 5))
    ideal = {1: (np.pi, 2 * np.pi), 2: (2.56, 6.4), 3: (3 * np.sqrt(3) / 4 * 1.21, 3.3 * np.sqrt(3)),
             4: (5 * 1.1 * 0.45 * np.sin(np.pi / 5), 10 * star_edge),
             5: (np.pi * (1 - 0.55 ** 2), 2 * np.pi * 0.45),
             6: (2.04, 8.0), 7: (np.pi * 0.55, 4.973), 8: (1.5 * np.sqrt(3), 6.0)}
    corners = {2: 4, 3: 3, 4: 10, 6: 12, 8: 6}
    r = 0.3 * 200
    seen = set()
    for seed in range(60):
        v = generate_video(cfg, seed, (400, 200))
        if not v.instances:
            continue
        cat, m = v.instances[0].category_id, v.mask(0, 0)
        if v.amodal_area[0, 0] != v.visible_area[0, 0] or m[1:-1, 1:-1].sum() != v.visible_area[0, 0]:
            continue  # touches the border
        area, perim = ideal[cat]
        assert abs(v.visible_area[0, 0] - (area * r * r + perim * r / 2)) < 0.02 * area * r * r
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        assert len(contours) == (2 if cat == 5 else 1)
        outer = max(contours, key=len)
        if cat in corners:
            approx = cv2.approxPolyDP(outer, 0.02 * cv2.arcLength(outer, True), True)
            assert len(approx) == corners[cat]
        if cat in (1, 5, 7):
            (_, _), (d1, d2), _ = cv2.fitEllipse(outer)
            assert abs(min(d1, d2) / max(d1, d2) - (0.55 if cat == 7 else 1.0)) < 0.03
        seen.add(cat)
    assert seen == set(ideal)


# ------------------------------------------------------------------------------------------------ files
def test_write_dataset_layout_and_progress(tmp_path):
    calls = []
    out = write_dataset(tmp_path / "ds", preset="default", num_videos=3, seed=2, size=SMALL,
                        progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    ds = Dataset.from_folder(out)
    assert [c.name for c in ds.categories] == list(CATEGORY_NAMES)
    assert [c.id for c in ds.categories] == list(range(1, 9))
    assert [v.name for v in ds.videos] == [f"synth_default_s2_{i:04d}" for i in range(3)]
    for entry in ds.videos:
        jpgs = sorted((out / "JPEGImages" / entry.name).glob("*.jpg"))
        assert len(jpgs) == entry.length and jpgs[0].name == "00000.jpg"
        assert (entry.width, entry.height) == SMALL
        for ann in ds.instances_of(entry.id):
            assert len(ann.segmentations) == entry.length
            assert any(s is not None for s in ann.segmentations)
    ids = [a.id for a in ds.instances]
    assert ids == list(range(1, len(ids) + 1))


def test_write_dataset_cancel_and_bad_preset(tmp_path):
    with pytest.raises(Cancelled):
        write_dataset(tmp_path / "c", num_videos=3, size=SMALL, cancel=lambda: True)
    with pytest.raises(InputError):
        write_dataset(tmp_path / "p", preset="nope", num_videos=1, size=SMALL)


def _count_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, s.codec_context.width, s.codec_context.height


def test_write_mp4_pads_odd_sizes(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 33, 51, 3), dtype=np.uint8)
    path = write_mp4(tmp_path / "odd.mp4", frames)
    assert _count_frames(path) == (7, 52, 34)


def test_cli_synth_writes_frames_annotations_and_mp4s(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "main.py", "synth", "--out", str(out), "--videos", "2", "--mp4",
                           "--size", "96x64", "--seed", "1", "--preset", "hard"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ds = Dataset.from_folder(out)
    assert len(ds.videos) == 2
    for entry in ds.videos:
        assert len(list((out / "JPEGImages" / entry.name).glob("*.jpg"))) == entry.length
        assert _count_frames(out / "videos" / f"{entry.name}.mp4") == (entry.length, 96, 64)
