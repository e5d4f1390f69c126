"""EO/IR registration: the homography that puts IR pixels on the EO grid.

Two estimates, both returning a `Registration` (3x3 taking IR pixel coordinates of the frame as
decoded to EO pixel coordinates, pixel centres on integers):

- `from_points`: from 4 or more point pairs a user clicked (least squares over all of them), with
  the mean reprojection residual in EO pixels.
- `estimate_ecc`: ECC maximisation on edge maps of both images (`core.ecc`: gradient magnitudes
  measured against their surroundings, since raw intensities do not match across modalities but
  outlines show in both, by night too). It runs over an image pyramid, coarse to fine, after a
  search over zoom, rotation and shift on the coarsest level, so a start far off still
  converges; it starts from plain resizing, or from a manual estimate.

The result is stored in the project (`AnnotationSession.set_alignment(reg.to_dict())`), and the
sequence applies it wherever IR is resampled onto the EO grid (`core.data.alignment.align_ir`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.data import open_sequence
from csknet_studio.core.data.alignment import Alignment, default_homography, warp_to_grid
from csknet_studio.core.ecc import ECC_EPS, ECC_ITERATIONS, RegistrationError, ecc_homography, pyramid_levels
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.project import ProjectStore, default_project_path
from csknet_studio.core.project_settings import stored_ir_scale

MIN_POINTS = 4


@dataclass(frozen=True)
class Registration:
    """A homography (IR pixel -> EO pixel) and how well it was supported.

    residual: mean reprojection error of the clicked pairs, EO pixels (manual estimates).
    correlation: ECC's correlation coefficient of the edge maps at the finest level (automatic).
    """

    homography: np.ndarray
    method: str
    ir_shape: tuple[int, int]
    eo_shape: tuple[int, int]
    residual: float | None = None
    correlation: float | None = None

    @property
    def alignment(self) -> Alignment:
        return Alignment.from_matrix(self.homography)

    def to_dict(self) -> dict[str, Any]:
        """What the project stores; `Alignment.from_dict` reads it back."""
        d: dict[str, Any] = {
            "homography": [[float(v) for v in row] for row in self.homography],
            "method": self.method,
            "ir_shape": list(self.ir_shape),
            "eo_shape": list(self.eo_shape),
        }
        if self.residual is not None:
            d["residual"] = float(self.residual)
        if self.correlation is not None:
            d["correlation"] = float(self.correlation)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Registration:
        h = np.array(Alignment.from_dict(d).homography, dtype=np.float64)
        return cls(h, str(d.get("method", "")), tuple(d.get("ir_shape", (0, 0))), tuple(d.get("eo_shape", (0, 0))),
                   d.get("residual"), d.get("correlation"))


# ------------------------------------------------------------------------------------ geometry
def project_points(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) x, y points through the 3x3 `h`."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ np.asarray(h, dtype=np.float64).T
    return q[:, :2] / q[:, 2:3]


def corners(shape: tuple[int, int]) -> np.ndarray:
    """The four corner pixel centres of an (H, W) image, x, y."""
    h, w = shape
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def corner_error(h_est: np.ndarray, h_true: np.ndarray, ir_shape: tuple[int, int]) -> float:
    """Mean distance (EO pixels) between where two homographies put the IR image's corners."""
    c = corners(ir_shape)
    return float(np.linalg.norm(project_points(h_est, c) - project_points(h_true, c), axis=1).mean())


def current_homography(alignment: Alignment | dict | None, ir_shape: tuple[int, int],
                       eo_shape: tuple[int, int]) -> np.ndarray:
    """The 3x3 in use now: the stored one, an offset/scale turned into one, or plain resizing."""
    if isinstance(alignment, dict):
        alignment = Alignment.from_dict(alignment)
    if alignment is None or alignment.is_identity:
        return default_homography(ir_shape, eo_shape)
    return alignment.matrix(ir_shape, eo_shape)


def warp_ir(ir: np.ndarray, h: np.ndarray, eo_shape: tuple[int, int]) -> np.ndarray:
    """IR resampled onto the EO grid through `h` (what the sequence does on every read)."""
    return warp_to_grid(ir, np.asarray(h, dtype=np.float64), eo_shape)


