"""The training loop: open the data, build the student, restore a resumed run, then epoch by epoch
train, validate and save.

Under `torchrun --nproc_per_node=N -m csknet_studio train --config X.toml` every rank trains on its
DistributedSampler shard, gradients are averaged by DDP, validation confusion matrices are summed
across ranks, and rank 0 alone writes checkpoints. Seeded: on the CPU the same config and world
size give the same weights (on CUDA, to float noise); `--resume` restores model, optimiser,
scheduler, epoch and RNG, so a resumed run continues where it stopped. The order of the steps in
`train` is part of that promise: every step that draws random numbers (model init, teacher,
distillation heads) runs in the same order on a fresh and on a resumed run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from csknet_studio.core.atomic import atomic_write_text
from csknet_studio.core.checkpoint import (
    load_state_dict_checked,
    read_checkpoint,
    save_checkpoint,
    weights_hash,
)
from csknet_studio.core.device import autocast, needs_grad_scaler, precision_label, resolve_device
from csknet_studio.core.distributed import (
    all_reduce_mean,
    barrier,
    broadcast_module_state,
    init_from_env,
    is_distributed,
    is_main,
    rank_and_world,
    rank_device,
    shutdown,
)
from csknet_studio.core.errors import CancelledError, CheckpointError, ConfigError, TrainingError
from csknet_studio.core.losses import ContrastiveDistiller, LossConfig, class_balance_weights, total_loss
from csknet_studio.core.model import create_model, load_imagenet_weights
from csknet_studio.core.model.streams import ExchangeBN
from csknet_studio.core.modes import Mode
from csknet_studio.core.state_dict import clean_state_dict
from csknet_studio.core.training.config import ProgressFn, TrainConfig
from csknet_studio.core.training.data import (
    Loaders,
    SegmentationDataset,
    TrainingData,
    label_pixel_counts,
    labelled_indices,
    open_training_sequence,
    resolve_scheme,
    split_indices,
    steps_per_epoch,
)
from csknet_studio.core.training.ema import WeightAverage, restore_student
from csknet_studio.core.training.guards import check_finite_loss, check_finite_weights
from csknet_studio.core.training.rng import gather_rng, restore_rank_rng, seed_everything
from csknet_studio.core.training.schedule import lr_scheduler, student_optimizer
from csknet_studio.core.training.teacher import prepare_teacher

Say = Callable[[str], None]


@dataclass
class TrainResult:
    output_dir: Path
    epochs_done: int
    best_metric: float
    best_epoch: int
    history: list[dict]
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    weights_hash: str
    final_metrics: dict


class StudentStep(nn.Module):
    """Student + distillation heads + loss in one module, so DDP sees every parameter a step uses
    (the L1 term touches EO gammas even in an IR-only step)."""

    def __init__(self, model: nn.Module, loss_cfg: LossConfig, distiller: ContrastiveDistiller | None):
        super().__init__()
        self.model = model
        self.distiller = distiller
        self.loss_cfg = loss_cfg

    def forward(self, eo, ir, labels, teacher_out=None) -> dict[str, torch.Tensor]:
        out = self.model(eo, ir)
        return total_loss(out, labels, self.model, self.loss_cfg, distiller=self.distiller, teacher_out=teacher_out)


@dataclass
class _Student:
    """The model being trained, its batches, and what updates it (built by `_build_optimisation`)."""

    model: nn.Module
    loaders: Loaders
    steps: int  # optimiser steps per epoch
    teacher: nn.Module | None = None
    distiller: ContrastiveDistiller | None = None
    step_mod: nn.Module | None = None  # StudentStep, DDP-wrapped under torchrun
    params: list[nn.Parameter] = field(default_factory=list)
    opt: torch.optim.Optimizer | None = None
    sched: torch.optim.lr_scheduler.LambdaLR | None = None
    scaler: torch.amp.GradScaler | None = None
    ema: WeightAverage | None = None  # `optim.ema`: the averaged weights, validated and saved

    @property
    def deployed(self) -> nn.Module:
        """The weights validation scores and checkpoints hold: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model


@dataclass
class _Record:
    """What the run has done so far; restored from last.pt on --resume."""

    start_epoch: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    last_metrics: dict = field(default_factory=dict)
    last_written: Path | None = None

    @property
    def best_or_none(self) -> float | None:
        return self.best if math.isfinite(self.best) else None


