"""The window as a new user first drives it: views fitted, 1-based numbers, keys that match the
legend, labels that do not darken the picture, feedback, files, layout and a clean exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets


def test_window_dropped_without_close_exits_cleanly(tmp_path):
    """A window built from a script, never closed: the interpreter exits with 0, not an abort."""
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from PySide6 import QtCore, QtWidgets
        app = QtWidgets.QApplication([])
        from csknet_studio.core.data.memory import ArraySequence
        from csknet_studio.core.model import create_model
        from csknet_studio.ui.main_window import MainWindow
        settings = QtCore.QSettings({str(tmp_path / "s.ini")!r}, QtCore.QSettings.Format.IniFormat)
        win = MainWindow(settings=settings, device="cpu")
        win.set_model(create_model("csknet-tiny"), None, torch.device("cpu"))
        eo = np.zeros((4, 32, 48, 3), np.uint8); ir = np.zeros((4, 32, 48), np.uint8)
        win.set_sequence(ArraySequence(eo, ir), project_path={str(tmp_path / "p")!r})
        win.show()
        app.processEvents()
        print("built")
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    assert "built" in r.stdout, r.stderr
    assert r.returncode == 0, r.stderr
    assert "QThread: Destroyed" not in r.stderr


def _covers_image(vb, w: int, h: int) -> bool:
    """The view shows the whole frame and not much more (aspect kept)."""
    (x0, x1), (y0, y1) = vb.viewRange()
    return x0 <= 0.5 and y0 <= 0.5 and x1 >= w - 0.5 and y1 >= h - 0.5 and min(x1 - x0 - w, y1 - y0 - h) < 2


def test_compare_modes_opens_with_the_images_fitted(main_window, qtbot):
    win = main_window
    compare = win.panels.compare
    win.docks["Compare modes"].show()
    qtbot.waitUntil(lambda: compare.result is not None, timeout=30000)
    qtbot.waitUntil(lambda: all(_covers_image(vb, 64, 48) for vb in compare.views), timeout=3000)


# --- numbering, keys, navigation --------------------------------------------------------------
def test_frame_numbers_shown_to_the_user_are_one_based(main_window, qtbot):
    win = main_window
    win.session.paint_stroke(0, [(5, 5), (20, 5)], 2, 3)
    rows = [win.panels.finetune.frame_list.item(r).text() for r in range(win.panels.finetune.frame_list.count())]
    assert rows == ["1  f000"]
    assert win.frame_list.item(0).text().split() == ["1", "f000"]
    # U names the frame as the counter does
    win.panels.tracker.record(4, win.mode.value, np.full((4, 4), 2.0, np.float32), win.worker.weights_version)
    messages = []
    win.status.messageChanged.connect(messages.append)
    assert win.panels.next_uncertain() == 4
    assert win.timeline.goto.value() == 5 and "frame 5/8" in win.status.frame_label.text()
    assert any(m.startswith("frame 5:") for m in messages), messages


def test_class_keys_match_the_legend_ids_and_the_sheet_names_them(main_window):
    win = main_window
    for cls in (0, 2, 8):
        act = win.actions_by_name[f"class_{cls}"]
        assert act.shortcut().toString() == f"Shift+{cls}"
        act.trigger()
        assert win.tools.class_id == cls
        assert win.legend.list.item(cls).text().split()[0] == str(cls)
    assert win.legend.list.item(2).text() == "2  person"
    assert not win.actions_by_name["class_9"].isVisible()  # MFNet has 9 classes, 0..8
    from csknet_studio.ui.shortcuts import ShortcutsDialog

    dlg = ShortcutsDialog(win)
    entries = dlg.entries()
    picks = [e for e in entries if e.keys == "Shift+2"]
    assert [e.description for e in picks] == ["Pick 2 person"]
    groups = [e.group for e in entries]
    order = [g for i, g in enumerate(groups) if g not in groups[:i]]
    assert groups == sorted(groups, key=order.index)  # each group in one block
    assert order[:3] == ["File", "Edit", "View"] and order[-1] == "Mouse"
    dlg.deleteLater()


def test_go_to_frame_box_and_ctrl_g(main_window, qtbot):
    win = main_window
    box = win.timeline.goto
    assert (box.minimum(), box.maximum(), box.value()) == (1, 8, 1)
    win.actions_by_name["goto"].trigger()
    assert box.hasFocus() or not win.isActiveWindow()
    box.setValue(6)
    assert win.current_index == 5
    win.set_frame(2)
    assert box.value() == 3


def test_clicking_the_timeline_groove_jumps_to_that_frame(bare_window, qtbot, tmp_path):
    from csknet_studio.core.data.memory import ArraySequence

    win = bare_window
    eo = np.zeros((120, 16, 16, 3), np.uint8)
    ir = np.zeros((120, 16, 16), np.uint8)
    win.set_sequence(ArraySequence(eo, ir), project_path=tmp_path / "p")
    slider = win.timeline.slider
    win.resize(1600, 700)
    qtbot.waitUntil(lambda: slider.width() > 200)
    opt = QtWidgets.QStyleOptionSlider()
    slider.initStyleOption(opt)
    groove = slider.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                           QtWidgets.QStyle.SubControl.SC_SliderGroove, slider)
    x = groove.x() + int(groove.width() * 0.75)
    qtbot.mouseClick(slider, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x, slider.height() // 2))
    assert abs(win.current_index - 89) <= 3, win.current_index  # not 10 (one page step)


# --- seeing the image ---------------------------------------------------------------------------
def test_background_and_unlabelled_are_transparent_until_shown(main_window):
    win = main_window
    lut = win.views.label_item._lut
    assert lut[0, 3] == 0 and lut[255, 3] == 0 and lut[1, 3] == 255
    legend = win.legend
    last = legend.list.item(legend.list.count() - 1)
    assert "unlabelled" in last.text()
    # MFNet's class 0 is called "unlabeled": the legend names it background, so only one row
    # reads "unlabelled", the pixels nobody labelled.
    assert legend.list.item(0).text() == "0  background"
    assert [r for r in range(legend.list.count()) if "unlabel" in legend.list.item(r).text()] == [
        legend.list.count() - 1]
    win.legend.set_visible(255, True)
    assert tuple(win.views.label_item._lut[255]) != (0, 0, 0, 0)
    win.legend.set_visible(0, True)
    assert win.views.label_item._lut[0, 3] == 255
    assert win.views.label_item._lut[255, 3] == 255  # ticking shows it; picking it is test_painting's


def test_contour_mode_draws_only_class_boundaries(main_window):
    win = main_window
    win.legend.set_visible(0, True)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 10:40] = 1
    win.views.show_labels(mask)
    filled = win.views.label_item.rgba()[..., 3]
    assert filled[20, 25] > 0
    win.controls.contours.setChecked(True)
    drawn = win.views.label_item.rgba()[..., 3]
    assert drawn[20, 25] == 0 and drawn[0, 0] == 0  # inside a region and far from any edge
    assert drawn[10, 25] > 0 and drawn[9, 25] > 0 and drawn[20, 10] > 0  # both sides of the edge
    # a repaint after an edit keeps contour mode, edges of the changed area included
    mask[40:45, 50:60] = 3
    win.views.label_item.repaint_rect(40, 45, 50, 60)
    drawn = win.views.label_item.rgba()[..., 3]
    assert drawn[40, 55] > 0 and drawn[42, 55] == 0 and drawn[39, 55] > 0
    win.controls.contours.setChecked(False)
    assert win.views.label_item.rgba()[42, 55, 3] > 0


# --- feedback -----------------------------------------------------------------------------------
def test_playback_shows_each_frames_labels(main_window, qtbot):
    win = main_window
    shown: set[int] = set()
    win.prediction_ready.connect(lambda _p: shown.add(win.current_index))
    win.timeline.fps = 1000.0  # faster than the model: frames must wait for their labels
    with qtbot.waitSignal(win.timeline.playing_changed, timeout=60000,
                          check_params_cb=lambda on: not on):
        win.actions_by_name["play"].trigger()
    assert win.current_index == 7
    assert shown >= set(range(1, 8))


def test_status_names_the_layout_on_open(bare_window, qtbot, tmp_path):
    import cv2

    root = tmp_path / "seq"
    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.zeros((16, 16, 3), np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), np.zeros((16, 16), np.uint8))
    assert bare_window.open_sequence(root)
    assert "paired EO/IR folders layout, 2 frames" in bare_window.status.currentMessage()


def test_pixel_readout_follows_an_edit_without_a_mouse_move(main_window):
    win = main_window
    win._on_hover(12, 12)
    win.session.paint_stroke(0, [(12, 12)], 3, 3)
    assert "class: bike" in win.status.cursor_label.text()
    win.session.erase_stroke(0, [(12, 12)], 3)
    assert "class: unlabelled" in win.status.cursor_label.text()


def test_open_error_names_the_path_once(main_window, qtbot, tmp_path):
    missing = tmp_path / "nowhere"
    with qtbot.waitSignal(main_window.error_shown, timeout=5000) as b:
        assert main_window.open_sequence(missing) is False
    assert b.args[0].count(str(missing)) == 1, b.args[0]


def test_colour_mapped_thermal_opens_with_one_warning(bare_window, qtbot, tmp_path, write_colour_mapped_folder):
    seq = write_colour_mapped_folder(tmp_path / "jet")
    shown: list[str] = []
    bare_window.error_shown.connect(shown.append)
    assert bare_window.open_sequence(seq) is True  # opened all the same, as its grey conversion
    assert len(shown) == 1 and "colour-mapped" in shown[0] and str(seq) in shown[0]
    bare_window.set_frame(1)
    assert len(shown) == 1  # one message, not one per frame


def test_truncated_png_prints_nothing_from_opencv(tmp_path):
    import cv2

    root = tmp_path / "seq"
    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.full((32, 32, 3), 90, np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), np.full((32, 32), 90, np.uint8))
    data = (root / "eo" / "001.png").read_bytes()
    (root / "eo" / "001.png").write_bytes(data[: len(data) // 2])
    script = ("from csknet_studio.core.data import open_sequence\n"
              f"f = open_sequence({str(root)!r})[1]\nprint(f.bad, f.error)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    assert "WARN" not in r.stderr and "buffer is incomplete" not in r.stderr
    assert r.stdout.startswith("True") and "001.png" in r.stdout


# --- files --------------------------------------------------------------------------------------
def _two_frame_folder(root):
    import cv2

    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.full((16, 16, 3), 60 + i, np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), np.full((16, 16), 90 + i, np.uint8))
    return root


def test_work_on_a_cached_sequence_goes_to_the_data_folder(monkeypatch, tmp_path):
    from csknet_studio.core.demo import default_demo_dir
    from csknet_studio.core.project import default_project_path
    from csknet_studio.ui.export_dialog import default_export_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    demo = default_demo_dir()
    assert demo.is_relative_to(tmp_path / "cache")
    assert default_project_path(demo) == tmp_path / "data" / "csknet-studio" / "projects" / f"{demo.name}.csknet"

    class _Session:
        source = demo

    assert default_export_path(_Session(), "hdf5").parent == tmp_path / "data" / "csknet-studio" / "exports"
    other = tmp_path / "elsewhere" / "seq"
    other.mkdir(parents=True)
    assert default_project_path(other) == other.with_name("seq.csknet")  # ordinary folders: beside


def test_opening_a_project_folder_opens_its_sequence(bare_window, qtbot, tmp_path):
    win = bare_window
    seq = _two_frame_folder(tmp_path / "seq")
    assert win.open_sequence(seq)
    win.session.paint_stroke(1, [(4, 4)], 2, 2)  # autosaved
    project = win.session.project_path
    assert project == tmp_path / "seq.csknet"
    win._close_session()
    assert win.open_sequence(project)
    assert win.session.project_path == project and win.session.corrected_frames() == [1]
    assert len(win.sequence) == 2


def test_display_settings_come_back_after_a_relaunch(bare_window, qsettings):
    from csknet_studio.ui.main_window import MainWindow

    c = bare_window.controls
    c.base.setCurrentText("IR")
    c.palette.setCurrentText("ironbow")
    c.opacity.setValue(30)
    c.contours.setChecked(True)
    bare_window.close()
    win2 = MainWindow(settings=qsettings, device="cpu")
    win2.confirm_close = lambda: True
    try:
        c2 = win2.controls
        assert (c2.base.currentText(), c2.palette.currentText(), c2.opacity.value()) == ("IR", "ironbow", 30)
        assert c2.contours.isChecked() and win2.views.label_item.contours
        assert win2.views.opacity == pytest.approx(0.30)
    finally:
        win2.close()
        win2.deleteLater()


# --- layout -------------------------------------------------------------------------------------
def test_window_can_be_made_1024_px_wide(main_window, qtbot):
    win = main_window
    assert win.minimumSizeHint().width() <= 1024, win.minimumSizeHint()
    win.resize(1024, 700)
    qtbot.waitUntil(lambda: win.width() <= 1024, timeout=3000)


def test_window_opens_inside_a_laptop_screen(qapp, qsettings):
    """On a 1366x768 screen the first window fits (1500x900 hid the right-hand docks); on a large
    one it keeps its full size. The tests' own offscreen screen (800x800) is smaller still."""
    from csknet_studio.ui.main_window import MainWindow
    from csknet_studio.ui.screen_fit import fitted_size

    laptop = fitted_size(1500, 900, QtCore.QRect(0, 0, 1366, 768), share=0.96)
    assert laptop.width() <= 1366 and laptop.height() <= 768 - 30, laptop
    assert fitted_size(1500, 900, QtCore.QRect(0, 0, 2560, 1440), share=0.96) == QtCore.QSize(1500, 900)
    win = MainWindow(settings=qsettings, device="cpu")
    try:
        avail = win.screen().availableGeometry()
        assert win.height() <= avail.height(), (win.size(), avail)
        assert win.width() <= max(avail.width(), win.minimumSizeHint().width()), (win.size(), avail)
    finally:
        win.confirm_close = lambda: True
        win.close()
        win.deleteLater()