# ------------------------------------------------------------------------------------ manual
def from_points(ir_pts: Sequence[Sequence[float]] | np.ndarray, eo_pts: Sequence[Sequence[float]] | np.ndarray,
                ir_shape: tuple[int, int], eo_shape: tuple[int, int]) -> Registration:
    """Homography from clicked pairs (IR x, y -> EO x, y), least squares over every pair."""
    src = np.asarray(ir_pts, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(eo_pts, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst):
        raise RegistrationError(f"{len(src)} IR points but {len(dst)} EO points: click them in pairs")
    if len(src) < MIN_POINTS:
        raise RegistrationError(f"a homography needs at least {MIN_POINTS} point pairs, got {len(src)}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise RegistrationError("point coordinates must be finite numbers")
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
        raise RegistrationError("the points do not define a homography (three or more of them on one line?)")
    h = h / h[2, 2]
    residual = float(np.linalg.norm(project_points(h, src) - dst, axis=1).mean())
    return Registration(h, "manual", tuple(ir_shape[:2]), tuple(eo_shape[:2]), residual=residual)


# ------------------------------------------------------------------------------------ automatic
def estimate_ecc(
    eo: np.ndarray,
    ir: np.ndarray,
    init: np.ndarray | None = None,
    *,
    levels: int | None = None,
    iterations: int = ECC_ITERATIONS,
    eps: float = ECC_EPS,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Registration:
    """Homography IR -> EO maximising the ECC correlation of the two edge maps, coarse to fine
    (`core.ecc`).

    init: a starting IR -> EO 3x3 (a manual estimate); default plain resizing, and then zooms,
    rotations and shifts are searched on the coarsest level. Each level halves both images; the
    estimate found on one level starts the next finer one. `progress(done, total)` is called once
    per level; `cancelled()` is checked before each (None when it says so is not an estimate: a
    RegistrationError is raised)."""
    eo_shape, ir_shape = tuple(eo.shape[:2]), tuple(ir.shape[:2])
    h = default_homography(ir_shape, eo_shape) if init is None else np.asarray(init, dtype=np.float64)
    h = h / h[2, 2]
    n = pyramid_levels(eo_shape, ir_shape) if levels is None else max(1, int(levels))
    # Resample IR to about EO's pixel size first, so one blur and one Sobel see the same detail
    # in both edge maps (a 320-px thermal image beside a 1280-px EO one otherwise never matches).
    k = math.sqrt(abs(np.linalg.det(h[:2, :2])))
    to_r = np.eye(3)
    ir_r = ir
    if not 0.8 <= k <= 1.25:
        rs = (max(8, round(ir_shape[0] * k)), max(8, round(ir_shape[1] * k)))
        ir_r = cv2.resize(ir, (rs[1], rs[0]), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        to_r = default_homography(ir_shape, rs)
        h = h @ np.linalg.inv(to_r)
    h, rho = ecc_homography(eo, ir_r, h, levels=n, search=init is None, iterations=iterations, eps=eps,
                            progress=progress, cancelled=cancelled)
    h = h @ to_r
    h = h / h[2, 2]
    if not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
        raise RegistrationError("ECC gave a degenerate homography")
    method = "ecc" if init is None else "manual+ecc"
    return Registration(h, method, ir_shape, eo_shape, correlation=None if math.isnan(rho) else float(rho))


def check_plausible(reg: Registration, max_corner_shift: float = 0.5) -> None:
    """Refuse an estimate that moves IR's corners by more than `max_corner_shift` of the EO
    diagonal from plain resizing, or folds the image over itself (ECC lost on a flat pair)."""
    base = default_homography(reg.ir_shape, reg.eo_shape)
    diag = math.hypot(*reg.eo_shape)
    c = corners(reg.ir_shape)
    q = project_points(reg.homography, c)
    if corner_error(reg.homography, base, reg.ir_shape) > max_corner_shift * diag:
        raise RegistrationError("the estimate moves IR far off the EO image: click a few point pairs and "
                                "start from them")
    # A homography that keeps the corner order keeps the quadrilateral convex and oriented.
    def cross(a: np.ndarray, b: np.ndarray) -> float:
        return float(a[0] * b[1] - a[1] * b[0])

    turns = [cross(q[(i + 1) % 4] - q[i], q[(i + 2) % 4] - q[(i + 1) % 4]) for i in range(4)]
    if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
        raise RegistrationError("the estimate folds the IR image over itself")


def load_points(d: Any) -> tuple[np.ndarray, np.ndarray]:
    """Point pairs from JSON: {"ir": [[x, y], ...], "eo": [[x, y], ...]} or [{"ir": [x, y], "eo": [x, y]}, ...]."""
    try:
        if isinstance(d, dict) and "pairs" in d:
            d = d["pairs"]
        if isinstance(d, dict):
            ir, eo = d["ir"], d["eo"]
        else:
            ir = [p["ir"] for p in d]
            eo = [p["eo"] for p in d]
        a = np.asarray(ir, dtype=np.float64).reshape(-1, 2)
        b = np.asarray(eo, dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistrationError('points: expected {"ir": [[x, y], ...], "eo": [[x, y], ...]} or a list of '
                                f'{{"ir": [x, y], "eo": [x, y]}} pairs ({type(exc).__name__}: {exc})') from None
    return a, b


def points_to_json(ir_pts: np.ndarray, eo_pts: np.ndarray) -> dict[str, list[list[float]]]:
    return {"ir": np.asarray(ir_pts, dtype=float).reshape(-1, 2).tolist(),
            "eo": np.asarray(eo_pts, dtype=float).reshape(-1, 2).tolist()}


def stored_alignment(source: Any, project_path: Any = None) -> Alignment | None:
    """The EO/IR alignment the project of `source` (beside it, or at `project_path`) stores, read
    before the sequence opens: IR of another aspect ratio cannot open without one. None when there
    is no project, it stores none, or it cannot be read (that says nothing about the alignment)."""
    if project_path is None and (source is None or isinstance(source, tuple | list) or str(source).startswith("<")):
        return None
    store = ProjectStore(project_path if project_path is not None else default_project_path(source))
    if not store.exists():
        return None
    try:
        d = store.load().alignment
    except ProjectError:
        return None
    if not d:
        return None
    try:
        return Alignment.from_dict(d)
    except (ValueError, TypeError, KeyError) as exc:
        raise ProjectError(f"project {store.root}: bad EO/IR alignment {d!r}: {exc}") from None


def open_aligned(path: Any, *, project_path: Any = None, alignment: Alignment | None = None, **kw: Any):
    """`open_sequence` with the alignment and IR scale its project stores (`alignment` and
    `ir_scale` win when given), so readers without a session (training, batch inference,
    evaluation) and the GUI's open all see the IR the user registered and read as °C the way the
    user said, and a sequence whose IR needs that alignment opens at all."""
    if alignment is None:
        alignment = stored_alignment(path, project_path)
    if kw.get("ir_scale") is None:
        kw["ir_scale"] = stored_ir_scale(path, project_path)
    return open_sequence(path, alignment, **kw)