# --- steps before the first epoch ------------------------------------------------------------------


def _open_data(cfg: TrainConfig, world: int, say: Say) -> tuple[TrainConfig, TrainingData]:
    """Open the sequences, pick the labelled training / validation frames and the class scheme.
    Returns the config with class weights filled in when `loss.class_balance` asks for them."""
    train_seq = open_training_sequence(cfg.resolve(cfg.data.path), cfg.data.split, cfg.data.cache_mb)
    found = getattr(train_seq, "layout", "")
    if cfg.data.layout and found != cfg.data.layout:
        raise ConfigError(f"data.layout = {cfg.data.layout!r} but {cfg.data.path} was detected as {found!r}")
    scheme = resolve_scheme(cfg.data.scheme, train_seq)
    if not getattr(train_seq, "has_labels", True):
        raise TrainingError(f"{cfg.data.path}: the sequence has no ground-truth labels to train on "
                            f"(layout {getattr(train_seq, 'layout', '?')})")
    idx = labelled_indices(train_seq)
    if cfg.data.max_frames:
        idx = idx[: cfg.data.max_frames]
    if cfg.data.val_path or cfg.data.val_split:
        val_seq = open_training_sequence(cfg.resolve(cfg.data.val_path or cfg.data.path), cfg.data.val_split)
        train_idx, val_idx = idx, labelled_indices(val_seq)
    else:
        val_seq = train_seq
        train_idx, val_idx = split_indices(idx, cfg.data.val_fraction)
    if not train_idx:
        raise TrainingError(f"{cfg.data.path}: no labelled frames to train on")
    say(f"data: {len(train_idx)} training / {len(val_idx)} validation frames, scheme {scheme.name} "
        f"({scheme.num_classes} classes), world size {world}")
    data = TrainingData(train_seq, val_seq, train_idx, val_idx, scheme)
    return _with_class_weights(cfg, data, say), data


def _with_class_weights(cfg: TrainConfig, data: TrainingData, say: Say) -> TrainConfig:
    """Class weights from the training labels' pixel counts (`loss.class_balance`), checked against
    the scheme; explicit `loss.class_weights` win."""
    scheme = data.scheme
    if cfg.loss.class_balance != "none" and not cfg.loss.class_weights:
        counts = label_pixel_counts(data.train_seq, data.train_idx, scheme.num_classes, scheme.ignore_index)
        weights = class_balance_weights(counts, cfg.loss.class_balance, cfg.loss.class_balance_power)
        cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, class_weights=weights))
        say(f"class weights ({cfg.loss.class_balance}): "
            + ", ".join(f"{n} {w:.2f}" for n, w in zip(scheme.class_names, weights, strict=True)))
    if cfg.loss.class_weights and len(cfg.loss.class_weights) != scheme.num_classes:
        raise ConfigError(f"loss.class_weights has {len(cfg.loss.class_weights)} values; scheme "
                          f"{scheme.name} has {scheme.num_classes} classes")
    return cfg


def _build_student(cfg: TrainConfig, data: TrainingData, dev: torch.device, resume: bool) -> _Student:
    """The model (ImageNet encoder weights on a fresh run when asked) and its training batches."""
    scheme = data.scheme
    overrides = dict(cfg.model.overrides)
    overrides["num_classes"] = scheme.num_classes
    model = create_model(cfg.model.name, **overrides)
    if cfg.model.pretrained and not resume:
        load_imagenet_weights(model, cfg.resolve(cfg.model.pretrained))
    if cfg.model.init and not resume:
        warm_start(model, cfg.resolve(cfg.model.init))
    model.to(dev)
    dataset = SegmentationDataset(data.train_seq, data.train_idx, model.config.input_norm, cfg.augment,
                                  seed=cfg.seed, num_classes=scheme.num_classes, ignore_index=scheme.ignore_index)
    loaders = Loaders(dataset, cfg.optim.batch, cfg.seed, cfg.optim.num_workers)
    return _Student(model, loaders, steps_per_epoch(loaders, cfg.max_steps_per_epoch))


# Parameters a warm start may find missing and seed: solo BN scales and shifts (ModalBatchNorm).
SEEDED_SUFFIXES = (".solo_weight", ".solo_bias")


