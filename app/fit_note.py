"""Whether the model's classes can fit the open video, and the note the window shows when they cannot.

The rule (Qt-free, so it is tested without a window):

* The model was trained on the synthetic benchmark when its class names are exactly the synthetic shapes
  (`engine.data.synthetic_shapes.CATEGORY_NAMES`: disc, square, triangle, star, ring, cross, ellipse, hexagon).
  That is what the bundled checkpoints hold (their metadata's `class_names`, resources/models/MODEL_CARD.md);
  a fine-tuned model has the classes of the data it was tuned on, and then there is no note.
* The video comes from the synthetic generator when its file or folder name is the generator's
  (`synth_<preset>_s<seed>_<index>`, as `main.py synth` writes them), or it is the bundled demo, or the ground
  truth next to it (`VIDEO.ytvis.json`) names only shape classes.
* A shapes model on any other video cannot fit it: every object it reports is named after a shape, whatever
  it is. The note says so and points to fine-tuning; it does not block anything.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from engine.data.synthetic_shapes import CATEGORY_NAMES

SYNTH_NAME = re.compile(r"^synth_[a-z0-9]+_s\d+_\d+$")
DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "demo.mp4"


def trained_on_shapes(class_names) -> bool:
    names = [str(n) for n in (class_names or [])]
    return bool(names) and set(names) == set(CATEGORY_NAMES)


def _sidecar_names(video: Path) -> list[str] | None:
    side = video.with_suffix(".ytvis.json") if video.suffix else None
    if side is None or not side.is_file():
        return None
    try:
        cats = json.loads(side.read_text()).get("categories") or []
        return [str(c.get("name")) for c in cats]
    except (OSError, ValueError, AttributeError):
        return None


def from_synthetic_generator(video: str | Path) -> bool:
    p = Path(video)
    try:
        if p.resolve() == DEMO.resolve():
            return True
    except OSError:
        pass
    if SYNTH_NAME.match(p.stem if p.suffix else p.name):
        return True
    names = _sidecar_names(p)
    return names is not None and bool(names) and set(names) <= set(CATEGORY_NAMES)


def class_fit_note(class_names, video: str | Path, checkpoint: str = "") -> str | None:
    """The note (rich text) when a model trained on the synthetic shapes runs on a video that is not one of
    them; None when the classes may fit."""
    if not trained_on_shapes(class_names) or from_synthetic_generator(video):
        return None
    model = Path(checkpoint).name or "This model"
    return (f"<b>{model} only knows the synthetic shapes</b> ({', '.join(CATEGORY_NAMES)}): it was trained on "
            "the generated benchmark, so the classes it paints on this video cannot fit (its masks may still "
            "outline moving things). Fine-tune it on frames of your own: correct a few frames here, export them "
            "(File → Export YouTube-VIS), then <code>main.py train --data DIR --init "
            f"{Path(checkpoint).name or 'CKPT'} --preset tiny --mode sync --out RUN_DIR</code>.")
