"""Fixed display levels: percentiles sampled over a sequence and the uint8 mapping a screen shows."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

LEVEL_PERCENTILES = (1.0, 99.0)


@functools.lru_cache(maxsize=16)
def _level_lut(n: int, lo: float, hi: float) -> np.ndarray:
    """Levels never change while scrubbing a sequence, so the LUT is built once, not per frame."""
    lut = np.clip((np.arange(n, dtype=np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def apply_levels(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Map [lo, hi] to [0, 255] uint8 (what a screen shows). uint8/uint16 go through a LUT."""
    lo, hi = float(levels[0]), float(levels[1])
    if hi <= lo:
        hi = lo + 1.0
    if a.dtype == np.uint8 and lo == 0.0 and hi == 255.0:
        return a
    if a.dtype in (np.uint8, np.uint16):
        n = 256 if a.dtype == np.uint8 else 65536
        lut = _level_lut(n, lo, hi)
        return cv2.LUT(a, lut) if n == 256 else lut[a]
    f = (a.astype(np.float32, copy=False) - lo) * (255.0 / (hi - lo)) + 0.5
    return np.clip(f, 0, 255).astype(np.uint8)


def _subsample(a: np.ndarray, max_pixels: int = 65536) -> np.ndarray:
    h, w = a.shape[:2]
    step = max(1, int(math.sqrt(h * w / max_pixels)))
    return np.ascontiguousarray(a[::step, ::step]).reshape(-1)


def _percentiles(samples: list[np.ndarray]) -> tuple[float, float]:
    if not samples:
        return (0.0, 255.0)
    v = np.concatenate(samples)
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
        if v.size == 0:
            return (0.0, 1.0)
    lo, hi = np.percentile(v, LEVEL_PERCENTILES)
    lo, hi = float(lo), float(hi)
    if hi <= lo:  # flat image: widen so the display maps it to mid-grey instead of dividing by 0
        hi = lo + 1.0
    return (lo, hi)
