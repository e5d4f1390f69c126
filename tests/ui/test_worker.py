"""The inference worker: coalescing, caching per weights version, weight swaps, errors, shutdown."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from csknet_studio.core.modes import Mode
from csknet_studio.ui.inference_worker import InferenceWorker


@pytest.fixture
def worker(qapp, tiny_model):
    w = InferenceWorker(num_threads=1)
    w.set_model(tiny_model, None, torch.device("cpu"))
    yield w
    w.shutdown()
    assert not w.is_running()


def _results(worker):
    got: list[tuple[int, str]] = []
    worker.result_ready.connect(lambda i, m, p: got.append((i, m)))
    return got


def test_scrubbing_coalesces_to_the_newest_frame(worker, tiny_sequence, qtbot):
    got = _results(worker)
    frames = [tiny_sequence[i % len(tiny_sequence)] for i in range(20)]
    with qtbot.waitSignal(worker.result_ready, timeout=30000,
                          check_params_cb=lambda i, m, p: i == 19 and m == "both"):
        for i, f in enumerate(frames):  # 20 requests without returning to the event loop
            assert worker.request(i, f, Mode.BOTH) is None
    foreground = [i for i, m in got if m == "both"]
    assert foreground[-1] == 19
    assert len(foreground) <= 3, f"stale requests ran: {foreground}"
    assert worker.inference_count < 20


def test_results_are_cached_per_frame_mode_and_version(worker, tiny_sequence, qtbot):
    f = tiny_sequence[0]
    with qtbot.waitSignal(worker.result_ready, timeout=30000) as b:
        worker.request(0, f, Mode.IR)
    pred = b.args[2]
    assert pred.labels.dtype == np.uint8 and isinstance(pred.probs, np.ndarray)  # numpy only
    n = worker.inference_count
    assert worker.request(0, f, Mode.IR) is pred  # hit: returned at once
    assert worker.inference_count == n
    # the other two modes follow in the background
    qtbot.waitUntil(lambda: worker.cached(0, Mode.BOTH) is not None and worker.cached(0, Mode.EO) is not None,
                    timeout=30000)


def test_new_weights_invalidate_cache_and_recompute_current(worker, tiny_sequence, tiny_model, qtbot):
    f = tiny_sequence[2]
    with qtbot.waitSignal(worker.result_ready, timeout=30000) as b:
        worker.request(2, f, Mode.BOTH)
    old = b.args[2]
    sd = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    for k, v in sd.items():
        if v.is_floating_point():
            sd[k] = v + 0.05 * torch.randn_like(v)
    v0 = worker.weights_version
    with qtbot.waitSignal(worker.result_ready, timeout=30000,
                          check_params_cb=lambda i, m, p: i == 2 and m == "both") as b2:
        with qtbot.waitSignal(worker.weights_changed) as bw:
            v1 = worker.set_state_dict(sd)
        assert bw.args == [v1] and v1 > v0
        assert worker.cached(2, Mode.BOTH) is None
    new = b2.args[2]
    assert new.weights_version == v1
    assert not np.array_equal(new.probs, old.probs)


def test_bad_weights_are_reported_not_fatal(worker, tiny_sequence, qtbot):
    with qtbot.waitSignal(worker.failed, timeout=30000) as b:
        worker.set_state_dict({"no.such.key": torch.zeros(1)})
    assert "rejected" in b.args[2]
    with qtbot.waitSignal(worker.result_ready, timeout=30000):
        worker.request(0, tiny_sequence[0], Mode.EO)


def test_model_runs_off_the_gui_thread(worker, tiny_sequence, qtbot, monkeypatch):
    from csknet_studio.core import predictor

    seen = []
    real = predictor.Predictor.predict

    def spy(self, *a, **k):
        seen.append(threading.current_thread() is threading.main_thread())
        return real(self, *a, **k)

    monkeypatch.setattr(predictor.Predictor, "predict", spy)
    with qtbot.waitSignal(worker.result_ready, timeout=30000):
        worker.request(3, tiny_sequence[3], Mode.BOTH)
    assert seen and not any(seen)


def test_shutdown_joins_while_busy(qapp, tiny_model, tiny_sequence):
    w = InferenceWorker(num_threads=1)
    w.set_model(tiny_model, None, torch.device("cpu"))
    for i in range(len(tiny_sequence)):
        w.request(i, tiny_sequence[i], Mode.BOTH, background=True)
    w.shutdown()
    assert not w.is_running()
