"""Training samples: labelled FramePairs -> augmented, normalised tensors.

Augmentation (random scale, crop, horizontal flip) is applied identically to EO, IR and label;
photometric jitter touches EO only (thermal intensities carry temperature, so they are left alone).
Each sample's randomness comes from (seed, epoch, index), so results do not depend on the number of
DataLoader workers or DDP ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from csknet_studio.core.errors import TrainingError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.model.preprocess import InputNorm, ir_percentile_range, to_tensors, whole_frame_ir
from csknet_studio.core.sim2real import CameraRandomisation, randomise_pair


@dataclass(frozen=True)
class AugmentConfig:
    """crop: (H, W) of training crops, or None for full frames (all frames must then share a size).

    scale: random rescale range before cropping; flip: horizontal flip probability;
    photometric: strength of EO brightness / contrast / saturation jitter (0 disables);
    sim2real: strength of the random camera drawn per sample (`core.sim2real`; 0 disables).
    """

    crop: tuple[int, int] | None = (480, 640)
    scale: tuple[float, float] = (0.5, 2.0)
    flip: float = 0.5
    photometric: float = 0.2
    sim2real: float = 0.0

    def __post_init__(self) -> None:
        from csknet_studio.core.errors import ConfigError

        if self.crop is not None:
            crop = tuple(int(v) for v in self.crop)
            if len(crop) != 2 or min(crop) < 8:
                raise ConfigError(f"augment.crop must be [H, W] with both >= 8, got {self.crop!r}")
            object.__setattr__(self, "crop", crop)
        scale = tuple(float(v) for v in self.scale)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"augment.scale must be [min, max] with 0 < min <= max, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        if not 0.0 <= float(self.flip) <= 1.0:
            raise ConfigError(f"augment.flip must be a probability in [0, 1], got {self.flip!r}")
        if not 0.0 <= float(self.photometric) <= 1.0:
            raise ConfigError(f"augment.photometric must be in [0, 1], got {self.photometric!r}")
        CameraRandomisation(strength=float(self.sim2real))  # validates the range


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
        from csknet_studio.core.errors import TrainingError

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
