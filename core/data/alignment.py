"""Where IR lies on the EO grid: the `Alignment` every reader applies, and the one resampling
(`align_ir`) that puts IR pixels onto EO pixels for display, inference, training and export."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.errors import AspectMismatchError

from .imaging import fit_to_grid


def _resize_map(src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
    """3x3 taking source pixel coordinates to destination ones for a plain resize (pixel centres
    on integers, as cv2.resize samples them)."""
    (sh, sw), (dh, dw) = src_shape, dst_shape
    kx, ky = dw / sw, dh / sh
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Alignment:
    """Where the IR image lies on the EO grid: the one geometry every reader applies to IR.

    The general form is `homography`, a 3x3 (row-major, nested tuples) taking IR pixel coordinates
    of the frame as decoded to EO pixel coordinates (pixel centres on integers). Older projects
    store an offset and a zoom instead: dx, dy in EO pixels (positive = right / down) and scale
    about the image centre (>1 makes IR larger), applied after IR is resized to the EO size. Those
    depend on the two image sizes, so `matrix` turns them into the same 3x3 once the sizes are known.
    """

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    homography: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        for k in ("dx", "dy", "scale"):
            v = getattr(self, k)
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"Alignment.{k} must be a finite number, got {v!r}")
        if not 0.05 <= self.scale <= 20.0:
            raise ValueError(f"Alignment.scale must be in [0.05, 20], got {self.scale}")
        if self.homography is not None:
            h = np.asarray(self.homography, dtype=np.float64)
            if h.shape != (3, 3) or not np.isfinite(h).all():
                raise ValueError(f"Alignment.homography must be a finite 3x3, got {self.homography!r}")
            if abs(np.linalg.det(h)) < 1e-12 or abs(h[2, 2]) < 1e-12:
                raise ValueError("Alignment.homography is singular")
            if (self.dx, self.dy, self.scale) != (0.0, 0.0, 1.0):
                raise ValueError("Alignment: give a homography or dx/dy/scale, not both")
            object.__setattr__(self, "homography", tuple(tuple(float(v) for v in row) for row in h / h[2, 2]))

    @classmethod
    def from_matrix(cls, h: np.ndarray) -> Alignment:
        return cls(homography=tuple(tuple(float(v) for v in row) for row in np.asarray(h, dtype=np.float64)))

    @property
    def is_identity(self) -> bool:
        """True when IR is only resized to the EO grid (no offset, zoom or homography)."""
        return self.homography is None and self.dx == 0 and self.dy == 0 and self.scale == 1

    def to_dict(self) -> dict[str, Any]:
        if self.homography is not None:
            return {"homography": [list(row) for row in self.homography]}
        return {"dx": float(self.dx), "dy": float(self.dy), "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Alignment:
        """Reads both forms; keys it does not know (a residual, a method) are ignored."""
        d = d or {}
        if d.get("homography") is not None:
            return cls(homography=tuple(tuple(float(v) for v in row) for row in d["homography"]))
        return cls(dx=float(d.get("dx", 0.0)), dy=float(d.get("dy", 0.0)), scale=float(d.get("scale", 1.0)))

    def matrix(self, src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
        """3x3 taking IR pixel coordinates (IR of `src_shape`) to EO pixel coordinates (`dst_shape`)."""
        if self.homography is not None:
            return np.array(self.homography, dtype=np.float64)
        dh, dw = dst_shape
        cx, cy = (dw - 1) / 2.0, (dh - 1) / 2.0
        s = self.scale
        # x_eo = s * (x_resized - cx) + cx + dx
        zoom = np.array([[s, 0.0, cx - s * cx + self.dx], [0.0, s, cy - s * cy + self.dy], [0.0, 0.0, 1.0]])
        return zoom @ _resize_map(src_shape, dst_shape)

    def as_homography(self, src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> Alignment:
        """The same placement in the general form (how an offset/scale project is carried forward)."""
        return self if self.homography is not None else Alignment.from_matrix(self.matrix(src_shape, dst_shape))


def default_homography(src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
    """Where IR goes with no alignment at all: resized to the EO grid."""
    return _resize_map(src_shape, dst_shape)


def warp_to_grid(a: np.ndarray, h: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample `a` onto a grid of `shape` (H, W) through `h` (source pixel -> grid pixel).

    One pass, linear; pixels the source does not cover are 0. An affine `h` takes the cheaper
    warpAffine (same result)."""
    src = a if a.dtype in (np.uint8, np.uint16, np.float32) else a.astype(np.float32)
    size = (shape[1], shape[0])
    if np.allclose(h[2], (0.0, 0.0, 1.0), atol=1e-12):
        return cv2.warpAffine(src, np.ascontiguousarray(h[:2]), size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpPerspective(src, h, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_ir(ir: np.ndarray, shape: tuple[int, int], alignment: Alignment | None) -> np.ndarray:
    """Resample IR onto the EO grid `shape` (H, W), applying the alignment in the same single pass.

    The one place IR meets the EO grid: display, inference, training, fine-tuning and export all
    read frames through it."""
    if alignment is None or alignment.is_identity:
        return fit_to_grid(ir, shape)
    return warp_to_grid(ir, alignment.matrix(ir.shape[:2], shape), shape)


# Relative difference of width/height ratios below which IR is resized onto the EO grid as is
# (rounding of odd sizes, a pixel of crop); beyond it a plain resize would stretch the scene.
ASPECT_TOLERANCE = 0.02


def check_aspect(ir_shape: tuple[int, ...], eo_shape: tuple[int, ...], where: str) -> None:
    """Refuse to stretch IR of another aspect ratio onto the EO grid without an explicit alignment."""
    (ih, iw), (eh, ew) = ir_shape[:2], eo_shape[:2]
    if abs((iw / ih) / (ew / eh) - 1.0) <= ASPECT_TOLERANCE:
        return
    raise AspectMismatchError(
        f"{where}: IR is {iw}x{ih} (aspect {iw / ih:.3f}) but EO is {ew}x{eh} (aspect {ew / eh:.3f}); "
        "resizing IR to the EO grid would stretch it. Register EO/IR first (`csknet-studio align "
        "SEQUENCE`, or View > Register EO/IR in the app, stores a homography in the project), pass "
        "--alignment plain to accept the resize for one run (Python: open_sequence(path, Alignment())), "
        "or crop the IR frames to the EO aspect ratio"
    )
