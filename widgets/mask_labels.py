"""The masks' labels ("3 dog 0.92") of a frame canvas, laid out and drawn by ONE graphics item.

Labels keep their size on screen at any zoom and must not overlap each other (nor a pane's title). One
pyqtgraph TextItem per label made that cost about 0.1 ms a label a frame in Python-to-Qt calls (text, colours,
two moves and a bounding-box query each), which at 20 tracks in four canvases was most of a frame's budget. This
item instead keeps plain data (anchor, text, colours), measures each text once with the font's metrics, places
the labels in viewport pixels with plain rectangle arithmetic when it is painted (so a zoom or a pan re-places
them for free), and paints them all in one `paint` call.

Placement (`place_labels`): each label is centred just above its anchor (the middle of its mask's top row), or
just below it when there is no room above the frame; it is pushed off the labels already placed (and off the
obstacles, e.g. a pane's title), away from its mask first; it stays inside the frame and the view's right edge.
In small views (`drop_colliding`) the selected track's label is placed first and a label that cannot be placed
clear of the others is left out instead of overlapping them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QStaticText, QTransform

from widgets.colors import RGB

_PAD_X, _PAD_Y = 4.0, 2.0   # text padding inside a label's box, px


@dataclass(frozen=True)
class Label:
    """One label: `anchor` is the image point it points at; the selected track's label is filled with its
    colour."""

    anchor: tuple[float, float]
    text: str
    color: RGB
    selected: bool = False


def text_on(rgb: RGB) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `rgb`."""
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if lum > 150 else (255, 255, 255)


Rect = list[float]   # [left, top, right, bottom] in screen pixels: plain floats, so placing 20 labels in four
                     # canvases a frame costs no Python-to-Qt calls


def _hits(r: Rect, p: Rect) -> bool:
    """Whether two rectangles overlap (touching edges do not), as QRectF.intersects."""
    return r[0] < p[2] and p[0] < r[2] and r[1] < p[3] and p[1] < r[3]


def free_spot(rect: Rect, placed: list[Rect], top: float, bottom: float, up_first: bool,
              max_moves: int | None = None) -> Rect:
    """`rect` moved vertically off every rectangle in `placed`, staying within [top, bottom]: away from its
    mask first (up for a label above its mask, so the mask stays uncovered; down for one inside it), the
    other way when that leaves the frame; when neither fits, the first way clamped to the frame (some overlap
    beats a label outside it). `max_moves` bounds the walk each way (a small view drops what does not fit
    nearby rather than stacking it far from its mask)."""
    h = rect[3] - rect[1]
    steps = len(placed) + 1 if max_moves is None else max_moves

    def walk(down: bool) -> Rect:
        x0, y0, x1, y1 = rect
        for _ in range(steps):
            for p in placed:   # the first one hit (_hits inlined: this loop is most of a layout's time)
                if x0 < p[2] and p[0] < x1 and y0 < p[3] and p[1] < y1:
                    break
            else:
                break
            y0 = p[3] + 1 if down else p[1] - 1 - h
            y1 = y0 + h
        return [x0, y0, x1, y1]

    def fits(r: Rect) -> bool:
        return r[1] >= top - 0.5 and r[3] <= bottom + 0.5

    first = walk(not up_first)
    if fits(first):
        return first
    second = walk(up_first)
    if fits(second):
        return second
    first[1] = top if up_first else bottom - h
    first[3] = first[1] + h
    return first


def place_labels(
    anchors: list[tuple[float, float]],
    sizes: list[tuple[float, float]],
    bounds: Rect,
    order: list[int],
    obstacles: list[Rect] = (),
    drop_colliding: bool = False,
) -> list[Rect | None]:
    """Screen rectangles of the labels (None for one left out), in the order of `anchors`; `order` is the
    order of placement (earlier ones keep their spot); `bounds` is where labels may go (the frame, cut at the
    view's right edge)."""
    left, top, right, bottom = bounds
    placed = [list(o) for o in obstacles]
    out: list[Rect | None] = [None] * len(anchors)
    for i in order:
        (ax, ay), (w, h) = anchors[i], sizes[i]
        x0, y0 = ax - w / 2, ay - h              # centred just above the anchor
        above = y0 >= top
        if not above:                            # no room above the mask: inside it, just below the anchor
            y0 = ay
        x0 = max(left, min(x0, right - w))
        y0 = min(y0, bottom - h)                 # a one-row mask at the very bottom
        rect = free_spot([x0, y0, x0 + w, y0 + h], placed, top, bottom, up_first=above,
                         max_moves=2 if drop_colliding else None)
        if drop_colliding and any(_hits(rect, p) for p in placed):
            continue
        placed.append(rect)
        out[i] = rect
    return out


