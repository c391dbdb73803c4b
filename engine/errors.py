"""Exceptions for bad input. Each names the file and the problem, so the CLI prints it as one line and the app
shows it in a message box without a traceback."""
from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: a file that cannot be read or does not mean what it should."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class VideoError(InputError):
    """A video or frame folder that cannot be opened or decoded."""


class TruncatedVideoError(VideoError):
    """Decoding broke at `frame_index`; frames before it are still readable."""

    def __init__(self, path: str | Path, frame_index: int, detail: str = ""):
        self.frame_index = frame_index
        msg = f"video is damaged: decoding stops at frame {frame_index}"
        super().__init__(path, msg + (f" ({detail})" if detail else ""))


class DatasetFormatError(InputError):
    """A YouTube-VIS file that is malformed; `location` is a JSON path such as annotations[12].segmentations[40]."""

    def __init__(self, path: str | Path | None, location: str, problem: str):
        self.location = location
        super().__init__(path, f"{location}: {problem}" if location else problem)


class CheckpointError(InputError):
    """A checkpoint of another architecture or class count, or not a checkpoint at all."""


class Cancelled(Exception):
    """Raised inside long jobs when the user cancels; callers keep the partial result they were given."""
