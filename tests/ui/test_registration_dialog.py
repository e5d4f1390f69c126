"""View > Register EO/IR in the real window: clicked pairs, live preview, Auto-align in a thread, Apply."""

from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core import registration as reg
from csknet_studio.ui.registration_dialog import RegistrationDialog, compose_preview


def _open(win) -> RegistrationDialog:
    win.actions_by_name["register"].trigger()
    dlg = win.registration_state["dialog"]
    assert isinstance(dlg, RegistrationDialog)
    return dlg


def test_clicked_pairs_preview_and_apply(main_window, qtbot):
    win = main_window
    assert win.actions_by_name["register"] in win.menus["View"].actions()
    dlg = _open(win)
    h_known = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]])
    ir_pts = [(5.0, 5.0), (58.0, 6.0), (57.0, 42.0), (6.0, 40.0)]
    before = dlg.preview_array().copy()
    for p, q in zip(ir_pts, reg.project_points(h_known, ir_pts), strict=True):
        dlg.add_point("eo", *q)
        dlg.add_point("ir", *p)
    assert dlg.result is not None and dlg.result.residual < 1e-3
    assert "residual" in dlg.status_label.text() and dlg.apply_button.isEnabled()
    assert not np.array_equal(dlg.preview_array(), before)  # the preview follows the clicks
    dlg.mode_combo.setCurrentIndex(1)  # checkerboard
    assert dlg.preview_array().shape == (48, 64, 3)
    dlg.remove_last_point()  # the EO side of the last pair (both sides were even)
    assert dlg.result is None and not dlg.apply_button.isEnabled()
    dlg.add_point("eo", *reg.project_points(h_known, [ir_pts[-1]])[0])
    assert dlg.result is not None
    raw_ir = np.array(win.sequence.raw_pair(win.current_index)[1])
    with qtbot.waitSignal(win.prediction_ready, timeout=120000):
        dlg.apply()
    assert np.allclose(win.session.alignment["homography"], h_known, atol=1e-4)
    assert np.array_equal(win.current_frame.ir, reg.warp_ir(raw_ir, dlg.result.homography, (48, 64)))
    dlg.close()


def test_auto_align_runs_in_a_worker(main_window, qtbot):
    dlg = _open(main_window)
    with qtbot.waitSignals([dlg.runner.running_changed, dlg.runner.running_changed], timeout=60000):
        assert dlg.auto_align()
        assert not dlg.auto_align()  # one at a time
    assert (dlg.result is not None and dlg.result.method == "ecc") or "failed" in dlg.status_label.text()
    dlg.close()
    assert not dlg.runner.running


def test_checkerboard_alternates_tiles():
    eo = np.zeros((64, 64, 3), np.uint8)
    ir = np.full((64, 64), 200, np.uint8)
    out = compose_preview(eo, ir, "checkerboard")
    assert out[0, 0, 0] == 0 and out[0, 40, 0] == 200 and out[40, 40, 0] == 0


def test_the_app_offers_to_register_ir_of_another_aspect_ratio(bare_window, tmp_path, qtbot,
                                                               write_aspect_pair_folder):
    """Opening it in the GUI asks; declining opens nothing, agreeing opens it resized with the
    registration dialog up, and Apply's homography is what the next open uses."""
    root = write_aspect_pair_folder(tmp_path / "seq")
    win = bare_window
    asked = []
    win.ask_register = lambda err: asked.append(str(err)) or False
    assert win.open_sequence(root) is False and win.sequence is None and "64x64" in asked[0]
    win.ask_register = lambda err: True
    assert win.open_sequence(root) is True
    dlg = win.registration_state["dialog"]
    assert dlg is not None and dlg.isVisible() and win.sequence[0].ir.shape == (48, 64)
    h = np.array([[1.0, 0.0, 0.0], [0.0, 0.75, 0.0], [0.0, 0.0, 1.0]])
    dlg.result = reg.Registration(h, "manual", (64, 64), (48, 64))
    dlg.apply()
    dlg.close()
    win.session.save()
    win.ask_register = lambda err: pytest.fail("a registered sequence opens without asking")
    assert win.open_sequence(root) is True
    assert np.allclose(win.sequence.alignment.homography, h)
