"""A forward pass beside a weight swap sees one set of weights: the model's lock in core/predictor.py.

Weights are copied into the model in place, so without the lock a swap landing mid-forward gives a
result made of two weight sets. The forward is paused after the first encoder block (a hook) and the
swap is made then: unlocked, it lands inside the forward; locked, it waits for the forward to end.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from csknet_studio.core.introspect import channel_maps
from csknet_studio.core.model import create_model
from csknet_studio.core.predictor import Predictor, model_lock

SITE, DIRECTION, CHANNEL = "layer2.0", "ir->eo", 0
PAUSE_S = 0.3  # how long the paused forward waits for the swap (locked, the swap never comes)


def _weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in create_model("csknet-tiny").state_dict().items()}


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    eo = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    ir = rng.integers(0, 255, (40, 48), dtype=np.uint8)
    weights = {"a": _weights(0), "b": _weights(1)}
    model = create_model("csknet-tiny").eval()
    refs = {}
    for name, sd in weights.items():  # each weight set alone
        model.load_state_dict(sd)
        refs[name] = channel_maps(model, eo, ir, SITE, DIRECTION, CHANNEL)
    assert not np.allclose(refs["a"].before, refs["b"].before, atol=1e-3)  # the sets are told apart
    return eo, ir, weights, refs


class _PauseMidForward:
    """Once armed, the next forward stops after the first encoder block until `resume` (or PAUSE_S)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.paused = threading.Event()
        self.resume = threading.Event()
        self._armed = False
        self._handle = model.encoder.layer1[0].register_forward_hook(self._hook)

    def arm(self) -> None:
        self.paused.clear()
        self.resume.clear()
        self._armed = True

    def _hook(self, *_args) -> None:
        if self._armed:
            self._armed = False
            self.paused.set()
            self.resume.wait(PAUSE_S)

    def remove(self) -> None:
        self._handle.remove()


def _forward_via_predictor(predictor: Predictor, eo, ir):
    return predictor.channel_maps(eo, ir, SITE, DIRECTION, CHANNEL)


def _forward_via_model_lock(predictor: Predictor, eo, ir):
    """What the GUI's feature worker does: it holds the model, not the predictor."""
    model = predictor.model
    with model_lock(model):
        return channel_maps(model, eo, ir, SITE, DIRECTION, CHANNEL)


@pytest.mark.parametrize("forward", [_forward_via_predictor, _forward_via_model_lock])
def test_a_forward_and_a_weight_swap_never_overlap(setup, forward):
    eo, ir, weights, refs = setup
    model = create_model("csknet-tiny")
    owner = Predictor(model, "cpu", amp=False)  # the inference worker's, which swaps the weights
    pause = _PauseMidForward(model)
    try:
        for old, new in [("a", "b"), ("b", "a"), ("a", "b")]:
            owner.set_state_dict(weights[old])
            out: dict = {}
            pause.arm()
            t = threading.Thread(target=lambda box=out: box.update(maps=forward(owner, eo, ir)))
            t.start()
            assert pause.paused.wait(30), "the forward never reached the first block"
            owner.set_state_dict(weights[new])  # locked: waits for the paused forward to finish
            pause.resume.set()
            t.join(30)
            got = out["maps"]
            for part in ("before", "after"):
                np.testing.assert_allclose(getattr(got, part), getattr(refs[old], part), rtol=1e-4, atol=1e-5,
                                           err_msg=f"{part}: the forward saw the {new!r} weights too")
        again = forward(owner, eo, ir)  # and after the swap, the new weights only
        np.testing.assert_allclose(again.before, refs["b"].before, rtol=1e-4, atol=1e-5)
    finally:
        pause.remove()


def test_every_predictor_of_a_model_shares_its_lock():
    model = create_model("csknet-tiny")
    first, second = Predictor(model, "cpu"), Predictor(model, "cpu")
    assert model_lock(model) is model_lock(model)
    done = threading.Event()

    def use_second() -> None:
        with second.locked():
            done.set()

    t = threading.Thread(target=use_second)
    with first.locked() as m:
        assert m is model
        t.start()
        assert not done.wait(0.1), "a second predictor of the same model ran beside the first"
    t.join(10)
    assert done.is_set()
    other = create_model("csknet-tiny")
    second.set_model(other)
    with first.locked(), second.locked() as m:  # a swapped-in model has a lock of its own
        assert m is other and model_lock(other) is not model_lock(model)
