"""The EO teacher a run distils from: trained first (CE on EO only), or loaded from a teacher file.

The teacher file's format lives beside the checkpoint's (core/checkpoint.py: save_teacher /
load_teacher); this module decides which teacher a run uses and trains one when it must.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from csknet_studio.core.atomic import atomic_write_text
from csknet_studio.core.checkpoint import load_teacher, save_teacher
from csknet_studio.core.device import autocast, needs_grad_scaler
from csknet_studio.core.distributed import broadcast_module_state, is_distributed, is_main
from csknet_studio.core.losses import LossConfig, segmentation_loss
from csknet_studio.core.model import CSKNetConfig, create_teacher, load_imagenet_weights
from csknet_studio.core.model.teacher import freeze
from csknet_studio.core.modes import Mode
from csknet_studio.core.training.config import ProgressFn, TrainConfig
from csknet_studio.core.training.data import Loaders, TrainingData, steps_per_epoch
from csknet_studio.core.training.guards import check_finite_loss, check_finite_weights
from csknet_studio.core.training.schedule import lr_scheduler, make_optimizer


class TeacherStep(nn.Module):
    """Teacher + its CE loss in one module, so DDP wraps the whole step."""

    def __init__(self, teacher: nn.Module, loss_cfg: LossConfig):
        super().__init__()
        self.teacher = teacher
        self.loss_cfg = loss_cfg

    def forward(self, eo, labels) -> dict[str, torch.Tensor]:
        loss = segmentation_loss(self.teacher(eo).logits, labels, self.loss_cfg)
        return {"ce_teacher": loss, "total": loss}


def train_teacher(cfg: TrainConfig, loaders: Loaders, model_cfg: CSKNetConfig, device: torch.device,
                  progress: ProgressFn | None) -> nn.Module:
    """Train the EO teacher for `teacher.epochs` and write `teacher.pt` (rank 0) into the run folder."""
    overrides = {"backbone": cfg.teacher.backbone} if cfg.teacher.backbone else {}
    teacher = create_teacher(model_cfg, **overrides).to(device)
    if cfg.model.pretrained:
        load_imagenet_weights(teacher, cfg.resolve(cfg.model.pretrained))
    step_mod: nn.Module = TeacherStep(teacher, cfg.loss)
    if is_distributed():
        step_mod = DDP(step_mod)
    opt = make_optimizer(teacher.parameters(), cfg.optim, cfg.teacher.lr or cfg.optim.lr)
    steps = steps_per_epoch(loaders, cfg.max_steps_per_epoch)
    total = cfg.teacher.epochs * steps
    sched = lr_scheduler(opt, cfg.optim, total)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, cfg.optim.amp))
    teacher.train()
    for epoch in range(cfg.teacher.epochs):
        for i, batch in enumerate(loaders.epoch(10_000 + epoch)):
            if i >= steps:
                break
            eo, labels = batch["eo"].to(device), batch["label"].to(device)
            with autocast(device, enabled=cfg.optim.amp, cpu_bf16=cfg.optim.cpu_bf16):
                loss = step_mod(eo, labels)["total"]
            check_finite_loss(loss, f"teacher epoch {epoch + 1} step {i + 1}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            check_finite_weights(teacher.parameters(), f"teacher epoch {epoch + 1} step {i + 1}")
            sched.step()
            if progress is not None:
                progress("teacher", epoch * steps + i + 1, total, {"epoch": epoch + 1, "loss": float(loss.item())})
    broadcast_module_state(teacher)
    check_finite_weights(teacher.state_dict().values(), f"teacher after {cfg.teacher.epochs} epoch(s)")
    if is_main():
        save_teacher(cfg.out_path / "teacher.pt", teacher)
    return teacher


def prepare_teacher(cfg: TrainConfig, resumed: bool, model_cfg: CSKNetConfig, loaders: Loaders,
                    data: TrainingData, device: torch.device, progress: ProgressFn | None,
                    say: Callable[[str], None]) -> nn.Module | None:
    """The frozen teacher this run distils from, or None when the loss needs none.

    Order: teacher.checkpoint, the resumed run's own teacher.pt, a freshly trained one. A new
    teacher's validation score (EO) goes to teacher_metrics.json beside the student's.
    """
    if not cfg.loss.needs_teacher:
        return None
    out_dir = cfg.out_path
    if cfg.teacher.checkpoint:
        teacher = load_teacher(cfg.resolve(cfg.teacher.checkpoint), device)
    elif resumed and (out_dir / "teacher.pt").is_file():
        teacher = load_teacher(out_dir / "teacher.pt", device)
    elif cfg.teacher.epochs > 0:
        say(f"teacher: training the EO teacher for {cfg.teacher.epochs} epoch(s)")
        teacher = train_teacher(cfg, loaders, model_cfg, device, progress)
    else:
        say("teacher: none (teacher.epochs = 0 and no teacher.checkpoint); distillation off")
        return None
    freeze(teacher)
    if data.val_idx and not resumed:  # the teacher's own score, beside the student's EO branch
        t_res = data.evaluate(teacher, [Mode.EO], device, batch=cfg.val_batch, amp=cfg.optim.amp)
        say(f"teacher: val mIoU (EO) {100 * t_res[Mode.EO].miou:.1f}")
        if is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_dir / "teacher_metrics.json", json.dumps(data.metrics_dict(t_res), indent=2))
    return teacher
