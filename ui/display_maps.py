"""Raw frames to screen values: the IR palettes and a span in °C (levels: core.data.levels).

A radiometric frame (one whose `radiometry` says how counts read as °C) is shown through the span
the user sets (10–40 °C by default), the same span on every frame and every sequence, so a colour
always means one temperature. Other IR keeps the sequence's fixed levels.
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg

from csknet_studio.core.data.levels import apply_levels
from csknet_studio.core.frames import FramePair
from csknet_studio.core.radiometry import LinearScale

PALETTES = ("white-hot", "black-hot", "inferno", "ironbow")
PALETTE_ALIASES = {"grey": "white-hot", "gray": "white-hot"}  # earlier settings said "grey"
DEFAULT_SPAN = (10.0, 40.0)

_IRONBOW = [(0.0, (0, 0, 0)), (0.15, (32, 0, 96)), (0.35, (145, 0, 160)), (0.55, (230, 60, 40)),
            (0.75, (255, 150, 0)), (0.9, (255, 225, 60)), (1.0, (255, 255, 255))]


@functools.lru_cache(maxsize=8)
def thermal_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 LUT for the IR channel, index 0 = coldest."""
    name = PALETTE_ALIASES.get(name, name)
    x = np.linspace(0.0, 1.0, 256)
    if name in ("white-hot", "black-hot"):
        g = (x * 255).round().astype(np.uint8)
        g = g if name == "white-hot" else g[::-1].copy()
        return np.stack([g, g, g], axis=1)
    if name == "inferno":
        return pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
    if name == "ironbow":
        pos = [p for p, _ in _IRONBOW]
        cols = np.array([c for _, c in _IRONBOW], dtype=float)
        return np.stack([np.interp(x, pos, cols[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)
    raise ValueError(f"unknown thermal palette {name!r}; known: {', '.join(PALETTES)}")


def celsius_u8(frame: FramePair, span: tuple[float, float]) -> np.ndarray:
    """A radiometric frame's IR as uint8 through a °C span. A linear scale over integer counts
    becomes raw display levels (the cached 16-bit LUT, as fast as the non-radiometric path);
    anything else goes through the frame's °C map."""
    lo, hi = float(span[0]), float(span[1])
    rad = frame.radiometry
    if isinstance(rad, LinearScale) and rad.gain > 0 and frame.ir.dtype.kind in "ui":
        return apply_levels(frame.ir, (rad.raw_of(lo), rad.raw_of(hi)))
    c = frame.ir_celsius()
    return apply_levels(np.nan_to_num(c, nan=lo, posinf=hi, neginf=lo), (lo, hi))


def format_celsius(v: float) -> str:
    return "— °C" if not np.isfinite(v) else f"{v:.2f} °C"
