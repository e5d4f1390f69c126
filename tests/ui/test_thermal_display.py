"""Radiometric IR in the window: °C under the cursor, a fixed °C span from two spin boxes with a
colour bar labelled in °C, the span remembered, and View ▸ IR temperature scale…."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from csknet_studio.core.data.memory import ArraySequence
from csknet_studio.core.radiometry import LinearScale
from csknet_studio.ui.display_maps import thermal_lut
from csknet_studio.ui.thermal import ask_ir_scale

X, Y = 5, 7  # the probed pixel, at 30.00 °C (30315 centikelvin) in every frame


def _radiometric_frames(synthetic_frames):
    eo, ir8 = synthetic_frames()
    ir = (28315 + ir8.astype(np.uint16) * 10).astype(np.uint16)  # 10.00 .. 35.50 °C
    ir[:, Y, X] = 30315
    return eo, ir


def _open(win, qtbot, tmp_path, seq):
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_sequence(seq, project_path=tmp_path / "project")


def _hover(win, x, y):
    """A real mouse-move through the overlay view's scene, at the centre of pixel (x, y)."""
    vb = win.views.overlay_view
    pos = vb.mapViewToScene(QtCore.QPointF(x + 0.5, y + 0.5))
    win.views.overlay_widget.scene().sigMouseMoved.emit(pos)
    return win.status.cursor_label.text()


def _rendered_ir(win, x, y):
    item = win.views.ir_item
    item.render()
    c = item.qimage.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


@pytest.fixture
def radiometric_window(bare_window, qtbot, tmp_path, synthetic_frames):
    eo, ir = _radiometric_frames(synthetic_frames)
    seq = ArraySequence(eo, ir, names=[f"f{i:03d}" for i in range(len(ir))],
                        ir_scale=LinearScale.of_units("centikelvin"))
    _open(bare_window, qtbot, tmp_path, seq)
    return bare_window


def test_hovering_a_pixel_shows_its_temperature(radiometric_window):
    win = radiometric_window
    text = _hover(win, X, Y)
    assert f"x {X} y {Y}" in text and "IR 30315" in text and "30.00 °C" in text
    other = _hover(win, 20, 30)
    expected = int(win.current_frame.ir[30, 20]) * 0.01 - 273.15
    assert f"{expected:.2f} °C" in other
    win.set_frame(3)
    assert "30.00 °C" in _hover(win, X, Y)


def test_span_spin_boxes_change_the_rendered_palette(radiometric_window, qsettings):
    win = radiometric_window
    controls, views = win.controls, win.views
    assert controls.span_lo.isEnabled() and controls.span_hi.isEnabled()
    controls.palette.setCurrentText("white-hot")
    controls.set_span(10.0, 40.0)
    assert views.colour_bar.isVisibleTo(win) and views.colour_bar.labels() == ["40 °C", "25 °C", "10 °C"]
    assert int(views.ir_item.image[Y, X]) == 170  # 30 °C is two thirds up a 10..40 °C span
    assert _rendered_ir(win, X, Y) == tuple(int(v) for v in thermal_lut("white-hot")[170])

    controls.span_lo.setValue(20.0)  # the user's spin box
    assert int(views.ir_item.image[Y, X]) == 128  # now half way up 20..40 °C (127.5, rounded)
    assert _rendered_ir(win, X, Y) == (128, 128, 128)
    assert views.colour_bar.labels() == ["40 °C", "30 °C", "20 °C"]
    controls.palette.setCurrentText("black-hot")
    assert _rendered_ir(win, X, Y) == (127, 127, 127)  # 255 - 128

    controls.span_hi.setValue(15.0)  # below the low end: the low end moves along, never lo >= hi
    assert controls.span == (14.0, 15.0)
    assert int(views.ir_item.image[Y, X]) == 255 and _rendered_ir(win, X, Y) == (0, 0, 0)  # hotter than 15
    qsettings.sync()
    assert float(qsettings.value("view/span_lo")) == 14.0 and float(qsettings.value("view/span_hi")) == 15.0


def test_the_span_is_remembered(bare_window, qsettings):
    bare_window.controls.set_span(-5.0, 55.5)
    from csknet_studio.ui.view_controls import ViewControls

    again = ViewControls()
    again.bind_settings(qsettings)
    assert again.span == (-5.0, 55.5)
    qsettings.setValue("view/palette", "grey")  # the earlier name of white-hot
    third = ViewControls()
    third.bind_settings(qsettings)
    assert third.palette.currentText() == "white-hot"
    for w in (again, third):
        w.deleteLater()


def test_non_radiometric_ir_keeps_levels_until_a_scale_is_set(main_window):
    win = main_window
    assert not win.controls.span_lo.isEnabled() and not win.views.colour_bar.isVisibleTo(win)
    assert "°C" not in _hover(win, X, Y)
    assert ask_ir_scale(win, "0.5,-20")  # the dialog's answer: °C = v * 0.5 - 20
    assert win.sequence.radiometric and win.controls.span_lo.isEnabled()
    v = int(win.current_frame.ir[Y, X])
    assert f"{v * 0.5 - 20:.2f} °C" in _hover(win, X, Y)
    assert not ask_ir_scale(win, "bogus")  # an error dialog, the scale unchanged
    assert win.sequence.radiometric
    assert ask_ir_scale(win, "")  # back to what the files say: nothing here
    assert not win.sequence.radiometric and "°C" not in _hover(win, X, Y)


def test_the_scale_the_user_gives_is_kept_in_the_project(main_window, tmp_path, qtbot):
    from csknet_studio.core.project_settings import stored_ir_scale_text
    from csknet_studio.ui.thermal import project_ir_scale

    win, project = main_window, tmp_path / "project"
    assert ask_ir_scale(win, "0.5,-20")
    assert stored_ir_scale_text(None, project) == "0.5,-20" == project_ir_scale(win)
    assert ask_ir_scale(win, "")  # back to what the files say: forgotten
    assert stored_ir_scale_text(None, project) is None
    win.ir_scale = "centikelvin"  # as `--ir-scale` at launch sets it: kept by the next open
    second = ArraySequence(np.zeros((2, 48, 64, 3), np.uint8), np.full((2, 48, 64), 90, np.uint8))
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_sequence(second, project_path=tmp_path / "second")
    assert stored_ir_scale_text(None, tmp_path / "second") == "centikelvin"
