"""The analysis docks: review queue, frame vs video, aggregation weights, and the hovered frame query's mask.

They follow the document (a new run), the view state (frame, selection, hovered frame query) and their dock's
visibility (a hidden panel does no work). What they derive from a run is cached in a `RunCache` bound to that
prediction object and dropped with it, so no cache is keyed by `id(...)` (ids of freed runs are reused).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDockWidget, QWidget

from app import presenters
from app.docks import on_screen
from app.document import TRACKS, Document
from app.engine_worker import EngineWorker, JobHandle, QueryMasksJob
from app.run_controller import TEST_MAX_SIDE
from app.track_views import TrackViews
from app.turns import Turns
from app.view_state import FrameQuery, ViewState
from engine import review
from engine.data import masks as rle_masks
from engine.data.masks import decode
from engine.review_worker import QueueRanker
from engine.types import VideoPrediction
from widgets.aggregation_view import AggregationView
from widgets.colors import track_color
from widgets.frame_video_view import FrameVideoView
from widgets.review_queue import ReviewQueue
from widgets.video_canvas import MaskOverlay


@dataclass
class RunCache:
    """What the panels derived from one prediction; replaced when the document's prediction changes."""

    pred: VideoPrediction | None = None
    lanes: dict[int, review.FrameVideoLanes] = field(default_factory=dict)       # track id -> lanes
    query_masks: dict[int, dict[int, list[dict]]] = field(default_factory=dict)  # window start -> {frame: RLEs}
    query_jobs: dict[int, JobHandle] = field(default_factory=dict)               # window start -> job

    def for_window(self, start: int) -> dict[int, list[dict]] | None:
        return self.query_masks.get(start)


@dataclass(frozen=True)
class _Shown:
    """What a panel's slow part (curves, heatmap) currently shows, so a frame change redraws only the rest."""

    track: int
    frame: int = -1


