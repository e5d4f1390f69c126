"""How fine-tuning judges weights: mIoU per mode on the held-out corrections (under torchrun each
rank scores its share and the counts are summed, so every rank takes the same decisions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from csknet_studio.core.distributed import all_reduce_sum, rank_and_world
from csknet_studio.core.errors import CancelledError
from csknet_studio.core.evaluate import SegMetrics, confusion_matrix, eval_mode
from csknet_studio.core.finetune_data import Sample
from csknet_studio.core.model.preprocess import to_tensors
from csknet_studio.core.modes import Mode


@torch.no_grad()
def _confusions(model: nn.Module, samples: list[Sample], modes: Sequence[Mode], device: torch.device,
                ignore: int, cancel: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
    restore = eval_mode(model)  # the frozen BatchNorms stay frozen after the score
    k = int(model.config.num_classes)
    out: dict[str, np.ndarray] = {}
    try:
        for mode in modes:
            conf = np.zeros((k, k), np.int64)
            for eo, ir, mask in samples:
                if cancel is not None and cancel():
                    raise CancelledError("fine-tuning cancelled while scoring the samples; weights unchanged")
                if ir is not None and ir.ndim == 3:
                    ir = ir[..., 0]
                eo_t, ir_t = to_tensors(*mode.keep(eo, ir), model.config.input_norm, device)
                pred = model(eo_t, ir_t).logits.argmax(1)[0].cpu().numpy()
                conf += confusion_matrix(pred, mask, k, ignore)
            out[mode.value] = conf
    finally:
        restore()
    return out


def _score(model: nn.Module, samples: list[Sample], modes: Sequence[Mode], device: torch.device, ignore: int,
           cancel: Callable[[], bool] | None) -> dict[str, float]:
    """mIoU per mode on `samples`; under torchrun each rank scores its share and the counts are
    summed, so every rank gets the same figures (and takes the same decisions from them)."""
    rank, world = rank_and_world()
    confs = _confusions(model, samples[rank::world], modes, device, ignore, cancel)
    return {m: SegMetrics(np.asarray(all_reduce_sum(c), np.int64)).miou for m, c in confs.items()}


def _mean(d: dict[str, float]) -> float:
    vals = [v for v in d.values() if math.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
