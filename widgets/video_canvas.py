"""The frame canvas: one video frame with every track's mask drawn over it, zoomable and pannable.

All masks of a frame are composited in numpy into ONE RGBA image (an index image of the topmost mask per
pixel, then a colour look-up), so a frame with tens of tracks costs one ImageItem update, not tens of items.
The index image is kept: hovering and clicking look up the topmost track under the cursor from it, and
changing the opacity only re-runs the look-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from widgets.colors import BACKGROUND, MUTED, RGB

EMPTY_MESSAGE = "Open a video (Ctrl+O) or drop one here"
_SELECTED_OUTLINE: RGB = (255, 255, 255)


@dataclass
class MaskOverlay:
    """One track's mask on the frame on screen.

    mask: bool (H, W), same size as the frame. label: text shown after the track id, centred just above the
    middle of the mask's top row, or just below it at the frame's top edge (e.g. "person 0.92"; a negative
    track_id, e.g. for a frame query's mask, shows the label alone). Later overlays in the list are drawn on
    top of earlier ones.
    """

    track_id: int
    mask: np.ndarray
    color: RGB
    label: str = ""
    selected: bool = False


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def mask_boxes(overlays: list[MaskOverlay], shape: tuple[int, int]) -> list[Box | None]:
    """Bounding box of each mask (None when empty); checks every mask has the frame's size."""
    boxes: list[Box | None] = []
    for ov in overlays:
        m = np.asarray(ov.mask)
        if m.shape != shape:
            raise ValueError(
                f"mask of track {ov.track_id} is {m.shape[1]}x{m.shape[0]}, "
                f"the frame is {shape[1]}x{shape[0]}"
            )
        if m.dtype == bool and not m.flags.c_contiguous and m.flags.f_contiguous:
            # pycocotools decodes column-major: the transpose is C-contiguous, so no 1 MB copy per 720p mask
            y, x, h, w = cv2.boundingRect(m.T.view(np.uint8))
        else:
            contiguous_bool = m.dtype == bool and m.flags.c_contiguous
            m8 = m.view(np.uint8) if contiguous_bool else np.ascontiguousarray(m, np.uint8)
            x, y, w, h = cv2.boundingRect(m8)
        boxes.append((x, y, x + w, y + h) if w and h else None)
    return boxes


def mask_index(
    overlays: list[MaskOverlay], shape: tuple[int, int], boxes: list[Box | None] | None = None
) -> np.ndarray:
    """uint16 (H, W): 0 where no mask, k+1 where overlays[k] is the topmost mask. Only each mask's box is
    touched, so small objects in a big frame cost little."""
    if boxes is None:
        boxes = mask_boxes(overlays, shape)
    index = np.zeros(shape, np.uint16)
    for k, (ov, box) in enumerate(zip(overlays, boxes, strict=True)):
        if box is None:
            continue
        x0, y0, x1, y1 = box
        m = np.asarray(ov.mask)[y0:y1, x0:x1]
        np.copyto(index[y0:y1, x0:x1], k + 1, where=m.astype(bool, copy=False))
    return index


def union_box(boxes: list[Box | None], shape: tuple[int, int], margin: int = 1) -> tuple[slice, slice] | None:
    """Row and column slices covering every box plus `margin` pixels (so outlines fit), or None."""
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    h, w = shape
    x0 = max(0, min(b[0] for b in real) - margin)
    y0 = max(0, min(b[1] for b in real) - margin)
    x1 = min(w, max(b[2] for b in real) + margin)
    y1 = min(h, max(b[3] for b in real) + margin)
    return slice(y0, y1), slice(x0, x1)


def outline_code(index: np.ndarray, overlays: list[MaskOverlay], show_outlines: bool) -> np.ndarray:
    """Look-up code per pixel: index (fill), index + K + 1 (outline of that mask). Outlines are where the
    topmost mask changes between 4-neighbours; the selected track's outline is widened to 3 px inwards."""
    k1 = len(overlays) + 1
    if not show_outlines or not overlays:
        return index
    idx = index
    edge = np.zeros(idx.shape, bool)
    d = idx[1:] != idx[:-1]
    edge[1:] |= d
    edge[:-1] |= d
    d = idx[:, 1:] != idx[:, :-1]
    edge[:, 1:] |= d
    edge[:, :-1] |= d
    edge &= idx > 0
    sel = [k + 1 for k, ov in enumerate(overlays) if ov.selected]
    if sel:
        in_sel = np.isin(idx, sel) if len(sel) > 1 else idx == sel[0]
        grown = cv2.dilate((edge & in_sel).view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
        edge |= grown & in_sel
    return idx + edge.view(np.uint8).astype(np.uint16) * k1


def overlay_lut(overlays: list[MaskOverlay], opacity: float) -> np.ndarray:
    """(2K+2, 4) uint8 RGBA: entry 0 transparent, 1..K fills, K+1.. outlines (opaque)."""
    k1 = len(overlays) + 1
    lut = np.zeros((2 * k1, 4), np.uint8)
    fill = float(np.clip(opacity, 0.0, 1.0))
    sel_fill = fill + (1.0 - fill) * 0.35  # the selected track stands out at any opacity
    for k, ov in enumerate(overlays):
        a = sel_fill if ov.selected else fill
        lut[k + 1] = (*ov.color, round(a * 255))
        lut[k1 + k + 1] = (*(_SELECTED_OUTLINE if ov.selected else ov.color), 255)
    return lut


class VideoCanvas(QWidget):
    """A video frame with track masks over it.

    Mouse: wheel zooms, drag pans, the aspect ratio is locked and row 0 is at the top (image coordinates: x is
    the column, y the row, pixel (x, y) covers [x, x+1) x [y, y+1)).

    Signals:
      hovered(track_id, x, y): the topmost track under the cursor (-1 when none) and the pixel; x = y = -1
      when
          the cursor leaves the frame. Emitted only when one of the three changes.
      clicked(x, y, button): a click (not a drag) in image coordinates (floats, may be outside the frame);
          button is "left", "right" or "middle".
      track_clicked(track_id): a left click on a mask (the topmost one).
      files_dropped(paths): local files dropped on the canvas.

    `view_box` and `frame_item` are public so the app can add tool items (brush cursor, polygon) in image
    coordinates.
    """

    hovered = Signal(int, int, int)
    clicked = Signal(float, float, str)
    track_clicked = Signal(int)
    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None, empty_message: str = EMPTY_MESSAGE) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.setAcceptDrops(True)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(BACKGROUND)
        self._graphics.setAcceptDrops(False)
        self._graphics.viewport().setAcceptDrops(False)
        self._graphics.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self._graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.view_box: pg.ViewBox = self._graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view_box.setDefaultPadding(0.01)
        self.frame_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item.setZValue(10)
        self.view_box.addItem(self.frame_item)
        self.view_box.addItem(self._overlay_item)
        self._labels: list[pg.TextItem] = []
        # Where the pointer is in a linked view (compare panes): a small cross, hidden by default.
        self._marker = pg.ScatterPlotItem(
            size=14, symbol="+", pen=pg.mkPen(255, 255, 255, 230, width=1.5), brush=None, pxMode=True
        )
        self._marker.setZValue(30)
        self._marker.hide()
        self.view_box.addItem(self._marker, ignoreBounds=True)
        self._label_anchors: list[tuple[float, float]] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)

        self._message = QLabel(empty_message, self)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self._message.setStyleSheet(f"color: {MUTED}; font-size: 13pt; background: transparent;")
        self._message.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._title = QLabel(self)
        self._title.setStyleSheet(
            "color: #e8e8e8; background: rgba(16, 17, 19, 200); padding: 3px 8px;"
            "border-radius: 3px; font-size: 10pt;"
        )
        self._title.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._title.hide()

        self._frame: np.ndarray | None = None
        self._overlays: list[MaskOverlay] = []
        self._index: np.ndarray | None = None  # topmost overlay per pixel (k+1), whole frame
        self._boxes: list[Box | None] = []
        self._roi: tuple[slice, slice] | None = None  # where any mask (plus outline margin) is
        self._code: np.ndarray | None = None  # look-up codes inside the roi
        self._opacity = 0.45
        self._show_outlines = True
        self._show_labels = True
        self._drop_colliding = False   # labels that cannot be placed clear of the others are hidden
        self._label_on: list[bool] = []
        self._overlays_visible = True
        self._last_hover = (-2, -2, -2)

        scene = self._graphics.scene()
        # Hover straight from the viewport's move events: the scene's sigMouseMoved is rate-limited and can
        # drop the last move, leaving a stale hover.
        self._graphics.viewport().installEventFilter(self)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        self.view_box.sigRangeChanged.connect(self._declutter_labels)
        # While the frame is fitted (fit_view, a new frame size), resizing the canvas refits it so the frame
        # grows with the panel; a user zoom or pan ends that until the next fit_view (Ctrl+F).
        self._fitted = False
        self.view_box.sigRangeChangedManually.connect(self._on_user_range)
        self.view_box.sigResized.connect(self._on_resized)

    # ----------------------------------------------------------------------------------------------- content
    def set_frame(self, frame: np.ndarray | None) -> None:
        """Show an RGB uint8 (H, W, 3) frame (or grey (H, W)); None clears the canvas to the empty message.
        The view fits the frame when its size changes; the overlays are cleared when it does."""
        if frame is None:
            self._frame = None
            self.frame_item.clear()
            self.set_overlays([])
            self._message.show()
            return
        frame = np.ascontiguousarray(frame)
        new_shape = self._frame is None or self._frame.shape[:2] != frame.shape[:2]
        self._frame = frame
        self.frame_item.setImage(
            frame, autoLevels=False, levels=None if frame.dtype == np.uint8 else (0, 255)
        )
        self._message.hide()
        if new_shape:
            fits = all(np.shape(ov.mask) == frame.shape[:2] for ov in self._overlays)
            self.set_overlays(self._overlays if fits else [])
            self.fit_view()

    def set_overlays(self, overlays: list[MaskOverlay]) -> None:
        """Replace the masks on screen (all of them, topmost last). Masks must have the frame's size."""
        self._overlays = list(overlays)
        self._boxes, self._roi, self._code = [], None, None
        if self._frame is None:
            self._index = None
        elif not self._overlays:
            self._index = np.zeros(self._frame.shape[:2], np.uint16)
        else:
            shape = self._frame.shape[:2]
            self._boxes = mask_boxes(self._overlays, shape)
            self._index = mask_index(self._overlays, shape, self._boxes)
            self._roi = union_box(self._boxes, shape)
            self._update_code()
        self._render_overlay()
        self._place_labels()

    def set_opacity(self, opacity: float) -> None:
        """Fill opacity of the masks, 0..1 (outlines stay opaque)."""
        self._opacity = float(np.clip(opacity, 0.0, 1.0))
        self._render_overlay()

    def set_show_outlines(self, show: bool) -> None:
        self._show_outlines = bool(show)
        self._update_code()
        self._render_overlay()

    def set_show_labels(self, show: bool) -> None:
        self._show_labels = bool(show)
        self._place_labels()

    def set_drop_colliding_labels(self, drop: bool) -> None:
        """Small views (compare panes): a label that cannot be placed clear of the labels already placed is
        hidden instead of overlapping them; the selected track's label is placed first, so it always shows."""
        self._drop_colliding = bool(drop)
        self._place_labels()

    def set_overlays_visible(self, visible: bool) -> None:
        """Hide or show all masks, outlines and labels at once (the V key)."""
        self._overlays_visible = bool(visible)
        self._overlay_item.setVisible(self._overlays_visible)
        self._place_labels()

    def set_title(self, title: str) -> None:
        """Corner caption (e.g. the source and AP of a compare pane); empty hides it."""
        self._title.setText(title)
        self._title.setVisible(bool(title))
        self._title.adjustSize()
        self._title.move(8, 8)

    def set_pointer_marker(self, x: float | None, y: float | None = None) -> None:
        """Show a cross at image point (x, y) (the pointer's position in a linked view); None hides it."""
        if x is None or y is None or self._frame is None:
            self._marker.hide()
            return
        self._marker.setData([x + 0.5], [y + 0.5])
        self._marker.show()

    def set_empty_message(self, message: str) -> None:
        self._message.setText(message)

    def fit_view(self) -> None:
        """Zoom and pan so the whole frame is visible (Ctrl+F)."""
        if self._frame is not None:
            h, w = self._frame.shape[:2]
            self.view_box.setRange(QRectF(0, 0, w, h), padding=0.01)
            self._fitted = True

    @property
    def fitted(self) -> bool:
        """True while the view shows the whole frame as fit_view left it (a resize keeps it fitted); a zoom or
        pan by the user clears it."""
        return self._fitted

    def keep_fitted(self, keep: bool) -> None:
        """Set whether a resize refits the frame (CompareView clears it in every pane when one is zoomed)."""
        self._fitted = bool(keep)

    # ----------------------------------------------------------------------------------------------- queries
    @property
    def frame(self) -> np.ndarray | None:
        return self._frame

    @property
    def opacity(self) -> float:
        return self._opacity

    def overlays_visible(self) -> bool:
        return self._overlays_visible

    def title(self) -> str:
        return self._title.text()

    def overlay_rgba(self) -> np.ndarray | None:
        """The composited RGBA overlay (H, W, 4) currently on screen, or None when there is no frame."""
        return self._overlay_item.image

    def track_at(self, x: float, y: float) -> int:
        """Id of the topmost track at image point (x, y), -1 for none or outside the frame."""
        if self._index is None:
            return -1
        ix, iy = int(np.floor(x)), int(np.floor(y))
        h, w = self._index.shape
        if not (0 <= ix < w and 0 <= iy < h):
            return -1
        k = int(self._index[iy, ix])
        return self._overlays[k - 1].track_id if k > 0 else -1

    def map_image_to_widget(self, x: float, y: float) -> QPointF:
        """Widget (viewport) position of image point (x, y); tests and tools use it."""
        scene_pt = self.view_box.mapViewToScene(QPointF(x, y))
        return QPointF(self._graphics.mapFromScene(scene_pt))

    def map_widget_to_image(self, pos: QPointF) -> QPointF:
        """Image point under viewport position `pos` (the inverse of map_image_to_widget; edit tools use it)."""
        return self.view_box.mapSceneToView(self._graphics.mapToScene(pos.toPoint()))

    @property
    def viewport(self) -> QWidget:
        """The widget that receives mouse events (for tests and event filters)."""
        return self._graphics.viewport()

    # ----------------------------------------------------------------------------------------------- drawing
    def _update_code(self) -> None:
        if self._roi is None or self._index is None:
            self._code = None
            return
        self._code = outline_code(self._index[self._roi], self._overlays, self._show_outlines)

    def _render_overlay(self) -> None:
        if self._code is None or self._frame is None or not self._overlays:
            self._overlay_item.clear()
            return
        lut = overlay_lut(self._overlays, self._opacity)
        rgba = np.zeros((*self._frame.shape[:2], 4), np.uint8)
        rgba[self._roi] = np.take(lut, self._code, axis=0)
        self._overlay_item.setImage(rgba, autoLevels=False, levels=None)

    def _place_labels(self) -> None:
        show = self._show_labels and self._overlays_visible and self._frame is not None
        needed = len(self._overlays) if show else 0
        while len(self._labels) < needed:
            item = pg.TextItem(anchor=(0.5, 1))
            item.setZValue(20)
            self.view_box.addItem(item, ignoreBounds=True)
            self._labels.append(item)
        for item in self._labels[needed:]:
            item.hide()
        anchors: list[tuple[float, float]] = []
        self._label_on = [False] * len(self._overlays)
        for i, (item, ov, box) in enumerate(zip(self._labels[:needed], self._overlays, self._boxes, strict=False)):
            text = f"{ov.track_id} {ov.label}".strip() if ov.track_id >= 0 else ov.label
            if box is None:
                item.hide()
                anchors.append((0.0, 0.0))
                continue
            self._label_on[i] = True
            fill = (20, 20, 22, 210) if not ov.selected else (*ov.color, 230)
            color = (255, 255, 255) if not ov.selected else _text_on(ov.color)
            item.setText(text, color=color)
            item.fill = pg.mkBrush(fill)
            item.border = pg.mkPen(ov.color, width=1)
            x, y = label_anchor(np.asarray(ov.mask), box)
            item.setPos(x, y)
            anchors.append((x, y))
            item.show()
            item.update()
        self._label_anchors = anchors
        self._declutter_labels()

    def label_anchors(self) -> list[tuple[float, float] | None]:
        """Image point each overlay's label points at (the middle of its mask's top row), None for an overlay
        without a label on screen; the label sits just above that point, or below it when there is no room."""
        return [
            a if i < len(self._labels) and self._labels[i].isVisible() else None
            for i, a in enumerate(self._label_anchors)
        ]

    def label_rects(self) -> list[QRectF | None]:
        """Viewport rectangle of each overlay's label as drawn (None when not shown); tests and tools."""
        out: list[QRectF | None] = []
        for i in range(len(self._label_anchors)):
            item = self._labels[i] if i < len(self._labels) else None
            if item is None or not item.isVisible():
                out.append(None)
                continue
            out.append(self._graphics.viewportTransform().mapRect(item.sceneBoundingRect()))
        return out

    def _declutter_labels(self) -> None:
        """Labels have a fixed size on screen, so at some zooms (or when masks start at the same point) they
        overlap: in screen space, from each label's anchor, push it below the ones already placed, or above
        them when that would leave the frame; every label stays inside the frame (and the view on the
        right, so a mask at the right edge keeps a readable label)."""
        anchors = self._label_anchors
        if self._frame is None or not anchors:
            return
        h, w = self._frame.shape[:2]
        tl = self.view_box.mapViewToScene(QPointF(0, 0))
        br = self.view_box.mapViewToScene(QPointF(w, h))
        left, top = tl.x(), tl.y()
        right = min(br.x(), self.view_box.sceneBoundingRect().right())
        bottom = br.y()
        placed: list[QRectF] = []
        order = list(range(min(len(anchors), len(self._labels))))
        if self._drop_colliding:   # the selected track's label first: it must never be the one dropped
            order.sort(key=lambda i: not (i < len(self._overlays) and self._overlays[i].selected))
        for i in order:
            item, (x, y) = self._labels[i], anchors[i]
            on = self._label_on[i] if i < len(self._label_on) else item.isVisible()
            if not on:
                continue
            item.show()
            item.setPos(x, y)
            start = item.sceneBoundingRect()  # centred just above the anchor
            rect = QRectF(start)
            above = rect.top() >= top
            if not above:  # no room above the mask: inside it, just below the anchor
                rect.moveTop(rect.bottom())
            if rect.right() > right:
                rect.moveRight(right)
            if rect.left() < left:
                rect.moveLeft(left)
            if rect.bottom() > bottom:  # a one-row mask at the very bottom
                rect.moveBottom(bottom)
            rect = _free_spot(rect, placed, top, bottom, up_first=above)
            if self._drop_colliding and any(p.intersects(rect) for p in placed):
                item.hide()
                continue
            if rect.topLeft() != start.topLeft():
                p0 = item.scenePos()
                shifted = QPointF(p0.x() + rect.left() - start.left(), p0.y() + rect.top() - start.top())
                item.setPos(self.view_box.mapSceneToView(shifted))
            placed.append(rect)

    # ------------------------------------------------------------------------------------------------ events
    def _on_user_range(self, *_args) -> None:
        self._fitted = False

    def _on_resized(self, *_args) -> None:
        if self._fitted and self._frame is not None:
            self.fit_view()

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._frame is None:
            return
        p = self.view_box.mapSceneToView(scene_pos)
        h, w = self._frame.shape[:2]
        ix, iy = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= ix < w and 0 <= iy < h:
            state = (self.track_at(ix, iy) if self._overlays_visible else -1, ix, iy)
        else:
            state = (-1, -1, -1)
        if state != self._last_hover:
            self._last_hover = state
            self.hovered.emit(*state)

    def _on_mouse_clicked(self, event) -> None:
        if self._frame is None:
            return
        p = self.view_box.mapSceneToView(event.scenePos())
        button = {
            Qt.MouseButton.LeftButton: "left",
            Qt.MouseButton.RightButton: "right",
            Qt.MouseButton.MiddleButton: "middle",
        }.get(event.button())
        if button is None:
            return
        self.clicked.emit(float(p.x()), float(p.y()), button)
        if button == "left" and self._overlays_visible:
            tid = self.track_at(p.x(), p.y())
            if tid >= 0:
                self.track_clicked.emit(tid)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.MouseMove and obj is self._graphics.viewport():
            self._on_mouse_moved(self._graphics.mapToScene(event.position().toPoint()))
        return super().eventFilter(obj, event)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._last_hover != (-1, -1, -1) and self._frame is not None:
            self._last_hover = (-1, -1, -1)
            self.hovered.emit(-1, -1, -1)
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._message.setGeometry(self.rect().adjusted(24, 24, -24, -24))
        self._title.move(8, 8)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths)
            event.acceptProposedAction()


