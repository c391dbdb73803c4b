"""Which dataset an official checkpoint was trained on, asked on the GUI thread before the worker loads it.

An official Mask2Former / Mask2Former-VIS / VITA / SyncVIS file stores its class count, not its class names
(engine/data/vocabularies.py). 25 classes are OVIS and 80 COCO, but 40 are YouTube-VIS 2019 or 2021; when the
file's name does not say which, `confirm_checkpoint` asks (a QInputDialog) and remembers the answer per file
(in memory, and in `official_classes.json` beside the settings so the next session opens the same file the
same way). The worker's `load_model` reads it back with `chosen_classes`.

The store is plain Python (no QSettings): the worker thread reads it, and Qt objects made and dropped on that
thread crashed the interpreter at exit. Qt widgets are imported only by the functions that show them.

A file that cannot be read as a checkpoint at all is refused here, with a message, so that it never becomes the
remembered default model.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

STORE_NAME = "official_classes.json"
_lock = threading.Lock()
_chosen: dict[str, str] = {}
_loaded = False


def _key(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)


def store_path() -> Path:
    """Where the answers are kept: the settings folder of SYNCVIS_SETTINGS_DIR (tests, scripted runs), else the
    platform's configuration folder for SyncVIS."""
    folder = os.environ.get("SYNCVIS_SETTINGS_DIR")
    if folder:
        return Path(folder) / STORE_NAME
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Preferences"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "SyncVIS" / STORE_NAME


def _load_locked() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        saved = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(saved, dict):
        for k, v in saved.items():
            _chosen.setdefault(str(k), str(v))


def remember(path: str | Path, classes: str, persist: bool = True) -> None:
    """Open `path` with these class names from now on (a vocabulary key such as ytvis2021, or a names file)."""
    with _lock:
        _load_locked()
        _chosen[_key(path)] = str(classes)
        if not persist:
            return
        target = store_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(_chosen, indent=1), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            pass                     # kept for this session; the next one asks again


def chosen_classes(path: str | Path) -> str | None:
    """The class names chosen for `path` (None: nothing chosen; the engine decides from the file). Any thread."""
    with _lock:
        _load_locked()
        return _chosen.get(_key(path))


def forget_all() -> None:
    """Drop the in-memory answers (they are read again from the store on the next look-up)."""
    global _loaded
    with _lock:
        _chosen.clear()
        _loaded = False


def ask_classes(parent, path: str | Path, candidates: list[str],
                current: str | None = None) -> str | None:
    """The modal question: which dataset's classes -> a vocabulary key, or None when cancelled. `current` (the
    earlier answer for this file) is preselected."""
    from PySide6.QtWidgets import QInputDialog

    from engine.data.vocabularies import VOCABULARIES

    titles = [f"{VOCABULARIES[k].title} ({len(VOCABULARIES[k].names)} classes)" for k in candidates]
    n = len(VOCABULARIES[candidates[0]].names)
    title, ok = QInputDialog.getItem(
        parent, "Classes of this checkpoint",
        f"{Path(path).name} is an official checkpoint with {n} classes but no class names.\n"
        "Which dataset was it trained on?", titles,
        candidates.index(current) if current in candidates else 0, False)
    if not ok or title not in titles:
        return None
    return candidates[titles.index(title)]


def confirm_checkpoint(parent, path: str | Path, ask=ask_classes, warn=None) -> bool:
    """Before `path` becomes the model: True when it can be opened (one of ours, an official file whose classes
    are known, or one whose dataset the user just chose); False when it is not a checkpoint (said in a message)
    or the user cancelled the question. An ambiguous file is asked about every time it is chosen (the earlier
    answer preselected), so a wrong answer can be mended. GUI thread: reads the file once."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    from engine.data.vocabularies import AmbiguousClassesError
    from engine.errors import InputError
    from engine.model.checkpoint import peek_classes

    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        peek_classes(path)
        return True
    except AmbiguousClassesError as e:
        candidates = e.candidates
    except InputError as e:        # not a checkpoint, a damaged file, an architecture not understood
        (warn or _warn)(parent, str(e))
        return False
    finally:
        QGuiApplication.restoreOverrideCursor()
    choice = ask(parent, path, candidates, chosen_classes(path))
    if choice is None:
        return False
    remember(path, choice)
    return True


def _warn(parent, text: str) -> None:
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.warning(parent, "Cannot open this checkpoint", text)


__all__ = ["ask_classes", "chosen_classes", "confirm_checkpoint", "forget_all", "remember", "store_path"]
