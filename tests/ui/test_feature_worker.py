"""The feature worker runs the inference worker's model beside weight swaps without mixing weights.

The feature forward is paused after the first encoder block (a hook) and new weights are handed to
the inference worker then. Without the model's lock the inference thread loads them mid-forward
and the channel map is made of two weight sets; with it the load waits for the forward to end.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import torch
from PySide6 import QtCore

from csknet_studio.core import predictor
from csknet_studio.core.introspect import channel_maps
from csknet_studio.core.model import create_model
from csknet_studio.core.modes import Mode
from csknet_studio.ui.feature_worker import FeatureWorker
from csknet_studio.ui.inference_worker import InferenceWorker

SITE, DIRECTION, CHANNEL = "layer2.0", "ir->eo", 1
PAUSE_S = 1.0  # how long the paused forward waits for the load (locked, it comes only afterwards)


def test_a_channel_map_is_computed_with_one_set_of_weights(qapp, qtbot, tiny_sequence, monkeypatch):
    torch.manual_seed(0)
    model = create_model("csknet-tiny").eval()
    torch.manual_seed(1)
    new_weights = {k: v.clone() for k, v in create_model("csknet-tiny").state_dict().items()}
    frame = tiny_sequence[0]
    old_ref = channel_maps(model, frame.eo, frame.ir, SITE, DIRECTION, CHANNEL)
    swapped = copy.deepcopy(model)
    swapped.load_state_dict(new_weights)
    new_ref = channel_maps(swapped, frame.eo, frame.ir, SITE, DIRECTION, CHANNEL)
    assert not np.allclose(old_ref.before, new_ref.before, atol=1e-3)

    loaded = threading.Event()
    real_load = predictor.load_state_dict_checked

    def load_and_tell(*args, **kwargs):
        real_load(*args, **kwargs)
        loaded.set()

    monkeypatch.setattr(predictor, "load_state_dict_checked", load_and_tell)
    paused, armed = threading.Event(), [False]

    def pause(*_args) -> None:
        if armed[0] and QtCore.QThread.currentThread().objectName() == "csknet-features":
            armed[0] = False
            paused.set()
            loaded.wait(PAUSE_S)

    hook = model.encoder.layer1[0].register_forward_hook(pause)
    inference = InferenceWorker(num_threads=1)
    features = FeatureWorker()
    try:
        inference.set_model(model, None, torch.device("cpu"))
        with qtbot.waitSignal(inference.result_ready, timeout=30000):  # its Predictor is in place
            inference.request(0, frame, Mode.BOTH)
        armed[0] = True
        with qtbot.waitSignal(features.ready, timeout=30000) as sig:
            features.request(model, frame.eo, frame.ir, SITE, DIRECTION, CHANNEL, tag="old")
            assert paused.wait(30), "the feature forward never reached the first block"
            inference.set_state_dict(new_weights)  # loaded in the inference thread
        assert sig.args[0] == "old"
        for part in ("before", "after"):
            np.testing.assert_allclose(getattr(sig.args[1], part), getattr(old_ref, part), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{part}: the channel map saw the new weights too")
        assert loaded.wait(30)
        with qtbot.waitSignal(features.ready, timeout=30000) as sig:
            features.request(model, frame.eo, frame.ir, SITE, DIRECTION, CHANNEL, tag="new")
        np.testing.assert_allclose(sig.args[1].before, new_ref.before, rtol=1e-4, atol=1e-5)
    finally:
        hook.remove()
        features.shutdown()
        inference.shutdown()
    assert not features.is_running() and not inference.is_running()
