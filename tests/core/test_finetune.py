"""Fine-tuning API the GUI uses: learns, never touches the live model, cancels and fails cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.checkpoint import weights_hash
from csknet_studio.core.errors import CancelledError, ConfigError, TrainingError
from csknet_studio.core.finetune import FinetuneConfig, finetune, replace_head
from tests.core.engine_helpers import make_frames


@pytest.fixture
def model():
    from csknet_studio.core.model import create_model

    torch.manual_seed(0)
    return create_model("csknet-tiny", num_classes=3)


@pytest.fixture(scope="module")
def frames():
    return make_frames(4, size=48, seed=0)


@pytest.mark.slow
def test_tiny_model_overfits_a_few_frames(model, frames):
    live = weights_hash(model.state_dict())
    seen = []
    res = finetune(model, frames, FinetuneConfig(steps=100, lr=2e-2, batch=4, crop=None, modes=("both",),
                                                 freeze_bn=False),
                   progress=lambda s, t, loss: seen.append((s, t, loss)))
    assert res.miou_after > 0.9, res.miou_after_per_mode
    assert res.miou_before < 0.6
    assert res.steps_done == 100 and len(res.losses) == 100 and seen[-1][:2] == (100, 100)
    assert np.mean(res.losses[-10:]) < 0.5 * np.mean(res.losses[:10])
    assert weights_hash(model.state_dict()) == live, "the live model must not change"
    from csknet_studio.core.model import create_model

    accepted = create_model("csknet-tiny", num_classes=3)
    accepted.load_state_dict(res.state_dict)
    assert weights_hash(accepted.state_dict()) == res.weights_hash


def test_samples_as_tuples_with_ignore_and_crops(model, frames):
    samples = []
    for f in frames[:2]:
        mask = np.full_like(f.label, 255)
        mask[10:30, 10:30] = f.label[10:30, 10:30]  # a small correction, the rest unlabelled
        samples.append((f.eo, f.ir, mask))
    res = finetune(model, samples, FinetuneConfig(steps=4, batch=2, crop=(32, 32), modes=("both", "ir", "eo")))
    assert res.steps_done == 4 and all(np.isfinite(res.losses))
    assert set(res.miou_after_per_mode) == {"both", "ir", "eo"}


def test_cancel_leaves_live_weights_unchanged(model, frames):
    live = weights_hash(model.state_dict())
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(CancelledError, match="after 2 of 10 steps"):
        finetune(model, frames, FinetuneConfig(steps=10, batch=2, crop=(32, 32), evaluate=False), cancel=cancel)
    assert weights_hash(model.state_dict()) == live


def test_exploding_lr_raises_training_error_and_keeps_weights(model, frames):
    live = weights_hash(model.state_dict())
    with pytest.raises(TrainingError, match="not finite"):
        finetune(model, frames, FinetuneConfig(steps=6, lr=1e30, batch=2, crop=(32, 32), grad_clip=0,
                                               freeze_bn=False, evaluate=False))
    assert weights_hash(model.state_dict()) == live


def test_inf_input_raises_training_error(model, frames):
    f = frames[0]
    ir = f.ir.astype(np.float32)
    ir[5, 5] = np.inf
    with pytest.raises(TrainingError, match="not finite"):
        finetune(model, [(f.eo, ir, f.label)], FinetuneConfig(steps=2, batch=1, crop=None, modes=("ir",),
                                                              evaluate=False))


def test_no_labelled_pixel_and_bad_inputs(model, frames):
    f = frames[0]
    with pytest.raises(TrainingError, match="no labelled pixel"):
        finetune(model, [(f.eo, f.ir, np.full_like(f.label, 255))], FinetuneConfig(steps=1))
    with pytest.raises(TrainingError, match="needs EO"):
        finetune(model, [(None, f.ir, f.label)], FinetuneConfig(steps=1, modes=("both",)))
    with pytest.raises(TrainingError, match="class id 7"):
        finetune(model, [(f.eo, f.ir, np.full_like(f.label, 7))], FinetuneConfig(steps=1))
    with pytest.raises(ConfigError):
        FinetuneConfig(modes=("rgb",))


def test_replace_head_keeps_encoder(model, frames):
    new = replace_head(model, 5)
    assert new.config.num_classes == 5 and model.config.num_classes == 3
    old_sd, new_sd = model.state_dict(), new.state_dict()
    enc = [k for k in old_sd if k.startswith("encoder.")]
    assert enc and all(torch.equal(old_sd[k], new_sd[k]) for k in enc)
    assert new.reinitialised and all(new_sd[k].shape != old_sd[k].shape for k in new.reinitialised)
    out = new(torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32))
    assert out.logits.shape[1] == 5
    # finetune can switch schemes itself (PST900-style: 5 classes)
    f = frames[0]
    res = finetune(model, [(f.eo, f.ir, np.minimum(f.label, 4))],
                   FinetuneConfig(steps=2, batch=1, crop=None, num_classes=5))
    assert res.num_classes == 5 and res.model_config["num_classes"] == 5
