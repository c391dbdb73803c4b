"""`main.py project ...`: the contract other tools build on, and the crash test (SIGKILL mid-run loses nothing)."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from engine.cli import run_cli
from engine.data.masks import decode, encode
from engine.project import ops
from engine.project.document import ProjectDocument
from engine.project.model import Provenance
from engine.project.project import Project
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from engine.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth"), preset="default", num_videos=2, seed=5,
                         size=(96, 64), mp4=True)


def cli(*args) -> int:
    return run_cli([str(a) for a in args])


def test_create_import_export_round_trip_at_ap_1(tmp_path, synth, capsys):
    from engine.data.ytvis import Dataset
    from engine.evaluation import evaluate

    gt = Dataset.from_folder(synth)
    projects = []
    for v in gt.videos:  # one from the frame folder, one from the mp4 (+ --frames to write JPEGs back)
        src = synth / "JPEGImages" / v.name if v.id == gt.videos[0].id else synth / "videos" / f"{v.name}.mp4"
        out = tmp_path / f"{v.name}.svproj"
        assert cli("project", "create", src, "-o", out, "--import", synth / "annotations.json") == 0
        projects.append(out)
    assert cli("project", "export", *projects, "--ytvis", tmp_path / "gt.json", "--frames", tmp_path / "ds",
               "--davis", tmp_path / "davis") == 0
    assert cli("project", "export", *projects, "--ytvis", tmp_path / "res.json", "--results") == 0
    text = capsys.readouterr().out
    assert "2 video(s)" in text and "palette PNGs" in text
    exported = Dataset.load(tmp_path / "gt.json")
    assert [v.file_names for v in exported.videos] == [v.file_names for v in gt.videos]
    assert sorted(p.name for p in (tmp_path / "ds" / "JPEGImages").iterdir()) == sorted(v.name for v in gt.videos)
    assert len(list((tmp_path / "davis").rglob("*.png"))) == sum(v.length for v in gt.videos)
    # The export against the input: AP 1.0 with the reference metric, and mask by mask.
    results = json.loads((tmp_path / "res.json").read_text())
    assert evaluate(gt, results).stats["AP"] == pytest.approx(1.0, abs=1e-9)
    assert evaluate(exported, results).stats["AP"] == pytest.approx(1.0, abs=1e-9)
    def objects(ds):
        return sorted(((a.video_id, a.category_id, tuple(_px(s) for s in a.segmentations)) for a in ds.instances),
                      key=lambda o: (o[0], o[1], [p or b"" for p in o[2]]))

    assert objects(gt) == objects(exported)


def _px(seg):
    if seg is None:
        return None
    m = decode(seg)
    return m.tobytes() if m.any() else None


def test_info_json_lists_tracks_edits_and_provenance(tmp_path, synth, capsys):
    from engine.data.ytvis import Dataset

    v = Dataset.from_folder(synth).videos[0]
    out = tmp_path / "p.svproj"
    cli("project", "create", synth / "JPEGImages" / v.name, "-o", out, "--import", synth / "annotations.json")
    capsys.readouterr()
    assert cli("project", "info", out, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["video"]["frames"] == v.length and info["video"]["width"] == 96
    assert info["edits"] == 1 and info["provenance"]["imported"] == sum(len(t["frames"]) for t in info["tracks"])
    assert [t["id"] for t in info["tracks"]] == sorted(t["id"] for t in info["tracks"])
    assert len(info["categories"]) == 8


def test_apply_prints_each_committed_line_and_stops_at_a_bad_one(tmp_path, synth, capsys):
    from engine.data.ytvis import Dataset

    v = Dataset.from_folder(synth).videos[0]
    out = tmp_path / "p.svproj"
    cli("project", "create", synth / "JPEGImages" / v.name, "-o", out)
    m = np.zeros((64, 96), bool)
    m[5:20, 5:30] = True
    lines = [{"op": "add_category", "name": "car"}, {"op": "new_track", "track": 7, "category": "car"},
             {"op": "set_mask", "track": 7, "frame": 2, "rle": encode(m)},
             {"op": "relabel", "track": 99, "category": "car"}, {"op": "delete_track", "track": 7}]
    edits = tmp_path / "edits.jsonl"
    edits.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    capsys.readouterr()
    assert cli("project", "apply", out, edits) == 2
    cap = capsys.readouterr()
    assert cap.out.split() == ["1", "2", "3"]
    assert cap.err.strip() == f"error: {edits}: line 4: no track 99"
    p = Project.open(out)
    assert p.doc.tracks[7].frames() == [2] and p.doc.mask(7, 2).provenance.kind == "human"
    p.close()
    edits.write_text('{"op": "lock", "track": 7, "frame": 2}\n{"op": oops}\n')
    assert cli("project", "apply", out, edits) == 2
    assert "line 2: not JSON" in capsys.readouterr().err


def test_bad_inputs_exit_2_with_one_line(tmp_path, synth, capsys):
    assert cli("project", "create", tmp_path / "missing.mp4", "-o", tmp_path / "x.svproj") == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing.mp4'}: ")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    from engine.data.ytvis import Dataset

    v = Dataset.from_folder(synth).videos[0]
    out = tmp_path / "p.svproj"
    assert cli("project", "create", synth / "JPEGImages" / v.name, "-o", out, "--import", bad) == 2
    assert "bad.json: not JSON" in capsys.readouterr().err
    assert not out.exists()  # a failed create leaves nothing behind
    assert cli("project", "info", tmp_path / "nope.svproj") == 2
    assert "no such project file" in capsys.readouterr().err


# ---------------------------------------------------------------- crash test
def _edit_lines(n_tracks: int, frames: int, h: int, w: int, seed: int) -> list[dict]:
    """A long, varied edit list: categories, tracks, masks, relabels, locks, splits, swaps, merges, deletes."""
    rng = random.Random(seed)
    lines: list[dict] = [{"op": "add_category", "name": n} for n in ("car", "dog", "bird")]
    tracks: list[int] = []
    next_id = 1
    for _ in range(400):
        r = rng.random()
        if r < 0.1 or len(tracks) < 2:
            lines.append({"op": "new_track", "track": next_id, "category": rng.choice(["car", "dog", "bird"])})
            tracks.append(next_id)
            next_id += 1
        elif r < 0.75:
            m = np.zeros((h, w), bool)
            y, x = rng.randrange(h - 8), rng.randrange(w - 8)
            m[y:y + rng.randint(2, 8), x:x + rng.randint(2, 8)] = True
            lines.append({"op": "set_mask", "track": rng.choice(tracks), "frame": rng.randrange(frames),
                          "rle": encode(m), "exclusive": rng.random() < 0.3})
        elif r < 0.85:
            lines.append({"op": "relabel", "track": rng.choice(tracks), "category": rng.choice(["car", "dog"])})
        elif r < 0.9:
            a, b = rng.sample(tracks, 2)
            lines.append({"op": "swap", "track": a, "with": b, "frame": rng.randrange(frames)})
        elif r < 0.95 and len(tracks) > 3:
            a, b = rng.sample(tracks, 2)
            lines.append({"op": "merge", "track": a, "into": b, "prefer": rng.choice(["track", "into"])})
            tracks.remove(a)
        else:
            lines.append({"op": "delete_mask", "track": rng.choice(tracks), "frame": rng.randrange(frames)})
    return lines


def _prefix_states(video, lines: list[dict]) -> list[tuple]:
    """The document after each prefix of `lines` (index k: the first k lines), applied in memory."""
    doc = ProjectDocument(video)
    prov = Provenance("human", "script", 0.0)
    states = [doc.snapshot()]
    for obj in lines:
        doc.apply(ops.edit_from_json(doc, obj, prov))
        states.append(doc.snapshot())
    return states


def _without_time(snapshot: tuple) -> tuple:
    """Provenance times differ between runs; everything else must be equal."""
    cats, tracks = snapshot
    return cats, tuple((tid, f, tuple((fr, m.rle["counts"], m.provenance.kind) for fr, m in masks), locks)
                       for tid, f, masks, locks in tracks)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_committed_edit(tmp_path, synth):
    from engine.data.ytvis import Dataset

    v = Dataset.from_folder(synth).videos[0]
    base = tmp_path / "base.svproj"
    Project.create(base, synth / "JPEGImages" / v.name).close()
    p = Project.open(base)
    video = p.doc.video
    p.close()
    lines = _edit_lines(12, v.length, v.height, v.width, seed=1)
    (tmp_path / "edits.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    states = [_without_time(s) for s in _prefix_states(video, lines)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "main.py"), "project", "apply"]

    # One full run tells how long a run takes, so the kills spread over all of it (start-up included).
    full = tmp_path / "full.svproj"
    shutil.copy(base, full)
    t0 = time.perf_counter()
    done = subprocess.run(cmd + [str(full), str(tmp_path / "edits.jsonl")], env=env, capture_output=True,
                          text=True, timeout=300)
    span = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(i) for i in range(1, len(lines) + 1)]
    rng = random.Random(7)
    outcomes = []
    for trial in range(24):
        proj = tmp_path / f"t{trial}.svproj"
        shutil.copy(base, proj)
        child = subprocess.Popen(cmd + [str(proj), str(tmp_path / "edits.jsonl")], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        printed: list[str] = []
        seen = threading.Event()
        # Half the kills come at a random time (start-up included), half a random moment after a random line
        # was printed, so they land everywhere: before the first commit, mid-transaction, between commits.
        after_line = rng.randrange(1, len(lines)) if trial % 2 else None

        def read(c=child, out=printed, stop=after_line, ev=seen):
            for line in c.stdout:
                out.append(line)
                if stop is not None and len(out) >= stop:
                    ev.set()
            ev.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if after_line is None:
            time.sleep(rng.uniform(0.0, span))
        else:
            seen.wait(timeout=120)
            time.sleep(rng.uniform(0.0, 0.01))
        child.send_signal(signal.SIGKILL)
        child.wait()
        reader.join(timeout=10)
        n = len(printed)
        assert printed == [f"{i}\n" for i in range(1, n + 1)]
        reopened = Project.open(proj)
        got = _without_time(reopened.doc.snapshot())
        committed = reopened.store.edit_count()
        tags = reopened.store.edit_tags()
        reopened.close()
        # The file holds a whole prefix of the lines: every printed one, plus at most the one that was
        # committed in the microseconds between its COMMIT and its print.
        assert committed in (n, n + 1), (trial, n, committed)
        assert tags == [f"edits.jsonl:{i}" for i in range(1, committed + 1)]
        assert got == states[committed]
        outcomes.append((n, committed))
    assert len({n for n, _ in outcomes}) > 8  # the kills really landed at different moments
    print("crash test (printed, committed):", outcomes)
