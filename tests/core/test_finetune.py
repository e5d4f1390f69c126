"""Fine-tuning API the GUI uses: learns, never touches the live model, never hands back weights
that score worse on held-out corrections than the start, cancels and fails cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.checkpoint import weights_hash
from csknet_studio.core.errors import CancelledError, ConfigError, TrainingError
from csknet_studio.core.finetune import FinetuneConfig, finetune, replace_head, split_samples
from csknet_studio.core.holdout import hold_out


@pytest.fixture
def model():
    from csknet_studio.core.model import create_model

    torch.manual_seed(0)
    return create_model("csknet-tiny", num_classes=3)


@pytest.fixture(scope="module")
def frames(make_frames):
    return make_frames(4, size=48, seed=0)


@pytest.mark.slow
def test_tiny_model_overfits_a_few_frames(model, frames):
    live = weights_hash(model.state_dict())
    seen = []
    res = finetune(model, frames, FinetuneConfig(steps=100, lr=2e-2, batch=4, crop=None, modes=("both",),
                                                 freeze_bn=False, freeze_encoder=False, val_fraction=0.0,
                                                 patience=0),
                   progress=lambda s, t, loss: seen.append((s, t, loss)))
    assert res.held_out.kind == "none"  # nothing held out: scored on the frames it trained on
    assert res.after > 0.9, res.after_per_mode
    assert res.before < 0.6 and res.improved
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
    assert set(res.after_per_mode) == {"both", "ir", "eo"}
    assert res.held_out.kind == "regions" and res.held_out.frames == (0, 1)


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


# --- held-out corrections ---------------------------------------------------------------------------
def _masks(n: int, h: int = 40, w: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 3, (h, w)).astype(np.uint8) for _ in range(n)]


def _labelled(m: np.ndarray) -> np.ndarray:
    return m != 255


def test_enough_frames_hold_out_whole_frames_spread_over_the_list():
    masks = _masks(8)
    split = hold_out(masks, fraction=0.25, frame_split_min=4)
    assert split.held_out.kind == "frames" and split.held_out.frames == (2, 6)
    for i, (m, t, v) in enumerate(zip(masks, split.train_masks, split.val_masks, strict=True)):
        held = i in split.held_out.frames
        assert np.array_equal(v if held else t, m) and not _labelled(t if held else v).any()
    assert split.held_out.pixels == 2 * 40 * 48 and split.held_out.train_pixels == 6 * 40 * 48
    assert "2 of 8 corrected frames (frame 20, 60)" in split.held_out.describe([str(10 * i) for i in range(8)])


def test_few_frames_hold_out_regions_inside_every_frame():
    masks = _masks(2)
    masks[1][:, :30] = 255  # a partial correction: the lattice spans what is labelled
    split = hold_out(masks, fraction=0.25, grid=4, seed=3)
    assert split.held_out.kind == "regions" and split.held_out.frames == (0, 1)
    assert split.held_out.cells == 8 and split.held_out.total_cells == 32
    for m, t, v in zip(masks, split.train_masks, split.val_masks, strict=True):
        lt, lv = _labelled(t), _labelled(v)
        assert not (lt & lv).any(), "a pixel is either trained on or held out"
        assert np.array_equal(lt | lv, _labelled(m)) and lt.any() and lv.any()
        assert np.array_equal(v[lv], m[lv]) and np.array_equal(t[lt], m[lt])
    again = hold_out(masks, fraction=0.25, grid=4, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(split.val_masks, again.val_masks, strict=True))
    tiny = np.full((40, 48), 255, np.uint8)
    tiny[5, 5] = 1  # one labelled pixel: nothing to hold out
    assert hold_out([tiny]).held_out.kind == "none"
    assert hold_out(masks, fraction=0.0).held_out.kind == "none"


# --- a scripted demo scenario: the user corrects a few demo frames ----------------------------------
DEMO_SIZE, DEMO_FRAMES = (64, 80), 6


@pytest.fixture(scope="module")
def demo_frames():
    from csknet_studio.core.demo import render_demo_frame

    return [render_demo_frame(0, i, size=DEMO_SIZE, n_frames=DEMO_FRAMES)[0] for i in range(DEMO_FRAMES)]


@pytest.fixture(scope="module")
def demo_model(demo_frames):
    """A tiny model briefly trained on the demo frames, so it starts somewhere worth keeping."""
    from csknet_studio.core.model import create_model

    torch.manual_seed(0)
    m = create_model("csknet-tiny", num_classes=9)
    pre = finetune(m, demo_frames, FinetuneConfig(steps=40, lr=1e-2, batch=3, crop=None, freeze_encoder=False,
                                                  val_fraction=0.0, patience=0, eval_every=40))
    m.load_state_dict(pre.state_dict)
    return m.eval()


def _held_out_miou(model, state, held_out_samples, modes) -> float:
    """The held-out figure recomputed outside finetune: load `state`, predict, score."""
    import copy

    from csknet_studio.core.evaluate import SegMetrics, confusion_matrix
    from csknet_studio.core.model.preprocess import to_tensors
    from csknet_studio.core.modes import Mode

    net = copy.deepcopy(model).eval()
    net.load_state_dict(state)
    k = net.config.num_classes
    scores = []
    with torch.no_grad():
        for mode in map(Mode, modes):
            conf = np.zeros((k, k), np.int64)
            for eo, ir, mask in held_out_samples:
                eo_t, ir_t = to_tensors(eo if mode.uses_eo else None, ir if mode.uses_ir else None,
                                        net.config.input_norm, torch.device("cpu"))
                conf += confusion_matrix(net(eo_t, ir_t).logits.argmax(1)[0].numpy(), mask, k, 255)
            scores.append(SegMetrics(conf).miou)
    return float(np.mean(scores))


@pytest.mark.parametrize("corrected", [3, 5])
def test_defaults_never_lower_the_held_out_figure(demo_model, demo_frames, corrected):
    start = weights_hash(demo_model.state_dict())
    cfg = FinetuneConfig(steps=20, crop=None)
    samples = demo_frames[:corrected]
    res = finetune(demo_model, samples, cfg)
    assert res.held_out.kind == ("regions" if corrected == 3 else "frames")
    _, held, held_out = split_samples(samples, cfg)
    assert held_out == res.held_out
    start_score = _held_out_miou(demo_model, demo_model.state_dict(), held, cfg.modes)
    assert res.before == pytest.approx(start_score)
    returned = _held_out_miou(demo_model, res.state_dict, held, cfg.modes)
    assert returned >= start_score, "the returned weights never score below the start on held-out corrections"
    assert res.improved == (returned > start_score)
    if res.improved:
        assert returned == pytest.approx(res.after) and res.weights_hash != start
    else:
        assert res.weights_hash == start
    # the default trains decoders and heads only
    enc = {k for k in res.trained_state_dict if k.startswith("encoder.")}
    sd = demo_model.state_dict()
    assert enc and all(torch.equal(res.trained_state_dict[k], sd[k]) for k in enc)
    assert weights_hash(demo_model.state_dict()) == start


def test_a_run_that_hurts_is_reported_as_no_gain_and_keeps_the_start(demo_model, demo_frames):
    start = weights_hash(demo_model.state_dict())
    res = finetune(demo_model, demo_frames[:3], FinetuneConfig(steps=20, lr=1.0, crop=None, freeze_encoder=False,
                                                               eval_every=2, patience=3))
    assert not res.improved and res.after < res.before
    assert res.weights_hash == start == weights_hash(res.state_dict)
    assert weights_hash(res.trained_state_dict) != start  # what "accept anyway" would take
    assert res.stopped_early and res.steps_done < 20 and res.validation[-1][0] == res.steps_done
    assert res.summary().startswith("No gain on held-out corrections: ")


def test_scoring_keeps_frozen_batchnorms_frozen(model, frames):
    """A held-out score between steps must leave the BatchNorms fine-tuning froze (freeze_bn, a
    frozen encoder) in eval mode, or their running statistics drift on a few crops after it."""
    from torch import nn

    from csknet_studio.core.evaluate import evaluate
    from csknet_studio.core.finetune import _set_bn_eval
    from csknet_studio.core.finetune_score import _score
    from csknet_studio.core.modes import Mode

    samples = [(f.eo, f.ir, f.label) for f in frames[:2]]
    model.train()
    _set_bn_eval(model)
    model.heads.train()  # a part left training: it must stay so
    before = {name: m.training for name, m in model.named_modules()}
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())
    _score(model, samples, [Mode.BOTH, Mode.IR], torch.device("cpu"), 255, None)
    assert {name: m.training for name, m in model.named_modules()} == before
    evaluate(model, frames[:2], [Mode.BOTH], amp=False)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_default_finetuning_keeps_every_batchnorm_statistic(model, frames):
    """The defaults freeze the encoder and the BatchNorm statistics: after training and scoring
    every few steps, the weights handed back carry the starting running means and variances."""
    start = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    res = finetune(model, frames, FinetuneConfig(steps=6, lr=3e-3, batch=2, crop=(32, 32), eval_every=1,
                                                 patience=0, val_fraction=0.5))
    assert res.steps_done == 6
    for k, v in start.items():
        torch.testing.assert_close(res.trained_state_dict[k], v, rtol=0, atol=0, msg=k)
