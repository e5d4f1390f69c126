"""Numerical guards of a training step: stop on a non-finite loss or weight before anything is saved.

Under DDP the verdict is all-reduced, so every rank stops at the same step instead of one rank
hanging in the next collective.
"""

from __future__ import annotations

import torch

from csknet_studio.core.distributed import all_reduce_sum, is_distributed
from csknet_studio.core.errors import TrainingError


def check_finite_loss(loss: torch.Tensor, where: str) -> None:
    bad = 0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0
    if is_distributed():
        bad = float(all_reduce_sum(bad))
    if bad:
        raise TrainingError(f"{where}: loss is not finite ({loss.item()!r}); lower optim.lr or check the data; "
                            "no checkpoint was written from this state")


def check_finite_weights(tensors, where: str) -> None:
    """Stop on a NaN / inf weight, so no checkpoint is ever written from it (a finite loss does not
    prove the step that followed kept the weights finite)."""
    floats = [t.detach() for t in tensors if t.is_floating_point()]
    bad = 0.0
    if floats:
        # one reduction instead of a sync per tensor: a NaN or inf anywhere makes the sum non-finite
        total = torch.stack([t.float().sum() for t in floats]).sum()
        if not bool(torch.isfinite(total)):
            bad = float(sum(int((~torch.isfinite(t)).sum()) for t in floats))
    if is_distributed():
        bad = float(all_reduce_sum(bad))
    if bad:
        n = sum(t.numel() for t in floats)
        raise TrainingError(f"{where}: {int(bad)} of {n} weights are not finite (NaN or inf); lower optim.lr "
                            "or check the data; no checkpoint was written from this state")