def warm_start(model: nn.Module, path: Path) -> list[str]:
    """`model.init`: another run's weights start this one. The solo BN scales and shifts that a
    checkpoint made without `solo_affine` lacks are seeded from its paired ones
    (`ExchangeBN.seed_solo_affine`); any other missing, unexpected or misshapen key is refused.
    Returns the seeded keys."""
    payload = read_checkpoint(path, map_location="cpu")
    state = clean_state_dict(payload["state_dict"])
    own = model.state_dict()
    seeded = [k for k in own if k not in state and k.endswith(SEEDED_SUFFIXES)]
    load_state_dict_checked(model, {**{k: own[k] for k in seeded}, **state}, source=f"model.init {path}")
    sites = {k.rsplit(".", 2)[0] for k in seeded}  # encoder.layer2.0.bn1 (.eo.solo_weight)
    for name, module in model.named_modules():
        if name in sites and isinstance(module, ExchangeBN):
            module.seed_solo_affine()
    return seeded


def _read_resume_state(model: nn.Module, last_path: Path) -> dict:
    """Load last.pt's weights into `model`; return its training state (optimiser, epoch, RNG, ...)."""
    if not last_path.is_file():
        raise CheckpointError(f"--resume: no {last_path} to resume from")
    payload = read_checkpoint(last_path, map_location="cpu")
    state = payload.get("training_state")
    if not state:
        raise CheckpointError(f"--resume: {last_path} carries no training state")
    load_state_dict_checked(model, payload["state_dict"], source=f"checkpoint {last_path}")
    return state


def _build_optimisation(cfg: TrainConfig, s: _Student, dev: torch.device) -> None:
    """Distillation heads (when a teacher is there and the contrastive term is on), the DDP-wrapped
    step, the optimiser, the per-step lr schedule and the loss scaler."""
    if s.teacher is not None and cfg.loss.contrastive > 0:
        s.distiller = ContrastiveDistiller.for_models(s.model, s.teacher, cfg.loss).to(dev)
    s.step_mod = StudentStep(s.model, cfg.loss, s.distiller)
    if is_distributed():
        s.step_mod = DDP(s.step_mod, find_unused_parameters=True)
    s.params, s.opt = student_optimizer(s.model, s.distiller, cfg.optim)
    s.sched = lr_scheduler(s.opt, cfg.optim, cfg.optim.epochs * s.steps, round(cfg.optim.warmup_epochs * s.steps))
    s.scaler = torch.amp.GradScaler(dev.type, enabled=needs_grad_scaler(dev, cfg.optim.amp))
    if cfg.optim.ema > 0:
        s.ema = WeightAverage(s.model, cfg.optim.ema)  # on --resume, last.pt's weights: the average


def _restore(s: _Student, state: dict | None, rank: int, last_path: Path, say: Say) -> _Record:
    """Optimiser, schedule, scaler, history and this rank's RNG from a resumed run's state."""
    record = _Record(last_written=last_path if last_path.is_file() else None)
    if state is None:
        return record
    s.opt.load_state_dict(state["optimizer"])
    s.sched.load_state_dict(state["scheduler"])
    if s.distiller is not None and state.get("distiller"):
        s.distiller.load_state_dict(state["distiller"])
    if state.get("scaler"):
        s.scaler.load_state_dict(state["scaler"])
    record.start_epoch = int(state["epoch"])
    record.best = float(state["best"]) if state.get("best") is not None else -math.inf
    record.best_epoch = int(state.get("best_epoch", 0))
    record.history = json.loads(state.get("history", "[]"))
    record.last_metrics = record.history[-1].get("val", {}) if record.history else {}
    restore_student(s.model, s.ema, state, str(last_path))
    restore_rank_rng(state["rng"], rank)
    say(f"resumed from {last_path} after epoch {record.start_epoch}")
    return record


# --- one epoch -------------------------------------------------------------------------------------


def _step_mode(rng: random.Random, p_ir: float, p_eo: float) -> Mode:
    """Which modalities this step sees: IR only, EO only, or both (modality dropout)."""
    u = rng.random()
    if u < p_ir:
        return Mode.IR
    if u < p_ir + p_eo:
        return Mode.EO
    return Mode.BOTH


