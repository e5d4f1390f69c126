"""Fine-tuning from the user's corrections: the GUI's "teach the model" button.

    result = finetune(model, samples, FinetuneConfig(steps=50), progress=cb, cancel=flag.is_set)
    if result.improved:
        predictor.set_state_dict(result.state_dict)        # only when the user accepts

It only ever improves what it touches, judged on corrections it never trained on:
- Part of the corrections is held out (`core.holdout`: whole frames when there are enough, regions
  inside the frames when there are 1-3) and scored before training and every `eval_every` steps.
- The best-scoring weights are kept, and training stops once `patience` scores in a row bring no
  gain. `result.state_dict` is never worse on the held-out part than the start: when no step beat
  the start, `improved` is False and `state_dict` holds the starting weights. The best weights
  training reached are still in `trained_state_dict`, for a user who accepts them anyway.
- By default only the decoders and heads learn (everything outside `model.encoder`), with
  BatchNorm statistics frozen and a learning rate suited to a handful of frames.

Guarantees the GUI relies on:
- `model` is never touched: training runs on a deep copy; the caller decides whether to load
  `result.state_dict`.
- Cancelling (`cancel()` returns True, checked before every step) raises CancelledError; the live
  weights are unchanged because they were never modified.
- A non-finite loss or non-finite weights raise TrainingError and return no weights; so does a set
  of samples without a single labelled pixel.
Works under torchrun too: each rank samples its own crops, DDP averages gradients, the held-out
frames are scored in shards and the counts summed, so every rank keeps the same best state.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from csknet_studio.core.checkpoint import weights_hash
from csknet_studio.core.device import resolve_device
from csknet_studio.core.distributed import (
    all_reduce_mean,
    broadcast_module_state,
    is_distributed,
    rank_and_world,
)
from csknet_studio.core.errors import CancelledError, ConfigError, TrainingError
from csknet_studio.core.finetune_data import Sample, _as_sample, _make_batch, _whole_frame_samples
from csknet_studio.core.finetune_score import _mean, _score
from csknet_studio.core.frames import FramePair
from csknet_studio.core.holdout import HeldOut, Split, hold_out
from csknet_studio.core.losses import LossConfig, total_loss
from csknet_studio.core.model.preprocess import InputNorm
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import model_lock
from csknet_studio.core.state_dict import cpu_state_dict

ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class FinetuneConfig:
    """steps: optimiser steps at most (early stopping may end sooner); lr: AdamW learning rate;
    modes: cycled step by step (train what the user will run); crop: (H, W) crops centred near
    labelled pixels (corrections are often small), None = whole frames (samples must then share a
    size); freeze_encoder: train decoders and heads only (a few frames cannot retrain the encoder
    without forgetting); freeze_bn: keep BatchNorm running statistics (a handful of samples would
    wreck them); num_classes: switch to a new class scheme (new head, encoder kept; see
    `replace_head`); l1: the exchange sparsity weight (0 keeps exchanged channels as they are).

    Validation: val_fraction of the corrections is held out (0: none; then the scores are on the
    training corrections and say nothing about other frames); frame_split_min: from this many
    corrected frames on, whole frames are held out, else regions inside each frame (region_grid x
    region_grid cells over the labelled extent); eval_every: steps between held-out scores;
    patience: scores in a row without a new best before stopping (0: never stop early); min_gain:
    held-out mIoU gain (0-1) the best weights need over the start to count as improved.
    evaluate=False skips every score (scripts that judge the weights themselves): the final
    weights are returned unchecked and `improved` is False.
    """

    steps: int = 50
    lr: float = 3e-4
    batch: int = 2
    modes: tuple[str, ...] = ("both", "ir")
    crop: tuple[int, int] | None = (256, 256)
    flip: bool = True
    freeze_encoder: bool = True
    freeze_bn: bool = True
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    l1: float = 0.0
    num_classes: int | None = None
    seed: int = 0
    device: str | None = None  # None = the model's device
    evaluate: bool = True
    val_fraction: float = 0.25
    frame_split_min: int = 4
    region_grid: int = 4
    eval_every: int = 5
    patience: int = 4
    min_gain: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1:
            raise ConfigError("finetune: steps must be >= 0 and batch >= 1")
        if not self.lr > 0:
            raise ConfigError(f"finetune: lr must be > 0, got {self.lr}")
        try:
            modes = tuple(Mode(m).value for m in self.modes)
        except ValueError:
            raise ConfigError(f"finetune: modes must be among both / ir / eo, got {list(self.modes)}") from None
        if not modes:
            raise ConfigError("finetune: at least one mode")
        object.__setattr__(self, "modes", modes)
        if self.crop is not None:
            crop = tuple(int(v) for v in self.crop)
            if len(crop) != 2 or min(crop) < 16:
                raise ConfigError(f"finetune: crop must be (H, W) >= 16, got {self.crop!r}")
            object.__setattr__(self, "crop", crop)
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"finetune: val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.eval_every < 1 or self.patience < 0 or self.region_grid < 2 or self.frame_split_min < 2:
            raise ConfigError("finetune: eval_every >= 1, patience >= 0, region_grid >= 2, frame_split_min >= 2")
        if not self.min_gain >= 0:
            raise ConfigError(f"finetune: min_gain must be >= 0, got {self.min_gain}")


@dataclass
class FinetuneResult:
    """What a run produced. before / after: held-out mIoU (0-1, mean over `config.modes`) of the
    starting weights and of the best weights training reached (NaN when evaluation was off).
    improved: after beat before (by `min_gain`). state_dict (CPU tensors): the weights to use,
    the best trained ones when improved, else the starting ones; trained_state_dict: the best
    trained weights either way (what "accept anyway" takes). weights_hash / trained_weights_hash:
    of state_dict / trained_state_dict (what a session records once they are in use)."""

    state_dict: dict[str, torch.Tensor]
    losses: list[float]
    before: float
    after: float
    improved: bool
    held_out: HeldOut
    steps_done: int
    seconds: float
    before_per_mode: dict[str, float] = field(default_factory=dict)
    after_per_mode: dict[str, float] = field(default_factory=dict)
    trained_state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    best_step: int = 0  # the step trained_state_dict comes from (0: none was scored)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out mIoU)
    stopped_early: bool = False
    num_classes: int = 0
    model_config: dict = field(default_factory=dict)
    weights_hash: str = ""
    trained_weights_hash: str = ""

    @property
    def gain(self) -> float:
        """after - before (held-out mIoU, 0-1)."""
        return self.after - self.before

    def summary(self, labels: Sequence[str] | None = None) -> str:
        """One line: the held-out figures and what they mean for the weights."""
        where = self.held_out.describe(labels)
        figures = f"before {100 * self.before:.1f} % / after {100 * self.after:.1f} %"
        if self.improved:
            return f"Held-out corrections ({where}): {figures}."
        return (f"No gain on held-out corrections: {figures} ({where}); "
                "the starting weights are kept unless you force the trained ones.")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """A copy of `model` for `num_classes`: encoder, decoders and fusion kept, every classifier
    freshly initialised (`CSKNet.replace_classifiers`). `model` is not modified."""
    if int(num_classes) < 1:
        raise ConfigError(f"replace_head: num_classes must be >= 1, got {num_classes}")
    new = copy.deepcopy(model)
    before = {k: v.shape for k, v in new.state_dict().items()}
    new.replace_classifiers(int(num_classes))
    new.reinitialised = sorted(k for k, v in new.state_dict().items()  # type: ignore[attr-defined]
                               if k not in before or before[k] != v.shape or "classifier" in k or k.startswith("heads."))
    return new.train(model.training)


def _set_bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _check_finite(state: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise TrainingError(f"fine-tuning produced non-finite weights ({', '.join(bad[:3])}); "
                            "lower the learning rate — the model's weights are unchanged")


def split_samples(samples: Sequence[Sample | FramePair], config: FinetuneConfig | None = None,
                  ignore_index: int = 255) -> tuple[list[Sample], list[Sample], HeldOut]:
    """The (train, held-out) samples `finetune` would use, and what was held out (for a preview)."""
    cfg = config or FinetuneConfig()
    data = [_as_sample(s) for s in samples]
    split = _split(data, cfg, ignore_index)
    return _part(data, split.train_masks), _part(data, split.val_masks), split.held_out


def _split(data: list[Sample], cfg: FinetuneConfig, ignore: int) -> Split:
    fraction = cfg.val_fraction if cfg.evaluate else 0.0
    return hold_out([np.asarray(m) for _, _, m in data], fraction=fraction, frame_split_min=cfg.frame_split_min,
                    grid=cfg.region_grid, seed=cfg.seed, ignore=ignore)


def _part(data: list[Sample], masks: list[np.ndarray], ignore: int = 255) -> list[Sample]:
    return [(eo, ir, m) for (eo, ir, _), m in zip(data, masks, strict=True) if (m != ignore).any()]


def finetune(model: nn.Module, samples: Sequence[Sample | FramePair], config: FinetuneConfig | None = None, *,
             progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
             ignore_index: int = 255) -> FinetuneResult:
    """Train a copy of `model` on (eo, ir, mask) samples (mask: class ids, 255 = ignore), judged on
    the held-out part of the masks (see the module docstring).

    Raises TrainingError (non-finite loss / weights, no labelled pixel, modality missing for a
    mode), CancelledError (cancel() returned True). `model` is never modified.
    """
    cfg = config or FinetuneConfig()
    t0 = time.perf_counter()
    data, modes = _checked_samples(samples, cfg, ignore_index)
    work, device = _working_copy(model, cfg, data, ignore_index)
    split, train_data, val_data, cfg = _split_for_training(data, cfg, ignore_index)

    def score() -> dict[str, float]:
        return _score(work, val_data, modes, device, ignore_index, cancel) if cfg.evaluate else {}

    start_state = cpu_state_dict(work)
    before = score()
    run = _start_training(work, train_data, modes, device, cfg, ignore_index)
    best = _BestSoFar(before=_mean(before))
    for step in range(cfg.steps):
        value = _train_step(run, step, cancel)
        if progress is not None:
            progress(step + 1, cfg.steps, value)
        if not cfg.evaluate or ((step + 1) % cfg.eval_every and step + 1 != cfg.steps):
            continue
        broadcast_module_state(work)  # BN running statistics drift per rank; score rank 0's everywhere
        best.update(step + 1, score(), work)
        if cfg.patience and best.stale >= cfg.patience and step + 1 < cfg.steps:
            best.stopped_early = True
            break
    return _finish(run, best, start_state, before, split.held_out, t0)


def _checked_samples(samples: Sequence[Sample | FramePair], cfg: FinetuneConfig,
                     ignore: int) -> tuple[list[Sample], list[Mode]]:
    """The samples as (eo, ir, mask) and the modes to train, refusing what cannot train at all."""
    data = [_as_sample(s) for s in samples]
    if not data:
        raise TrainingError("fine-tuning needs at least one sample")
    if not any(bool((np.asarray(m) != ignore).any()) for _, _, m in data):
        raise TrainingError("fine-tuning samples have no labelled pixel (every mask is 'unlabelled')")
    modes = [Mode(m) for m in cfg.modes]
    for mode in modes:
        for i, (eo, ir, _) in enumerate(data):
            if (mode.uses_eo and eo is None) or (mode.uses_ir and ir is None):
                raise TrainingError(f"fine-tuning in mode {mode.value!r} needs "
                                    f"{'EO' if mode.uses_eo and eo is None else 'IR'} in sample {i}")
    return data, modes


def _working_copy(model: nn.Module, cfg: FinetuneConfig, data: list[Sample],
                  ignore: int) -> tuple[nn.Module, torch.device]:
    """The copy that trains (on the configured device, with a new head for a new class count) and
    its device; the masks' class ids must fit that head."""
    try:
        model_device = next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        model_device = torch.device("cpu")
    device = resolve_device(cfg.device) if cfg.device else model_device
    with model_lock(model):  # the live model: a weight swap on the inference thread waits for the copy
        work = copy.deepcopy(model)
    work = work.to(device)
    if cfg.num_classes is not None and cfg.num_classes != work.config.num_classes:
        work = replace_head(work, cfg.num_classes)
    k = int(work.config.num_classes)
    too_big = [int(m[m != ignore].max()) for _, _, m in data if (m != ignore).any()]
    if too_big and max(too_big) >= k:
        raise TrainingError(f"a mask holds class id {max(too_big)} but the model predicts {k} classes")
    return work, device