def label_anchor(mask: np.ndarray, box: Box) -> tuple[float, float]:
    """Image point a mask's label points at: the middle set pixel of the mask's top row (always inside the
    mask, unlike its bounding box's corner or its centroid) at that row's top edge."""
    x0, y0, x1, _ = box
    xs = np.flatnonzero(mask[y0, x0:x1])
    return float(x0 + xs[len(xs) // 2]) + 0.5, float(y0)


def _free_spot(rect: QRectF, placed: list[QRectF], top: float, bottom: float, up_first: bool) -> QRectF:
    """`rect` moved vertically off every rectangle in `placed`, staying within [top, bottom]: away from its
    mask first (up for a label above its mask, so the mask stays uncovered; down for one inside it), the
    other way when that leaves the frame; when neither fits, the first way clamped to the frame (some overlap
    beats a label outside it)."""

    def walk(down: bool) -> QRectF:
        r = QRectF(rect)
        for _ in range(len(placed) + 1):
            hit = next((p for p in placed if p.intersects(r)), None)
            if hit is None:
                break
            if down:
                r.moveTop(hit.bottom() + 1)
            else:
                r.moveBottom(hit.top() - 1)
        return r

    def fits(r: QRectF) -> bool:
        return r.top() >= top - 0.5 and r.bottom() <= bottom + 0.5

    first = walk(not up_first)
    if fits(first):
        return first
    second = walk(up_first)
    if fits(second):
        return second
    if up_first:
        first.moveTop(top)
    else:
        first.moveBottom(bottom)
    return first


def _text_on(rgb: RGB) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `rgb`."""
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if lum > 150 else (255, 255, 255)
