"""ECC maximisation on edge maps: the automatic IR -> EO homography behind `registration.estimate_ecc`.

Raw intensities do not match across modalities (a warm wall is bright in IR, maybe dark in EO),
but the outlines of objects show in both, so ECC compares normalised gradient magnitudes. The
steps, coarse to fine over an image pyramid:

- the black frame a warp or projection leaves around an image is masked (`valid_mask`): its step
  to the picture is a strong outline the other camera never saw, and ECC would pull towards it;
- on the coarsest level a handful of zooms are tried (`search_zoom`), since ECC is a local search
  and a zoom of a tenth started from plain resizing can fall into a wrong basin;
- coarse levels fit an affine map; the finest fits the affine map, then the full homography, and
  keeps the perspective terms only when they explain a clear share of what the affine map left
  (`PERSPECTIVE_GAIN`): on a pair they barely help they follow whichever part of the scene
  happens to overlap, and move the corners by pixels.

Warps here are OpenCV's: 3x3 taking template (EO) pixel coordinates to input (IR) ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from csknet_studio.core.data.alignment import default_homography
from csknet_studio.core.errors import CSKNetError

# The coarsest pyramid level keeps at least this many pixels on its short side: fewer and the
# edge maps lose the structure ECC needs.
MIN_LEVEL_SIDE = 60
MAX_LEVELS = 5
ECC_ITERATIONS = 200
ECC_EPS = 1e-6
# Side of OpenCV's own Gaussian smoothing of both edge maps inside ECC.
ECC_GAUSS = 3
# Grows the masked frame by this many pixels: the edge map's blur and Sobel spread the frame's
# step over about three.
FRAME_MARGIN = 3
# Zooms about the EO centre tried on the coarsest level (each followed by a short affine ECC).
SEARCH_ZOOMS = (0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12)
SEARCH_ITERATIONS = 50
# The homography replaces the affine fit when it removes at least this share of the affine
# fit's decorrelation (1 - rho). Real pairs that need it gain 9-11 %; on pairs an affine map
# explains the gain stays under 4 %.
PERSPECTIVE_GAIN = 0.06


class RegistrationError(CSKNetError):
    """The alignment could not be estimated (too few points, ECC did not converge)."""


def valid_mask(img: np.ndarray, margin: int = FRAME_MARGIN) -> np.ndarray:
    """uint8 mask (1 = real pixels) without the frame a warp or projection leaves: pixels exactly
    0 (or not finite) in every channel whose region touches the image's border, grown by
    `margin` px."""
    g = np.asarray(img).astype(np.float32)
    dead = ~np.isfinite(g) | (g == 0)
    if dead.ndim == 3:
        dead = dead.all(axis=2)
    mask = np.ones(dead.shape, np.uint8)
    if not (dead[0].any() or dead[-1].any() or dead[:, 0].any() or dead[:, -1].any()):
        return mask
    _, lab = cv2.connectedComponents(dead.astype(np.uint8), connectivity=8)
    touching = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    frame = np.isin(lab, touching[touching > 0]).astype(np.uint8)
    if margin > 0:
        frame = cv2.dilate(frame, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return mask - frame


def edge_map(img: np.ndarray, blur_sigma: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Gradient magnitude of an image, float32 in [0, 1], robust to either modality's scale.

    Grey first (EO RGB averaged), then a light blur so sensor noise does not dominate, Sobel
    magnitude, divided by its 99th percentile over `mask`'s pixels (all when None; zero outside
    them) and clipped; the square root evens out strong and weak edges, which a thermal and a
    visible camera render with unrelated contrasts."""
    a = np.asarray(img)
    g = a.astype(np.float32).mean(axis=2) if a.ndim == 3 else a.astype(np.float32)
    finite = np.isfinite(g)
    if not finite.all():
        g = np.where(finite, g, 0.0).astype(np.float32)
    if blur_sigma > 0:
        g = cv2.GaussianBlur(g, (0, 0), blur_sigma)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    inside = mag if mask is None else mag[mask > 0]
    hi = float(np.percentile(inside, 99.0)) if inside.size else 0.0
    if hi <= 0:
        return np.zeros_like(mag)
    out = np.sqrt(np.clip(mag / hi, 0.0, 1.0)).astype(np.float32)
    if mask is not None:
        out[mask == 0] = 0.0
    return out


def pyramid_levels(eo_shape: tuple[int, int], ir_shape: tuple[int, int]) -> int:
    """How many levels keep the coarsest short side at MIN_LEVEL_SIDE px or more (at most MAX_LEVELS)."""
    side = min(*eo_shape[:2], *ir_shape[:2])
    return int(max(1, min(MAX_LEVELS, 1 + math.floor(math.log2(max(side, 1) / MIN_LEVEL_SIDE)))))


