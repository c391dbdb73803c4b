"""Qt views of SyncVIS Studio: each draws the plain data it is given and emits what the user did.

numpy + Qt + pyqtgraph only (never torch). The app wires these views to the document and the engine.
See docs/widgets-api.md for the API summary.
"""

from widgets.aggregation_view import AggregationView
from widgets.colors import PALETTE, track_color
from widgets.compare_view import CompareView
from widgets.frame_video_view import FrameVideoView
from widgets.review_queue import ReviewItem, ReviewQueue
from widgets.timeline import Lane, Timeline
from widgets.track_list import TrackList, TrackRow
from widgets.video_canvas import MaskOverlay, VideoCanvas

__all__ = [
    "PALETTE",
    "AggregationView",
    "CompareView",
    "FrameVideoView",
    "Lane",
    "MaskOverlay",
    "ReviewItem",
    "ReviewQueue",
    "Timeline",
    "TrackList",
    "TrackRow",
    "VideoCanvas",
    "track_color",
]
