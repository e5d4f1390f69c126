"""The samples fine-tuning trains on: (eo, ir, mask) triples taken from corrections, and the
batches of crops around their labelled pixels (flipped at random) that each optimiser step sees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from csknet_studio.core.errors import ConfigError, TrainingError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.model.preprocess import InputNorm, to_tensors, whole_frame_ir
from csknet_studio.core.modes import Mode

if TYPE_CHECKING:  # cycle: finetune imports these helpers
    from csknet_studio.core.finetune import FinetuneConfig

Sample = tuple[np.ndarray | None, np.ndarray | None, np.ndarray]


def _as_sample(s) -> Sample:
    if isinstance(s, FramePair):
        if s.label is None:
            raise TrainingError(f"fine-tuning sample {s.name} has no mask")
        return s.eo, s.ir, s.label
    eo, ir, mask = s
    return eo, ir, mask


def _crop_box(mask: np.ndarray, crop: tuple[int, int], rng: np.random.Generator, ignore: int) -> tuple[int, int]:
    """Top-left of a crop containing a random labelled pixel (anywhere when none)."""
    h, w = mask.shape
    ch, cw = crop
    ys, xs = np.nonzero(mask != ignore)
    if ys.size:
        j = int(rng.integers(ys.size))
        cy, cx = int(ys[j]), int(xs[j])
        y0 = int(np.clip(cy - int(rng.integers(ch)), 0, max(0, h - ch)))
        x0 = int(np.clip(cx - int(rng.integers(cw)), 0, max(0, w - cw)))
        return y0, x0
    return int(rng.integers(max(1, h - ch + 1))), int(rng.integers(max(1, w - cw + 1)))


def _pad(a: np.ndarray, h: int, w: int, value) -> np.ndarray:
    ph, pw = max(0, h - a.shape[0]), max(0, w - a.shape[1])
    if not ph and not pw:
        return a
    pad = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, pad, constant_values=value)


def _whole_frame_samples(samples: list[Sample], norm: InputNorm) -> tuple[list[Sample], InputNorm]:
    """Samples with the per-frame part of the IR normalisation applied to each whole frame, once,
    before any crop (`whole_frame_ir`: a crop must see IR as inference sees it in the whole frame),
    and the norm that finishes them. Unchanged when the norm has no per-frame part."""
    out, finish = [], norm
    for eo, ir, mask in samples:
        if ir is not None:
            ir, finish = whole_frame_ir(ir, norm)
        out.append((eo, ir, mask))
    return out, finish


def _make_batch(samples: list[Sample], picks: Sequence[int], cfg: FinetuneConfig, mode: Mode, norm,
                device: torch.device, rng: np.random.Generator, ignore: int):

    eos, irs, labs = [], [], []
    for i in picks:
        eo, ir, mask = samples[i]
        if ir is not None and ir.ndim == 3:
            ir = ir[..., 0]
        if cfg.crop is not None:
            ch, cw = cfg.crop
            y0, x0 = _crop_box(mask, cfg.crop, rng, ignore)
            sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
            mask = _pad(mask[sl], ch, cw, ignore)
            eo = None if eo is None else _pad(eo[sl], ch, cw, 0)
            ir = None if ir is None else _pad(ir[sl], ch, cw, 0)
        if cfg.flip and rng.random() < 0.5:
            mask = mask[:, ::-1]
            eo = None if eo is None else eo[:, ::-1]
            ir = None if ir is None else ir[:, ::-1]
        eos.append(eo)
        irs.append(ir)
        labs.append(np.ascontiguousarray(mask))
    if len({m.shape for m in labs}) != 1:
        raise ConfigError("finetune: samples differ in size; set a crop")
    eo_np = np.stack([np.ascontiguousarray(e) for e in eos]) if mode.uses_eo else None
    ir_np = np.stack([np.ascontiguousarray(r) for r in irs]) if mode.uses_ir else None
    eo_t, ir_t = to_tensors(eo_np, ir_np, norm, device)
    labels = torch.from_numpy(np.stack(labs).astype(np.int64)).to(device)
    return eo_t, ir_t, labels