def _train_step(cfg: TrainConfig, s: _Student, batch: dict, mode: Mode, dev: torch.device,
                where: str) -> torch.Tensor:
    """One optimiser step on `batch` with the modalities of `mode`; returns the loss."""
    eo, ir = (None if t is None else t.to(dev, non_blocking=True) for t in mode.keep(batch["eo"], batch["ir"]))
    labels = batch["label"].to(dev, non_blocking=True)
    with autocast(dev, enabled=cfg.optim.amp, cpu_bf16=cfg.optim.cpu_bf16):
        t_out = None
        if s.teacher is not None and eo is not None:
            with torch.no_grad():
                t_out = s.teacher(eo)
        terms = s.step_mod(eo, ir, labels, t_out)
    loss = terms["total"]
    check_finite_loss(loss, where)
    s.opt.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    if cfg.optim.grad_clip > 0:
        s.scaler.unscale_(s.opt)
        torch.nn.utils.clip_grad_norm_(s.params, cfg.optim.grad_clip)
    s.scaler.step(s.opt)
    s.scaler.update()
    check_finite_weights(s.params, where)
    s.sched.step()
    if s.ema is not None:
        s.ema.update(s.model)
    return loss


def _train_epoch(cfg: TrainConfig, s: _Student, epoch: int, dev: torch.device, record: _Record,
                 progress: ProgressFn | None, cancel: Callable[[], bool] | None) -> dict[str, Any]:
    """Train one epoch; returns its history entry (epoch, mean loss over ranks, lr)."""
    s.model.train()
    mode_rng = random.Random(cfg.seed * 1_000_003 + epoch)  # same modes on every rank
    running, count = 0.0, 0
    total_steps = cfg.optim.epochs * s.steps
    for i, batch in enumerate(s.loaders.epoch(epoch)):
        if i >= s.steps:
            break
        if cancel is not None and cancel():
            raise CancelledError(f"training cancelled in epoch {epoch + 1}; "
                                 f"{record.last_written or 'no checkpoint'} holds the last saved epoch")
        mode = _step_mode(mode_rng, cfg.modality_dropout, cfg.eo_only_dropout)
        loss = _train_step(cfg, s, batch, mode, dev, f"epoch {epoch + 1} step {i + 1}")
        running += float(loss.item())
        count += 1
        if progress is not None:
            progress("train", epoch * s.steps + i + 1, total_steps,
                     {"epoch": epoch + 1, "loss": float(loss.item()), "lr": s.opt.param_groups[0]["lr"],
                      "mode": mode.value})
    broadcast_module_state(s.model)  # every rank validates / saves rank 0's BN statistics
    if s.ema is not None:
        broadcast_module_state(s.ema.module)
    check_finite_weights(s.deployed.state_dict().values(), f"epoch {epoch + 1}")
    return {"epoch": epoch + 1, "loss": all_reduce_mean(running / max(1, count)), "lr": s.opt.param_groups[0]["lr"]}


def _validate(cfg: TrainConfig, s: _Student, data: TrainingData, entry: dict[str, Any], record: _Record,
              dev: torch.device, progress: ProgressFn | None, say: Say) -> bool:
    """Validate when this epoch is due (every `val_every`, and the last); record the metrics in
    `entry` and `record`. Returns True when `select_mode`'s mIoU is the best so far."""
    epoch = entry["epoch"]
    if not (data.val_idx and (epoch % cfg.val_every == 0 or epoch == cfg.optim.epochs)):
        say(f"epoch {epoch}: loss {entry['loss']:.4f}")
        return False
    val_modes = [Mode(m) for m in cfg.val_modes]
    res = data.evaluate(s.deployed, val_modes, dev, batch=cfg.val_batch, amp=cfg.optim.amp,
                        progress=(lambda d, t, e=epoch: progress("val", d, t, {"epoch": e}))
                        if progress is not None else None)
    entry["val"] = record.last_metrics = data.metrics_dict(res)
    score = res[Mode(cfg.select_mode)].miou
    improved = math.isfinite(score) and score > record.best
    if improved:
        record.best, record.best_epoch = score, epoch
    say(f"epoch {epoch}: loss {entry['loss']:.4f}, val mIoU "
        + ", ".join(f"{m.label} {100 * res[m].miou:.1f}" for m in val_modes))
    return improved


