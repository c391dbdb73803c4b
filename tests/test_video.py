"""VideoReader against tiny videos whose pixels name their frame index (see tests/media.py)."""
from __future__ import annotations

import random
import threading

import cv2
import numpy as np
import pytest

from engine.data.video import VideoReader
from engine.errors import TruncatedVideoError, VideoError
from tests import media

N = 40
# (file name, codec, encoder options, container options)
FORMATS = {
    "h264_bframes.mp4": ("libx264", {"bf": "3", "g": "12", "keyint_min": "12", "sc_threshold": "0"}, None),
    "h264.mov": ("libx264", {"bf": "2", "g": "10"}, None),
    "h264.mkv": ("libx264", {"bf": "2", "g": "15"}, None),
    "mpeg4.avi": ("mpeg4", {"g": "8"}, None),
    "vp9.webm": ("libvpx-vp9", {"g": "10"}, None),
    "vp8.webm": ("libvpx", {"g": "10"}, None),
}
VFR_PTS = [i * 33 + (i % 3) * 11 + (20 if i >= 20 else 0) for i in range(N)]


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    out = {}
    for name, (codec, opts, copts) in FORMATS.items():
        out[name] = media.write_video(d / name, codec, N, options=opts, container_options=copts)
    out["vfr.mkv"] = media.write_video(d / "vfr.mkv", "libx264", N, options={"bf": "2"}, pts_ms=VFR_PTS)
    out["vfr.mp4"] = media.write_video(d / "vfr.mp4", "libx264", N, options={"bf": "2"}, pts_ms=VFR_PTS)
    out["rot90.mp4"] = media.write_video(d / "rot90.mp4", "libx264", 12, rotation=-90)
    out["rot180.mkv"] = media.write_video(d / "rot180.mkv", "libx264", 12, rotation=180)
    out["rot270.mov"] = media.write_video(d / "rot270.mov", "libx264", 12, rotation=90)
    long_opts = {"bf": "2", "g": "12", "keyint_min": "12", "sc_threshold": "0"}
    out["long.mkv"] = media.write_video(d / "long.mkv", "libx264", 60, options=long_opts)
    out["long.ts"] = media.write_video(d / "long.ts", "libx264", 60, fmt="mpegts", options=long_opts)
    out["long.mp4"] = media.write_video(d / "long.mp4", "libx264", 60, options=long_opts,
                                        container_options={"movflags": "faststart"})
    out["raw.h264"] = media.write_video(d / "raw.h264", "libx264", N, fmt="h264",
                                        options={"bf": "2", "g": "10"})
    out["empty.avi"] = media.write_video(d / "empty.avi", "mpeg4", 0)
    (d / "notes.mp4").write_text("this is a text file, not a video\n" * 50)
    out["notes.mp4"] = d / "notes.mp4"
    out["folder"] = media.write_frame_folder(d / "ytvis" / "JPEGImages" / "vid0001", 25)
    out["folder_png"] = media.write_frame_folder(d / "pngs", 12, ext="png", digits=0)  # 0.png .. 11.png
    out["dir"] = d
    return out


def sequential(reader):
    return [f.copy() for f in reader]


@pytest.mark.parametrize("name", list(FORMATS))
def test_formats_sequential_and_metadata(videos, name):
    with VideoReader(videos[name]) as r:
        assert len(r) == N
        assert (r.width, r.height) == (media.W, media.H)
        assert r.fps == pytest.approx(30.0, rel=1e-3)
        assert r.variable_frame_rate is False
        assert r.info.rotation == 0 and r.damaged_at is None
        assert r.info.codec == {"libx264": "h264", "libvpx-vp9": "vp9", "libvpx": "vp8"}.get(
            FORMATS[name][0], FORMATS[name][0])
        assert r.path == videos[name]
        frames = sequential(r)
    assert len(frames) == N
    for i, f in enumerate(frames):
        assert f.shape == (media.H, media.W, 3) and f.dtype == np.uint8
        assert media.frame_index(f) == i
        # Lossy, but close to what was encoded.
        assert np.abs(f.astype(int) - media.frame_pattern(i).astype(int)).mean() < 12


@pytest.mark.parametrize("name", list(FORMATS) + ["vfr.mkv", "vfr.mp4"])
def test_random_access_matches_sequential_every_frame(videos, name):
    path = videos[name]
    with VideoReader(path) as r:
        ref = sequential(r)
    order = list(range(len(ref))) * 2
    random.Random(7).shuffle(order)
    with VideoReader(path, cache_size=4) as r:  # small cache: most reads really seek and decode
        for i in order:
            np.testing.assert_array_equal(r[i], ref[i], err_msg=f"{name} frame {i}")
        np.testing.assert_array_equal(r[-1], ref[-1])
        np.testing.assert_array_equal(r[-len(ref)], ref[0])
        # Backwards one at a time: the hardest pattern for a forward decoder.
        for i in range(len(ref) - 1, -1, -1):
            assert media.frame_index(r[i]) == i


