"""Frame-accurate video reading for annotation and inference.

`VideoReader` opens a video file (anything FFmpeg demuxes: mp4, mov, mkv, avi, webm, ts, ...) through PyAV,
or a folder of frames (YTVIS `JPEGImages/<video>/00000.jpg`), and serves `reader[i]` as an upright RGB
uint8 array.

Why it is built this way:
- Frame index i means "the i-th frame in presentation order". At open we demux every packet once (cheap: no
  decoding) and sort their pts; that list *is* the frame index, exact even with B-frames, variable frame
  rate, or a container whose frame count is missing or wrong. A decoded frame is identified by its pts, never
  by counting frames after a seek, so a seek that lands somewhere unexpected cannot shift frames by one.
- Random access seeks to the last keyframe at or before the wanted frame and decodes forward. The decoder
  position is kept, so a request a little ahead of the last one continues decoding instead of seeking again.
- An LRU cache (frames and/or bytes) and an optional background read-ahead make scrubbing smooth. The
  container and the cache are shared between the GUI thread and the read-ahead thread, so both sit behind
  one lock.
- Sequential iteration opens its own container with frame threading and never seeks: that is the fast path
  for inference.
- Damage is found at open: when the demuxer errors out, when the container declared more frames or a longer
  duration than the packets we found, or when the last group of pictures has a hole, the tail is decoded to
  find the last good frame. `len()` then counts the readable prefix and `damaged_at` says where it broke.
"""
from __future__ import annotations

import bisect
import operator
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.errors import TruncatedVideoError, VideoError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg", ".wmv",
                    ".flv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """What the app shows about a video and what inference needs to know.

    `rotation` is the clockwise turn (0, 90, 180, 270) already applied to every frame, as the container asked;
    `width`/`height` are the upright size. `damaged_at` is the first frame index that could not be decoded, or
    None when the video is whole. `fps` is the mean rate over the video when `variable_frame_rate` is True.
    """

    path: Path
    num_frames: int
    fps: float
    variable_frame_rate: bool
    width: int
    height: int
    rotation: int
    codec: str
    is_frame_folder: bool = False
    damaged_at: int | None = None


class FrameCache:
    """LRU of decoded frames, bounded by a frame count and optionally by bytes. Not thread-safe by itself."""

    def __init__(self, max_frames: int = 64, max_bytes: int | None = None):
        self.max_frames = max(0, int(max_frames))
        self.max_bytes = None if max_bytes is None else max(0, int(max_bytes))
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self.nbytes = 0

    def get(self, index: int) -> np.ndarray | None:
        item = self._items.get(index)
        if item is not None:
            self._items.move_to_end(index)
        return item

    def __contains__(self, index: int) -> bool:
        return index in self._items

    def __len__(self) -> int:
        return len(self._items)

    def put(self, index: int, frame: np.ndarray) -> None:
        if self.max_frames == 0 or (self.max_bytes is not None and frame.nbytes > self.max_bytes):
            return
        old = self._items.pop(index, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[index] = frame
        self.nbytes += frame.nbytes
        while len(self._items) > self.max_frames or (
            self.max_bytes is not None and self.nbytes > self.max_bytes
        ):
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.nbytes

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return img
    return np.ascontiguousarray(np.rot90(img, k={90: -1, 180: 2, 270: 1}[rotation]))


def _parse_duration_tag(text: str | None) -> float | None:
    """Matroska writes per-stream durations as a tag like '00:00:01.333000000'."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