def _save(cfg: TrainConfig, s: _Student, data: TrainingData, record: _Record, epoch: int, world: int,
          improved: bool) -> None:
    """last.pt (every `checkpoint_every` epochs and the last, with the resume state), best.pt (on
    improvement, or at the end without validation) and history.json; rank 0 writes, all ranks wait."""
    out_dir = cfg.out_path
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    metrics = {"epoch": epoch, "val": record.last_metrics, "best_epoch": record.best_epoch,
               "best_" + cfg.select_mode + "_miou": record.best_or_none}
    is_last = epoch == cfg.optim.epochs
    rng_all = gather_rng()  # a collective: every rank takes part, saving or not
    save_last = epoch % cfg.checkpoint_every == 0 or is_last
    if save_last:
        record.last_written = last_path  # every rank reports it; rank 0 writes it before the barrier
    if is_main():
        if save_last:
            tstate = {
                "optimizer": s.opt.state_dict(), "scheduler": s.sched.state_dict(),
                "distiller": s.distiller.state_dict() if s.distiller is not None else {},
                "scaler": s.scaler.state_dict() if s.scaler.is_enabled() else {},
                "epoch": epoch, "best": record.best_or_none,
                "best_epoch": record.best_epoch, "history": json.dumps(record.history), "rng": rng_all,
                "world_size": world,
            }
            if s.ema is not None:
                tstate.update(s.ema.resume_entries(s.model))
            save_checkpoint(last_path, s.deployed, scheme=data.scheme, metrics=metrics, train_config=cfg.to_dict(),
                            training_state=tstate)
        if improved or (not data.val_idx and is_last):
            save_checkpoint(best_path, s.deployed, scheme=data.scheme, metrics=metrics, train_config=cfg.to_dict())
        atomic_write_text(out_dir / "history.json", json.dumps(record.history, indent=2))
    barrier()


# --- the run ---------------------------------------------------------------------------------------


def train(cfg: TrainConfig, progress: ProgressFn | None = None, *, resume: bool = False,
          device: str | None = None, log: Say | None = None,
          cancel: Callable[[], bool] | None = None, stop_after_epoch: int | None = None) -> TrainResult:
    """Run a whole training (teacher first when distillation needs one). DDP-aware.

    Writes to `cfg.output_dir`: last.pt (every `checkpoint_every` epochs and at the end; carries the
    resume state), best.pt (best validation mIoU of `select_mode`), teacher.pt, history.json,
    config.json. With `resume=True` continues from last.pt.

    cancel: checked before every step; when it returns True a CancelledError is raised (last.pt keeps
    the last completed checkpointed epoch, so `--resume` picks up from there). stop_after_epoch: end
    early after that epoch, as an interrupted run would, with the schedule of the full run.
    """
    say = log or (lambda s: None)
    dev = resolve_device(device or cfg.device)
    started = init_from_env(dev)
    try:
        dev = rank_device(dev)
        rank, world = rank_and_world()
        out_dir = cfg.out_path
        last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
        seed_everything(cfg.seed)
        cfg, data = _open_data(cfg, world, say)
        say(f"device {dev}, {precision_label(dev, cfg.optim.amp, cfg.optim.cpu_bf16)}")
        s = _build_student(cfg, data, dev, resume)
        state = _read_resume_state(s.model, last_path) if resume else None  # before the teacher: it may come from it
        s.teacher = prepare_teacher(cfg, state is not None, s.model.config, s.loaders, data, dev, progress, say)
        _build_optimisation(cfg, s, dev)
        record = _restore(s, state, rank, last_path, say)
        if record.start_epoch >= cfg.optim.epochs:
            say(f"nothing to do: {record.start_epoch} of {cfg.optim.epochs} epochs already done")
        if is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))

        for epoch in range(record.start_epoch, cfg.optim.epochs):
            entry = _train_epoch(cfg, s, epoch, dev, record, progress, cancel)
            improved = _validate(cfg, s, data, entry, record, dev, progress, say)
            record.history.append(entry)
            _save(cfg, s, data, record, epoch + 1, world, improved)
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
        return TrainResult(
            output_dir=out_dir, epochs_done=len(record.history),
            best_metric=record.best if math.isfinite(record.best) else float("nan"), best_epoch=record.best_epoch,
            history=record.history, last_checkpoint=record.last_written,
            best_checkpoint=best_path if best_path.is_file() else None,
            weights_hash=weights_hash(s.deployed.state_dict()), final_metrics=record.last_metrics,
        )
    finally:
        shutdown(started)
