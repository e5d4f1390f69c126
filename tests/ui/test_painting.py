"""Painting with the real mouse path: press / move / release on the overlay view, then undo."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
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


def test_backspace_takes_back_the_last_polygon_vertex(main_window):
    win = main_window
    win.tools.set_class(2)
    win.tools.set_tool("polygon")
    before = win.displayed_mask.copy()
    for p in [(20.0, 20.0), (40.0, 20.0), (40.0, 40.0), (2.0, 46.0)]:  # the last click is a slip
        win.tools._click(_Click(), p)
    win.actions_by_name["polygon_back"].trigger()
    assert win.actions_by_name["polygon_back"].shortcut().toString() == "Backspace"
    win.actions_by_name["finish_polygon"].trigger()
    assert win.displayed_mask[25, 35] == 2  # inside the triangle of the first three clicks
    np.testing.assert_array_equal(win.displayed_mask[40:, :12], before[40:, :12])  # the slip's reach


def test_shift_f_sets_the_whole_frame_to_the_picked_class_undoably(main_window):
    win = main_window
    before = win.displayed_mask.copy()
    win.tools.set_class(0)
    win.actions_by_name["fill_frame"].trigger()
    assert (win.displayed_mask == 0).all()  # corners and edges included
    assert win.session.origin(0) is Origin.CORRECTED
    win.actions_by_name["undo"].trigger()
    np.testing.assert_array_equal(win.displayed_mask, before)


def test_unlabelled_is_a_paint_class_for_every_tool(main_window):
    """Shift+I (or the legend's unlabelled row) picks 255: a polygon or a fill then writes pixels
    training and scoring skip, not only the eraser."""
    win = main_window
    act = win.actions_by_name["class_unlabelled"]
    assert "Shift+I" in [k.toString() for k in act.shortcuts()]
    act.trigger()
    assert win.tools.class_id == 255
    assert win.legend.list.currentRow() == win.legend.list.count() - 1
    win.actions_by_name["fill_frame"].trigger()
    assert (win.displayed_mask == 255).all()
    win.tools.set_class(2)
    win.legend.list.setCurrentRow(win.legend.list.count() - 1)  # a click on the unlabelled row
    assert win.tools.class_id == 255
    win.legend.list.setCurrentRow(1)
    assert win.tools.class_id == 1
    win.tools.set_class(200)  # not a class of the scheme, nor 255: ignored
    assert win.tools.class_id == 1


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
    c = int(win.displayed_mask[6, 8]) % (win.scheme.num_classes - 1) + 1  # not 0: background is hidden
    win.tools.set_class(c)
    drag(win, [(5, 5), (8, 6), (11, 7)])
    h, w = win.displayed_mask.shape
    assert rects and all(r is not None and r.width() * r.height() < h * w / 4 for r in rects)
    # what the item draws matches the mask through the scheme's LUT
    lut = win.scheme.lut()
    np.testing.assert_array_equal(item.rgba()[6, 8, :3], lut[c, :3])
    assert item.rgba()[6, 8, 3] == 255


def _click_at(win, p, button=QtCore.Qt.MouseButton.LeftButton):
    """Press and release `button` on image pixel p of the overlay view (no move: a click)."""
    gv, vb = win.views.overlay_widget, win.views.overlay_view
    pos = gv.mapFromScene(vb.mapViewToScene(QtCore.QPointF(p[0] + 0.5, p[1] + 0.5)))
    _send(gv.viewport(), QtCore.QEvent.Type.MouseButtonPress, pos, button, button)
    _send(gv.viewport(), QtCore.QEvent.Type.MouseButtonRelease, pos, QtCore.Qt.MouseButton.NoButton, button)
    QtWidgets.QApplication.processEvents()


def test_stroke_before_the_prediction_arrives_is_kept(main_window, qtbot):
    """A frame whose prediction is not there yet shows no mask; a stroke on it must paint, not pan,
    and the prediction arriving afterwards must not replace the corrected labels."""
    from csknet_studio.core.project import ProjectStore

    win = main_window
    s = win.session
    win.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    win.actions_by_name["tool_brush"].trigger()
    win.tools.set_class(4)
    win.set_frame(3)  # never shown: the worker has just been asked, nothing can arrive until events run
    assert win.current_prediction is None and s.origin(3) is Origin.EMPTY and win.displayed_mask is None
    view_range = win.views.overlay_view.viewRange()
    drag(win, [(10, 20), (14, 20), (20, 21), (30, 22), (40, 22)])
    assert win.views.overlay_view.viewRange() == view_range, "the drag panned the views instead of painting"
    lab = s.labels(3).copy()
    assert s.origin(3) is Origin.CORRECTED
    assert (lab[21, 16:36] == 4).all(), "the stroke was lost"
    assert (lab[:10] == 255).all()  # painted on unlabelled labels: no prediction to start from
    assert 3 in ProjectStore(s.project_path).load().corrected and not s.dirty  # autosaved
    np.testing.assert_array_equal(win.displayed_mask, lab)
    qtbot.waitUntil(lambda: win.current_prediction is not None, timeout=30000)
    assert s.prediction(3) is not None
    np.testing.assert_array_equal(s.labels(3), lab)  # the late prediction did not overwrite it
    np.testing.assert_array_equal(win.displayed_mask, lab)
    assert s.origin(3) is Origin.CORRECTED and win.timeline.strip.states[3] == "corrected"

    win.set_frame(5)  # a single click (a dab) before the prediction is kept too
    assert win.current_prediction is None and s.origin(5) is Origin.EMPTY
    _click_at(win, (30, 30))
    assert s.origin(5) is Origin.CORRECTED and s.labels(5)[30, 30] == 4


def test_with_the_setting_on_a_late_prediction_fills_what_the_stroke_left_unlabelled(main_window, qtbot):
    win = main_window
    s = win.session
    win.views.reset_zoom()
    win.actions_by_name["paint_start_prediction"].trigger()
    assert win.settings.value("edit/paint_start") == "prediction"  # kept for the next launch
    win.actions_by_name["tool_brush"].trigger()
    win.tools.set_class(4)
    win.set_frame(4)
    assert win.current_prediction is None
    drag(win, [(10, 20), (30, 22)])
    qtbot.waitUntil(lambda: win.current_prediction is not None, timeout=30000)
    lab = s.labels(4)
    assert lab[21, 20] == 4  # the stroke stays
    np.testing.assert_array_equal(lab[:10], win.current_prediction.labels[:10])  # the rest is the model's
    np.testing.assert_array_equal(win.displayed_mask, lab)
    win.tools.undo()  # the fill is its own step: undo leaves the stroke alone
    assert s.labels(4)[21, 20] == 4 and s.labels(4)[0, 0] == 255
    win.actions_by_name["paint_start_prediction"].trigger()
    assert win.settings.value("edit/paint_start") == "empty"


def test_view_context_menu_offers_only_reset_zoom(main_window):
    from csknet_studio.ui.image_views import ImageViewBox

    win = main_window
    for vb in win.views.views:
        assert isinstance(vb, ImageViewBox) and vb.menu is None  # no pyqtgraph axis / mouse-mode menu
        assert [a.text() for a in vb.context_menu.actions()] == ["Reset zoom"]
    image_panes = [win.panels.compare.graphics, *win.panels.internals.findChildren(pg.GraphicsLayoutWidget)]
    boxes = [it for w in image_panes for it in w.scene().items() if isinstance(it, pg.ViewBox)]
    assert sum(isinstance(vb, ImageViewBox) for vb in boxes) >= 3  # compare, gate and feature views
    assert not any(vb.menuEnabled() for vb in boxes)  # colour bars included
    win.actions_by_name["tool_brush"].trigger()
    before = win.displayed_mask.copy()
    menu = win.views.overlay_view.context_menu
    _click_at(win, (20, 20), QtCore.Qt.MouseButton.RightButton)
    assert menu.isVisible(), "right-click did not open the view's menu"
    menu.close()
    np.testing.assert_array_equal(win.displayed_mask, before)  # a right-click never paints
    win.views.overlay_view.setRange(QtCore.QRectF(0, 0, 10, 10), padding=0.0)
    win.views.overlay_view.reset_action.trigger()
    (x0, x1), _ = win.views.overlay_view.viewRange()
    assert x1 - x0 >= 63


def test_stroke_under_way_survives_a_frame_change_and_an_edit_from_elsewhere(main_window):
    win = main_window
    s = win.session
    win.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    win.actions_by_name["tool_brush"].trigger()
    win.tools.set_class(4)
    gv, vb = win.views.overlay_widget, win.views.overlay_view
    vp = gv.viewport()

    def at(p):
        return gv.mapFromScene(vb.mapViewToScene(QtCore.QPointF(p[0] + 0.5, p[1] + 0.5)))

    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton

    def move(p):  # a mouse moves at most 100 times a second: pyqtgraph drops moves closer than 10 ms
        QtCore.QThread.msleep(12)
        _send(vp, QtCore.QEvent.Type.MouseMove, at(p), left, none)

    _send(vp, QtCore.QEvent.Type.MouseButtonPress, at((10, 20)), left)
    move((20, 20))
    s.flood_fill(1, (0, 0), 2)  # an edit on another frame ends the session's stroke mid-drag
    move((30, 20))
    assert (s.labels(0)[20, 12:28] == 4).all(), "the rest of the stroke was dropped"
    frame1 = s.labels(1).copy()
    win.next_frame()  # the frame changes while the button is still down
    move((40, 20))
    _send(vp, QtCore.QEvent.Type.MouseButtonRelease, at((40, 20)), none)
    QtWidgets.QApplication.processEvents()
    assert win.current_index == 1 and not s.stroke_active
    assert (s.labels(0)[20, 12:30] == 4).all() and s.origin(0) is Origin.CORRECTED  # kept on frame 0
    np.testing.assert_array_equal(s.labels(1), frame1)  # and nothing painted on the new frame


def test_keyboard_zoom_moves_every_view_and_reset_fits_again(main_window):
    """Ctrl+= / Ctrl+- zoom about the centre (all views together, in image terms); Ctrl+0 fits."""
    win = main_window
    win.views.reset_zoom()
    fitted = win.views.zoom_factor()
    assert win.actions_by_name["zoom_in"] in win.menus["View"].actions()
    assert "Ctrl+=" in [s.toString() for s in win.actions_by_name["zoom_in"].shortcuts()]
    win.actions_by_name["zoom_in"].trigger()
    win.actions_by_name["zoom_in"].trigger()
    zoomed = win.views.zoom_factor()
    assert zoomed < 0.7 * fitted
    h, w = win.current_frame.shape
    for vb in win.views.views:  # the small EO / IR views show the same part of the image
        (x0, x1), (y0, y1) = vb.viewRange()
        assert min((x1 - x0) / w, (y1 - y0) / h) < 0.7 * fitted
        assert abs((x0 + x1) / 2 - w / 2) < 0.05 * w
    win.actions_by_name["zoom_out"].trigger()
    assert zoomed < win.views.zoom_factor() < fitted
    win.actions_by_name["reset_zoom"].trigger()
    assert abs(win.views.zoom_factor() - fitted) < 1e-6


def test_a_stroke_of_many_moves_rebuilds_the_fine_tuning_list_once(main_window):
    win = main_window
    panel = win.panels.finetune
    rebuilt = []
    real = panel.set_frames
    panel.set_frames = lambda *a, **k: (rebuilt.append(a), real(*a, **k))
    win.views.reset_zoom()
    win.actions_by_name["tool_brush"].trigger()
    drag(win, [(5 + i, 20) for i in range(20)])  # the first stroke on this frame: it becomes corrected
    assert len(rebuilt) == 1 and 0 in rebuilt[0][0]
    drag(win, [(5 + i, 30) for i in range(20)])  # already corrected: the list stays as it is
    assert len(rebuilt) == 1