@pytest.mark.parametrize("width", [1366, 1024])
def test_every_control_and_tool_stays_on_screen_on_a_narrow_window(main_window, qtbot, width):
    """The view strip wraps onto a second row and the toolbar drops the names beside its icons:
    nothing folds behind an extension button, the °C span included."""
    win = main_window
    win.resize(width, 740)
    qtbot.waitUntil(lambda: win.width() <= width, timeout=3000)
    qtbot.wait(50)
    strip = win.controls
    for w in (strip.opacity, strip.base, strip.contours, strip.palette, strip.span_lo, strip.span_hi, strip.source):
        assert w.isVisible(), w
        right = w.mapTo(strip, QtCore.QPoint(w.width(), 0)).x()
        assert right <= strip.width(), (w, right, strip.width())
    tb = win.findChild(QtWidgets.QToolBar, "toolbar_main")
    shown = [a for a in tb.actions() if not a.isSeparator() and tb.widgetForAction(a) is not None]
    assert shown and all(tb.widgetForAction(a).isVisible() for a in shown)
    assert tb.toolButtonStyle() == QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly
    assert all(a.toolTip() for a in shown)  # the names the icons lost are in the tooltips
    win.resize(1900, 900)  # room again: the names come back
    qtbot.waitUntil(lambda: tb.toolButtonStyle() == QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
                    timeout=3000)


