"""What a training run reads: labelled frames as augmented, normalised tensors, the training /
validation sequences and class scheme, and the seeded, DDP-sharded batches over them.

Augmentation (random scale, crop, horizontal flip) is applied identically to EO, IR and label;
photometric jitter touches EO only (thermal intensities carry temperature, so they are left alone).
Each sample's randomness comes from (seed, epoch, index), so results do not depend on the number of
DataLoader workers or DDP ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from csknet_studio.core.classes import ClassScheme, get_scheme
from csknet_studio.core.distributed import rank_and_world
from csknet_studio.core.errors import ConfigError, TrainingError
from csknet_studio.core.evaluate import SegMetrics, evaluate
from csknet_studio.core.frames import FramePair
from csknet_studio.core.model.preprocess import InputNorm, ir_percentile_range, to_tensors, whole_frame_ir
from csknet_studio.core.modes import Mode
from csknet_studio.core.registration import open_aligned
from csknet_studio.core.sim2real import CameraRandomisation, randomise_pair
from csknet_studio.core.training.config import AugmentConfig

# --- samples ---------------------------------------------------------------------------------------


def _resize(arr: np.ndarray, size_hw: tuple[int, int], nearest: bool) -> np.ndarray:
    h, w = size_hw
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = cv2.resize(arr, (w, h), interpolation=interp)
    if arr.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _photometric(eo: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation jitter in the image's own value range and dtype."""
    full = float(np.iinfo(eo.dtype).max) if np.issubdtype(eo.dtype, np.integer) else 1.0
    x = eo.astype(np.float32) / full
    b = 1.0 + rng.uniform(-strength, strength)
    c = 1.0 + rng.uniform(-strength, strength)
    s = 1.0 + rng.uniform(-strength, strength)
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * s + grey
    x = np.clip(x, 0.0, 1.0) * full
    return x.astype(eo.dtype) if np.issubdtype(eo.dtype, np.integer) else x.astype(np.float32)


def augment_frame(frame: FramePair, cfg: AugmentConfig, rng: np.random.Generator,
                  train: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eo, ir, label) numpy arrays after scale / crop / flip / EO photometric jitter / random camera."""
    eo, ir, label = frame.eo, frame.ir, frame.label
    if eo is None or ir is None or label is None:
        missing = [n for n, a in (("EO", eo), ("IR", ir), ("label", label)) if a is None]
        raise TrainingError(f"frame {frame.name}: training needs EO, IR and a label; missing {', '.join(missing)}")
    if ir.ndim == 3:
        ir = ir[..., 0]
    h, w = label.shape
    if train and cfg.scale != (1.0, 1.0):
        s = float(rng.uniform(*cfg.scale))
        nh, nw = max(8, round(h * s)), max(8, round(w * s))
        eo, ir, label = _resize(eo, (nh, nw), False), _resize(ir, (nh, nw), False), _resize(label, (nh, nw), True)
        h, w = nh, nw
    if cfg.crop is not None:
        ch, cw = cfg.crop
        if h < ch or w < cw:  # pad: images with 0, label with ignore
            ph, pw = max(0, ch - h), max(0, cw - w)
            eo = np.pad(eo, ((0, ph), (0, pw), (0, 0)))
            ir = np.pad(ir, ((0, ph), (0, pw)))
            label = np.pad(label, ((0, ph), (0, pw)), constant_values=255)
            h, w = label.shape
        if train:
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        else:
            y, x = (h - ch) // 2, (w - cw) // 2
        eo, ir, label = eo[y:y + ch, x:x + cw], ir[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
    if train and cfg.flip > 0 and rng.random() < cfg.flip:
        eo, ir, label = eo[:, ::-1], ir[:, ::-1], label[:, ::-1]
    if train and cfg.photometric > 0:
        eo = _photometric(eo, rng, cfg.photometric)
    if train and cfg.sim2real > 0:
        eo, ir = randomise_pair(eo, ir, rng, CameraRandomisation(strength=float(cfg.sim2real)))
    return np.ascontiguousarray(eo), np.ascontiguousarray(ir), np.ascontiguousarray(label)


class SegmentationDataset(Dataset):
    """Map-style dataset over labelled frames of a Sequence (or list of FramePair).

    Items are dicts: eo (3,H,W) float32, ir (1,H,W) float32 (normalised by `norm`), label (H,W)
    int64 with 255 = ignore, index (int).
    """

    def __init__(self, frames, indices: Sequence[int], norm: InputNorm, augment: AugmentConfig,
                 *, seed: int = 0, train: bool = True, num_classes: int | None = None, ignore_index: int = 255):
        self.frames = frames
        # with num_classes, each frame's label ids are checked once (a stray id would otherwise stop
        # training deep inside the loss with an index error that names no frame)
        self.num_classes = num_classes
        self.ignore_index = int(ignore_index)
        self._ids_ok: set[int] = set()
        self.indices = list(indices)
        self.norm = norm
        self.augment = augment
        self.seed = int(seed)
        self.train = train
        self.epoch = 0
        self._ir_range: dict[int, tuple[float, float]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Different augmentations each epoch, the same ones on a rerun with the same seed."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        idx = self.indices[i]
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        frame, norm = self.frames[idx], self.norm
        if self.num_classes is not None and idx not in self._ids_ok:
            self._check_ids(idx, frame)
        if norm.ir_scale == "percentile" and frame.ir is not None:
            # the whole frame's IR range, as inference sees it, not the crop's (whole_frame_ir)
            if idx not in self._ir_range:
                self._ir_range[idx] = ir_percentile_range(frame.ir)
            ir, norm = whole_frame_ir(frame.ir, norm, self._ir_range[idx])
            frame = replace(frame, ir=ir)
        eo, ir, label = augment_frame(frame, self.augment, rng, self.train)
        eo_t, ir_t = to_tensors(eo, ir, norm, "cpu")
        return {
            "eo": eo_t[0],
            "ir": ir_t[0],
            "label": torch.from_numpy(label.astype(np.int64)),
            "index": idx,
        }


    def _check_ids(self, idx: int, frame) -> None:
        if frame.label is not None:
            k = int(self.num_classes or 0)
            ids = np.unique(frame.label)
            bad = ids[(ids >= k) & (ids != self.ignore_index)]
            if bad.size:
                source = getattr(self.frames, "source", "training data")
                raise TrainingError(
                    f"{source}: frame {idx} ({frame.name}) has label id(s) {', '.join(map(str, bad[:5].tolist()))} "
                    f"but the scheme has {k} classes (ids 0-{k - 1}, {self.ignore_index} = unlabelled); "
                    "fix the labels or set data.scheme")
        self._ids_ok.add(idx)


def labelled_indices(frames) -> list[int]:
    """Indices of frames that have a label and are not marked bad (cheap for readers that expose it)."""
    bad = set(getattr(frames, "bad_frames", set()) or set())
    out = []
    for i in range(len(frames)):
        if i in bad:
            continue
        f = frames[i]
        if f.label is not None and not f.bad:
            out.append(i)
    return out


def label_pixel_counts(frames, indices: Sequence[int], num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Labelled pixels per class over `indices` (ignore and out-of-range ids are not counted)."""
    counts = np.zeros(num_classes, np.int64)
    for i in indices:
        lab = frames[i].label
        if lab is None:
            continue
        lab = np.asarray(lab).ravel()
        lab = lab[(lab != ignore_index) & (lab < num_classes)]
        counts += np.bincount(lab.astype(np.int64), minlength=num_classes)[:num_classes]
    return counts


