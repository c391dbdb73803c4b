"""Tiny test videos whose frames say their own index.

Each frame carries its index as a row of black/white blocks (one block per bit, MSB first), big enough to
survive lossy compression, so a test can tell from the pixels alone which frame a reader returned. A grey
ramp in the background keeps neighbouring frames different in every pixel row, which makes off-by-one errors
visible even when comparing whole arrays.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8
W, H = 64, 48


def frame_pattern(index: int, width: int = W, height: int = H) -> np.ndarray:
    """RGB uint8 frame: top half = BITS blocks encoding `index`, bottom half a colour that changes per
    frame."""
    img = np.zeros((height, width, 3), np.uint8)
    bw = width // BITS
    for b in range(BITS):
        if (index >> (BITS - 1 - b)) & 1:
            img[: height // 2, b * bw : (b + 1) * bw] = 255
    img[height // 2 :, :, 0] = (index * 37) % 200 + 28
    img[height // 2 :, :, 1] = 128
    img[height // 2 :, :, 2] = (index * 11) % 200 + 28
    # Orientation marker: a bright red square in the bottom-left corner (for rotation checks).
    img[-8:, :8] = (255, 0, 0)
    return img


def frame_index(img: np.ndarray) -> int:
    """Read the index back from an upright frame made by `frame_pattern` (after lossy coding)."""
    height, width = img.shape[:2]
    bw = width // BITS
    row = img[height // 4, :, :].astype(np.int32).mean(axis=1)
    value = 0
    for b in range(BITS):
        centre = row[b * bw + bw // 2]
        value = (value << 1) | int(centre > 128)
    return value


def write_video(
    path: str | Path,
    codec: str = "libx264",
    n: int = 40,
    *,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    rate: int = 30,
    pts_ms: list[int] | None = None,
    rotation: float | None = None,
    size: tuple[int, int] = (W, H),
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode `n` pattern frames with PyAV.

    `pts_ms` gives each frame's time in milliseconds (variable frame rate); `rotation` is written as the
    stream's display matrix (counter-clockwise degrees, FFmpeg's convention, so -90 means "turn 90 degrees
    clockwise to show", what phones write for portrait clips).
    """
    path = Path(path)
    width, height = size
    out = av.open(str(path), "w", format=fmt, options=container_options or {})
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt
    if options:
        stream.options = options
    tb = Fraction(1, 1000) if pts_ms is not None else None
    if tb is not None:
        stream.codec_context.time_base = tb
        stream.time_base = tb
    if rotation is not None:
        stream.set_display_rotation(rotation)
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
        if pts_ms is not None:
            frame.pts = pts_ms[i]
            frame.time_base = tb
        for packet in stream.encode(frame):
            out.mux(packet)
    if n == 0:
        out.start_encoding()
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def write_frame_folder(folder: str | Path, n: int, ext: str = "jpg", digits: int = 5) -> Path:
    """A YTVIS-style folder of frames named 00000.jpg, 00001.jpg, ..."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = f"{i:0{digits}d}.{ext}" if digits else f"{i}.{ext}"
        cv2.imwrite(str(folder / name), frame_pattern(i)[:, :, ::-1])
    return folder


def truncate(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first `fraction` of the bytes of `src`, like an interrupted download."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)
