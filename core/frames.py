"""The unit every reader yields and every consumer takes: one EO/IR frame pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from csknet_studio.core.radiometry import Radiometry


@dataclass
class FramePair:
    """One time step.

    eo:    (H, W, 3) RGB, uint8 or uint16, or None when the sequence has no EO.
    ir:    (H, W) single channel, uint8 / uint16 / float32 (raw radiometric values kept), or None.
           Readers resample IR to the EO grid, so eo and ir always share (H, W).
    label: (H, W) uint8 class ids (255 = unlabelled) when the source has ground truth, else None.
    bad:   True when a file of this frame could not be decoded (arrays are then zeros).
    radiometry: how this frame's IR counts become °C (core/radiometry.py), None when the IR is not
           radiometric (or unknown); `ir_celsius()` applies it.
    """

    name: str
    eo: np.ndarray | None
    ir: np.ndarray | None
    label: np.ndarray | None = None
    bad: bool = False
    error: str | None = None
    radiometry: Radiometry | None = None

    @property
    def shape(self) -> tuple[int, int]:
        ref = self.eo if self.eo is not None else self.ir
        if ref is None:
            raise ValueError(f"frame {self.name} has neither EO nor IR")
        return int(ref.shape[0]), int(ref.shape[1])

    def ir_celsius(self) -> np.ndarray | None:
        """(H, W) float32 °C of the IR frame (on the EO grid, like `ir`), or None when not radiometric.
        Computed on each call: the cache keeps only the raw counts."""
        if self.ir is None or self.radiometry is None or self.bad:
            return None
        return self.radiometry.celsius(self.ir)
