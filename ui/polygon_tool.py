"""The polygon in progress on the overlay view: its vertices, drawn as handles a drag can move.

Annotators coming from CVAT or X-AnyLabeling fix a misplaced vertex by dragging it, not by taking
back every click made after it. A press within `GRAB_PX` screen pixels of a vertex grabs it; the
reach is measured on screen (through the view's current scale), so a vertex is as easy to grab
zoomed out as zoomed in. Points are in frame coordinates (pixel (i, j) centred on (i, j)); the view
draws that pixel over [i, i+1), so the outline is drawn half a pixel further.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

Point = tuple[float, float]

GRAB_PX = 7.0  # how near (screen pixels) a press must land to grab a vertex
_HANDLE_PX = 9
_HOT_PX = 13
_LINE = (255, 255, 0)
_HANDLE_FILL = (30, 30, 30, 200)
_HOT_FILL = (255, 255, 0, 255)


class _Handles(pg.ScatterPlotItem):
    """Vertex squares that only draw. A plain ScatterPlotItem takes a left click on one of its
    points for itself, which would keep the click (and the double-click that finishes the polygon)
    from the view box that serves the tools."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        ev.ignore()

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        ev.ignore()


class PolygonEditor:
    """The vertices clicked so far, their outline and handles, and the vertex being dragged."""

    def __init__(self, view: pg.ViewBox) -> None:
        self.view = view
        self.points: list[Point] = []
        self.grabbed: int | None = None  # index of the vertex a drag is moving
        self.hot: int | None = None  # index of the vertex drawn highlighted (hovered or dragged)
        self._line = pg.PlotCurveItem(pen=pg.mkPen(_LINE, width=2))
        self._handles = _Handles(symbol="s", pen=pg.mkPen(_LINE, width=1.5), pxMode=True)
        for z, item in ((60, self._line), (61, self._handles)):
            item.setZValue(z)
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            item.setVisible(False)
            view.addItem(item, ignoreBounds=True)

    # ------------------------------------------------------------------ vertices
    def add(self, pt: Point) -> None:
        self.points.append((float(pt[0]), float(pt[1])))
        self.draw()

    def pop(self) -> None:
        """Take back the last vertex (a drag under way on it ends)."""
        if not self.points:
            return
        self.points.pop()
        if self.grabbed is not None and self.grabbed >= len(self.points):
            self.grabbed = None
        self._set_hot(None)
        self.draw()

    def take(self) -> list[Point]:
        """The vertices, leaving the editor empty (finishing the polygon)."""
        pts = self.points
        self.clear()
        return pts

    def clear(self) -> None:
        self.points = []
        self.grabbed = None
        self._set_hot(None)
        self.draw()

    def reach(self) -> float:
        """`GRAB_PX` screen pixels in frame pixels, at the view's current zoom."""
        px, py = self.view.viewPixelSize()
        return GRAB_PX * max(px, py)

    def vertex_near(self, pt: Point) -> int | None:
        """The vertex nearest `pt` within reach, or None."""
        if not self.points:
            return None
        d2 = [(x - pt[0]) ** 2 + (y - pt[1]) ** 2 for x, y in self.points]
        i = min(range(len(d2)), key=d2.__getitem__)
        return i if d2[i] <= self.reach() ** 2 else None

    # ------------------------------------------------------------------ mouse
    def hover(self, pt: Point) -> None:
        """Highlight the vertex a press at `pt` would grab."""
        if self.grabbed is None:
            self._set_hot(self.vertex_near(pt))

    def drag(self, ev, start: Point, pt: Point) -> None:
        """A drag from `start` (where the button went down) now at `pt`: a drag that starts on a
        vertex moves it and leaves it where the button is released; any other drag does nothing."""
        if ev.isStart():
            self.grabbed = self.vertex_near(start)
        if self.grabbed is None:
            return
        self.points[self.grabbed] = (float(pt[0]), float(pt[1]))
        self._set_hot(self.grabbed)
        if ev.isFinish():
            self.grabbed = None
        self.draw()

    # ------------------------------------------------------------------ drawing
    def _set_hot(self, index: int | None) -> None:
        if index == self.hot:
            return
        self.hot = index
        if index is None:
            self.view.unsetCursor()
        else:
            self.view.setCursor(Qt.CursorShape.SizeAllCursor)
        self.draw()

    def draw(self) -> None:
        pts = self.points
        for item in (self._line, self._handles):  # an empty scatter still cost 1 ms a repaint
            item.setVisible(bool(pts))
        xs = [p[0] + 0.5 for p in pts]
        ys = [p[1] + 0.5 for p in pts]
        closed = len(pts) > 2
        self._line.setData(xs + xs[:1] if closed else xs, ys + ys[:1] if closed else ys)
        hot = [i == self.hot for i in range(len(pts))]
        self._handles.setData(xs, ys, size=[_HOT_PX if h else _HANDLE_PX for h in hot],
                              brush=[pg.mkBrush(_HOT_FILL if h else _HANDLE_FILL) for h in hot])


__all__ = ["GRAB_PX", "PolygonEditor"]