def test_agrees_with_opencv(videos):
    path = videos["h264_bframes.mp4"]
    cap = cv2.VideoCapture(str(path))
    cv_frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        cv_frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    with VideoReader(path, cache_size=0) as r:
        assert len(r) == len(cv_frames)
        for i in [5, 0, 39, 17, 18, 16, 3]:
            assert np.abs(r[i].astype(int) - cv_frames[i].astype(int)).mean() < 3


def test_raw_stream_without_timestamps(videos):
    """A raw .h264 stream has no pts at all: frames are counted by decoding and found by counting."""
    with VideoReader(videos["raw.h264"], cache_size=2) as r:
        assert len(r) == N and r.damaged_at is None
        ref = sequential(r)
        assert [media.frame_index(f) for f in ref] == list(range(N))
        for i in random.Random(5).sample(range(N), N):
            np.testing.assert_array_equal(r[i], ref[i])


def test_index_errors(videos):
    with VideoReader(videos["h264.mkv"]) as r:
        with pytest.raises(IndexError):
            r[N]
        with pytest.raises(IndexError):
            r[-N - 1]
        with pytest.raises(TypeError):
            r[1.5]
        assert media.frame_index(r[np.int64(3)]) == 3


def test_variable_frame_rate(videos):
    for name in ("vfr.mkv", "vfr.mp4"):
        with VideoReader(videos[name]) as r:
            assert len(r) == N
            assert r.variable_frame_rate is True
            assert r.damaged_at is None
            span = (VFR_PTS[-1] - VFR_PTS[0]) / 1000
            assert r.fps == pytest.approx((N - 1) / span, rel=0.01)
            assert [media.frame_index(f) for f in r] == list(range(N))
    with VideoReader(videos["h264.mkv"]) as r:  # 1 ms ticks round 33.3 ms to 33/34: still constant
        assert r.variable_frame_rate is False


@pytest.mark.parametrize("name,rotation", [("rot90.mp4", 90), ("rot180.mkv", 180), ("rot270.mov", 270)])
def test_rotation_applied(videos, name, rotation):
    with VideoReader(videos[name]) as r:
        assert r.info.rotation == rotation
        upright = (media.H, media.W) if rotation == 180 else (media.W, media.H)
        assert (r.height, r.width) == upright
        for i in (0, 7, 3, 11):
            f = r[i]
            assert f.shape == (r.height, r.width, 3)
            # Undo the turn with numpy and the frame is the encoded one again.
            back = np.rot90(f, k=rotation // 90)
            assert media.frame_index(back) == i
            assert np.abs(back.astype(int) - media.frame_pattern(i).astype(int)).mean() < 12
        seq = sequential(r)
        np.testing.assert_array_equal(seq[5], r[5])
    # OpenCV also honours the display matrix (CAP_PROP_ORIENTATION_AUTO): same picture.
    cap = cv2.VideoCapture(str(videos[name]))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    with VideoReader(videos[name]) as r:
        assert bgr.shape[:2] == (r.height, r.width)
        assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - r[0].astype(int)).mean() < 3


def test_frame_folder_ytvis_layout(videos):
    folder = videos["folder"]
    root = folder.parent.parent  # .../ytvis, holding JPEGImages/vid0001
    for path in (folder, root, folder.parent):
        with VideoReader(path, folder_fps=6) as r:
            assert len(r) == 25 and r.fps == 6
            assert (r.width, r.height) == (media.W, media.H)
            assert r.info.is_frame_folder and r.info.codec == "images"
            assert [media.frame_index(f) for f in r] == list(range(25))
            assert media.frame_index(r[-1]) == 24 and media.frame_index(r[13]) == 13


def test_frame_folder_sorted_by_number(videos):
    with VideoReader(videos["folder_png"]) as r:
        assert len(r) == 12
        # 10.png sorts after 9.png, not after 1.png; png is lossless so frames are exact.
        for i in (10, 2, 11, 9, 1, 0):
            np.testing.assert_array_equal(r[i], media.frame_pattern(i))


def test_frame_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="zero frames") as e:
        VideoReader(empty)
    assert e.value.path == empty
    media.write_frame_folder(tmp_path / "bad", 3)
    (tmp_path / "bad" / "00001.jpg").write_bytes(b"not a jpeg")
    with VideoReader(tmp_path / "bad") as r:
        with pytest.raises(VideoError, match="00001.jpg"):
            r[1]
        assert media.frame_index(r[2]) == 2


