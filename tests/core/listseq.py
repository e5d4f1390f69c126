"""A minimal in-memory Sequence (the protocol of docs/architecture.md) for session/export tests.

Real frames, real arrays: it only skips file decoding, which the reader tests cover.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.frames import FramePair


class ListSequence:
    def __init__(self, frames: list[FramePair], source: Path | None, scheme: ClassScheme | None = None):
        self.frames = frames
        self.names = [f.name for f in frames]
        self.source = Path(source) if source is not None else None
        self.scheme = scheme
        self.layout = "list"
        self.has_labels = any(f.label is not None for f in frames)
        self.bad_frames: set[int] = set()
        self.reads = 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> FramePair:
        self.reads += 1
        return self.frames[i]

    def close(self) -> None:
        pass


def make_sequence(source: Path | None, n: int = 6, size: tuple[int, int] = (48, 64), seed: int = 0,
                  scheme: ClassScheme | None = None) -> ListSequence:
    """Smooth synthetic EO/IR frames (gradients + a moving square) so they compress like real ones."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        eo = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 40 * (i % 6))], -1).astype(np.uint8)
        ir = ((xx + yy + 7 * i) % 256).astype(np.uint8)
        label = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        label[y0 : y0 + h // 3, x0 : x0 + w // 3] = 1 + i % 3
        frames.append(FramePair(name=f"frame_{i:04d}", eo=eo, ir=ir, label=label))
    if source is not None:
        Path(source).mkdir(parents=True, exist_ok=True)
    return ListSequence(frames, source, scheme)
