"""Take region, snap brush and box with real mouse events on the overlay: each changes exactly its
region, is one undo step, and has its key and toolbar button."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core.data.memory import ArraySequence
from csknet_studio.core.edits import Origin, flood_region

H, W = 48, 64
LEFT, NONE = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton


def _send(widget, etype, pos, buttons, button=LEFT, mods=QtCore.Qt.KeyboardModifier.NoModifier):
    ev = QtGui.QMouseEvent(etype, QtCore.QPointF(pos), widget.mapToGlobal(QtCore.QPointF(pos)), button, buttons, mods)
    QtWidgets.QApplication.sendEvent(widget, ev)


def _pos(win, p):
    gv, vb = win.views.overlay_widget, win.views.overlay_view
    return gv.mapFromScene(vb.mapViewToScene(QtCore.QPointF(p[0] + 0.5, p[1] + 0.5)))


def drag(win, points):
    vp = win.views.overlay_widget.viewport()
    _send(vp, QtCore.QEvent.Type.MouseButtonPress, _pos(win, points[0]), LEFT)
    for p in points[1:]:
        _send(vp, QtCore.QEvent.Type.MouseMove, _pos(win, p), LEFT, NONE)
    _send(vp, QtCore.QEvent.Type.MouseButtonRelease, _pos(win, points[-1]), NONE)
    QtWidgets.QApplication.processEvents()


def click(win, p, mods=QtCore.Qt.KeyboardModifier.NoModifier):
    vp = win.views.overlay_widget.viewport()
    _send(vp, QtCore.QEvent.Type.MouseButtonPress, _pos(win, p), LEFT, mods=mods)
    _send(vp, QtCore.QEvent.Type.MouseButtonRelease, _pos(win, p), NONE, mods=mods)
    QtWidgets.QApplication.processEvents()


@pytest.fixture
def night_window(bare_window, tmp_path, qtbot):
    """One frame where EO is flat noise and only IR sees things: a hot right half (from column 40)
    and a warm blob on the cold left half."""
    rng = np.random.default_rng(0)
    eo = (120 + rng.integers(0, 8, (1, H, W, 3))).astype(np.uint8)
    ir = np.full((1, H, W), 50, np.uint8)
    ir[0, :, 40:] = 200
    yy, xx = np.mgrid[0:H, 0:W]
    blob = (yy - 24) ** 2 + ((xx - 16) / 0.7) ** 2 < 9**2
    ir[0][blob] = 230
    ir = ir + rng.integers(0, 6, ir.shape).astype(np.uint8)
    seq = ArraySequence(eo, ir, names=["night"])
    with qtbot.waitSignal(bare_window.prediction_ready, timeout=30000):
        bare_window.set_sequence(seq, project_path=tmp_path / "night")
    bare_window.views.reset_zoom()
    QtWidgets.QApplication.processEvents()
    bare_window.blob = blob
    yield bare_window
    seq.close()


def test_tools_have_keys_and_toolbar_buttons(main_window):
    win = main_window
    bar = win.findChild(QtWidgets.QToolBar, "toolbar_main")
    for name, key in (("take", "W"), ("snap", "S"), ("box", "R")):
        act = win.actions_by_name[f"tool_{name}"]
        assert act.shortcut().toString() == key and act in bar.actions()
        act.trigger()
        assert win.tools.tool == name


def test_take_region_click_takes_only_the_component_and_shift_assigns_the_class(main_window):
    win = main_window
    s = win.session
    pred = s.prediction(0).copy()
    s.fill_polygon(0, [(0, 0), (W - 1, 0), (W - 1, H - 1), (0, H - 1)], 255)  # corrected: all unlabelled
    base = s.labels(0).copy()
    win.actions_by_name["tool_take"].trigger()
    win.tools.set_class(3)
    for seed in ((x, y) for y in range(4, H, 8) for x in range(4, W, 8)):  # a component, not the frame
        rect, sel = flood_region(pred, seed)
        component = np.zeros((H, W), bool)
        component[rect.slices] = sel
        if component.sum() < H * W // 2 and pred[seed[1], seed[0]] != 3:
            break
    assert component.sum() < H * W // 2, "the prediction has no connected component to take"
    click(win, seed)
    lab = s.labels(0)
    np.testing.assert_array_equal(lab != base, component)  # exactly the connected component
    assert (lab[component] == pred[seed[1], seed[0]]).all()  # with its predicted class
    np.testing.assert_array_equal(win.displayed_mask, lab)
    win.actions_by_name["undo"].trigger()
    np.testing.assert_array_equal(s.labels(0), base)  # one undo step
    click(win, seed, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert (s.labels(0)[component] == 3).all() and ((s.labels(0) != base) == component).all()
    win.actions_by_name["undo"].trigger()
    np.testing.assert_array_equal(s.labels(0), base)


def test_snap_brush_stroke_stops_at_an_edge_only_ir_sees(night_window, qtbot):
    win = night_window
    s = win.session
    s.fill_polygon(0, [(0, 0), (W - 1, 0), (W - 1, H - 1), (0, H - 1)], 0)  # start from class 0 everywhere
    win.actions_by_name["tool_snap"].trigger()
    win.tools.set_class(5)
    win.state.set_radius(2.0)
    win.tools.superpixels.clear()  # the stroke is released before its superpixels exist: it waits
    drag(win, [(32, 8), (34, 14), (36, 20)])  # brush reaches column 38: near the edge at 40
    qtbot.waitUntil(lambda: (s.labels(0) == 5).any(), timeout=30000)  # after the worker's superpixels
    got = s.labels(0) == 5
    assert not got[:, 40:].any(), "the snapped stroke crossed the IR-only edge"
    assert got[8:21, 39].all(), "the stroke did not snap out to the edge"
    seg = win.tools.superpixels.get(0)
    ids = np.unique(seg[got])
    np.testing.assert_array_equal(got, np.isin(seg, ids))  # whole superpixels and nothing else
    win.actions_by_name["undo"].trigger()
    assert not (s.labels(0) == 5).any() and s.origin(0) is Origin.CORRECTED


def test_box_takes_the_warm_object_in_the_box_and_nothing_outside(night_window):
    win = night_window
    s = win.session
    s.fill_polygon(0, [(0, 0), (W - 1, 0), (W - 1, H - 1), (0, H - 1)], 0)
    before = s.labels(0).copy()
    win.actions_by_name["tool_box"].trigger()
    win.tools.set_class(6)
    drag(win, [(3, 11), (12, 20), (29, 37)])
    got = s.labels(0) == 6
    inside = np.zeros((H, W), bool)
    inside[11:38, 3:30] = True
    assert got.any() and not (got & ~inside).any()
    np.testing.assert_array_equal(s.labels(0)[~got], before[~got])
    iou = (got & win.blob).sum() / (got | win.blob).sum()
    assert iou > 0.85, f"IoU {iou:.2f} with the warm object"
    win.actions_by_name["undo"].trigger()
    np.testing.assert_array_equal(s.labels(0), before)
