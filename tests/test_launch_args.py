"""The window's command line: a bad --size ends with `error: --size: <problem>` and exit status 2 (it used to
abort Qt with status 134), before any window opens."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.launch import BadArgument, parse_size

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,size", [("1600x1000", (1600, 1000)), ("800X600", (800, 600)),
                                       (" 1024 x 768 ", (1024, 768)), ("640*480", (640, 480))])
def test_parse_size_accepts(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text,words", [("abc", "WIDTHxHEIGHT"), ("1600", "WIDTHxHEIGHT"), ("", "WIDTHxHEIGHT"),
                                        ("1600x1000x2", "WIDTHxHEIGHT"), ("0x0", "too small"),
                                        ("100x100", "too small"), ("99999x1000", "too large"),
                                        ("1e3x800", "WIDTHxHEIGHT")])
def test_parse_size_rejects(text, words):
    with pytest.raises(BadArgument) as e:
        parse_size(text)
    assert str(e.value).startswith("--size: ") and words in str(e.value)


@pytest.mark.parametrize("value", ["abc", "0x0", "99999x99999"])
def test_bad_size_exits_2_with_one_line(value, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SYNCVIS_SETTINGS_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--size", value, "--screenshot",
                        str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --size: "), r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.png").exists()