def _split_for_training(data: list[Sample], cfg: FinetuneConfig,
                        ignore: int) -> tuple[Split, list[Sample], list[Sample], FinetuneConfig]:
    """The held-out split, the training and held-out samples, and the config with the crop cut
    down to frames smaller than it (crop the frame, do not pad it to the crop)."""
    split = _split(data, cfg, ignore)
    train_data = _part(data, split.train_masks, ignore)
    val_data = _part(data, split.val_masks, ignore)
    if cfg.crop is not None:
        crop = (min(cfg.crop[0], min(m.shape[0] for _, _, m in train_data)),
                min(cfg.crop[1], min(m.shape[1] for _, _, m in train_data)))
        if crop != cfg.crop and min(crop) >= 16:
            cfg = dataclasses.replace(cfg, crop=crop)
    return split, train_data, val_data, cfg


@dataclass
class _Training:
    """What every optimiser step needs: the working copy and its DDP wrapper, the optimiser, the
    frames crops come from (IR already normalised per frame) and the random stream that picks them."""

    cfg: FinetuneConfig
    work: nn.Module
    net: nn.Module
    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    loss_cfg: LossConfig
    modes: list[Mode]
    device: torch.device
    rng: np.random.Generator
    world: int
    batch_data: list[Sample]
    batch_norm: InputNorm
    ignore: int
    losses: list[float] = field(default_factory=list)


