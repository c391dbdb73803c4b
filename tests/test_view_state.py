"""app.view_state without Qt: frame clamping, selection and visibility pruned to existing tracks, events only on
change, hover and tools."""
from __future__ import annotations

from app.view_state import SELECT_TOOL, FrameQuery, Hover, ViewState


def recorder(view: ViewState) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    for name in ("frame", "playing", "selection", "visibility", "hover", "hover_query", "tool", "brush_size"):
        getattr(view.events, name).connect(lambda v, name=name: seen.append((name, v)))
    return seen


def test_frame_is_clamped_and_emitted_once_per_change():
    view = ViewState()
    seen = recorder(view)
    assert not view.set_frame(3)  # no video: nothing to show
    view.reset_video(10)
    assert view.frame == -1
    assert view.set_frame(0) and view.frame == 0
    assert not view.set_frame(0)
    assert view.set_frame(0, force=True)
    view.set_frame(42)
    assert view.frame == 9
    view.set_frame(-5)
    assert view.frame == 0
    assert seen == [("frame", 0), ("frame", 0), ("frame", 9), ("frame", 0)]


def test_selection_and_visibility_follow_the_tracks():
    view = ViewState()
    view.set_tracks([4, 7])
    seen = recorder(view)
    view.select(7)
    view.select(7)
    view.select(99)  # unknown id clears the selection
    view.set_visible(4, False)
    view.set_visible(4, False)
    assert not view.is_visible(4) and view.shows(7) and not view.shows(4)
    view.set_overlays_visible(False)
    assert not view.shows(7) and view.is_visible(7)
    view.set_overlays_visible(True)
    view.select(7)
    view.set_tracks([7])  # track 4 is gone: its hidden flag goes
    assert view.hidden == set() and view.selected == 7
    view.set_tracks([])
    assert view.selected is None
    assert seen == [("selection", 7), ("selection", None), ("visibility", 4), ("visibility", None),
                    ("visibility", None), ("selection", 7), ("visibility", 4), ("selection", None)]


def test_playing_hover_and_tools():
    view = ViewState()
    seen = recorder(view)
    view.set_playing(True)
    view.reset_video(5)  # a new video stops playback
    assert not view.playing
    view.set_hover(Hover(3, 10, 20))
    view.set_hover(Hover(3, 10, 20))
    view.set_hover_query(FrameQuery(2, 5))
    assert view.tool == SELECT_TOOL
    view.set_tool("brush")
    view.set_brush_size(0)
    assert view.brush_size == 1
    disconnect_me = []
    view.events.tool.connect(disconnect_me.append)
    view.events.tool.disconnect(disconnect_me.append)
    view.set_tool("eraser")
    assert disconnect_me == []
    assert seen == [("playing", True), ("playing", False), ("hover", Hover(3, 10, 20)),
                    ("hover_query", FrameQuery(2, 5)), ("tool", "brush"), ("brush_size", 1), ("tool", "eraser")]
