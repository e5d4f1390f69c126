"""The panels inside the real main window: docks, U navigation, compare, fine-tune, export, F1."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from csknet_studio.core.modes import Mode
from csknet_studio.core.uncertainty import disagreement
from csknet_studio.ui.export_dialog import ExportDialog
from csknet_studio.ui.shortcuts import ShortcutsDialog, collect_shortcuts


def test_panels_follow_the_shown_frame(main_window, qtbot):
    win = main_window
    hub = win.panels
    assert {"Model internals", "Compare modes", "Fine-tuning"} <= set(win.docks)
    keys = {e.keys: e.description for e in collect_shortcuts(win)}
    assert keys["U"] == "Next most uncertain frame" and keys["Ctrl+E"] == "Export labels"
    assert keys["F1"] == "Keyboard shortcuts"
    qtbot.waitUntil(lambda: hub.internals.prediction is win.current_prediction, timeout=5000)  # once settled
    assert hub.internals.stage_combo.count() == len(win.current_prediction.gate_maps) > 0
    qtbot.waitUntil(lambda: hub.compare.result is not None, timeout=30000)  # BOTH vs IR of frame 0
    both, ir = win.worker.cached(0, Mode.BOTH), win.worker.cached(0, Mode.IR)
    np.testing.assert_array_equal(hub.compare.result.mask, disagreement(both.labels, ir.labels).mask)
    with qtbot.waitSignal(win.prediction_ready, timeout=30000):
        win.set_frame(3)
    assert hub.internals.prediction is None  # cleared at once, redrawn when the frames settle
    qtbot.waitUntil(lambda: hub.internals.prediction is win.current_prediction, timeout=5000)
    assert hub.internals.prediction.weights_version == win.worker.weights_version
    np.testing.assert_array_equal(hub.internals.entropy_view.heat.image, win.current_prediction.entropy)


def test_next_most_uncertain_skips_current_and_corrected(main_window, qtbot):
    win = main_window
    hub = win.panels
    hub.scan_action.setChecked(True)  # View > Segment and score every frame
    n = len(win.sequence)
    qtbot.waitUntil(lambda: all(hub.tracker.score(i, Mode.BOTH) is not None for i in range(n)), timeout=60000)
    scores = {i: float(win.worker.cached(i, Mode.BOTH).entropy.mean()) for i in range(n)}
    top = max((i for i in range(n) if i != 0), key=scores.get)
    win.session.fill_polygon(top, [(0, 0), (10, 0), (10, 10)], 1)  # corrected: not a candidate any more
    expected = max((i for i in range(n) if i not in (0, top)), key=scores.get)
    with qtbot.waitSignal(win.frame_changed):
        hub.next_uncertain_action.trigger()  # the U key
    assert win.current_index == expected
    qtbot.waitUntil(lambda: not hub.scan_action.isChecked(), timeout=30000)  # stops once all are scored


def test_finetune_from_the_window_recomputes_the_shown_frame(main_window, qtbot, tmp_path):
    win = main_window
    panel = win.panels.finetune
    win.session.fill_polygon(0, [(0, 0), (63, 0), (63, 47), (0, 47)], 2)
    assert panel.selected_frames() == [0]  # listed as soon as it is corrected
    panel.steps_spin.setValue(2)
    with qtbot.waitSignal(panel.worker.finished, timeout=60000):
        assert panel.start()
    old = win.worker.weights_version
    win.checkpoint_path = tmp_path / "base.pt"  # the file the weights in use came from
    with qtbot.waitSignal(win.prediction_ready, timeout=30000) as sig:
        panel.accept_button.click()
    assert sig.args[0].weights_version == old + 1 == win.current_prediction.weights_version
    # the session, and through it the export, names the fine-tuned weights
    from csknet_studio.core.checkpoint import weights_hash
    from csknet_studio.core.export import export_hdf5
    from csknet_studio.core.export_read import read_labels_hdf5

    in_use = weights_hash(win.worker.model.state_dict())  # loaded: the new prediction came from them
    assert win.session.checkpoint.weights_hash == in_use
    assert read_labels_hdf5(export_hdf5(win.session, tmp_path / "l.h5")).checkpoint_hash == in_use


def test_export_and_shortcut_sheet_open_without_blocking(main_window, qtbot):
    win = main_window
    win.panels.export_action.trigger()
    dlg = win.panels.export_dialog
    assert isinstance(dlg, ExportDialog) and dlg.isVisible()
    dlg.reject()
    win.panels.shortcuts_action.trigger()
    sheets = [w for w in win.findChildren(ShortcutsDialog) if w.isVisible()]
    assert len(sheets) == 1
    table = sheets[0].table
    assert "U" in [table.item(r, 1).text() for r in range(table.rowCount())]
    sheets[0].close()
    QtWidgets.QApplication.processEvents()
