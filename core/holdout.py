"""Which corrections fine-tuning trains on and which it keeps back to judge the result.

A figure measured on the pixels a model was trained on says little about whether it got better: a
few steps on three frames can fit them and still do worse everywhere else. So part of the user's
corrections is held out and never trained on:
- with enough corrected frames (`frame_split_min`), whole frames, spread evenly over the list;
- with fewer, regions inside every frame: the labelled extent of each frame is cut into a
  `grid` x `grid` lattice and a share of the labelled cells is held out (whole cells, so the
  held-out pixels are not the immediate neighbours of trained ones).

    split = hold_out(masks, fraction=0.25, frame_split_min=4, grid=4, seed=0)
    split.train_masks[i], split.val_masks[i]      # 255 wherever the other part has the label
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX

FRAMES, REGIONS, NONE = "frames", "regions", "none"


@dataclass(frozen=True)
class HeldOut:
    """What was kept back. kind: "frames" (whole frames), "regions" (cells inside frames) or "none"
    (too little to split: scored on the training corrections). frames: positions, in the samples,
    of the frames that hold held-out pixels. pixels / train_pixels: labelled pixels in each part."""

    kind: str
    frames: tuple[int, ...]
    pixels: int
    train_pixels: int
    total_frames: int
    cells: int = 0  # regions: held-out cells over all frames
    total_cells: int = 0  # regions: labelled cells over all frames

    def describe(self, labels: Sequence[str] | None = None) -> str:
        """One line for people; `labels` names the samples (frame numbers), else their positions."""

        def name(i: int) -> str:
            return str(labels[i]) if labels is not None and i < len(labels) else str(i)

        px = f"{self.pixels:,} labelled pixels"
        if self.kind == FRAMES:
            which = ", ".join(name(i) for i in self.frames)
            return f"{len(self.frames)} of {self.total_frames} corrected frames (frame {which}), {px}"
        if self.kind == REGIONS:
            return (f"{self.cells} of {self.total_cells} regions inside {len(self.frames)} corrected "
                    f"frame(s), {px}")
        return "nothing held out (too few corrected pixels): scored on the training corrections"

    def to_dict(self, labels: Sequence[str] | None = None) -> dict:
        """JSON-friendly: kind, frames (named by `labels` when given), pixel counts, description."""
        frames = [labels[i] if labels is not None and i < len(labels) else i for i in self.frames]
        return {"kind": self.kind, "frames": frames, "pixels": self.pixels, "train_pixels": self.train_pixels,
                "description": self.describe(labels)}


@dataclass
class Split:
    """Masks to train on and masks to score on, one pair per sample (255 = not in this part)."""

    train_masks: list[np.ndarray]
    val_masks: list[np.ndarray]
    held_out: HeldOut

    def train_positions(self) -> list[int]:
        """Samples with at least one training pixel."""
        return [i for i, m in enumerate(self.train_masks) if (m != IGNORE_INDEX).any()]

    def val_positions(self) -> list[int]:
        """Samples with at least one held-out pixel."""
        return [i for i, m in enumerate(self.val_masks) if (m != IGNORE_INDEX).any()]


def _labelled(m: np.ndarray, ignore: int) -> int:
    return int(np.count_nonzero(m != ignore))


def _frame_split(masks: list[np.ndarray], fraction: float, ignore: int) -> Split:
    n = len(masks)
    m = min(n - 1, max(1, round(fraction * n)))
    held = sorted({int(v) for v in np.floor((np.arange(m) + 0.5) * n / m)})  # evenly spread over the list
    empty = [np.full(mask.shape, ignore, np.uint8) for mask in masks]
    train = [empty[i] if i in held else mask for i, mask in enumerate(masks)]
    val = [mask if i in held else empty[i] for i, mask in enumerate(masks)]
    info = HeldOut(FRAMES, tuple(held), sum(_labelled(masks[i], ignore) for i in held),
                   sum(_labelled(m_, ignore) for m_ in train), n)
    return Split(train, val, info)


def _cells(mask: np.ndarray, grid: int, ignore: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled pixel coordinates and the lattice cell each falls in (the lattice spans the
    labelled extent, so a small correction is still cut into several cells)."""
    ys, xs = np.nonzero(mask != ignore)
    if not ys.size:
        return ys, xs, ys
    y0, x0 = ys.min(), xs.min()
    hy, hx = int(ys.max()) - int(y0) + 1, int(xs.max()) - int(x0) + 1
    ry = np.minimum((ys - y0) * grid // hy, grid - 1)
    rx = np.minimum((xs - x0) * grid // hx, grid - 1)
    return ys, xs, ry * grid + rx


def _region_split(masks: list[np.ndarray], fraction: float, grid: int, seed: int, ignore: int) -> Split:
    rng = np.random.default_rng([seed, 7919])
    train, val, frames = [], [], []
    cells_held = cells_total = 0
    for i, mask in enumerate(masks):
        ys, xs, cell = _cells(mask, grid, ignore)
        labelled = np.unique(cell)
        t = mask.copy()
        v = np.full(mask.shape, ignore, np.uint8)
        if labelled.size >= 2:
            m = min(labelled.size - 1, max(1, round(fraction * labelled.size)))
            held = rng.choice(labelled, size=m, replace=False)
            sel = np.isin(cell, held)
            v[ys[sel], xs[sel]] = mask[ys[sel], xs[sel]]
            t[ys[sel], xs[sel]] = ignore
            frames.append(i)
            cells_held += m
        cells_total += int(labelled.size)
        train.append(t)
        val.append(v)
    if not frames:
        return _no_split(masks, ignore)
    info = HeldOut(REGIONS, tuple(frames), sum(_labelled(v, ignore) for v in val),
                   sum(_labelled(t, ignore) for t in train), len(masks), cells_held, cells_total)
    return Split(train, val, info)


def _no_split(masks: list[np.ndarray], ignore: int) -> Split:
    pixels = sum(_labelled(m, ignore) for m in masks)
    return Split(list(masks), list(masks), HeldOut(NONE, (), 0, pixels, len(masks)))


def hold_out(masks: Sequence[np.ndarray], *, fraction: float = 0.25, frame_split_min: int = 4, grid: int = 4,
             seed: int = 0, ignore: int = IGNORE_INDEX) -> Split:
    """Split the corrections into a training part and a held-out part (see the module docstring).

    Deterministic for its arguments (every rank under torchrun gets the same split). fraction 0,
    or corrections too small to cut, hold nothing out (kind "none")."""
    arrs = [np.asarray(m) for m in masks]
    if fraction <= 0 or not arrs:
        return _no_split(arrs, ignore)
    labelled = [i for i, m in enumerate(arrs) if (m != ignore).any()]
    if len(labelled) >= max(2, frame_split_min):
        sub = _frame_split([arrs[i] for i in labelled], fraction, ignore)
        train = list(arrs)
        val = [np.full(m.shape, ignore, np.uint8) for m in arrs]
        for j, i in enumerate(labelled):
            train[i], val[i] = sub.train_masks[j], sub.val_masks[j]
        h = sub.held_out
        info = HeldOut(FRAMES, tuple(labelled[j] for j in h.frames), h.pixels, h.train_pixels, len(labelled))
        return Split(train, val, info)
    return _region_split(arrs, fraction, max(2, int(grid)), seed, ignore)
