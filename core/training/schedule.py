"""Learning-rate schedule and optimiser set-up, shared by the student and the teacher."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from csknet_studio.core.training.config import OptimConfig


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int, power: float = 0.9) -> Callable[[int], float]:
    """Multiplier of the base lr at optimiser step `i`: linear warm-up then poly / cosine / constant."""

    def f(i: int) -> float:
        if warmup_steps > 0 and i < warmup_steps:
            return (i + 1) / warmup_steps
        t = min(1.0, (i - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "poly":
            return max(0.0, 1.0 - t) ** power
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    return f


def lr_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int,
                 warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler following `lr_lambda` for the configured schedule."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.schedule, total_steps, warmup_steps, cfg.power))


def make_optimizer(params, cfg: OptimConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """params: tensors, or param-group dicts (a group's own "lr" is kept)."""
    lr = lr or cfg.lr
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
    else:
        params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def student_optimizer(model: nn.Module, distiller: nn.Module | None,
                      cfg: OptimConfig) -> tuple[list[nn.Parameter], torch.optim.Optimizer]:
    """The parameters a student step updates (model, then distillation heads) and their optimiser.

    The BN scales of exchange sites get a group of their own at `lr * exchange_lr_mult` when the
    multiplier is not 1 (see OptimConfig.exchange_lr_mult).
    """
    params = list(model.parameters()) + (list(distiller.parameters()) if distiller is not None else [])
    fast = {id(g) for g, _ in model.exchange_gammas()} if cfg.exchange_lr_mult != 1.0 else set()
    groups = [{"params": [p for p in params if id(p) not in fast]}]
    if fast:
        groups.append({"params": [p for p in params if id(p) in fast], "lr": cfg.lr * cfg.exchange_lr_mult})
    return params, make_optimizer(groups, cfg)