def _build_optimiser(work: nn.Module, cfg: FinetuneConfig) -> tuple[list[nn.Parameter], torch.optim.Optimizer]:
    """AdamW over what learns: everything, or everything outside the encoder when it is frozen."""
    if cfg.freeze_encoder:
        for p in work.encoder.parameters():
            p.requires_grad_(False)
    params = [p for p in work.parameters() if p.requires_grad]
    return params, torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _start_training(work: nn.Module, train_data: list[Sample], modes: list[Mode], device: torch.device,
                    cfg: FinetuneConfig, ignore: int) -> _Training:
    """Optimiser, DDP wrapper, this rank's random stream, and train mode with the frozen parts'
    BatchNorm statistics kept."""
    params, opt = _build_optimiser(work, cfg)
    loss_cfg = LossConfig(l1=cfg.l1, contrastive=0.0, kd=0.0, ignore_index=ignore)
    rank, world = rank_and_world()
    net: nn.Module = DDP(work, find_unused_parameters=True) if is_distributed() else work
    rng = np.random.default_rng([cfg.seed, rank])
    work.train()
    if cfg.freeze_bn:
        _set_bn_eval(work)
    if cfg.freeze_encoder:
        work.encoder.eval()  # a frozen encoder keeps its BatchNorm statistics too
    batch_data, batch_norm = _whole_frame_samples(train_data, work.config.input_norm)
    return _Training(cfg=cfg, work=work, net=net, params=params, opt=opt, loss_cfg=loss_cfg, modes=modes,
                     device=device, rng=rng, world=world, batch_data=batch_data, batch_norm=batch_norm,
                     ignore=ignore)