def test_combo_boxes_fit_their_longest_entry(main_window):
    for combo in (main_window.controls.base, main_window.controls.source):
        fm = combo.fontMetrics()
        widest = max(fm.horizontalAdvance(combo.itemText(i)) for i in range(combo.count()))
        assert combo.sizeAdjustPolicy() == QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents
        assert combo.sizeHint().width() > widest
        assert combo.view().minimumWidth() > widest


def test_edit_actions_wait_for_a_sequence(bare_window, tiny_sequence, tmp_path):
    acts = bare_window.actions_by_name
    names = ("undo", "redo", "save", "accept", "copy_prev")
    assert not any(acts[n].isEnabled() for n in names)
    bare_window.set_sequence(tiny_sequence, project_path=tmp_path / "p")
    assert all(acts[n].isEnabled() for n in ("save", "accept", "copy_prev"))
    assert not acts["undo"].isEnabled()


def test_loss_axis_has_no_si_prefix(main_window):
    axis = main_window.panels.finetune.loss_plot.getAxis("left")
    assert not axis.autoSIPrefix


def test_quit_is_last_in_file_and_help_has_about(main_window, qtbot):
    win = main_window
    file_actions = [a for a in win.menus["File"].actions() if not a.isSeparator()]
    assert file_actions[-1] is win.actions_by_name["quit"]
    assert win.panels.export_action in file_actions
    win.actions_by_name["about"].trigger()
    boxes = [w for w in QtWidgets.QApplication.topLevelWidgets()
             if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]
    assert any("CSKNet Studio" in b.text() and "model: " in b.text() and "Licence" in b.text() for b in boxes)


def test_undo_redo_and_accept_come_early_in_the_toolbar(main_window):
    """On a 1366 px screen the toolbar's end folds behind its extension button: keep these visible."""
    from PySide6 import QtWidgets as W

    tb = main_window.findChild(W.QToolBar, "toolbar_main")
    names = {a: n for n, a in main_window.actions_by_name.items()}
    order = [names.get(a) for a in tb.actions() if not a.isSeparator()]
    assert order.index("accept") < order.index("mode_both") < order.index("tool_pan")
