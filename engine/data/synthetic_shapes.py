"""Cheap procedural pieces of the synthetic benchmark: the eight outlines, instance textures, backgrounds.

Shapes are unit-size polygons (radius about 1) so that one affine transform per frame places, rotates, scales
and deforms them; the class is carried by the outline alone, while colour and texture are drawn independently.
"""
from __future__ import annotations

import cv2
import numpy as np

CATEGORY_NAMES = ("disc", "square", "triangle", "star", "ring", "cross", "ellipse", "hexagon")

TEXTURES = ("flat", "stripes", "checker", "noise", "gradient", "spots")

# Texture patches cover the unit square [-EXTENT, EXTENT]^2 of shape coordinates, so they move with the shape.
PATCH = 64
EXTENT = 1.15


def _ngon(n: int, radius: float = 1.0, phase: float = 0.0, aspect: float = 1.0) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * aspect * np.sin(a)], axis=1)


def _star(points: int = 5, outer: float = 1.1, inner: float = 0.45) -> np.ndarray:
    a = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _cross(arm: float = 1.0, half: float = 0.3) -> np.ndarray:
    a, h = arm, half
    return np.array([(-h, -a), (h, -a), (h, -h), (a, -h), (a, h), (h, h),
                     (h, a), (-h, a), (-h, h), (-a, h), (-a, -h), (-h, -h)], dtype=float)


# category id -> (outer polygon, hole polygon or None); ids are YTVIS 1-based in CATEGORY_NAMES order.
SHAPES: dict[int, tuple[np.ndarray, np.ndarray | None]] = {
    1: (_ngon(48), None),
    2: (np.array([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]), None),
    3: (_ngon(3, 1.1, -np.pi / 2), None),
    4: (_star(), None),
    5: (_ngon(48), _ngon(48, 0.55)),
    6: (_cross(), None),
    7: (_ngon(48, 1.0, 0.0, 0.55), None),
    8: (_ngon(6), None),
}


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour with enough saturation and value to stand out a little (uint8 HSV -> RGB through cv2)."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(90, 256), rng.integers(90, 256)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def texture_patch(rng: np.random.Generator, kinds: tuple[str, ...] = TEXTURES) -> np.ndarray:
    """PATCH x PATCH x 3 uint8 RGB pattern in shape coordinates; its colour says nothing of the class."""
    kind = kinds[int(rng.integers(len(kinds)))]
    c1 = random_colour(rng)
    c2 = random_colour(rng) if rng.random() < 0.5 else np.clip(c1 * rng.uniform(0.3, 0.7), 0, 255)
    u = (np.arange(PATCH, dtype=np.float32) - (PATCH - 1) / 2) / (PATCH / 2)
    x, y = np.meshgrid(u, u)
    if kind == "flat":
        w = np.zeros_like(x)
    elif kind == "stripes":
        a = rng.uniform(0, np.pi)
        phase = (np.cos(a) * x + np.sin(a) * y) * rng.uniform(6, 16) + rng.uniform(0, 6.3)
        w = (np.sin(phase) > 0).astype(np.float32)
    elif kind == "checker":
        f = rng.uniform(2, 5)
        w = ((np.floor((x + 1) * f) + np.floor((y + 1) * f)) % 2).astype(np.float32)
    elif kind == "noise":
        g = int(rng.integers(3, 8))
        w = cv2.resize(rng.random((g, g), dtype=np.float32), (PATCH, PATCH), interpolation=cv2.INTER_CUBIC)
    elif kind == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        w = (np.cos(a) * x + np.sin(a) * y + 1.5) / 3
    else:  # spots
        w = np.zeros((PATCH, PATCH), np.float32)
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = rng.integers(0, PATCH, 2)
            cv2.circle(w, (int(cx), int(cy)), int(rng.integers(4, 12)), 1.0, -1)
    w = np.clip(w, 0, 1)[..., None]
    return np.clip(c1 * (1 - w) + c2 * w, 0, 255).astype(np.uint8)


def flat_patch(colour: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.uint8), (PATCH, PATCH, 3)).copy()


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """height x width x 3 uint8 RGB: a smooth gradient field, noise blobs, sometimes stripes, a few lines.

    Everything comes from tiny random arrays upscaled by cv2.resize, so a background costs well under a
    millisecond per video at benchmark sizes."""
    gy, gx = (int(v) for v in rng.integers(2, 6, 2))
    low = rng.uniform(30, 225, (gy, gx, 3)).astype(np.float32)
    sat = rng.uniform(0.2, 0.8)  # pull towards grey so that backgrounds are busy but not garish
    low = sat * low + (1 - sat) * low.mean(axis=2, keepdims=True)
    img = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    cell = int(rng.integers(6, 24))
    blobs = rng.normal(0, rng.uniform(8, 30), (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    img += cv2.resize(blobs, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        a = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        wave = np.sin((np.cos(a) * xx + np.sin(a) * yy) * (2 * np.pi / rng.uniform(6, 40)))
        img += wave[..., None] * (rng.uniform(-30, 30, 3).astype(np.float32))
    out = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 10))):
        p = rng.integers(0, (width, height), size=(2, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(out, (int(p[0, 0]), int(p[0, 1])), (int(p[1, 0]), int(p[1, 1])), colour,
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    return out