class LabelLayer(pg.GraphicsObject):
    """All labels of one canvas, in image coordinates (a child of its view box); painted in screen pixels."""

    def __init__(self, view_box: pg.ViewBox) -> None:
        super().__init__()
        self._vb = view_box
        self._labels: list[Label | None] = []
        self._frame = QRectF()
        self._drop_colliding = False
        self._obstacles: list[QRectF] = []   # viewport rectangles labels keep off (a pane's title)
        self._font = QFont()
        self._metrics = QFontMetricsF(self._font)
        self._sizes: dict[str, tuple[float, float]] = {}
        self._static: dict[str, QStaticText] = {}   # laid-out text: painting it skips the shaping drawText does
        self._styles: dict[tuple[RGB, bool], tuple[QPen, QColor, QColor]] = {}
        self._memo: tuple | None = None
        self._rects: list[QRectF | None] = []
        self.setZValue(20)

    # ------------------------------------------------------------------ content
    def set_labels(self, labels: list[Label | None], frame_w: int, frame_h: int) -> None:
        """One entry per overlay (None: no label, e.g. an empty mask)."""
        frame = QRectF(0, 0, frame_w, frame_h)
        if frame != self._frame:
            self.prepareGeometryChange()
            self._frame = frame
        self._labels = list(labels)
        self._memo = None
        self.update()

    def set_drop_colliding(self, drop: bool) -> None:
        self._drop_colliding = bool(drop)
        self._memo = None
        self.update()

    def set_obstacles(self, rects: list[QRectF]) -> None:
        """Viewport rectangles no label may cover (e.g. the pane's title in its corner)."""
        if rects != self._obstacles:
            self._obstacles = [QRectF(r) for r in rects]
            self._memo = None
            self.update()

    def labels(self) -> list[Label | None]:
        return list(self._labels)

    # ------------------------------------------------------------------ layout
    def _size(self, text: str) -> tuple[float, float]:
        s = self._sizes.get(text)
        if s is None:
            if len(self._sizes) > 4096:
                self._sizes.clear()
                self._static.clear()
            s = (self._metrics.horizontalAdvance(text) + 2 * _PAD_X, self._metrics.height() + 2 * _PAD_Y)
            self._sizes[text] = s
        return s

    def _text(self, text: str) -> QStaticText:
        st = self._static.get(text)
        if st is None:
            st = QStaticText(text)
            st.setTextFormat(Qt.TextFormat.PlainText)
            st.prepare(QTransform(), self._font)
            self._static[text] = st
        return st

    def rects(self, to_device: QTransform | None = None) -> list[QRectF | None]:
        """Each label's rectangle in viewport pixels (None when not shown), for the item's current place on
        screen (or `to_device`, the painter's transform while painting)."""
        views = self.scene().views() if self.scene() is not None else []
        if not self._labels or not views or not self.isVisible():
            return [None] * len(self._labels)
        view = views[0]
        if to_device is None:
            to_device = self.deviceTransform(view.viewportTransform())
        vb_rect = view.viewportTransform().mapRect(self._vb.sceneBoundingRect())
        key = (to_device.m11(), to_device.m12(), to_device.m21(), to_device.m22(), to_device.dx(),
               to_device.dy(), vb_rect.right())
        if self._memo == key:
            return self._rects
        frame = to_device.mapRect(self._frame)
        bounds = [frame.left(), frame.top(), min(frame.right(), vb_rect.right()), frame.bottom()]
        shown = [i for i, lab in enumerate(self._labels) if lab is not None]
        anchors = [(0.0, 0.0)] * len(self._labels)
        sizes = [(0.0, 0.0)] * len(self._labels)
        sx, sy, dx, dy = to_device.m11(), to_device.m22(), to_device.dx(), to_device.dy()   # scale + shift
        for i in shown:
            lab = self._labels[i]
            anchors[i] = (lab.anchor[0] * sx + dx, lab.anchor[1] * sy + dy)
            sizes[i] = self._size(lab.text)
        order = shown
        if self._drop_colliding:   # the selected track's label first: it must never be the one dropped
            order = sorted(shown, key=lambda i: not self._labels[i].selected)
        obstacles = [[o.left(), o.top(), o.right(), o.bottom()] for o in self._obstacles]
        placed = place_labels(anchors, sizes, bounds, order, obstacles, self._drop_colliding)
        self._rects = [None if r is None else QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1]) for r in placed]
        self._memo = key
        return self._rects

    # ------------------------------------------------------------------ QGraphicsItem
    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        # Labels stay inside the frame, so the frame (plus a little for the outline pen) bounds them.
        return self._frame.adjusted(-2, -2, 2, 2)

    def _style(self, color: RGB, selected: bool) -> tuple[QPen, QColor, QColor]:
        """(frame pen, fill, text colour) of a label, made once per colour: building them for every label at
        every paint was a third of the layer's paint time."""
        key = (color, selected)
        st = self._styles.get(key)
        if st is None:
            if len(self._styles) > 1024:
                self._styles.clear()
            fill = QColor(*color, 230) if selected else QColor(20, 20, 22, 210)
            text = QColor(*(text_on(color) if selected else (255, 255, 255)))
            st = self._styles[key] = (QPen(QColor(*color), 1), fill, text)
        return st

    def paint(self, p: QPainter, *_args) -> None:
        rects = self.rects(p.worldTransform())
        if not any(r is not None for r in rects):
            return
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setFont(self._font)
        for lab, r in zip(self._labels, rects, strict=True):
            if r is None or lab is None:
                continue
            pen, fill, text = self._style(lab.color, lab.selected)
            p.setPen(pen)
            p.setBrush(fill)
            p.drawRect(r.adjusted(0.5, 0.5, -0.5, -0.5))
            p.setPen(text)
            p.drawStaticText(QPointF(r.left() + _PAD_X, r.top() + _PAD_Y), self._text(lab.text))
        p.restore()
