"""The fine-tuning panel: trains in the background, shows held-out figures, defaults to Reject
when they did not improve, and records the weights in use in the annotation session."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from csknet_studio.core.checkpoint import load_checkpoint, weights_hash
from csknet_studio.core.classes import PST900
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.finetune import FinetuneConfig
from csknet_studio.core.model import create_model
from csknet_studio.core.modes import Mode
from csknet_studio.core.session import AnnotationSession
from csknet_studio.ui.finetune_panel import FinetunePanel, samples_from_session
from csknet_studio.ui.inference_worker import InferenceWorker

FAST = FinetuneConfig(steps=3, lr=1e-3, batch=1, crop=(32, 32), modes=("both",))


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def rig(qtbot, tmp_path):
    rng = np.random.default_rng(0)
    eo = rng.integers(0, 255, (3, 40, 48, 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (3, 40, 48), dtype=np.uint8)
    seq = ArraySequence(eo, ir, scheme=PST900, source=tmp_path / "seq")
    session = AnnotationSession(seq, tmp_path / "seq.csknet", autosave=False)
    for i in (0, 2):  # two corrected frames
        session.fill_polygon(i, [(0, 0), (47, 0), (47, 19), (0, 19)], 1)
        session.fill_polygon(i, [(0, 20), (47, 20), (47, 39), (0, 39)], 2)
    model = create_model("csknet-tiny", num_classes=PST900.num_classes)
    worker = InferenceWorker(num_threads=1)
    with qtbot.waitSignal(worker.weights_changed):
        worker.set_model(model, PST900, torch.device("cpu"))
    panel = FinetunePanel(worker, lambda idx: samples_from_session(seq, session, idx), defaults=FAST, num_threads=1,
                          session_getter=lambda: session, checkpoint_path_getter=lambda: tmp_path / "base.pt")
    qtbot.addWidget(panel)
    panel.set_frames(session.corrected_frames(), session.names)
    yield seq, session, model, worker, panel
    panel.shutdown()
    worker.shutdown()


def test_frames_are_listed_checked_and_unchecking_sticks(rig):
    seq, session, _, _, panel = rig
    assert panel.selected_frames() == [0, 2]
    panel.frame_list.item(0).setCheckState(panel.frame_list.item(0).checkState().Unchecked)
    session.fill_polygon(1, [(0, 0), (10, 0), (10, 10)], 3)
    panel.set_frames(session.corrected_frames(), session.names)
    assert panel.selected_frames() == [1, 2]  # new frame checked, the unchecked one stays unchecked
    assert panel.start_button.isEnabled()


def test_cancel_mid_run_leaves_weights_unchanged(qtbot, rig):
    _, _, model, worker, panel = rig
    before, version = _state(model), worker.weights_version
    panel._defaults = dataclasses.replace(FAST, patience=0)  # no early stop before the cancel
    panel.steps_spin.setValue(100000)
    with qtbot.waitSignal(panel.worker.progress, timeout=30000):
        assert panel.start()
    assert panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.worker.cancelled, timeout=30000):
        panel.cancel_button.click()
    assert panel.result is None and not panel.accept_button.isEnabled()
    assert worker.weights_version == version and _same(before, _state(model))
    assert panel.loss_curve.getData()[0] is not None and len(panel.loss_curve.getData()[1]) >= 1
    assert "unchanged" in panel.status_label.text()


def test_run_to_completion_accept_recomputes_then_revert(qtbot, rig):
    seq, _, model, worker, panel = rig
    before, version = _state(model), worker.weights_version
    cached = worker.request(0, seq[0], Mode.BOTH)
    if cached is None:
        with qtbot.waitSignal(worker.result_ready, timeout=30000):
            pass
    assert worker.cached(0, Mode.BOTH) is not None
    with qtbot.waitSignal(panel.worker.finished, timeout=60000):
        panel.start()
    res = panel.result
    assert len(res.losses) == 3 and np.isfinite(res.losses).all()
    assert panel.progress_bar.value() == 3 and list(panel.loss_curve.getData()[1]) == res.losses
    assert f"before {100 * res.before:.1f} %" in panel.miou_label.text()
    assert "held-out" in panel.miou_label.text() and "regions inside 2 corrected frame(s)" in panel.held_out_label.text()
    assert _same(before, _state(model))  # nothing changes until accepted

    with qtbot.waitSignal(worker.result_ready, timeout=30000) as sig:  # shown frame recomputed
        new_version = panel.accept_result()
    assert new_version == version + 1 == worker.weights_version
    assert sig.args[2].weights_version == new_version
    assert worker.cached(0, Mode.BOTH).weights_version == new_version
    accepted = res.state_dict if res.improved else res.trained_state_dict  # no gain: accepted anyway
    assert _same(accepted, {k: v.cpu() for k, v in _state(model).items()})
    assert panel.revert_button.isEnabled() and not panel.accept_button.isEnabled()

    with qtbot.waitSignal(worker.weights_changed):
        panel.revert()
    assert worker.weights_version == version + 2
    qtbot.waitUntil(lambda: _same(before, _state(model)), timeout=10000)  # loaded in the worker thread


def test_unlabelled_samples_show_an_error_and_change_nothing(qtbot, rig):
    seq, _, model, worker, panel = rig
    panel._samples = lambda idx: [(seq[i].eo, seq[i].ir, np.full((40, 48), 255, np.uint8)) for i in idx]
    before, version = _state(model), worker.weights_version
    with qtbot.waitSignal(panel.error, timeout=30000) as sig:
        panel.start()
    assert "no labelled pixel" in sig.args[0] and "unchanged" in sig.args[0]
    qtbot.waitUntil(lambda: not panel.worker.running)
    assert worker.weights_version == version and _same(before, _state(model))
    assert panel.start_button.isEnabled()


def test_save_checkpoint_writes_the_weights_in_use(qtbot, rig, tmp_path):
    _, _, model, _, panel = rig
    path = tmp_path / "ft.pt"
    with qtbot.waitSignal(panel.worker.saved, timeout=30000):
        panel.save_checkpoint(str(path))
    loaded = load_checkpoint(path)
    assert loaded.scheme == PST900
    assert _same(_state(model), _state(loaded.model))


def test_opening_another_model_drops_the_revert_point(qtbot, rig):
    _, _, _, worker, panel = rig
    with qtbot.waitSignal(panel.worker.finished, timeout=60000):
        panel.start()
    panel.accept_result()
    assert panel.revert_button.isEnabled()
    with qtbot.waitSignal(worker.weights_changed):
        worker.set_model(create_model("csknet-tiny", num_classes=PST900.num_classes), PST900, torch.device("cpu"))
    assert not panel.revert_button.isEnabled() and panel.revert() is None


def _finish(qtbot, panel):
    with qtbot.waitSignal(panel.worker.finished, timeout=60000):
        assert panel.start()
    return panel.result


def test_no_gain_says_so_and_makes_reject_the_default(qtbot, rig):
    _, session, model, worker, panel = rig
    # a huge learning rate, and a gain no run can reach: the held-out figure cannot improve
    panel._defaults = dataclasses.replace(FAST, steps=4, min_gain=1.0)
    panel.lr_spin.setValue(1.0)
    res = _finish(qtbot, panel)
    assert not res.improved
    assert panel.warning_label.isVisibleTo(panel)
    assert panel.warning_label.text().startswith("No gain on held-out corrections: ")
    assert panel.reject_button.isDefault() and not panel.accept_button.isDefault()
    assert panel.accept_button.text() == "Accept anyway" and panel.accept_button.isEnabled()
    assert res.weights_hash == weights_hash(model.state_dict())  # the safe weights are the start
    # still possible: accepting anyway takes the trained weights and records their hash
    with qtbot.waitSignal(worker.weights_changed):
        panel.accept_result()
    assert session.checkpoint.weights_hash == res.trained_weights_hash != res.weights_hash
    qtbot.waitUntil(lambda: weights_hash(model.state_dict()) == res.trained_weights_hash, timeout=10000)
    assert not panel.warning_label.isVisibleTo(panel) and panel.accept_button.text() == "Accept new weights"


def test_accept_records_the_new_hash_in_the_session_and_revert_restores_it(qtbot, rig, tmp_path):
    _, session, model, worker, panel = rig
    start = weights_hash(model.state_dict())
    session.set_checkpoint(tmp_path / "base.pt", start)
    panel._defaults = dataclasses.replace(FAST, min_gain=0.0)
    res = _finish(qtbot, panel)
    if res.improved:
        assert panel.accept_button.isDefault() and not panel.warning_label.isVisibleTo(panel)
    with qtbot.waitSignal(worker.weights_changed):
        panel.accept_result()
    in_use = res.weights_hash if res.improved else res.trained_weights_hash
    assert session.checkpoint.weights_hash == in_use != start
    assert session.checkpoint.path == str((tmp_path / "base.pt").resolve())
    qtbot.waitUntil(lambda: weights_hash(model.state_dict()) == in_use, timeout=10000)
    with qtbot.waitSignal(worker.weights_changed):
        panel.revert()
    assert session.checkpoint.weights_hash == start
    # saving names the file the weights in use now live in
    with qtbot.waitSignal(panel.checkpoint_saved, timeout=30000) as sig:
        panel.save_checkpoint(str(tmp_path / "ft.pt"))
    assert sig.args == [str(tmp_path / "ft.pt"), load_checkpoint(tmp_path / "ft.pt").weights_hash]
    assert session.checkpoint.path == str((tmp_path / "ft.pt").resolve())
