"""Small synthetic sequences for the session / export tests (real ArraySequence, real arrays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.data import ArraySequence


def make_sequence(source: Path | None, n: int = 6, size: tuple[int, int] = (48, 64), seed: int = 0,
                  scheme: ClassScheme | None = None) -> ArraySequence:
    """Smooth EO/IR frames (gradients) with a box label per frame, so they compress like real ones.

    `source` is where the sequence "lives" (its project goes beside it); None = in memory only."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    eo, ir, labels = [], [], []
    for i in range(n):
        eo.append(np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 40 * (i % 6))], -1).astype(np.uint8))
        ir.append(((xx + yy + 7 * i) % 256).astype(np.uint8))
        label = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        label[y0 : y0 + h // 3, x0 : x0 + w // 3] = 1 + i % 3
        labels.append(label)
    if source is not None:
        Path(source).mkdir(parents=True, exist_ok=True)
    return ArraySequence(np.stack(eo), np.stack(ir), np.stack(labels), [f"frame_{i:04d}" for i in range(n)],
                         scheme=scheme, source=source if source is not None else "<memory>", layout="generic")