def _train_step(run: _Training, step: int, cancel: Callable[[], bool] | None) -> float:
    """One optimiser step on a fresh batch of crops; returns its loss (averaged over ranks)."""
    cfg = run.cfg
    if cancel is not None and cancel():
        raise CancelledError(f"fine-tuning cancelled after {step} of {cfg.steps} steps; weights unchanged")
    mode = run.modes[step % len(run.modes)]
    n = len(run.batch_data)
    picks = run.rng.choice(n, size=cfg.batch, replace=n < cfg.batch)
    eo, ir, labels = _make_batch(run.batch_data, picks, cfg, mode, run.batch_norm, run.device, run.rng, run.ignore)
    out = run.net(eo, ir)
    loss = total_loss(out, labels, run.work, run.loss_cfg)["total"]
    bad = 0.0 if bool(torch.isfinite(loss.detach())) else 1.0
    if is_distributed():
        bad = all_reduce_mean(bad)
    if bad:
        raise TrainingError(f"fine-tuning step {step + 1}: loss is not finite ({loss.item()!r}); "
                            "lower the learning rate — the model's weights are unchanged")
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.opt.step()
    value = all_reduce_mean(float(loss.item())) if run.world > 1 else float(loss.item())
    run.losses.append(value)
    return value


@dataclass
class _BestSoFar:
    """The best held-out score so far, the weights that reached it, and how many scores in a row
    brought no gain over both it and the start (what early stopping counts)."""

    before: float
    score: float = -math.inf
    state: dict[str, torch.Tensor] | None = None
    step: int = 0
    per_mode: dict[str, float] = field(default_factory=dict)
    stale: int = 0
    stopped_early: bool = False
    validation: list[tuple[int, float]] = field(default_factory=list)

    def update(self, step: int, per_mode: dict[str, float], work: nn.Module) -> None:
        now = _mean(per_mode)
        self.validation.append((step, now))
        to_beat = self.before if self.state is None else max(self.score, self.before)
        if self.state is None or now > self.score:
            self.score, self.state, self.step, self.per_mode = now, cpu_state_dict(work), step, per_mode
        self.stale = 0 if now > to_beat else self.stale + 1