class Analysis(QObject):
    _queue_ready = Signal(object, object, object)   # (prediction, items, motion), from the ranker's thread

    def __init__(self, parent: QWidget, doc: Document, view: ViewState, worker: EngineWorker,
                 device: Callable[[], str], frame_image: Callable[[int], object], tracks: TrackViews,
                 seek: Callable[[int], None], status: Callable[[str, int], None], turns: Turns | None = None):
        super().__init__(parent)
        self.doc, self.view, self.worker, self.device = doc, view, worker, device
        self.frame_image, self.tracks, self.seek, self.status = frame_image, tracks, seek, status
        self.review = ReviewQueue()
        self.frame_video = FrameVideoView()
        self.aggregation = AggregationView()
        self.docks: dict[str, QDockWidget] = {}
        self.cache = RunCache()
        self._queue_items: list[review.ReviewItem] = []
        self._fv_shown: _Shown | None = None
        self._agg_shown: _Shown | None = None
        self._agg_reverse_at: tuple | None = None   # (track, frame, direction) shown
        self._motion: tuple[str, int, review.MotionEvidence | None] | None = None   # (path, frames, evidence)
        self.ranker = QueueRanker()   # a child process: a thread here would hold the GIL the GUI needs
        self._queue_for: VideoPrediction | None = None   # the run the queue thread is ranking
        self._queue_again = False
        self._queue_ready.connect(self._on_queue_ready)
        self.turns = turns or Turns(self)   # panel redraws after a new or growing run, one per event-loop turn

        for w in (self.review, self.frame_video, self.aggregation):
            w.frame_requested.connect(seek)
        self.aggregation.frame_query_hovered.connect(
            lambda frame, query: view.set_hover_query(None if query < 0 else FrameQuery(frame, query)))
        self.aggregation.direction_changed.connect(lambda _d: self.update_aggregation())
        doc.subscribe(self._on_doc_event)
        view.events.frame.connect(lambda _f: self.update_frame_panels())
        view.events.selection.connect(lambda _t: self.update_frame_panels())
        view.events.hover_query.connect(self._on_hover_query)

    def set_docks(self, frame_video: QDockWidget, aggregation: QDockWidget) -> None:
        self.docks = {"frame_video": frame_video, "aggregation": aggregation}
        frame_video.visibilityChanged.connect(lambda v: v and self.update_frame_video())
        aggregation.visibilityChanged.connect(lambda v: v and self.update_aggregation())

    def _shown(self, name: str) -> bool:
        return on_screen(self.docks.get(name))

    # ------------------------------------------------------------ document and view state
    def _on_doc_event(self, name: str, payload: dict) -> None:
        if name != TRACKS:
            return
        if self.cache.pred is not self.doc.prediction:
            for job in self.cache.query_jobs.values():
                job.cancel()
            self.cache = RunCache(self.doc.prediction)
        self.cache.lanes.clear()   # a partial run grows in place: its lanes change
        self._fv_shown = self._agg_shown = self._agg_reverse_at = None
        # In later turns, one piece each: the track views redraw in turns of their own, and a run's window
        # (or its end) redrawing everything at once held the GUI thread past a frame's budget. The selected
        # track's frame/video link (an IoU per frame) is computed in a turn before its panel draws.
        self.turns.schedule("analysis.lanes", self._prepare_lanes)
        self.turns.schedule("analysis.frame_video", lambda: self._on_frame_shown() and self.update_frame_video())
        self.turns.schedule("analysis.aggregation", lambda: self._on_frame_shown() and self.update_aggregation())
        if not payload.get("partial"):   # last: sending the run to the ranking process takes the GIL a moment
            self.turns.schedule("analysis.queue", self.refresh_review_queue)
        else:
            self.ranker.start()   # a run is under way: have the ranking process ready for its end

    def _prepare_lanes(self) -> None:
        tid, pred = self.view.selected, self.doc.prediction
        if self._shown("frame_video") and tid is not None and pred is not None and pred.frame_tracks \
                and self.doc.track(tid) is not None:
            self._lanes(tid)

    def update_frame_panels(self) -> None:
        """The panels for the frame on screen, now (a frame change or selection: input the user waits on)."""
        self.turns.cancel("analysis.frame_video", "analysis.aggregation")
        if self._on_frame_shown():
            self.update_frame_video()
            self.update_aggregation()

    def _on_frame_shown(self) -> bool:
        """A frame is on screen (so there are panels to draw); marks it visited in the review queue."""
        frame = self.view.frame
        if self.doc.video is None or frame < 0:
            return False
        if any(it.frame == frame for it in self._queue_items):
            self.review.mark_visited(frame)
        return True

    def pending(self) -> bool:
        """Query-mask jobs, the review queue being ranked, or the panels' redraws waiting for their turn."""
        return bool(self.cache.query_jobs) or self._queue_for is not None or self.turns.pending("analysis.")

    def close(self) -> None:
        """The window closes: stop the ranking process."""
        self.ranker.close()

    def abandon(self) -> None:
        """A new video: pending query-mask jobs go, cached masks with them."""
        for job in self.cache.query_jobs.values():
            job.cancel()
        self.cache = RunCache(self.doc.prediction)

    # ------------------------------------------------------------ review queue
    def motion(self) -> review.MotionEvidence | None:
        """The open video's motion evidence when it has been computed (None before, or when unreadable)."""
        v = self.doc.video
        if v is None or self._motion is None or self._motion[:2] != (str(v.path), v.num_frames):
            return None
        return self._motion[2]

    def refresh_review_queue(self) -> None:
        """Rank the frames of the document's run in the ranker's child process (the queue fills in when done)."""
        pred = self.doc.prediction
        if pred is None:
            self._queue_items = []
            self.review.set_items([])
            self.review.set_status("No review queue yet: run SyncVIS to rank uncertain frames")
            return
        if self._queue_for is not None:   # one at a time: rank again when the current one ends
            self._queue_again = True
            return
        v = self.doc.video
        key = (str(v.path), v.num_frames) if v is not None else None
        known = self._motion[2] if self._motion is not None and self._motion[:2] == key else None
        need_motion = key is not None and (self._motion is None or self._motion[:2] != key)
        self._queue_for = pred
        self.review.set_status("Ranking the frames by how likely the model is wrong there…")

        def done(result) -> None:   # in the ranker's thread
            if isinstance(result, Exception):
                items, motion = result, None
            else:
                items, motion = result
            try:
                failed = isinstance(items, Exception)
                self._queue_ready.emit(pred, items, (key, motion) if need_motion and not failed else None)
            except RuntimeError:
                pass   # the window closed while the child ranked

        self.ranker.rank(pred, key, known, need_motion, done)

    def _on_queue_ready(self, pred: VideoPrediction, items, motion) -> None:
        self._queue_for = None
        if motion is not None:
            (path, n), evidence = motion
            self._motion = (path, n, evidence)
        if self._queue_again or pred is not self.doc.prediction:
            self._queue_again = False
            self.refresh_review_queue()
            return
        if isinstance(items, Exception):
            self._queue_items = []
            self.review.set_items([])
            self.review.set_status(f"The review queue could not be ranked: {items}")
            return
        self._queue_items = items
        self.review.set_items(presenters.queue_items(items))
        frame = self.view.frame
        if any(it.frame == frame for it in items):
            self.review.mark_visited(frame)

    def queue(self) -> list[review.ReviewItem]:
        """The ranked queue of the document's run (empty until ranked)."""
        return list(self._queue_items)

    def next_uncertain(self) -> None:
        f = self.review.next_item(self.view.frame)
        if f is None:
            self.status("The review queue is empty: run SyncVIS first", 4000)
            return
        self.seek(f)
        item = next((it for it in self._queue_items if it.frame == f), None)
        if item is not None:
            self.status(f"Frame {f}: " + "; ".join(item.reasons[:3]), 8000)
            if item.track_ids:
                self.view.select(item.track_ids[0])

    # ------------------------------------------------------------ frame vs video
    def _lanes(self, tid: int) -> review.FrameVideoLanes:
        if tid not in self.cache.lanes:
            self.cache.lanes[tid] = review.frame_video_lanes(self.doc.prediction, tid)
        return self.cache.lanes[tid]

    def update_frame_video(self) -> None:
        """Redraw Frame vs video for the frame on screen, when its dock is on screen."""
        view = self.frame_video
        if not self._shown("frame_video"):
            return
        pred, tid, frame = self.doc.prediction, self.view.selected, self.view.frame
        if pred is None or tid is None or not pred.frame_tracks:
            self._fv_shown = None
        if pred is None or tid is None:
            view.clear("Select a track to compare its video-level and frame-level predictions" if pred else
                       "Run SyncVIS, then select a track to compare its video-level and frame-level masks")
            return
        if not pred.frame_tracks:
            view.clear(f"This run ({pred.mode} mode) has no frame-level tracks: run a sync model")
            return
        lanes = self._lanes(tid)
        t = self.doc.track(tid)
        ft = next((f for f in pred.frame_tracks if f.id == lanes.frame_track_id), None)
        if self._fv_shown != _Shown(tid):  # curves and header only change with the run or the track
            self._fv_shown = _Shown(tid)
            name = self.doc.category_name(t.category_id)
            link = f"frame track {ft.id}" if ft is not None else "no frame-level link"
            mean = lanes.mean_iou
            mean_text = f" · mean IoU {mean:.2f}" if math.isfinite(mean) else ""
            view.set_track_label(f"Track {tid} {name} ↔ {link}{mean_text}")
            view.setToolTip(f"Video-level track {tid} (video query {t.query}) and the frame-level track "
                            f"of the same run whose masks overlap it most ({link})")
            view.set_curves(lanes.video_scores, lanes.frame_scores, lanes.iou)
        vm = self.doc.mask(tid, frame)
        fm = None
        if ft is not None and frame < len(ft.masks) and ft.masks[frame] is not None:
            fm = decode(ft.masks[frame])
            fm = fm if fm.any() else None
        view.set_frame_pair(self.frame_image(frame), vm, fm, track_color(tid))
        view.set_current_frame(frame)

    # ------------------------------------------------------------ aggregation weights
    def update_aggregation(self) -> None:
        """Redraw the aggregation weights, when the dock is on screen."""
        view = self.aggregation
        if not self._shown("aggregation"):
            return
        pred, tid, frame = self.doc.prediction, self.view.selected, self.view.frame
        if pred is None or not pred.windows or all(w.f2v_weights is None for w in pred.windows):
            self._agg_shown = None
            view.clear("Run SyncVIS with a sync model to see its aggregation weights" if pred is None else
                       f"This run ({pred.mode} mode) has no aggregation weights: run a sync model")
            return
        if tid is None:
            self._agg_shown = None
            view.clear("Select a track to see how its video query aggregated the frames")
            return
        if self._agg_shown != _Shown(tid):  # the heatmap changes with the run or the track, not the frame
            t = self.doc.track(tid)
            mass = review.aggregation_mass(pred, tid, "f2v")
            selected = review.selected_frame_queries_all(pred)
            windows = [(w.start, w.end) for w in pred.windows]
            view.set_forward(mass, selected, f"track {tid} · video query {t.query}", windows)
            self._agg_shown = _Shown(tid)
            self._agg_reverse_at = None
        at = (tid, frame, view.direction)
        if self._agg_reverse_at != at:
            rev = review.reverse_weights(pred, tid, frame)  # reverse weights belong to one frame
            if rev is not None and view.direction == "reverse":
                view.set_reverse(rev[0], rev[1])
            view.set_highlight(self._track_frame_query(tid, frame, rev))
            self._agg_reverse_at = at
        view.set_current_frame(frame)

    def _track_frame_query(self, tid: int, frame: int, rev) -> int | None:
        """The selected track's frame-level query on `frame`: the frame query whose mask overlaps the track's
        mask most when the window's frame-query masks are known (a hovered query computed them), else the
        frame query that drew the most from the track's video query at the last layer (video → frame), the
        one the synchronisation tied to it. None without either."""
        pred = self.doc.prediction
        win = next((w for w in pred.windows if w.start <= frame < w.end), None)
        masks = self.cache.for_window(win.start) if win is not None else None
        mine = self.doc.track(tid)
        rle = mine.masks[frame] if mine is not None and frame < len(mine.masks) else None
        if masks is not None and masks.get(frame) and rle is not None and rle_masks.area(rle) > 0:
            ious = rle_masks.iou_matrix(masks[frame], [rle])[:, 0]
            if ious.size and float(ious.max()) > 0:
                return int(ious.argmax())
        if rev is not None and rev[0].size and float(rev[0][:, -1].max()) > 0:
            return int(rev[0][:, -1].argmax())
        return None

    # ------------------------------------------------------------ hovered frame query
    def _on_hover_query(self, fq: FrameQuery | None) -> None:
        """Show the hovered frame query's mask on the canvas. Runs don't keep every frame query's masks (only
        the linked frame tracks), so the window holding the frame is re-run once in the worker and cached."""
        pred = self.doc.prediction
        if fq is None or pred is None:
            self.tracks.refresh_canvas()
            return
        if fq.frame != self.view.frame:
            self.seek(fq.frame)
        win = next((w for w in pred.windows if w.start <= fq.frame < w.end), None)
        if win is None:
            return
        masks = self.cache.for_window(win.start)
        if masks is not None:
            self._show_query_mask(fq, masks)
            return
        if win.start in self.cache.query_jobs or not pred.checkpoint:
            return
        cache = self.cache
        job = self.worker.submit(QueryMasksJob(str(self.doc.video.path), pred.checkpoint, self.device(),
                                               win.start, win.end, max_side=TEST_MAX_SIDE))
        cache.query_jobs[win.start] = job
        job.finished.connect(lambda masks: self._query_masks_done(cache, win.start, masks))
        job.failed.connect(lambda msg: cache.query_jobs.pop(win.start, None) and self.status(
            f"Frame-query masks unavailable: {msg}", 8000))
        job.cancelled.connect(lambda _r: cache.query_jobs.pop(win.start, None))
        self.status(f"Computing the frame-query masks of frames {win.start}–{win.end - 1}…", 5000)

    def _show_query_mask(self, fq: FrameQuery, masks: dict[int, list[dict]]) -> None:
        rles = masks.get(fq.frame)
        if rles is None or not 0 <= fq.query < len(rles) or fq.frame != self.view.frame:
            return
        self.tracks.refresh_canvas(MaskOverlay(-1, decode(rles[fq.query]), (255, 255, 255),
                                               f"frame query {fq.query}", True))
        self.status(f"Frame {fq.frame}: mask of frame query {fq.query} (white)", 4000)

    def _query_masks_done(self, cache: RunCache, start: int, masks: dict) -> None:
        cache.query_jobs.pop(start, None)
        if cache is self.cache:   # still the document's run
            cache.query_masks[start] = masks
            self._agg_reverse_at = None   # the track's own frame query is known now
            self.update_aggregation()
            if self.view.hover_query is not None:
                self._show_query_mask(self.view.hover_query, masks)