def split_indices(indices: Sequence[int], val_fraction: float) -> tuple[list[int], list[int]]:
    """Hold out the LAST `val_fraction` of frames as validation.

    Consecutive video frames are near-duplicates, so a contiguous tail is a more honest hold-out
    than a random sample; at least one frame stays on each side when there are two or more.
    """
    idx = list(indices)
    if val_fraction <= 0 or len(idx) < 2:
        return idx, []
    n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
    return idx[:-n_val], idx[-n_val:]


# --- sequences and batches -----------------------------------------------------------------------


def open_training_sequence(path: Path, split: str = "", cache_mb: int | None = None):
    """open_sequence with an optional split name, without read-ahead (training reads frames in
    shuffled order, so prefetching the next frames would only burn CPU); `cache_mb` sets the decoded
    frame cache by size alone (None: the reader's default budget)."""
    cache = {} if cache_mb is None else {"cache_bytes": cache_mb * 1024 * 1024, "cache_frames": 1 << 30}
    # a registered sequence trains on the IR its project aligned
    return open_aligned(path, split=split or None, prefetch=0, **cache)


def resolve_scheme(spec: str | Mapping, sequence) -> ClassScheme:
    """data.scheme: a table, a scheme name, or empty for the sequence's own scheme (else MFNet)."""
    if isinstance(spec, Mapping) and spec:
        try:
            return ClassScheme.from_dict(dict(spec))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"data.scheme table is invalid: {exc}") from None
    if spec:
        try:
            return get_scheme(str(spec))
        except KeyError as exc:
            raise ConfigError(f"data.scheme: {exc.args[0]}") from None
    seq_scheme = getattr(sequence, "scheme", None)
    return seq_scheme if seq_scheme is not None else get_scheme("mfnet")


@dataclass
class TrainingData:
    """The frames one run trains and validates on (val_seq may be train_seq) and their scheme."""

    train_seq: Any
    val_seq: Any
    train_idx: list[int]
    val_idx: list[int]
    scheme: ClassScheme

    def evaluate(self, model: torch.nn.Module, modes: Sequence[Mode], device: torch.device, *, batch: int,
                 amp: bool, progress=None) -> dict[Mode, SegMetrics]:
        """Validation metrics of `model` over the validation frames, per mode."""
        return evaluate(model, self.val_seq, modes, device=device, batch=batch,
                        num_classes=self.scheme.num_classes, ignore_index=self.scheme.ignore_index,
                        indices=self.val_idx, amp=amp, progress=progress)

    def metrics_dict(self, results: Mapping[Mode, SegMetrics]) -> dict:
        return {m.value: r.to_dict(self.scheme.class_names) for m, r in results.items()}


class Loaders:
    """Batches of one rank's DistributedSampler shard; `epoch(e)` reseeds sampler and augmentation."""

    def __init__(self, dataset: SegmentationDataset, batch: int, seed: int, num_workers: int):
        rank, world = rank_and_world()
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                          drop_last=len(dataset) >= world * 2)
        per_rank = max(1, math.ceil(len(dataset) / world))
        # drop a trailing batch of one (BatchNorm cannot normalise a single sample at 1x1)
        drop_last = per_rank > batch and per_rank % batch == 1
        self.loader = DataLoader(dataset, batch_size=batch, sampler=self.sampler, num_workers=num_workers,
                                 drop_last=drop_last, persistent_workers=False)

    def epoch(self, e: int):
        self.sampler.set_epoch(e)
        self.dataset.set_epoch(e)
        return self.loader

    def __len__(self) -> int:
        return len(self.loader)


def steps_per_epoch(loaders: Loaders, max_steps: int = 0) -> int:
    """Optimiser steps in one epoch: every batch, or at most `max_steps` (0 = no cap)."""
    n = len(loaders)
    if n == 0:
        raise TrainingError("no training batch: the training split has no labelled frames")
    return min(n, max_steps) if max_steps else n
