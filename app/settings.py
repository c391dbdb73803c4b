"""What the app remembers between sessions: recent files, window layout, checkpoint and device.

One QSettings behind typed accessors. When the environment variable SYNCVIS_SETTINGS_DIR is set (the test
suite
does it), settings live in an INI file there, so tests and scripted runs never touch the user's own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QByteArray, QSettings

ORG, APP = "SyncVIS", "SyncVIS Studio"
MAX_RECENT = 10


class WindowState(NamedTuple):
    geometry: QByteArray | None
    state: QByteArray | None


class Settings:
    def __init__(self, path: str | Path | None = None):
        folder = path or os.environ.get("SYNCVIS_SETTINGS_DIR")
        self.folder = Path(folder) if folder else None
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.q = QSettings(str(Path(folder) / "syncvis-studio.ini"), QSettings.Format.IniFormat)
        else:
            self.q = QSettings(ORG, APP)

    def projects_dir(self) -> Path:
        """Where the autosave projects of plain videos live (beside the settings when SYNCVIS_SETTINGS_DIR is
        set, else the platform's application-data folder)."""
        if self.folder is not None:
            return self.folder / "projects"
        from PySide6.QtCore import QStandardPaths

        return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "projects"

    # ------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        v = self.q.value("recent/files", [])
        if isinstance(v, str):  # INI stores a one-element list as a plain string
            v = [v]
        return [str(p) for p in (v or [])]

    def add_recent(self, path: str | Path) -> list[str]:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != p]
        files.insert(0, p)
        files = files[:MAX_RECENT]
        self.q.setValue("recent/files", files)
        return files

    def clear_recent(self) -> None:
        self.q.setValue("recent/files", [])

    # ------------------------------------------------------------ engine
    def checkpoint(self) -> str:
        return str(self.q.value("engine/checkpoint", "") or "")

    def set_checkpoint(self, path: str) -> None:
        self.q.setValue("engine/checkpoint", str(path))

    def device(self) -> str:
        return str(self.q.value("engine/device", "cpu") or "cpu")

    def set_device(self, device: str) -> None:
        self.q.setValue("engine/device", device)

    def models(self) -> list[str]:
        """Fine-tuned checkpoints, newest first (each has a model.json with its provenance beside its run)."""
        v = self.q.value("engine/models", [])
        v = [v] if isinstance(v, str) else list(v or [])
        return [p for p in v if Path(p).exists()]

    def add_model(self, path: str) -> None:
        self.q.setValue("engine/models", [path] + [p for p in self.models() if p != path][:19])

    # ------------------------------------------------------------ assist (SAM 2)
    def sam2_size(self) -> str:
        return str(self.q.value("assist/sam2_size", "tiny") or "tiny")

    def sam2_checkpoint(self) -> str:
        return str(self.q.value("assist/sam2_checkpoint", "") or "")

    def set_sam2(self, size: str, checkpoint: str) -> None:
        self.q.setValue("assist/sam2_size", size)
        self.q.setValue("assist/sam2_checkpoint", str(checkpoint or ""))

    def last_dir(self) -> str:
        return str(self.q.value("paths/last_dir", "") or "")

    def set_last_dir(self, path: str | Path) -> None:
        self.q.setValue("paths/last_dir", str(path))

    # ------------------------------------------------------------ window
    def window_state(self) -> WindowState:
        geom, state = self.q.value("window/geometry"), self.q.value("window/state")
        return WindowState(geom if isinstance(geom, QByteArray) else None,
                           state if isinstance(state, QByteArray) else None)

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def sync(self) -> None:
        self.q.sync()
