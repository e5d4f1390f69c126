"""The polygon tool with the real mouse path: clicks place vertices, a drag from a vertex moves it,
a double-click or Enter fills; a drag never pans the view and never adds a vertex."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.ui.polygon_tool import GRAB_PX

LEFT, NONE = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
Type = QtCore.QEvent.Type


class Mouse:
    """Real mouse events on the overlay view's viewport, at image pixels or at screen offsets."""

    def __init__(self, win, qtbot) -> None:
        self.gv, self.vb, self.qtbot = win.views.overlay_widget, win.views.overlay_view, qtbot
        self.vp = self.gv.viewport()

    def at(self, p, dx: float = 0.0, dy: float = 0.0) -> QtCore.QPointF:
        """Widget position of image pixel p, moved (dx, dy) screen pixels."""
        scene = self.vb.mapViewToScene(QtCore.QPointF(p[0] + 0.5, p[1] + 0.5))
        return QtCore.QPointF(self.gv.mapFromScene(scene)) + QtCore.QPointF(dx, dy)

    def send(self, etype, pos: QtCore.QPointF, buttons, button=LEFT) -> None:
        ev = QtGui.QMouseEvent(etype, pos, self.vp.mapToGlobal(pos), button, buttons,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(self.vp, ev)

    def move(self, pos: QtCore.QPointF, buttons=LEFT) -> None:
        self.qtbot.wait(15)  # pyqtgraph drops mouse moves less than 10 ms apart
        self.send(Type.MouseMove, pos, buttons, NONE)

    def click(self, pos: QtCore.QPointF) -> None:
        self.send(Type.MouseButtonPress, pos, LEFT)
        self.send(Type.MouseButtonRelease, pos, NONE)
        QtWidgets.QApplication.processEvents()

    def double_click(self, pos: QtCore.QPointF) -> None:
        self.click(pos)
        self.send(Type.MouseButtonDblClick, pos, LEFT)
        self.send(Type.MouseButtonRelease, pos, NONE)
        QtWidgets.QApplication.processEvents()

    def drag(self, path: list[QtCore.QPointF]) -> None:
        self.send(Type.MouseButtonPress, path[0], LEFT)
        for pos in path[1:]:
            self.move(pos)
        self.send(Type.MouseButtonRelease, path[-1], NONE)
        QtWidgets.QApplication.processEvents()


def _ready(win, qtbot, class_id: int) -> Mouse:
    win.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    win.actions_by_name["tool_polygon"].trigger()
    win.tools.set_class(class_id)
    return Mouse(win, qtbot)


def _near(a, b, tol: float = 0.25) -> bool:
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


def _same_as_filled(win, points, class_id: int) -> None:
    """The mask the mouse made is the session's fill of `points` (undo, fill, compare)."""
    made = win.displayed_mask.copy()
    win.actions_by_name["undo"].trigger()
    win.session.fill_polygon(0, points, class_id)
    np.testing.assert_array_equal(win.displayed_mask, made)


def test_dragging_a_vertex_moves_it_and_the_double_click_fills_the_moved_outline(main_window, qtbot):
    win = main_window
    c = 3 if int(main_window.displayed_mask[38, 48]) != 3 else 2
    mouse = _ready(win, qtbot, c)
    before = win.displayed_mask.copy()
    for p in [(10, 10), (40, 10), (40, 35)]:
        mouse.click(mouse.at(p))
    assert len(win.tools.polygon.points) == 3
    view_range = win.views.overlay_view.viewRange()
    # grab the third vertex, wander, let go at (55, 44)
    mouse.drag([mouse.at((40, 35)), mouse.at((46, 38)), mouse.at((52, 42)), mouse.at((55, 44))])
    assert win.views.overlay_view.viewRange() == view_range, "the vertex drag panned the view"
    pts = win.tools.polygon.points
    assert len(pts) == 3, "the drag added a vertex"
    assert _near(pts[2], (55, 44)) and _near(pts[0], (10, 10)) and _near(pts[1], (40, 10))
    np.testing.assert_array_equal(win.displayed_mask, before)  # nothing filled yet
    mouse.double_click(mouse.at((10, 35)))  # the fourth vertex, and the double-click fills
    assert win.tools.polygon.points == []
    assert win.displayed_mask[38, 48] == c, "the fill did not follow the moved vertex"
    assert win.displayed_mask[30, 20] == c
    assert win.views.overlay_view.viewRange() == view_range
    _same_as_filled(win, [(10, 10), (40, 10), pts[2], (10, 35)], c)


def test_a_press_a_few_screen_pixels_off_grabs_the_vertex_and_enter_fills(main_window, qtbot):
    win = main_window
    c = 4 if int(main_window.displayed_mask[32, 37]) != 4 else 1
    mouse = _ready(win, qtbot, c)
    corners = [(10, 10), (40, 10), (40, 35), (10, 35)]
    for p in corners:
        mouse.click(mouse.at(p))
    view_range = win.views.overlay_view.viewRange()
    off = GRAB_PX * 0.6  # screen pixels: inside the reach whatever the zoom
    mouse.drag([mouse.at((40, 35), off, -off / 2), mouse.at((33, 28)), mouse.at((25, 22))])
    assert win.views.overlay_view.viewRange() == view_range
    pts = list(win.tools.polygon.points)
    assert len(pts) == 4 and _near(pts[2], (25, 22)), pts
    assert all(_near(a, b) for a, b in zip(pts[:2] + pts[3:], corners[:2] + corners[3:], strict=True))
    win.actions_by_name["finish_polygon"].trigger()  # Enter
    assert win.displayed_mask[15, 15] == c
    assert win.displayed_mask[32, 37] != c, "the corner the vertex left was still filled"
    _same_as_filled(win, pts, c)


def test_a_drag_away_from_the_vertices_moves_nothing_and_a_click_there_adds_one(main_window, qtbot):
    win = main_window
    mouse = _ready(win, qtbot, 2)
    for p in [(10, 10), (40, 10), (40, 35)]:
        mouse.click(mouse.at(p))
    pts = list(win.tools.polygon.points)
    view_range = win.views.overlay_view.viewRange()
    mouse.drag([mouse.at((25, 30)), mouse.at((30, 40)), mouse.at((35, 44))])
    assert win.tools.polygon.points == pts  # not moved, nothing added
    assert win.views.overlay_view.viewRange() == view_range, "a polygon drag panned the view"
    mouse.click(mouse.at((40, 35), 3 * GRAB_PX, 0))  # beyond the reach: a new vertex
    assert len(win.tools.polygon.points) == 4
    win.actions_by_name["polygon_back"].trigger()
    assert win.tools.polygon.points == pts


def test_the_hovered_vertex_is_highlighted_and_the_reach_follows_the_zoom(main_window, qtbot):
    win = main_window
    mouse = _ready(win, qtbot, 2)
    for p in [(10, 10), (40, 10), (40, 35)]:
        mouse.click(mouse.at(p))
    vb = win.views.overlay_view
    mouse.move(mouse.at((40, 10), 2, 2), NONE)
    assert win.tools.polygon.hot == 1
    assert vb.cursor().shape() == QtCore.Qt.CursorShape.SizeAllCursor
    mouse.move(mouse.at((25, 25)), NONE)
    assert win.tools.polygon.hot is None
    assert vb.cursor().shape() != QtCore.Qt.CursorShape.SizeAllCursor
    fitted = win.tools.polygon.reach()
    win.actions_by_name["zoom_in"].trigger()
    win.actions_by_name["zoom_in"].trigger()
    QtWidgets.QApplication.processEvents()
    assert win.tools.polygon.reach() < 0.7 * fitted  # the same screen pixels are fewer image pixels
    win.actions_by_name["cancel_tool"].trigger()  # Esc drops the outline and its highlight
    assert win.tools.polygon.points == [] and win.tools.polygon.hot is None