class _FolderSource:
    """A folder of still frames, sorted by name (numbers compared as numbers)."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        self.files = sorted(files, key=lambda p: _natural_key(p.name))
        if not self.files:
            raise VideoError(path, "the folder holds no frames (no jpg/png images): "
                                   "the video has zero frames")
        first = self.read(0, check_size=False)
        self.height, self.width = first.shape[:2]
        self.first = first
        self.info = VideoInfo(path, len(self.files), float(fps), False, self.width, self.height, 0, "images",
                              is_frame_folder=True)

    def read(self, index: int, check_size: bool = True) -> np.ndarray:
        import cv2

        file = self.files[index]
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError(file, f"frame {index} of {self.path} is not a readable image")
        if check_size and bgr.shape[:2] != (self.height, self.width):
            raise VideoError(file, f"frame {index} is {bgr.shape[1]}x{bgr.shape[0]}, the first frame is "
                                   f"{self.width}x{self.height}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class _PacketIndex:
    """Everything learned from one demux pass: frame pts in presentation order and where the keyframes are."""

    def __init__(self, pts: list[int], keyframes: list[tuple[int, int]], demux_error: str | None):
        self.pts = pts  # sorted presentation timestamps, one per frame
        self.pos = {p: i for i, p in enumerate(pts)}
        # (keyframe pts, timestamp to seek to) sorted by pts; seeking to min(pts, dts) never overshoots.
        self.keyframes = sorted(keyframes)
        self.key_pts = [k[0] for k in self.keyframes]
        self.demux_error = demux_error

    def keyframe_for(self, frame: int) -> int:
        """Position in `keyframes` of the last keyframe at or before `frame` (closed GOPs decode from it)."""
        return max(0, bisect.bisect_right(self.key_pts, self.pts[frame]) - 1)


class _AVSource:
    """One PyAV container used for random access; the reader's lock guards every call."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise VideoError(path, f"not a video file FFmpeg can read ({exc.strerror or exc})") from exc
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(path, "the file holds no video stream")
        try:
            self._inspect()
        except BaseException:
            self.close()
            raise

    def _inspect(self) -> None:
        """Index the packets, count the frames, find damage, rate and rotation: everything open needs."""
        self.stream = self.container.streams.video[0]
        # Frame threads decode the run from a keyframe to the wanted frame faster; frames are still matched
        # by pts.
        self.threaded = True
        self.stream.thread_type = "AUTO"
        self.time_base = self.stream.time_base or Fraction(1, 1000)
        self.codec = self.stream.codec_context.name
        self._frames: Iterator | None = None  # live decode generator (the decoder position)
        self.cursor = -1  # frame index of the last frame that generator yielded
        self.errors = 0  # packets that failed to decode since the generator started
        self.ordinal = False
        self.index = self._build_index()
        self.ordinal = self.index is None  # no usable pts: frames are counted from the start instead
        if self.ordinal:
            self.num_frames = self._count_by_decoding()
        else:
            self.num_frames = len(self.index.pts)
        if self.num_frames == 0:
            if self.packet_count or self.demux_error or (self.stream.frames or 0) > 0:
                raise TruncatedVideoError(self.path, 0, "no frame could be decoded")
            raise VideoError(self.path, "the video has zero frames")
        self.damaged_at: int | None = None
        if not self.ordinal:
            self._find_damage()
        self.fps, self.vfr = self._rate()
        self.rotation = 0
        self.first_frame = self._first_frame()

    # ---- opening -------------------------------------------------------------------------------------------
    def _build_index(self) -> _PacketIndex | None:
        pts: list[int] = []
        keys: list[tuple[int, int]] = []
        error = None
        self.packet_count = 0
        missing_pts = False
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    continue
                self.packet_count += 1
                p = packet.pts if packet.pts is not None else packet.dts
                if p is None:
                    missing_pts = True
                    continue
                pts.append(p)
                if packet.is_keyframe:
                    dts = packet.dts if packet.dts is not None else p
                    keys.append((p, min(p, dts)))
        except av.error.FFmpegError as exc:
            error = str(exc)
        self.demux_error = error
        if missing_pts or len(set(pts)) != len(pts) or (pts and not keys):
            return None
        return _PacketIndex(sorted(pts), keys, error)

    def _count_by_decoding(self) -> int:
        n = 0
        try:
            self._restart()
            for frame in self._frames:
                # Without timestamps, a corrupt frame or a failed packet is the only sign of a cut.
                if frame.is_corrupt or self.errors:
                    self.damaged_at = n
                    break
                n += 1
        except av.error.FFmpegError:
            self.damaged_at = n
        self._frames, self.cursor = None, -1
        return n

    def _declared_length(self) -> tuple[float, bool] | None:
        """Seconds the container says this stream lasts, and whether that is an end time (Matroska's tag)
        rather than a span from the first frame."""
        s = self.stream
        if s.duration:
            return float(s.duration * self.time_base), False
        tag = _parse_duration_tag(s.metadata.get("DURATION") or s.metadata.get("duration"))
        if tag is not None:
            return tag, True
        if len(self.container.streams) == 1 and self.container.duration:
            return self.container.duration / 1e6, False
        return None

    def _find_damage(self) -> None:
        idx = self.index
        pts = idx.pts
        n = len(pts)
        deltas = np.diff(np.asarray(pts, dtype=np.int64))
        med = float(np.median(deltas)) if len(deltas) else 0.0
        rate = self.stream.average_rate or self.stream.guessed_rate
        if med <= 0 and rate:
            med = float(1 / (rate * self.time_base))
        suspect = idx.demux_error is not None
        if self.stream.frames and self.stream.frames > self.packet_count:
            suspect = True
        # MPEG-TS is a sequence of fixed-size packets: a file that ends mid-packet was cut off.
        if self.container.format.name.split(",")[0] == "mpegts":
            with open(self.path, "rb") as fh:
                head = fh.read(400)
            unit = 192 if head[4:5] == b"G" and head[196:197] == b"G" and head[0:1] != b"G" else 188
            if self.path.stat().st_size % unit:
                suspect = True
        declared = self._declared_length()
        if declared is not None and med > 0:
            seconds, is_end = declared
            found = float((pts[-1] + med - (0 if is_end else pts[0])) * self.time_base)
            if seconds - found > 0.75 * med * float(self.time_base):
                suspect = True
        # A hole among the frames of the last group of pictures means its packets were cut off.
        tail_start = bisect.bisect_left(pts, idx.key_pts[-1])
        cut = n
        if med > 0:
            for j in range(max(tail_start, 1), n):
                if deltas[j - 1] > 1.6 * med:
                    cut = j
                    break
        if cut < n and not suspect:
            # Only a hole at the very end of an otherwise regular stream counts as damage by itself.
            head = deltas[: max(tail_start - 1, 0)]
            if len(head) == 0 or float(head.max() - head.min()) <= max(2.0, 0.02 * med):
                suspect = True
        if not suspect:
            return
        good = self._decodable_pts(idx.keyframes[idx.keyframe_for(max(cut - 1, 0))][1])
        first = bisect.bisect_left(pts, idx.key_pts[idx.keyframe_for(max(cut - 1, 0))])
        k = first
        while k < cut and pts[k] in good:
            k += 1
        self.damaged_at = k
        if k == 0:
            raise TruncatedVideoError(self.path, 0, "no frame could be decoded")
        keys = [kf for kf in idx.keyframes if kf[0] <= pts[k - 1]]
        self.index = _PacketIndex(pts[:k], keys, idx.demux_error)
        self.num_frames = k

    def _decodable_pts(self, seek_ts: int) -> set[int]:
        """Pts that decode cleanly from `seek_ts` on. Single-threaded: a frame-threaded decoder that meets a
        broken packet can drop the good frames it was still holding, which would make the answer vary."""
        good: set[int] = set()
        self.threaded = False
        try:
            self._restart()
            self._seek(seek_ts)
            for frame in self._frames:
                if frame.pts is not None and not frame.is_corrupt:
                    good.add(frame.pts)
        except av.error.FFmpegError:
            pass
        self.threaded = True
        self._restart()
        self._frames, self.cursor = None, -1
        return good

    def _rate(self) -> tuple[float, bool]:
        declared = self.stream.average_rate or self.stream.guessed_rate
        if self.ordinal or self.num_frames < 3:
            return (float(declared) if declared else DEFAULT_FOLDER_FPS), False
        pts = np.asarray(self.index.pts, dtype=np.int64)
        deltas = np.diff(pts)
        med = float(np.median(deltas))
        vfr = float(deltas.max() - deltas.min()) > max(2.0, 0.02 * med)
        mean_fps = (len(pts) - 1) / float((pts[-1] - pts[0]) * self.time_base)
        if not vfr and declared and abs(float(declared) - mean_fps) <= 0.005 * mean_fps:
            return float(declared), False
        return mean_fps, vfr

    def _first_frame(self):
        frame = self.next_frame_at(0)
        rot = getattr(frame, "rotation", 0) or 0
        if not rot:
            tag = self.stream.metadata.get("rotate")
            try:
                rot = -int(float(tag)) if tag else 0
            except ValueError:
                rot = 0
        self.rotation = int(round(-rot / 90.0)) * 90 % 360
        return frame

    # ---- decoding ------------------------------------------------------------------------------------------
    def _generator(self):
        """Decoded frames from the current position. A packet that fails to decode is skipped, as FFmpeg's own
        tools do, so the frames the decoder still holds come out; a demuxer error ends the stream cleanly."""
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    self.errors += 1
                    continue
                yield from frames
        except av.error.FFmpegError:
            self.errors += 1
            try:
                frames = self.stream.decode(None)
            except av.error.FFmpegError:
                frames = []
            yield from frames

    def _seek(self, ts: int) -> None:
        self.container.seek(ts, stream=self.stream, backward=True, any_frame=False)
        self.stream.codec_context.flush_buffers()
        self.errors = 0
        self._frames = self._generator()
        self.cursor = -1

    def _restart(self) -> None:
        """Back to the first packet; reopening is the one way to rewind that works in every container."""
        self.container.close()
        self.container = av.open(str(self.path), metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        if self.threaded and not self.ordinal:  # counting frames must see what the open-time count saw
            self.stream.thread_type = "AUTO"
        self.errors = 0
        self._frames = self._generator()
        self.cursor = -1

    def _advance(self):
        """Next frame of the generator and its index (-1 when its pts is not one of ours); None at the end."""
        try:
            frame = next(self._frames)
        except StopIteration:
            self._frames = None
            return None, -1
        if self.ordinal:
            self.cursor += 1
            return frame, self.cursor
        i = self.index.pos.get(frame.pts, -1)
        if i >= 0:
            self.cursor = i
        return frame, i

    def continues_to(self, i: int) -> bool:
        """True when decoding on from the current position reaches frame i no slower than a seek would."""
        if self._frames is None or self.cursor >= i:
            return False
        if self.ordinal:
            return True
        key_pts = self.index.key_pts[self.index.keyframe_for(i)]
        return self.cursor >= 0 and self.index.pts[self.cursor] >= key_pts

    def next_frame_at(self, i: int):
        """Decode and return the av.VideoFrame of frame i, seeking only when it has to."""
        if self.ordinal:
            if not self.continues_to(i):
                self._restart()
            return self._forward_to(i)
        if self.continues_to(i):
            frame = self._forward_to(i)
            if frame is not None:
                return frame
        # Seek to the keyframe's pts first (exact in most demuxers); if the demuxer's index is keyed
        # differently and we land past the frame, its dts, then the keyframe before, then decode from the
        # very start.
        k = self.index.keyframe_for(i)
        targets = [ts for kf in self.index.keyframes[max(k - 1, 0) : k + 1][::-1] for ts in dict.fromkeys(kf)]
        for ts in [*targets, None]:
            if ts is None:
                self._restart()
            else:
                self._seek(ts)
            frame = self._forward_to(i)
            if frame is not None:
                return frame
        if self.threaded:
            # Near damage a frame-threaded decoder can lose frames a plain one still gives: stay plain from
            # now on.
            self.threaded = False
            self._restart()
            frame = self._forward_to(i)
            if frame is not None:
                return frame
        raise TruncatedVideoError(self.path, i, "the frame is listed in the container but does not decode")

    def _forward_to(self, i: int):
        target = self.index.pts[i] if not self.ordinal else None
        while True:
            frame, j = self._advance()
            if frame is None:
                return None
            if self.ordinal:
                if j == i:
                    return frame
                continue
            if frame.pts is None:
                continue
            if frame.pts == target:
                return frame
            if frame.pts > target:
                return None  # landed past it: the caller seeks further back

    def close(self) -> None:
        self._frames = None
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask the real error
            pass


class VideoReader:
    """Frame-accurate, cached access to the frames of a video file or frame folder.

    `reader[i]` is frame i (negative counts from the end) as an upright H x W x 3 RGB uint8 array, read-only
    because it is shared with the cache. Iterating decodes sequentially without seeking. `cache_size` bounds
    the LRU in frames and `cache_bytes` (optional) in bytes; `read_ahead` > 0 starts a background thread
    that, after each cache miss, decodes that many following frames into the cache. `folder_fps` is the rate
    reported for frame folders, which carry none.
    """

    def __init__(self, path: str | Path, cache_size: int = 64, read_ahead: int = 0, *,
                 cache_bytes: int | None = None, folder_fps: float = DEFAULT_FOLDER_FPS):
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(self.path, "no such file or folder")
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._cache = FrameCache(cache_size, cache_bytes)
        self._closed = False
        self._waiting = 0
        self._ra_target = 0
        self._thread: threading.Thread | None = None
        self.read_ahead = max(0, int(read_ahead))
        self._folder: _FolderSource | None = None
        self._av: _AVSource | None = None
        if self.path.is_dir():
            self._folder = _FolderSource(self._frame_dir(self.path), folder_fps)
            self.info = self._folder.info
            self._cache.put(0, self._readonly(self._folder.first))
        else:
            self._av = _AVSource(self.path)
            a = self._av
            h, w = a.first_frame.height, a.first_frame.width
            if a.rotation in (90, 270):
                w, h = h, w
            self.info = VideoInfo(self.path, a.num_frames, a.fps, a.vfr, w, h, a.rotation, a.codec,
                                  damaged_at=a.damaged_at)
            self._cache.put(0, self._convert(a.first_frame))
        if self.read_ahead:
            self._thread = threading.Thread(target=self._read_ahead_loop, name="VideoReader-read-ahead",
                                            daemon=True)
            self._thread.start()

    @staticmethod
    def _frame_dir(path: Path) -> Path:
        """Accept the frame folder itself, or a YTVIS root / JPEGImages folder holding exactly one video."""
        if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir() if p.is_file()):
            return path
        base = path / "JPEGImages" if (path / "JPEGImages").is_dir() else path
        subdirs = sorted(p for p in base.iterdir() if p.is_dir())
        if len(subdirs) == 1:
            return subdirs[0]
        if len(subdirs) > 1:
            raise VideoError(path, f"the folder holds {len(subdirs)} videos; open one of its sub-folders")
        raise VideoError(path, "the folder holds no frames (no jpg/png images): the video has zero frames")

    # ---- metadata ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.info.num_frames

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def rotation(self) -> int:
        return self.info.rotation

    @property
    def variable_frame_rate(self) -> bool:
        return self.info.variable_frame_rate

    @property
    def damaged_at(self) -> int | None:
        return self.info.damaged_at

    def __repr__(self) -> str:
        i = self.info
        return (f"VideoReader({str(i.path)!r}, {i.num_frames} frames, {i.width}x{i.height}, {i.fps:.3f} fps"
                f"{', VFR' if i.variable_frame_rate else ''}, {i.codec})")

    # ---- random access -------------------------------------------------------------------------------------
    def _index(self, i) -> int:
        i = operator.index(i)
        n = len(self)
        if i < 0:
            i += n
        if i < 0:
            raise IndexError(f"frame {i - n} out of range for {n} frames")
        if i >= n:
            if self.damaged_at is not None:
                raise TruncatedVideoError(self.path, self.damaged_at, f"frame {i} was asked for")
            raise IndexError(f"frame {i} out of range for {n} frames")
        return i

    @staticmethod
    def _readonly(img: np.ndarray) -> np.ndarray:
        img.flags.writeable = False
        return img

    def _convert(self, frame) -> np.ndarray:
        return self._readonly(_rotate(frame.to_ndarray(format="rgb24"), self._av.rotation))

    def __getitem__(self, i) -> np.ndarray:
        i = self._index(i)
        self._waiting += 1  # tells read-ahead to step aside; only a hint, so no lock needed
        with self._lock:
            self._waiting -= 1
            if self._closed:
                raise ValueError(f"{self.path}: the reader is closed")
            img = self._cache.get(i)
            if img is not None:
                return img
            if self._folder is not None:
                img = self._readonly(self._folder.read(i))
            else:
                try:
                    img = self._convert(self._av.next_frame_at(i))
                except av.error.FFmpegError as exc:
                    raise VideoError(self.path, f"frame {i} could not be decoded ({exc})") from exc
            self._cache.put(i, img)
            if self.read_ahead and self._av is not None:
                self._ra_target = min(len(self), i + 1 + self.read_ahead)
                self._cond.notify()
            return img

    def _read_ahead_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._read_ahead_due():
                    self._cond.wait()
                if self._closed:
                    return
                try:
                    frame, j = self._av._advance()
                    if frame is None:
                        self._ra_target = 0
                    elif j >= 0 and j not in self._cache:
                        self._cache.put(j, self._convert(frame))
                except Exception:  # noqa: BLE001 - a damaged tail ends read-ahead; reader[i] reports it
                    self._av._frames = None
                    self._ra_target = 0
            # Let a waiting reader[i] call take the lock before the next frame.
            time.sleep(0.001 if self._waiting else 0)

    def _read_ahead_due(self) -> bool:
        a = self._av  # None once the reader is closed
        return a is not None and a._frames is not None and a.cursor + 1 < self._ra_target

    # ---- sequential ----------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        """All frames in order, decoded on a private container with frame threading (no seeking, no cache)."""
        if self._folder is not None:
            for i in range(len(self)):
                yield self._folder.read(i)
            return
        n = len(self)
        src = self._av
        container = av.open(str(self.path), metadata_errors="ignore")
        try:
            stream = container.streams.video[0]
            if not src.ordinal:
                stream.thread_type = "AUTO"
            expected = 0
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue  # a damaged packet: the frames it hid are fetched below, or reported missing
                for frame in frames:
                    if src.ordinal:
                        j = expected
                    else:
                        j = src.index.pos.get(frame.pts, -1)
                        if j < expected:
                            continue
                    while expected < j:  # a frame the decoder skipped: fetch it the slow, exact way
                        yield self[expected]
                        expected += 1
                    img = _rotate(frame.to_ndarray(format="rgb24"), src.rotation)
                    yield img
                    expected += 1
                    if expected >= n:
                        return
            while expected < n:
                yield self[expected]
                expected += 1
        finally:
            container.close()

    # ---- lifetime ------------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._cache.clear()
            if self._av is not None:
                self._av.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def open_video(path: str | Path, **kwargs) -> VideoReader:
    """Shorthand used by the CLI and the app."""
    return VideoReader(path, **kwargs)
