"""What the user is looking at: current frame, playing, selection, hidden tracks, overlays, hover, tool. Qt-free.

Why a separate object: the document says what the data is, the view state says how it is being looked at, and
several views show the same look (canvas, timeline, track list, slider, status bar, analysis panels). Each view
listens here and redraws itself; whoever changes the frame or the selection only sets it here, once (napari's
`Dims.current_step`: the slider does not drive the canvas, both follow the state). It is plain Python with typed
callback events, so it runs in tests and scripts without a QApplication, and an edit layer can read the tool and
brush size without knowing about widgets.

Each setter emits only on a real change, so a view that mirrors the state back (a slider set to the frame it
already shows) does not loop.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

SELECT_TOOL = "select"


class Hover(NamedTuple):
    """The pointer over the canvas in image pixels (x < 0: outside the image) and the track under it (-1 none)."""

    track_id: int = -1
    x: int = -1
    y: int = -1


class FrameQuery(NamedTuple):
    """A frame-level query the user points at in the aggregation view (its mask shows on the canvas)."""

    frame: int
    query: int


class Event(Generic[T]):
    """A list of plain callbacks taking one typed value (a tiny stand-in for a Qt signal, without Qt)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def connect(self, fn: Callable[[T], None]) -> None:
        self._callbacks.append(fn)

    def disconnect(self, fn: Callable[[T], None]) -> None:
        if fn in self._callbacks:
            self._callbacks.remove(fn)

    def emit(self, value: T) -> None:
        for fn in list(self._callbacks):
            fn(value)


class ViewEvents:
    """The view state's events; each carries the new value (visibility: the track id, None = all overlays)."""

    def __init__(self) -> None:
        self.frame: Event[int] = Event()
        self.playing: Event[bool] = Event()
        self.selection: Event[int | None] = Event()
        self.visibility: Event[int | None] = Event()
        self.hover: Event[Hover] = Event()
        self.hover_query: Event[FrameQuery | None] = Event()
        self.tool: Event[str] = Event()
        self.brush_size: Event[int] = Event()


class ViewState:
    """One per window. `frame` is -1 until a video's first frame is shown."""

    def __init__(self) -> None:
        self.events = ViewEvents()
        self.num_frames = 0
        self._frame = 0
        self._playing = False
        self._selected: int | None = None
        self._hidden: set[int] = set()
        self._tracks: frozenset[int] = frozenset()
        self._overlays = True
        self._hover = Hover()
        self._hover_query: FrameQuery | None = None
        self._tool = SELECT_TOOL
        self._brush_size = 12

    # ------------------------------------------------------------ frame and playback
    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, frame: int, force: bool = False) -> bool:
        """Go to `frame` (clamped to the video). Returns whether it changed; `force` emits even when not
        (a new video shows its frame 0 though the index is the same)."""
        if self.num_frames <= 0:
            return False
        frame = max(0, min(int(frame), self.num_frames - 1))
        if frame == self._frame and not force:
            return False
        self._frame = frame
        self.events.frame.emit(frame)
        return True

    def reset_video(self, num_frames: int) -> None:
        """A new video: nothing is shown yet (frame -1) until the first `set_frame`; playback stops."""
        self.num_frames = max(0, int(num_frames))
        self._frame = -1
        self.set_playing(False)
        self.set_hover_query(None)

    @property
    def playing(self) -> bool:
        return self._playing

    def set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self.events.playing.emit(playing)

    # ------------------------------------------------------------ tracks: selection and visibility
    def set_tracks(self, track_ids: Iterable[int]) -> None:
        """The tracks that exist now. Hidden flags and the selection of tracks that are gone are dropped
        (a partial run keeps them while their track survives)."""
        self._tracks = frozenset(track_ids)
        gone = self._hidden - self._tracks
        self._hidden -= gone
        for tid in gone:
            self.events.visibility.emit(tid)
        if self._selected is not None and self._selected not in self._tracks:
            self.select(None)

    @property
    def selected(self) -> int | None:
        return self._selected

    def select(self, track_id: int | None) -> None:
        """Select a track (an unknown id clears the selection)."""
        if track_id is not None and track_id not in self._tracks:
            track_id = None
        if track_id != self._selected:
            self._selected = track_id
            self.events.selection.emit(track_id)

    @property
    def hidden(self) -> frozenset[int]:
        return frozenset(self._hidden)

    def is_visible(self, track_id: int) -> bool:
        """The track's own flag (the eye in the track list), regardless of the overlays switch."""
        return track_id not in self._hidden

    def set_visible(self, track_id: int, visible: bool) -> None:
        before = self.is_visible(track_id)
        (self._hidden.discard if visible else self._hidden.add)(track_id)
        if before != visible:
            self.events.visibility.emit(track_id)

    @property
    def overlays_visible(self) -> bool:
        return self._overlays

    def set_overlays_visible(self, visible: bool) -> None:
        if visible != self._overlays:
            self._overlays = visible
            self.events.visibility.emit(None)

    def shows(self, track_id: int) -> bool:
        """Whether the track's masks are drawn: overlays on and the track not hidden (a `Document.masks_at`
        filter)."""
        return self._overlays and track_id not in self._hidden

    # ------------------------------------------------------------ pointer
    @property
    def hover(self) -> Hover:
        return self._hover

    def set_hover(self, hover: Hover) -> None:
        if hover != self._hover:
            self._hover = hover
            self.events.hover.emit(hover)

    @property
    def hover_query(self) -> FrameQuery | None:
        return self._hover_query

    def set_hover_query(self, fq: FrameQuery | None) -> None:
        if fq != self._hover_query:
            self._hover_query = fq
            self.events.hover_query.emit(fq)

    # ------------------------------------------------------------ tools (the edit layer reads these)
    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, name: str) -> None:
        if name != self._tool:
            self._tool = name
            self.events.tool.emit(name)

    @property
    def brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, size: int) -> None:
        size = max(1, min(int(size), 512))
        if size != self._brush_size:
            self._brush_size = size
            self.events.brush_size.emit(size)
