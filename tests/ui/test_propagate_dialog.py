"""Edit > Propagate labels in the real window: background run, one undo step, amber frames, cancel."""

from __future__ import annotations

import numpy as np

from csknet_studio.core.edits import Origin
from csknet_studio.ui.propagate_dialog import PropagateDialog
from csknet_studio.ui.shortcuts import collect_shortcuts


def _open(win, qtbot) -> PropagateDialog:
    win.panels.propagate_action.trigger()  # Ctrl+P
    dlg = win.panels.propagate_dialog
    assert isinstance(dlg, PropagateDialog) and dlg.start_frame == win.current_index
    return dlg


def test_propagation_runs_in_the_background_and_undoes_in_one_step(main_window, qtbot):
    win = main_window
    keys = {e.keys: e.description for e in collect_shortcuts(win)}
    assert keys["Ctrl+P"] == "Propagate labels"
    win.session.fill_polygon(0, [(0, 0), (63, 0), (63, 47), (0, 47)], 2)  # frame 0: all class 2
    win.session.fill_polygon(5, [(0, 0), (20, 0), (0, 20)], 1)  # a correction stops the run before it
    dlg = _open(win, qtbot)
    dlg.count_spin.setValue(6)
    with qtbot.waitSignal(dlg.propagated, timeout=60000) as sig:
        assert dlg.start()
        assert dlg.progress.isVisible() and not dlg.start_button.isEnabled()
    assert sig.args[0] == [1, 2, 3, 4]
    s = win.session
    assert [s.origin(i) for i in range(6)] == [Origin.CORRECTED] + [Origin.PROPAGATED] * 4 + [Origin.CORRECTED]
    # the blobs jump between these frames: only class 2 where the flow holds, unlabelled elsewhere
    # (frames 1-4 have no prediction yet to fill in)
    assert all(set(np.unique(s.labels(i))) <= {2, 255} for i in range(1, 5))
    assert win.timeline.strip.states[1:5] == ["propagated"] * 4 and win.frame_list.state(3) == "propagated"
    assert dlg.progress.percent == 100.0
    win.actions_by_name["undo"].trigger()  # Ctrl+Z: the whole propagation goes
    assert [s.origin(i) for i in range(1, 5)] == [Origin.EMPTY] * 4
    assert "propagated" not in win.timeline.strip.states
    win.actions_by_name["redo"].trigger()
    assert s.propagated_frames() == [1, 2, 3, 4]


def test_cancel_applies_nothing_and_backward_runs_the_other_way(main_window, qtbot):
    win = main_window
    win.session.fill_polygon(0, [(0, 0), (63, 0), (63, 47), (0, 47)], 3)
    dlg = _open(win, qtbot)
    with qtbot.waitSignal(dlg.cancelled, timeout=60000):
        dlg.start()
        dlg.progress.cancel_button.click()
    assert win.session.propagated_frames() == [] and not win.session.can_redo
    assert dlg.start_button.isEnabled() and not dlg.worker.running
    dlg.direction_combo.setCurrentIndex(1)  # backward from frame 0: nothing before it
    with qtbot.waitSignal(dlg.propagated, timeout=10000) as sig:
        dlg.start()
    assert sig.args[0] == []
    with qtbot.waitSignal(win.frame_changed):
        win.set_frame(4)
    win.session.fill_polygon(4, [(0, 0), (63, 0), (63, 47), (0, 47)], 3)
    dlg = _open(win, qtbot)
    dlg.direction_combo.setCurrentIndex(1)
    dlg.count_spin.setValue(2)
    with qtbot.waitSignal(dlg.propagated, timeout=60000) as sig:
        dlg.start()
    assert sig.args[0] == [2, 3]
