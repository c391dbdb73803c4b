"""Interactive mask tools behind one interface (`AssistSession`, shaped like SAM 2's video predictor): SAM 2 when
a checkpoint is configured, GrabCut and optical-flow propagation always. No Qt; see base.py for the rules."""
from __future__ import annotations

from engine.assist.base import AssistConfig, AssistSession, Prompt, make_prompt, parse_direction
from engine.assist.flow import FlowConfig, FlowSession
from engine.assist.grabcut import GrabCutConfig, GrabCutSession, grabcut_prompt, refine_band

TOOLS = ("sam2", "flow", "grabcut")

__all__ = ["TOOLS", "AssistConfig", "AssistSession", "FlowConfig", "FlowSession", "GrabCutConfig",
           "GrabCutSession", "Prompt", "grabcut_prompt", "make_prompt", "open_session", "parse_direction",
           "refine_band"]


def open_session(tool: str, video, *, sam2=None, assist: AssistConfig | None = None, notice=None,
                 flow: FlowConfig | None = None, grabcut: GrabCutConfig | None = None) -> AssistSession:
    """A session of `tool` on `video`. For "sam2", `sam2` is a loaded `Sam2Model` or a `Sam2Config` (loaded
    here); SAM 2 and torch are imported only then, so GrabCut and flow work without them."""
    if tool == "flow":
        return FlowSession(video, flow, assist, notice)
    if tool == "grabcut":
        return GrabCutSession(video, grabcut, assist, notice)
    if tool == "sam2":
        from engine.assist.sam2_tool import Sam2Config, Sam2Model

        model = sam2 if isinstance(sam2, Sam2Model) else Sam2Model(sam2 if sam2 is not None else Sam2Config())
        return model.open(video, assist, notice)
    from engine.errors import InputError

    raise InputError(None, f"unknown assist tool {tool!r}; choose one of {', '.join(TOOLS)}")