def _finish(run: _Training, best: _BestSoFar, start_state: dict[str, torch.Tensor], before: dict[str, float],
            held_out: HeldOut, t0: float) -> FinetuneResult:
    """Choose the weights to hand back (the best trained ones only when they beat the start) and
    say what the run did."""
    cfg, work, losses = run.cfg, run.work, run.losses
    broadcast_module_state(work)
    final_state = cpu_state_dict(work)
    _check_finite(final_state)
    before_mean, best_step = best.before, best.step
    if not cfg.evaluate:
        trained, after, after_per_mode, improved, best_step = final_state, float("nan"), {}, False, len(losses)
        chosen = final_state
    elif best.state is None:  # no step ran
        trained, after, after_per_mode, improved = start_state, before_mean, dict(before), False
        chosen = start_state
    else:
        trained, after, after_per_mode = best.state, best.score, best.per_mode
        improved = bool(math.isfinite(after) and math.isfinite(before_mean) and after > before_mean + cfg.min_gain)
        chosen = trained if improved else start_state
    return FinetuneResult(
        state_dict=chosen,
        losses=losses,
        before=before_mean,
        after=after,
        improved=improved,
        held_out=held_out,
        steps_done=len(losses),
        seconds=time.perf_counter() - t0,
        before_per_mode=before,
        after_per_mode=after_per_mode,
        trained_state_dict=trained,
        best_step=best_step,
        validation=best.validation,
        stopped_early=best.stopped_early,
        num_classes=int(work.config.num_classes),
        model_config=work.config.to_dict(),
        weights_hash=weights_hash(chosen),
        trained_weights_hash=weights_hash(trained),
    )
