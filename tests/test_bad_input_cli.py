"""Bad input on the command line (issue 12): an `error: <file>: <problem>` line and exit status 2, or a `note:`
when the command carries on; never a traceback, never silence."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli import run_cli
from tests import media

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "resources/models/tiny-sync.pt"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


@no_cuda
@pytest.mark.parametrize("argv", [
    ["infer", "{video}", "--checkpoint", str(CKPT), "-o", "{tmp}/r.json", "--device", "cuda"],
    ["review", "{video}", "--checkpoint", str(CKPT), "-o", "{tmp}/q.json", "--device", "cuda"],
    ["train", "--data", "{tmp}", "--out", "{tmp}/run", "--device", "cuda", "--iters", "1"],
])
def test_cuda_without_cuda(argv, tmp_path, capsys):
    video = media.write_video(tmp_path / "v.mp4", "libx264", 4)
    argv = [a.format(video=video, tmp=tmp_path) for a in argv]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device cuda: no CUDA GPU is available") and "Traceback" not in err
    assert not (tmp_path / "run").exists()        # nothing was started


def test_choose_device_error_is_input_and_runtime_error():
    from engine.device import DeviceUnavailable, check_device
    from engine.errors import InputError

    assert issubclass(DeviceUnavailable, InputError) and issubclass(DeviceUnavailable, RuntimeError)
    check_device("cpu")
    check_device("auto")


@pytest.mark.parametrize("make", ["missing", "file", "no_annotations"])
def test_train_data_that_is_not_a_dataset(make, tmp_path, capsys):
    data = tmp_path / "data"
    if make == "file":
        data.write_text("x")
    elif make == "no_annotations":
        data.mkdir()
    assert run_cli(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--iters", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data}: --data: ") and "Traceback" not in err
    assert ("no such dataset folder" if make == "missing" else "not a dataset folder") in err
    assert not (tmp_path / "run").exists()


def test_train_init_missing(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations.json").write_text("{}")
    assert run_cli(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--init",
                    str(tmp_path / "nope.pt")]) == 2
    assert "--init: no such checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    d = tmp_path_factory.mktemp("cut")
    opts = {"bf": "2", "g": "12", "keyint_min": "12", "sc_threshold": "0"}
    src = media.write_video(d / "long.mp4", "libx264", 60, options=opts, container_options={"movflags": "faststart"})
    return media.truncate(src, d / "cut.mp4", 0.6)


@pytest.mark.parametrize("cmd", ["infer", "review"])
def test_truncated_mp4_is_called_damaged_with_the_frames_read(cmd, truncated, tmp_path, capsys):
    from engine.data.video import VideoReader

    with VideoReader(truncated) as r:
        n = len(r)
    assert 5 < n < 60
    out = tmp_path / "out.json"
    assert run_cli([cmd, str(truncated), "--checkpoint", str(CKPT), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"note: {truncated}: the video is damaged: its index promises 60 frames, but decoding stops at frame {n}; " \
           f"read {n} frames" in text
    if cmd == "review":
        assert len(json.loads(out.read_text())) == n


def test_review_queue_json(tmp_path, capsys):
    video = media.write_video(tmp_path / "v.mp4", "libx264", 14)
    out = tmp_path / "q.json"
    assert run_cli(["review", str(video), "--checkpoint", str(CKPT), "-o", str(out)]) == 0
    q = json.loads(out.read_text())
    assert sorted(it["frame"] for it in q) == list(range(14))
    us = [it["uncertainty"] for it in q]
    assert us == sorted(us, reverse=True) and all(0 <= u <= 1 for u in us)
    assert all(isinstance(it["reasons"], list) for it in q)
    assert run_cli(["review", str(tmp_path / "nope.mp4"), "--checkpoint", str(CKPT), "-o", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`main.py checkpoint-info F --json | head`: the pipe closes before the JSON is written."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(root / "main.py"), "checkpoint-info",
                             str(root / "resources" / "models" / "tiny-sync.pt"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
    proc.stdout.close()                      # the reader is gone before anything was written
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141, err        # 128 + SIGPIPE, as a shell tool ends
    assert "Traceback" not in err and "BrokenPipeError" not in err
