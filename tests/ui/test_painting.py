"""Painting with the real mouse path: press / move / release on the overlay view, then undo."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core.session import Origin


def _send(widget, etype, pos, buttons, button=QtCore.Qt.MouseButton.LeftButton):
    local = QtCore.QPointF(pos)
    ev = QtGui.QMouseEvent(etype, local, widget.mapToGlobal(local), button, buttons,
                           QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, ev)


def drag(win, points):
    """Drag the left button through image pixels `points` [(x, y), ...] on the overlay view."""
    gv, vb = win.views.overlay_widget, win.views.overlay_view
    vp = gv.viewport()

    def to_widget(p):
        return gv.mapFromScene(vb.mapViewToScene(QtCore.QPointF(p[0] + 0.5, p[1] + 0.5)))

    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    _send(vp, QtCore.QEvent.Type.MouseButtonPress, to_widget(points[0]), left)
    for p in points[1:]:
        _send(vp, QtCore.QEvent.Type.MouseMove, to_widget(p), left, none)
    _send(vp, QtCore.QEvent.Type.MouseButtonRelease, to_widget(points[-1]), none)
    QtWidgets.QApplication.processEvents()


def test_brush_stroke_and_undo_restore_mask_exactly(main_window):
    win = main_window
    win.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    before = win.displayed_mask.copy()
    win.actions_by_name["tool_brush"].trigger()
    win.tools.set_class(4)
    drag(win, [(10, 20), (14, 20), (20, 21), (30, 22), (40, 22)])
    after = win.displayed_mask.copy()
    assert (after[21, 16:36] == 4).all(), "stroke did not reach the displayed mask"
    assert win.session.origin(0) is Origin.CORRECTED
    np.testing.assert_array_equal(after, win.session.labels(0))
    assert win.timeline.strip.states[0] == "corrected"
    win.actions_by_name["undo"].trigger()  # Ctrl+Z
    np.testing.assert_array_equal(win.displayed_mask, before)
    assert win.session.origin(0) is not Origin.CORRECTED
    assert win.tools.tool == "brush"  # undo never changes the active tool
    win.actions_by_name["redo"].trigger()
    np.testing.assert_array_equal(win.displayed_mask, after)


def test_pan_tool_does_not_paint(main_window):
    win = main_window
    before = win.displayed_mask.copy()
    win.actions_by_name["tool_pan"].trigger()
    drag(win, [(10, 20), (30, 22)])
    np.testing.assert_array_equal(win.displayed_mask, before)


def test_eraser_fill_polygon_accept_copy(main_window, qtbot):
    win = main_window
    s = win.session
    win.tools.set_class(2)
    win.tools.set_tool("fill")
    win.tools._click(_Click(), (5.0, 5.0))
    assert win.displayed_mask[5, 5] == 2
    win.tools.set_tool("eraser")
    drag(win, [(5, 5), (9, 5)])
    assert win.displayed_mask[5, 6] == 255
    win.tools.set_tool("polygon")
    for p in [(20.0, 20.0), (40.0, 20.0), (40.0, 40.0)]:
        win.tools._click(_Click(), p)
    win.actions_by_name["finish_polygon"].trigger()
    assert win.displayed_mask[25, 35] == 2
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_frame(1)
    win.actions_by_name["copy_prev"].trigger()
    np.testing.assert_array_equal(win.displayed_mask, s.labels(0))
    win.set_frame(0)
    win.tools.set_tool("brush")
    assert s.origin(0) is Origin.CORRECTED


def test_brush_size_keys(main_window):
    win = main_window
    r = win.tools.radius
    win.actions_by_name["brush_bigger"].trigger()
    assert win.tools.radius > r
    win.actions_by_name["brush_smaller"].trigger()
    win.actions_by_name["brush_smaller"].trigger()
    assert win.tools.radius < r


class _Click:
    def double(self) -> bool:
        return False


def test_stroke_repaints_only_dirty_rectangles(main_window):
    win = main_window
    item = win.views.label_item
    rects = []
    real_update = item.update

    def spy(*args):
        rects.append(args[0] if args else None)
        real_update(*args)

    item.update = spy
    win.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    win.actions_by_name["tool_brush"].trigger()
    c = (int(win.displayed_mask[6, 8]) + 1) % win.scheme.num_classes
    win.tools.set_class(c)
    drag(win, [(5, 5), (8, 6), (11, 7)])
    h, w = win.displayed_mask.shape
    assert rects and all(r is not None and r.width() * r.height() < h * w / 4 for r in rects)
    # what the item draws matches the mask through the scheme's LUT
    lut = win.scheme.lut()
    np.testing.assert_array_equal(item.rgba()[6, 8, :3], lut[c, :3])
    assert item.rgba()[6, 8, 3] == 255