def overlap_score(t: np.ndarray, m: np.ndarray, warp: np.ndarray) -> float:
    """Correlation of the EO edge map `t` with the IR one `m` warped onto it, over all of EO,
    where IR does not reach counting as no edge: unlike ECC's own coefficient (taken where both
    are), a warp that shrinks IR onto one patch pays for the EO outlines it leaves uncovered."""
    w = cv2.warpPerspective(m, warp.astype(np.float64), (t.shape[1], t.shape[0]),
                            flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    a, b = t - t.mean(), w - w.mean()
    d = float(np.sqrt(float((a * a).sum()) * float((b * b).sum())))
    return float((a * b).sum()) / d if d > 0 else -1.0


def _criteria(iterations: int, eps: float) -> tuple[int, int, float]:
    return cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, max(1, int(iterations)), float(eps)


def _ecc(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray, affine: bool,
         criteria: tuple[int, int, float]) -> tuple[float, np.ndarray]:
    """One ECC run from `warp` (3x3); the 3x3 it ends on and its correlation. OpenCV warps the
    input's mask along, so EO pixels IR does not cover never count. Raises cv2.error."""
    w32 = (warp[:2] if affine else warp / warp[2, 2]).astype(np.float32)
    rho, w32 = cv2.findTransformECC(t, m, w32, cv2.MOTION_AFFINE if affine else cv2.MOTION_HOMOGRAPHY,
                                    criteria, mask, ECC_GAUSS)
    out = np.vstack([w32, (0.0, 0.0, 1.0)]) if affine else w32
    return float(rho), out.astype(np.float64)


def search_zoom(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """The start for ECC's local search: `warp` and its zooms about the EO centre by
    SEARCH_ZOOMS, each after a short affine ECC; the one that covers EO's outlines best wins."""
    h, w = t.shape
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
    best, best_score = warp, overlap_score(t, m, warp)
    for z in SEARCH_ZOOMS:
        start = warp @ c @ np.diag([z, z, 1.0]) @ np.linalg.inv(c)
        try:
            _, found = _ecc(t, m, mask, start, True, _criteria(SEARCH_ITERATIONS, 1e-4))
        except cv2.error:
            continue
        score = overlap_score(t, m, found)
        if score > best_score:
            best, best_score = found, score
    return best


def fit_finest(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray,
               criteria: tuple[int, int, float]) -> tuple[float, np.ndarray]:
    """The finest level: the affine fit, then the homography from it, kept when it earns its two
    extra terms (PERSPECTIVE_GAIN). A start that already has perspective keeps the full model."""
    if np.abs(warp[2, :2]).max() >= 1e-9:
        return _ecc(t, m, mask, warp, False, criteria)
    rho_a, w_a = _ecc(t, m, mask, warp, True, criteria)
    try:
        rho_h, w_h = _ecc(t, m, mask, w_a, False, criteria)
    except cv2.error:
        return rho_a, w_a
    if rho_h - rho_a >= PERSPECTIVE_GAIN * (1.0 - rho_a):
        return rho_h, w_h
    return rho_a, w_a


def ecc_homography(
    eo: np.ndarray,
    ir: np.ndarray,
    h: np.ndarray,
    *,
    levels: int,
    search: bool,
    iterations: int = ECC_ITERATIONS,
    eps: float = ECC_EPS,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, float]:
    """IR -> EO homography (pixel coordinates of `ir` as given) from the start `h`, and the
    correlation of the last level that converged (nan when none did). `search`: try zooms on
    the coarsest level. `progress(done, levels)` once per level; `cancelled()` before each."""
    eo_shape, ir_shape = tuple(eo.shape[:2]), tuple(ir.shape[:2])
    v_eo, v_ir = valid_mask(eo), valid_mask(ir)
    e_eo, e_ir = edge_map(eo, mask=v_eo), edge_map(ir, mask=v_ir)
    rho, ok_levels = float("nan"), 0
    for k, lvl in enumerate(range(levels - 1, -1, -1)):
        if cancelled is not None and cancelled():
            raise RegistrationError("registration cancelled")
        f = 0.5 ** lvl
        se = (max(8, round(eo_shape[0] * f)), max(8, round(eo_shape[1] * f)))
        si = (max(8, round(ir_shape[0] * f)), max(8, round(ir_shape[1] * f)))
        t = cv2.resize(e_eo, (se[1], se[0]), interpolation=cv2.INTER_AREA) if se != eo_shape else e_eo
        m = cv2.resize(e_ir, (si[1], si[0]), interpolation=cv2.INTER_AREA) if si != ir_shape else e_ir
        mask = cv2.resize(v_ir, (si[1], si[0]), interpolation=cv2.INTER_NEAREST) if si != ir_shape else v_ir
        s_eo, s_ir = default_homography(eo_shape, se), default_homography(ir_shape, si)
        warp = np.linalg.inv(s_eo @ h @ np.linalg.inv(s_ir))
        warp = warp / warp[2, 2]
        # Coarse levels fit an affine map: a homography's two extra degrees of freedom drift on a
        # few thousand pixels (it zooms into one patch that happens to correlate).
        affine = np.abs(warp[2, :2]).max() < 1e-9
        try:
            if k == 0 and search and lvl > 0 and affine:
                warp = search_zoom(t, m, mask, warp)
            if lvl > 0:
                # Coarse levels only need to bring the next one into its basin: half the iterations.
                rho, warp = _ecc(t, m, mask, warp, affine, _criteria(iterations // 2, eps * 10))
            else:
                rho, warp = fit_finest(t, m, mask, warp, _criteria(iterations, eps))
        except cv2.error as exc:
            if lvl > 0:  # a coarse level that cannot converge leaves the estimate to the finer ones
                if progress is not None:
                    progress(k + 1, levels)
                continue
            if ok_levels:
                break
            raise RegistrationError(f"ECC did not converge: {str(exc).strip().splitlines()[-1]}") from None
        ok_levels += 1
        h = np.linalg.inv(s_eo) @ np.linalg.inv(warp) @ s_ir
        h = h / h[2, 2]
        if progress is not None:
            progress(k + 1, levels)
    return h, rho
