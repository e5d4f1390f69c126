"""The main window driven as a user would: results, modes, frames, errors, settings."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from csknet_studio.core.modes import Mode


def test_first_frame_is_segmented_and_shown(main_window):
    win = main_window
    pred = win.current_prediction
    assert pred is not None and pred.labels.shape == (48, 64)
    assert win.current_index == 0 and win.mode is Mode.BOTH
    np.testing.assert_array_equal(win.displayed_mask, pred.labels)
    np.testing.assert_array_equal(win.views.label_item.mask, pred.labels)
    assert win.timeline.strip.states[0] == "predicted"
    assert "ms" in win.status.ms_label.text() and win.status.ms_label.text() != "-- ms"


def test_three_modes_switch_the_overlay(main_window, qtbot):
    win = main_window
    masks = {Mode.BOTH: win.displayed_mask.copy()}
    drawn = {Mode.BOTH: win.views.label_item.rgba()}
    probs = {Mode.BOTH: win.current_prediction.probs}
    for key, mode in (("2", Mode.IR), ("3", Mode.EO)):
        with qtbot.waitSignal(win.prediction_ready, timeout=30000) as blocker:
            win.actions_by_name[f"mode_{mode.value}"].trigger()  # what keys 1/2/3 trigger
        assert blocker.args[0].mode is mode and win.mode is mode
        assert win.actions_by_name[f"mode_{mode.value}"].shortcut().toString() == key
        masks[mode] = win.displayed_mask.copy()
        drawn[mode] = win.views.label_item.rgba()
        probs[mode] = blocker.args[0].probs
    # the overlay as drawn changes with the mode (EO-only and IR-only blobs disagree)
    assert (drawn[Mode.IR] != drawn[Mode.BOTH]).any() and (drawn[Mode.EO] != drawn[Mode.BOTH]).any()
    # each mode's own network output reaches the overlay
    assert not np.array_equal(probs[Mode.IR], probs[Mode.BOTH])
    assert not np.array_equal(probs[Mode.EO], probs[Mode.BOTH])
    for m in masks:
        np.testing.assert_array_equal(masks[m], win.worker.cached(0, m).labels)
    # a cached mode switches instantly: no new inference, the signal comes synchronously
    count = win.worker.inference_count
    with qtbot.waitSignal(win.prediction_ready, timeout=1000):
        win.set_mode(Mode.BOTH)
    np.testing.assert_array_equal(win.displayed_mask, masks[Mode.BOTH])
    assert win.worker.inference_count == count


def test_other_modes_are_computed_in_background(main_window, qtbot):
    win = main_window
    qtbot.waitUntil(lambda: all(win.worker.cached(0, m) is not None for m in Mode), timeout=30000)


def test_mirroring_from_the_model_menu_recomputes_the_frame(main_window, qtbot, qsettings):
    """Model > Average with the mirrored frame: the shown frame is predicted again as the mean of
    it and its mirror, the session takes those labels, and the choice is kept for the next start."""
    from csknet_studio.core.predictor import Predictor

    win = main_window
    plain = win.current_prediction
    version = win.worker.weights_version
    act = win.actions_by_name["mirror"]
    assert not act.isChecked() and not win.worker.mirror
    with qtbot.waitSignal(win.prediction_ready, timeout=30000) as blocker:
        act.trigger()
    pred = blocker.args[0]
    assert win.worker.mirror and win.worker.weights_version == version + 1
    assert pred.weights_version == version + 1 and win.current_prediction is pred
    f = win.current_frame
    want = Predictor(win.worker.model, "cpu", mirror=True).predict(f.eo, f.ir, Mode.BOTH)
    np.testing.assert_allclose(pred.probs.astype(np.float32), want.probs.astype(np.float32), atol=2e-3)
    assert not np.allclose(pred.probs.astype(np.float32), plain.probs.astype(np.float32), atol=1e-3)
    np.testing.assert_array_equal(win.session.labels(0), pred.labels)  # an uncorrected frame follows
    assert qsettings.value("model/mirror", type=bool) is True
    with qtbot.waitSignal(win.prediction_ready, timeout=30000) as blocker:
        act.trigger()  # off again: the model's own answer comes back
    np.testing.assert_array_equal(blocker.args[0].labels, plain.labels)
    assert not win.worker.mirror and qsettings.value("model/mirror", type=bool) is False


def test_frame_navigation_and_timeline(main_window, qtbot):
    win = main_window
    with qtbot.waitSignal(win.frame_changed) as b:
        win.actions_by_name["next"].trigger()
    assert b.args == [1] and win.timeline.slider.value() == 1
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.actions_by_name["last"].trigger()
    assert win.current_index == 7
    qtbot.waitUntil(lambda: win.frame_list.currentRow() == 7, timeout=1000)  # the list follows within 250 ms
    win.actions_by_name["first"].trigger()
    assert win.current_index == 0


def test_hidden_class_is_transparent_in_lut(main_window):
    win = main_window
    c = int(win.displayed_mask[0, 0])
    win.legend.set_visible(c, False)
    assert win.views.label_item._lut[c, 3] == 0
    win.legend.set_visible(c, True)
    assert win.views.label_item._lut[c, 3] == 255


def test_prediction_vs_corrected_toggle(main_window):
    win = main_window
    win.session.paint_stroke(0, [(10, 10), (30, 10)], 3, 4)
    assert (win.displayed_mask[10, 10:30] == 3).all()
    win.actions_by_name["toggle_source"].trigger()
    np.testing.assert_array_equal(win.displayed_mask, win.current_prediction.labels)
    win.actions_by_name["toggle_source"].trigger()
    assert (win.displayed_mask[10, 10:30] == 3).all()


def test_cursor_readout_names_class_and_both_pixels(main_window):
    win = main_window
    win._on_hover(5, 7)
    text = win.status.cursor_label.text()
    f = win.current_frame
    assert "x 5 y 7" in text and f"IR {int(f.ir[7, 5])}" in text
    assert "EO " + ",".join(str(int(v)) for v in f.eo[7, 5]) in text
    assert win.scheme.class_names[int(win.displayed_mask[7, 5])] in text


def test_corrupt_sequence_shows_error_and_app_stays_usable(main_window, qtbot, tmp_path):
    win = main_window
    bad = tmp_path / "broken"
    (bad / "eo").mkdir(parents=True)
    (bad / "ir").mkdir()
    (bad / "eo" / "0001.png").write_bytes(b"not a png at all")
    (bad / "ir" / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with qtbot.waitSignal(win.error_shown, timeout=5000) as b:
        assert win.open_sequence(bad) is False
    assert str(bad) in b.args[0]
    assert win.sequence is not None and win.current_index == 0  # the old sequence is still open
    win.set_frame(1)
    assert win.current_index == 1


def test_recent_files_and_geometry_go_to_the_given_settings(bare_window, qsettings, tmp_path):
    win = bare_window
    win.files.add_recent(str(tmp_path))
    assert win.files.recent_files()[0] == str(tmp_path.resolve())
    assert [a.text() for a in win.recent_menu.actions()] == [str(tmp_path.resolve())]
    win.close()
    qsettings.sync()
    assert qsettings.value("window/geometry") is not None
    assert QtCore.QSettings().fileName() != qsettings.fileName()


def test_add_panel_docks_widget_with_view_toggle(bare_window):
    from PySide6 import QtWidgets

    w = QtWidgets.QLabel("panel")
    dock = bare_window.add_panel(w, "Test panel", shortcut="Ctrl+Shift+T")
    assert dock.widget() is w and bare_window.docks["Test panel"] is dock
    assert dock.toggleViewAction() in bare_window.menus["View"].actions()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_themes_apply(qapp, theme):
    from csknet_studio.ui.app import apply_theme

    apply_theme(qapp, theme)
    assert len(qapp.styleSheet()) > 1000


def _disk_sequence(synthetic_frames, root, n=4):
    import cv2

    (root / "eo").mkdir(parents=True)
    (root / "ir").mkdir()
    eo, ir = synthetic_frames(n=n)
    for i in range(n):
        cv2.imwrite(str(root / "eo" / f"{i:04d}.png"), eo[i][..., ::-1])
        cv2.imwrite(str(root / "ir" / f"{i:04d}.png"), ir[i])
    return root


def test_corrections_survive_a_crash(bare_window, qsettings, qtbot, tmp_path, synthetic_frames):
    from csknet_studio.ui.main_window import MainWindow

    seq = _disk_sequence(synthetic_frames, tmp_path / "seq")
    win = bare_window
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        assert win.open_sequence(seq)
    win.session.paint_stroke(0, [(5, 5), (20, 5)], 3, 3)  # autosaved at once
    painted = win.session.labels(0).copy()
    # "crash": a second window opens the same folder without the first one ever closing
    win2 = MainWindow(settings=qsettings, device="cpu")
    win2.confirm_close = lambda: True
    try:
        assert win2.open_sequence(seq)
        assert "restored 1 corrected frames" in win2.status.currentMessage()
        np.testing.assert_array_equal(win2.session.labels(0), painted)
        assert win2.timeline.strip.states[0] == "corrected"
    finally:
        win2.close()
    assert not win2.worker.is_running()


def test_close_with_unsaved_corrections_asks(main_window):
    win = main_window
    win.session.autosave = False
    win.session.paint_stroke(0, [(5, 5), (9, 5)], 2, 2)
    assert win.session.dirty
    asked = []
    win.confirm_close = lambda: asked.append(1) or False  # the user pressed Cancel
    win.close()
    assert asked and win.isVisible()
    win.confirm_close = lambda: True


def test_dropping_a_folder_opens_it(bare_window, qtbot, tmp_path, synthetic_frames):
    from PySide6 import QtGui

    seq = _disk_sequence(synthetic_frames, tmp_path / "dropped", n=2)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(seq))])
    pos = QtCore.QPointF(200, 200)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(bare_window, enter)  # through Qt, as a real drag arrives
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(bare_window.sequence_opened, timeout=10000):
        QtWidgets.QApplication.sendEvent(bare_window, drop)
    assert len(bare_window.sequence) == 2
    assert bare_window.files.recent_files()[0] == str(seq.resolve())


def test_space_plays_and_pauses(main_window, qtbot):
    win = main_window
    win.timeline.fps = 50
    with qtbot.waitSignal(win.frame_changed, timeout=5000) as b:
        win.actions_by_name["play"].trigger()
    assert b.args == [1] and win.timeline.playing
    win.actions_by_name["play"].trigger()
    assert not win.timeline.playing


def test_no_two_actions_share_a_shortcut(main_window):
    from PySide6 import QtGui

    seen: dict[str, str] = {}
    for act in main_window.findChildren(QtGui.QAction):
        for seq in act.shortcuts():
            key = seq.toString()
            if key:
                assert key not in seen or seen[key] == act.text(), f"{key}: {seen.get(key)!r} and {act.text()!r}"
                seen[key] = act.text()
    for key in ("1", "2", "3", "Space", "Left", "Right", "Home", "End", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y",
                "[", "]", "B", "E", "F", "G", "V", "A", "C", "P", "Shift+3"):
        assert key in seen, f"no action bound to {key}"


def test_class_picking_by_key_and_legend(main_window):
    win = main_window
    win.actions_by_name["class_3"].trigger()  # Shift+3
    assert win.tools.class_id == 3 and win.legend.list.currentRow() == 3
    win.legend.list.setCurrentRow(5)  # a click in the legend
    assert win.tools.class_id == 5


def test_failed_autosave_shows_one_dialog_and_keeps_edits(bare_window, tiny_sequence, qtbot, tmp_path):
    win = bare_window
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the project folder should go")
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_sequence(tiny_sequence, project_path=blocker / "project")
    errors = []
    win.error_shown.connect(errors.append)
    win.session.paint_stroke(0, [(5, 5), (20, 5)], 3, 3)
    win.session.paint_stroke(0, [(5, 30), (20, 30)], 4, 3)
    assert len(errors) == 1 and "could not save" in errors[0]
    assert win.session.dirty and (win.displayed_mask[30, 5:20] == 4).all()  # nothing lost
    assert "not saved" in win.status.currentMessage()


def test_unreadable_frame_is_marked_bad_and_skipped(bare_window, qtbot, tmp_path, synthetic_frames):
    seq = _disk_sequence(synthetic_frames, tmp_path / "seq", n=3)
    (seq / "ir" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n this file is damaged")
    win = bare_window
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        assert win.open_sequence(seq)
    count = win.worker.inference_count
    win.set_frame(1)
    assert win.current_frame.bad
    assert win.timeline.strip.states[1] == "bad" and win.frame_list.state(1) == "bad"
    assert "unreadable" in win.status.currentMessage()
    assert win.worker.inference_count == count and win.current_prediction is None
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_frame(2)  # the next frame works as usual


def test_opening_another_sequence_never_shows_the_previous_ones_predictions(main_window, qtbot,
                                                                            synthetic_frames):
    """Frame 1 of a newly opened sequence gets its own prediction: a cached or still-running result
    for frame 1 of the previous sequence (another size) is neither shown nor edited."""
    from csknet_studio.core.data.memory import ArraySequence

    win = main_window
    assert win.current_prediction.labels.shape == (48, 64)
    win.set_frame(1)  # a result for frame 1 of the first sequence is cached or in flight
    eo, ir = synthetic_frames(4, 40, 56, seed=3)
    other = ArraySequence(eo, ir, names=[f"g{i}" for i in range(4)])
    with qtbot.waitSignal(win.prediction_ready, timeout=30000,
                          check_params_cb=lambda p: p.labels.shape == (40, 56)):
        win.set_sequence(other)
    win.set_frame(1)
    qtbot.waitUntil(lambda: win.current_prediction is not None
                    and win.current_prediction.labels.shape == (40, 56), timeout=30000)
    assert win.displayed_mask.shape == (40, 56)
    win.worker.request(1, other[1], Mode.BOTH)
    assert all(p is None or p.labels.shape == (40, 56)
               for p in (win.worker.cached(i, m) for i in range(4) for m in Mode))
    other.close()


def test_the_mode_actions_follow_the_mode_however_it_is_set(main_window):
    from csknet_studio.core.modes import Mode

    win = main_window
    win.set_mode(Mode.IR)  # from code, not from the action
    assert win.actions_by_name["mode_ir"].isChecked() and win.mode is Mode.IR
    win.actions_by_name["mode_eo"].trigger()  # from the action (key 3)
    assert win.mode is Mode.EO and not win.actions_by_name["mode_ir"].isChecked()


def test_a_frame_change_repaints_the_views_not_the_window_around_them(main_window, qtbot):
    """Scrubbing stays smooth when a frame change repaints only what changed: the read-outs keep
    their size (no relayout of the window), the views paint over their own area (nothing behind
    them is painted again), and the Frames list catches up at most every FOLLOW_MS."""
    win = main_window
    seen: list[tuple[str, int]] = []

    class Watch(QtCore.QObject):
        def eventFilter(self, obj, ev):  # noqa: N802 (Qt name)
            if ev.type() in (QtCore.QEvent.Type.LayoutRequest, QtCore.QEvent.Type.Paint):
                seen.append((type(obj).__name__, int(ev.type())))
            return False

    watch = Watch()
    watched = [win, win.statusBar(), win.views, win.views.splitter]
    for w in watched:
        w.installEventFilter(watch)
    win.set_frame(1)
    qtbot.wait(50)
    seen.clear()
    for i in (2, 3, 4):
        win.set_frame(i)
        QtWidgets.QApplication.processEvents()
    qtbot.wait(20)
    for w in watched:
        w.removeEventFilter(watch)
    layout = int(QtCore.QEvent.Type.LayoutRequest)
    assert not [s for s in seen if s[1] == layout], seen
    assert not [s for s in seen if s[0] in ("ImageViews", "QSplitter")], seen
    qtbot.waitUntil(lambda: win.frame_list.currentRow() == 4, timeout=1000)


def test_the_frames_list_follows_a_fast_scrub_at_its_own_pace(main_window, qtbot):
    fl = main_window.frame_list
    qtbot.wait(fl.FOLLOW_MS + 50)
    for i in (5, 6, 7):  # no events run in between: the first moves the list, the newest wins later
        fl.follow(i)
    assert fl.currentRow() == 5
    qtbot.waitUntil(lambda: fl.currentRow() == 7, timeout=1000)


def test_a_held_read_out_fits_its_widest_text_after_a_font_change(qtbot):
    from PySide6 import QtGui

    from csknet_studio.ui.status import HeldLabel

    label = HeldLabel("1 ms")
    qtbot.addWidget(label)
    label.hold("99999 ms")
    assert label.minimumSize() == label.maximumSize()  # fixed: a new text lays nothing out again
    font = QtGui.QFont(label.font())
    font.setPointSize(font.pointSize() * 2)
    label.setFont(font)
    assert label.width() >= label.fontMetrics().horizontalAdvance("99999 ms")
