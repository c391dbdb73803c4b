"""The class vocabularies official checkpoints were trained on, and how a file's class count names one.

An official Mask2Former / Mask2Former-VIS / VITA / SyncVIS file stores its class head (N + 1 rows: one per
category, then "no object") but not the category names. The names come from the dataset it was trained on, in
the category-id order of that dataset's official annotation files (which is the order of the class rows):

    YouTube-VIS 2019  40 classes   ids 1..40
    YouTube-VIS 2021  40 classes   ids 1..40 (another list and order)
    OVIS              25 classes   ids 1..25
    COCO              80 classes   ids 1..90 with gaps (the 80 "thing" categories)

25 rows name OVIS and 80 COCO; 40 rows are either YouTube-VIS 2019 or 2021 and somebody has to say which: the
`--classes` option (`resolve_classes(..., classes=...)`), a file-name hint (`ytvis19`, `ytvis_2021`, a bare
`2019`/`2021`), or the category names of the data the model meets (the training or evaluation set's names
match one list better). Otherwise `AmbiguousClassesError` says how to choose.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import CheckpointError, InputError

YTVIS_2019 = (
    "person", "giant_panda", "lizard", "parrot", "skateboard", "sedan", "ape", "dog", "snake", "monkey",
    "hand", "rabbit", "duck", "cat", "cow", "fish", "train", "horse", "turtle", "bear",
    "motorbike", "giraffe", "leopard", "fox", "deer", "owl", "surfboard", "airplane", "truck", "zebra",
    "tiger", "elephant", "snowboard", "boat", "shark", "mouse", "frog", "eagle", "earless_seal", "tennis_racket",
)

YTVIS_2021 = (
    "airplane", "bear", "bird", "boat", "car", "cat", "cow", "deer", "dog", "duck",
    "earless_seal", "elephant", "fish", "flying_disc", "fox", "frog", "giant_panda", "giraffe", "horse", "leopard",
    "lizard", "monkey", "motorbike", "mouse", "parrot", "person", "rabbit", "shark", "skateboard", "snake",
    "snowboard", "squirrel", "surfboard", "tennis_racket", "tiger", "train", "truck", "turtle", "whale", "zebra",
)

# spelled as in the official OVIS annotation files ("Vehical" included)
OVIS = (
    "Person", "Bird", "Cat", "Dog", "Horse", "Sheep", "Cow", "Elephant", "Bear", "Zebra",
    "Giraffe", "Poultry", "Giant_panda", "Lizard", "Parrot", "Monkey", "Rabbit", "Tiger", "Fish", "Turtle",
    "Bicycle", "Motorcycle", "Airplane", "Boat", "Vehical",
)

# (id, name) of the 80 COCO thing categories (instances_*2017.json)
COCO = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"),
    (36, "snowboard"), (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"),
    (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"),
    (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"),
    (67, "dining table"), (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"),
    (76, "keyboard"), (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"),
)


@dataclass(frozen=True)
class Vocabulary:
    key: str                      # the --classes name
    title: str                    # for people
    names: tuple[str, ...]        # in category-id order = class-row order
    ids: tuple[int, ...]          # the dataset's category ids, row by row


VOCABULARIES: dict[str, Vocabulary] = {
    "ytvis2019": Vocabulary("ytvis2019", "YouTube-VIS 2019", YTVIS_2019, tuple(range(1, 41))),
    "ytvis2021": Vocabulary("ytvis2021", "YouTube-VIS 2021", YTVIS_2021, tuple(range(1, 41))),
    "ovis": Vocabulary("ovis", "OVIS", OVIS, tuple(range(1, 26))),
    "coco": Vocabulary("coco", "COCO", tuple(n for _, n in COCO), tuple(i for i, _ in COCO)),
}
CHOICES = tuple(VOCABULARIES)


def candidates_for(num_classes: int) -> list[Vocabulary]:
    """The known vocabularies with this many classes (two for 40, none for an unknown count)."""
    return [v for v in VOCABULARIES.values() if len(v.names) == num_classes]


@dataclass
class ClassNames:
    """The class names chosen for a checkpoint: `key` names a known vocabulary (None: a file or none known);
    `reason` says why, in words ("--classes ytvis2021", "file name 'vita_r50_ytvis19.pth'", ...)."""

    names: list[str]
    ids: list[int]
    key: str | None
    title: str
    reason: str
    known: bool = True            # False: no vocabulary known for the count; names are "class 1", "class 2", ...
    candidates: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.title} ({self.reason})"

    def as_dict(self) -> dict:
        return {"name": self.key, "title": self.title, "reason": self.reason, "known": self.known,
                "classes": list(self.names), "category_ids": list(self.ids)}


class AmbiguousClassesError(CheckpointError):
    """A class count that more than one known dataset has (40: YouTube-VIS 2019 and 2021) and nothing to say which.
    `candidates` are the --classes names to choose from."""

    def __init__(self, path: str | Path | None, num_classes: int, candidates: list[Vocabulary]):
        self.num_classes = num_classes
        self.candidates = [v.key for v in candidates]
        titles = " or ".join(_short_titles([v.title for v in candidates]))
        options = " or ".join(f"--classes {v.key}" for v in candidates)
        super().__init__(path, f"{num_classes} classes: {titles}? pass {options}")


def _short_titles(titles: list[str]) -> list[str]:
    """['YouTube-VIS 2019', 'YouTube-VIS 2021'] -> ['YouTube-VIS 2019', '2021'] (one shared prefix said once)."""
    if len(titles) < 2:
        return titles
    head = titles[0].rsplit(" ", 1)[0] + " "
    if all(t.startswith(head) for t in titles):
        return [titles[0]] + [t[len(head):] for t in titles[1:]]
    return titles


# ------------------------------------------------------------------------------------------------ hints
_HINTS = (
    ("ytvis2019", re.compile(r"(?:ytvis|ytvos|yt|youtube[-_]?vis)[-_]?(?:2019|19)(?![0-9])")),
    ("ytvis2021", re.compile(r"(?:ytvis|ytvos|yt|youtube[-_]?vis)[-_]?(?:2021|21)(?![0-9])")),
    ("ovis", re.compile(r"(?<![a-z])ovis")),
    ("coco", re.compile(r"(?<![a-z])coco")),
)
_YEARS = (("ytvis2019", re.compile(r"(?<![0-9])2019(?![0-9])")),
          ("ytvis2021", re.compile(r"(?<![0-9])2021(?![0-9])")))


def file_name_hint(path: str | Path | None, among: list[str]) -> tuple[str, str] | None:
    """(vocabulary key, the token found) when the file's name names exactly one of `among`: a dataset token
    (ytvis19, ytvis_2021, ovis, ...) first, else a bare year (2019 / 2021)."""
    if path is None:
        return None
    name = Path(path).name.lower()
    for table in (_HINTS, _YEARS):
        found = {}
        for key, pattern in table:
            m = pattern.search(name)
            if m and key in among:
                found[key] = m.group(0)
        if len(found) == 1:
            return next(iter(found.items()))
        if len(found) > 1:
            return None                        # the name says both: no hint
    return None


def _norm(name: str) -> str:
    return " ".join(str(name).strip().lower().replace("_", " ").split())


def _match_count(names, target) -> int:
    own = {_norm(n) for n in names}
    return sum(1 for t in {_norm(t) for t in target} if t in own)


# ------------------------------------------------------------------------------------------------ --classes
def read_class_file(path: str | Path) -> tuple[list[str], list[int]]:
    """Class names (and category ids) from a file: a YTVIS/COCO annotations JSON (its "categories", by id), a JSON
    list of names, or a text file with one name per line (blank lines and # comments skipped; ids 1..N)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "--classes: no such file (or one of " + ", ".join(CHOICES) + ")")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"--classes: cannot be read ({type(e).__name__})") from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(path, f"--classes: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(doc, dict):
            cats = doc.get("categories")
            if not isinstance(cats, list) or not cats:
                raise InputError(path, "--classes: a JSON file needs a non-empty \"categories\" list "
                                       "(a YTVIS annotations file) or to be a list of names")
            try:
                pairs = sorted((int(c["id"]), str(c["name"])) for c in cats)
            except (KeyError, TypeError, ValueError):
                raise InputError(path, "--classes: every category needs an \"id\" and a \"name\"") from None
            return [n for _, n in pairs], [i for i, _ in pairs]
        if not all(isinstance(n, str) for n in doc) or not doc:
            raise InputError(path, "--classes: a JSON list must hold class names (strings)")
        return [n.strip() for n in doc], list(range(1, len(doc) + 1))
    names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not names:
        raise InputError(path, "--classes: the file names no classes (one name per line)")
    return names, list(range(1, len(names) + 1))


def check_classes_option(value: str | None) -> None:
    """Bad --classes values fail before anything is loaded (a name not known and no such file)."""
    if value is None or value in VOCABULARIES:
        return
    if not Path(value).is_file():
        raise InputError(value, f"--classes: neither one of {', '.join(CHOICES)} nor a file")


def resolve_classes(num_classes: int, path: str | Path | None = None, classes: str | Path | None = None,
                    target_names: list[str] | None = None, target_what: str = "data") -> ClassNames:
    """The class names of an official checkpoint with `num_classes` rows (see the module docstring). `classes`:
    a vocabulary key or a file (the --classes option); `target_names`: the categories of the data the model will
    meet, used only to settle an ambiguous count. Raises AmbiguousClassesError, or InputError for a --classes that
    does not fit."""
    if classes is not None:
        value = str(classes)
        if value in VOCABULARIES:
            v = VOCABULARIES[value]
            if len(v.names) != num_classes:
                raise InputError(path, f"--classes {value}: {v.title} has {len(v.names)} classes, but the "
                                       f"checkpoint has {num_classes}")
            return ClassNames(list(v.names), list(v.ids), v.key, v.title, f"--classes {value}")
        names, ids = read_class_file(value)
        if len(names) != num_classes:
            raise InputError(value, f"--classes: {len(names)} class names, but the checkpoint "
                                    f"{'' if path is None else Path(path).name + ' '}has {num_classes} classes")
        return ClassNames(names, ids, None, Path(value).name, f"--classes {value}")
    found = candidates_for(num_classes)
    if not found:
        return ClassNames([f"class {i + 1}" for i in range(num_classes)], list(range(1, num_classes + 1)), None,
                          "unknown", f"no known dataset has {num_classes} classes; name them with --classes FILE",
                          known=False)
    keys = [v.key for v in found]
    if len(found) == 1:
        v = found[0]
        return ClassNames(list(v.names), list(v.ids), v.key, v.title, f"{num_classes} classes")
    hint = file_name_hint(path, keys)
    if hint is not None:
        v = VOCABULARIES[hint[0]]
        return ClassNames(list(v.names), list(v.ids), v.key, v.title, f"file name says {hint[1]!r}",
                          candidates=keys)
    if target_names:
        scores = {v.key: _match_count(v.names, target_names) for v in found}
        best = max(scores.values())
        winners = [k for k, s in scores.items() if s == best]
        if best > 0 and len(winners) == 1:
            v = VOCABULARIES[winners[0]]
            return ClassNames(list(v.names), list(v.ids), v.key, v.title,
                              f"{best} of the {target_what}'s {len(set(target_names))} category names are "
                              f"{v.title}'s (" + ", ".join(f"{VOCABULARIES[k].title} {s}"
                                                           for k, s in scores.items()) + ")",
                              candidates=keys)
        if best == 0:
            v = found[0]     # whichever: no row can be matched by name, so the choice changes nothing
            return ClassNames(list(v.names), list(v.ids), v.key, v.title,
                              f"ambiguous, but no category name of the {target_what} is in any of "
                              f"{', '.join(VOCABULARIES[k].title for k in keys)}: no class row matches by name",
                              candidates=keys)
    raise AmbiguousClassesError(path, num_classes, found)


__all__ = ["AmbiguousClassesError", "CHOICES", "COCO", "ClassNames", "OVIS", "VOCABULARIES", "Vocabulary",
           "YTVIS_2019", "YTVIS_2021", "candidates_for", "check_classes_option", "file_name_hint",
           "read_class_file", "resolve_classes"]