@pytest.mark.parametrize("fraction", [0.45, 0.6, 0.85])
@pytest.mark.parametrize("name", ["long.mkv", "long.ts", "long.mp4"])
def test_truncated_keeps_prefix(videos, name, fraction, tmp_path):
    """An interrupted copy: Matroska and MPEG-TS keep their early clusters/packets, and a faststart mp4 keeps
    its index (moov) while the frame data runs out."""
    cut = media.truncate(videos[name], tmp_path / f"cut_{name}", fraction)
    with VideoReader(cut, cache_size=2) as r:
        n = len(r)
        assert 5 < n < 60
        assert r.damaged_at == n and r.info.damaged_at == n
        # Every frame up to the damage is the right one, in any order, and so is sequential reading.
        for i in random.Random(3).sample(range(n), n):
            assert media.frame_index(r[i]) == i
        assert [media.frame_index(f) for f in r] == list(range(n))
        with pytest.raises(TruncatedVideoError) as e:
            r[n]
        assert e.value.frame_index == n and str(cut) in str(e.value)
        with pytest.raises(TruncatedVideoError):
            r[n + 10]


@pytest.mark.parametrize("fraction", [0.35, 0.5, 0.6, 0.8])
def test_truncated_raw_stream(videos, tmp_path, fraction):
    """A raw stream carries no length and no timestamps, so a clean cut cannot be told from an end; what the
    reader promises is that every frame it reports is the right one (a corrupt tail frame marks the
    damage)."""
    cut = media.truncate(videos["raw.h264"], tmp_path / "cut.h264", fraction)
    with VideoReader(cut, cache_size=0) as r:
        n = len(r)
        assert 0 < n < N and r.damaged_at in (None, n)
        assert [media.frame_index(r[i]) for i in range(n - 1, -1, -1)] == list(range(n - 1, -1, -1))
        assert [media.frame_index(f) for f in r] == list(range(n))


def test_truncated_to_nothing(videos, tmp_path):
    cut = media.truncate(videos["long.mkv"], tmp_path / "tiny.mkv", 0.02)
    with pytest.raises(VideoError) as e:
        VideoReader(cut)
    assert e.value.path == cut


def test_bad_inputs(videos, tmp_path):
    with pytest.raises(VideoError, match="no such file") as e:
        VideoReader(tmp_path / "missing.mp4")
    assert e.value.path == tmp_path / "missing.mp4"
    with pytest.raises(VideoError, match="not a video") as e:
        VideoReader(videos["notes.mp4"])
    assert e.value.path == videos["notes.mp4"]
    with pytest.raises(VideoError, match="zero frames") as e:
        VideoReader(videos["empty.avi"])
    assert e.value.path == videos["empty.avi"] and not isinstance(e.value, TruncatedVideoError)


def test_cache_lru_and_bytes(videos):
    path = videos["h264_bframes.mp4"]
    frame_bytes = media.W * media.H * 3
    with VideoReader(path, cache_size=3) as r:
        a = r[10]
        assert r[10] is a  # served from the cache
        r[20], r[30], r[11]
        assert r[10] is not a  # evicted after three newer frames
        np.testing.assert_array_equal(r[10], a)
        assert not a.flags.writeable
    with VideoReader(path, cache_size=100, cache_bytes=2 * frame_bytes) as r:
        r[1], r[2], r[3]
        assert len(r._cache) == 2 and r._cache.nbytes == 2 * frame_bytes


def test_read_ahead_fills_cache_and_stays_exact(videos):
    path = videos["h264_bframes.mp4"]
    with VideoReader(path) as r:
        ref = sequential(r)
    with VideoReader(path, cache_size=64, read_ahead=8) as r:
        assert media.frame_index(r[20]) == 20
        for _ in range(200):  # wait (at most ~2 s) for the background thread
            if all(j in r._cache for j in range(21, 29)):
                break
            threading.Event().wait(0.01)
        assert all(j in r._cache for j in range(21, 29))
        for j in range(21, 29):
            np.testing.assert_array_equal(r._cache.get(j), ref[j])


def test_concurrent_access_with_read_ahead(videos):
    """The GUI thread and other threads hammer reader[i] while read-ahead runs: every frame stays exact."""
    path = videos["h264.mkv"]
    with VideoReader(path) as r:
        ref = sequential(r)
    errors = []
    with VideoReader(path, cache_size=6, read_ahead=5) as r:
        def worker(seed):
            rng = random.Random(seed)
            try:
                for _ in range(60):
                    i = rng.randrange(N)
                    if not np.array_equal(r[i], ref[i]):
                        errors.append(i)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_close_and_context_manager(videos):
    r = VideoReader(videos["vp9.webm"], read_ahead=4)
    r[10]
    r.close()
    r.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        r[11]
