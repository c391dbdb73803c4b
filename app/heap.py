"""Keep the cyclic garbage collector's full passes short.

A window with a run open holds hundreds of thousands of long-lived objects (every mask's RLE dict, torch's and
Qt's modules), and each full (generation 2) collection walks them all: 150-260 ms measured at 720p with 20
tracks, on the GUI thread, at a moment nobody chooses — a stall in playback or painting. `freeze_heap()` moves
what is alive now into the permanent generation, which the collector skips; objects freed later are still
freed by reference counting (RLE dicts hold no cycles). Called once the engine is imported, after a video and
its project open, and after a run's import, when the long-lived objects have just been made.
"""
from __future__ import annotations

import gc


def freeze_heap() -> None:
    gc.freeze()
