"""Where the model is unsure: per-frame mean entropy and the disagreement between two modes.

Kept Qt-free so the "next most uncertain frame" rule and the disagreement map can be tested (and
reused by a CLI) without a GUI. The GUI feeds every `Prediction` it receives into an
`UncertaintyTracker` and asks it where to go next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from csknet_studio.core.modes import Mode


@dataclass(frozen=True)
class Disagreement:
    """Pixels where two label maps differ; `fraction` counts only pixels labelled in both."""

    mask: np.ndarray  # (H, W) bool
    fraction: float
    pixels: int


def disagreement(a: np.ndarray, b: np.ndarray, ignore_index: int = 255) -> Disagreement:
    """Compare two (H, W) label maps; pixels ignored in either map never count as disagreement."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"label maps must be equal (H, W) arrays, got {a.shape} and {b.shape}")
    valid = (a != ignore_index) & (b != ignore_index)
    mask = (a != b) & valid
    n_valid = int(valid.sum())
    n = int(mask.sum())
    return Disagreement(mask=mask, fraction=(n / n_valid) if n_valid else 0.0, pixels=n)


class UncertaintyTracker:
    """Mean entropy per frame for one mode at the newest weights version seen.

    A result from older weights is dropped (the frame must be predicted again to count), so after a
    fine-tune the navigation never points at a frame because of what the *old* model thought.
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._scores: dict[tuple[int, Mode], float] = {}

    def __len__(self) -> int:
        return len(self._scores)

    def record(self, frame: int, mode: Mode | str, entropy: np.ndarray | float, weights_version: int = 0) -> None:
        """Remember a frame's mean entropy (`entropy` may be the (H, W) map or its mean)."""
        if self._version is not None and weights_version < self._version:
            return  # a late result from replaced weights
        if self._version is None or weights_version > self._version:
            self._version = weights_version
            self._scores.clear()
        value = float(np.mean(entropy)) if np.ndim(entropy) else float(entropy)
        if np.isfinite(value):
            self._scores[(int(frame), Mode(mode))] = value

    def score(self, frame: int, mode: Mode | str) -> float | None:
        return self._scores.get((int(frame), Mode(mode)))

    def clear(self) -> None:
        self._scores.clear()

    def next_most_uncertain(self, mode: Mode | str, exclude: Iterable[int] = ()) -> int | None:
        """The frame with the highest mean entropy for `mode`, skipping `exclude` (current and
        corrected frames); ties go to the lower index. None when no candidate is known."""
        mode = Mode(mode)
        skip = set(exclude)
        best: tuple[float, int] | None = None
        for (frame, m), value in self._scores.items():
            if m is not mode or frame in skip:
                continue
            if best is None or value > best[0] or (value == best[0] and frame < best[1]):
                best = (value, frame)
        return None if best is None else best[1]
