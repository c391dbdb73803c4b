"""Track colours and the dark theme shared by every view.

A track keeps its colour for the whole session (and across the canvas, timeline, track list and compare panes)
because the colour is a pure function of the track id. The first ids use a hand-picked palette whose
neighbours differ strongly in hue and lightness (ids 1, 2, 3 are usually the first tracks a user sees side by
side); later ids walk the hue circle by the golden angle so no two nearby ids look alike.
"""

from __future__ import annotations

import colorsys

from PySide6.QtGui import QColor

RGB = tuple[int, int, int]

# Distinct on a dark background, readable as a 45 % overlay on video; ordered so consecutive ids contrast.
PALETTE: tuple[RGB, ...] = (
    (230, 25, 75),  # red
    (60, 180, 75),  # green
    (255, 225, 25),  # yellow
    (0, 130, 200),  # blue
    (245, 130, 48),  # orange
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
    (240, 50, 230),  # magenta
    (210, 245, 60),  # lime
    (250, 190, 212),  # pink
    (0, 128, 128),  # teal
    (220, 190, 255),  # lavender
    (170, 110, 40),  # brown
    (255, 250, 200),  # beige
    (128, 0, 0),  # maroon
    (170, 255, 195),  # mint
    (128, 128, 0),  # olive
    (255, 215, 180),  # apricot
    (0, 0, 128),  # navy
    (255, 99, 71),  # tomato
)

NO_TRACK: RGB = (128, 128, 128)

# Theme: the canvas and plots sit on a neutral dark grey so overlay colours read true.
BACKGROUND = "#1e1f22"
PANEL = "#26282c"
LANE_EMPTY: RGB = (44, 46, 51)
FOREGROUND = "#c8cbd0"
MUTED = "#8a8f98"
ACCENT = "#4c9be8"
CURSOR = "#f5f5f5"


def track_color(track_id: int) -> RGB:
    """The colour of a track: stable for an id, distinct from neighbouring ids. Negative ids are grey."""
    if track_id < 0:
        return NO_TRACK
    if track_id < len(PALETTE):
        return PALETTE[track_id]
    k = track_id - len(PALETTE)
    hue = (0.11 + k * 0.618033988749895) % 1.0
    sat = (0.95, 0.65, 0.8)[k % 3]
    val = (0.95, 0.85, 0.7)[(k // 3) % 3]
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def qcolor(rgb: RGB, alpha: int = 255) -> QColor:
    return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]), int(alpha))


def hex_color(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))
