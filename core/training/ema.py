"""An exponential moving average of the student's weights (`optim.ema`), the model validated and
saved when it is on.

The average trails the optimiser's weights, so it smooths the last few hundred steps' noise out of
the weights a short schedule stops on. BN running statistics are averaged like the weights (they
are what the averaged convs are evaluated with); integer buffers (`num_batches_tracked`) are copied.
The decay warms up as (1 + n) / (10 + n) over the first updates, so the average does not start
weighted towards the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from csknet_studio.core.checkpoint import load_state_dict_checked
from csknet_studio.core.errors import CheckpointError
from csknet_studio.core.state_dict import cpu_state_dict


class WeightAverage:
    """The averaged copy of `model` and how many updates it has had."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model)
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay of the next update: warmed up over the first updates, then `decay`."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards `model`'s weights and buffers (called after each optimiser step)."""
        d = self.current_decay()
        own = self.module.state_dict()
        for k, v in model.state_dict().items():
            mine = own[k]
            if mine.is_floating_point():
                mine.lerp_(v.detach().to(mine.dtype), 1.0 - d)
            else:
                mine.copy_(v)
        self.updates += 1

    def resume_entries(self, student: nn.Module) -> dict:
        """What last.pt's resume state adds: the optimiser's own weights and the update count (the
        checkpoint's weights are the average)."""
        return {"student_weights": cpu_state_dict(student), "ema_updates": self.updates}


def restore_student(model: nn.Module, average: WeightAverage | None, state: dict, source: str) -> None:
    """On --resume: when last.pt holds an average, put the optimiser's own weights back into `model`
    (the average already came in with the checkpoint's weights) and the update count into `average`."""
    student = state.get("student_weights")
    if average is not None and student is None:
        raise CheckpointError(f"--resume: {source} was written without optim.ema; resume with the same "
                              "optim.ema it was trained with")
    if student is not None:
        load_state_dict_checked(model, student, source=f"checkpoint {source} (student weights)")
        if average is not None:
            average.updates = int(state.get("ema_updates", 0))
