"""ECC maximisation on edge maps: the automatic IR -> EO homography behind `registration.estimate_ecc`.

Raw intensities do not match across modalities (a warm wall is bright in IR, maybe dark in EO),
but the outlines of objects show in both, so ECC compares gradient magnitudes, each measured
against the edges around it (`edge_map`), so a dim street at night keeps its outlines. The
steps, coarse to fine over an image pyramid whose coarsest level keeps 120 px or more:

- the black frame a warp or projection leaves around an image is masked (`valid_mask`): its step
  to the picture is a strong outline the other camera never saw, and ECC would pull towards it;
- on the coarsest level a grid of zooms and rotations is searched, each with its best shift by
  cross-correlation and a few ECC steps (`search_start`), since ECC is a local search: a zoom of
  a tenth or a shift of 20 px started from plain resizing falls into a wrong basin;
- coarse levels fit a similarity (zoom, rotation, shift: `_ecc_similarity`), which a few thousand
  pixels of weak night edges determine, where an affine map's shear drifts off;
- the second finest level picks the model: the similarity, the affine map from it, the
  homography from that, each kept only when it explains a clear share of what the simpler one
  left (`AFFINE_GAIN`, `PERSPECTIVE_GAIN`): on a pair they barely help the extra terms follow
  whichever part of the scene happens to overlap, and move the corners by pixels. The finest
  level refines the model picked.

The correlation returned is ECC's coefficient on the finest level for the warp returned.
Warps here are OpenCV's: 3x3 taking template (EO) pixel coordinates to input (IR) ones.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from csknet_studio.core.data.alignment import default_homography
from csknet_studio.core.errors import CSKNetError

# The coarsest pyramid level keeps at least this many pixels on its short side: fewer and the
# edge maps lose the structure ECC needs.
MIN_LEVEL_SIDE = 120
MAX_LEVELS = 5
ECC_ITERATIONS = 200
ECC_EPS = 1e-6
# Side of OpenCV's own Gaussian smoothing of both edge maps inside ECC.
ECC_GAUSS = 3
# Grows the masked frame by this many pixels: the edge map's blur and Sobel spread the frame's
# step over about three.
FRAME_MARGIN = 3
# Radius (px, Gaussian sigma) of the neighbourhood each edge is measured against.
LOCAL_SIGMA = 12.0
# The coarse search on the coarsest level: zooms and rotations about the EO centre, each with its
# best shift (up to this share of each side) by cross-correlation, then this many ECC steps.
SEARCH_ZOOMS = (0.86, 0.895, 0.93, 0.965, 1.0, 1.035, 1.07, 1.105, 1.14)
SEARCH_DEGREES = (-4.0, -2.0, 0.0, 2.0, 4.0)
SEARCH_SHIFT = 0.12
SEARCH_ITERATIONS = 10
# On the second finest level, the homography replaces the fit so far when it removes at least
# this share of that fit's decorrelation (1 - rho), and the affine map the similarity fit. On 20
# real pairs the affine map gains 0-2.9 % over the similarity and the homography 0-4.4 %, except
# RoadScene 04722, whose two crops differ by a perspective: the homography gains 14 % there.
PERSPECTIVE_GAIN = 0.06
AFFINE_GAIN = 0.04
# The finest level tries the affine map and the homography with this share of its iterations.
TRIAL_SHARE = 4


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


def edge_map(img: np.ndarray, blur_sigma: float = 1.0, mask: np.ndarray | None = None,
             local_sigma: float | None = LOCAL_SIGMA) -> np.ndarray:
    """Gradient magnitude of an image, float32 in [0, 1], robust to either modality's scale.

    Grey first (EO RGB averaged), then a light blur so sensor noise does not dominate, Sobel
    magnitude. Each pixel's magnitude is divided by the mean magnitude around it (Gaussian of
    `local_sigma` px, plus the image's own mean so flat regions do not turn noise into edges):
    a dim street at night keeps outlines as strong as a lamp-lit one's, where a thermal and a
    visible camera render contrasts that have nothing to do with each other. Then divided by its
    99th percentile over `mask`'s pixels (all when None; zero outside them) and clipped."""
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
    if mask is not None:
        mag[mask == 0] = 0.0
    inside = mag if mask is None else mag[mask > 0]
    if local_sigma:
        mean = float(inside.mean()) if inside.size else 0.0
        mag = mag / (cv2.GaussianBlur(mag, (0, 0), local_sigma) + max(mean, 1e-12))
        inside = mag if mask is None else mag[mask > 0]
    hi = float(np.percentile(inside, 99.0)) if inside.size else 0.0
    if hi <= 0:
        return np.zeros_like(mag)
    out = np.clip(mag / hi, 0.0, 1.0).astype(np.float32)
    if mask is not None:
        out[mask == 0] = 0.0
    return out


def pyramid_levels(eo_shape: tuple[int, int], ir_shape: tuple[int, int]) -> int:
    """How many levels keep the coarsest short side at MIN_LEVEL_SIDE px or more (at most MAX_LEVELS)."""
    side = min(*eo_shape[:2], *ir_shape[:2])
    return int(max(1, min(MAX_LEVELS, 1 + math.floor(math.log2(max(side, 1) / MIN_LEVEL_SIDE)))))


def overlap_score(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray) -> float:
    """Correlation of the EO edge map `t` with the IR one `m` warped onto it, over the central
    part of EO that every shift the search tries keeps (SEARCH_SHIFT off each side), times the
    share of that part IR covers. One region for every candidate, so their scores compare: ECC's
    own coefficient (taken wherever both are) favours a warp that shrinks IR onto one patch, and
    counting uncovered EO as "no edge" lets a warp that leaves EO's blank sky uncovered score on
    the blankness."""
    h, w = t.shape
    my, mx = max(1, round(SEARCH_SHIFT * h)), max(1, round(SEARCH_SHIFT * w))
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    wm = cv2.warpPerspective(m, warp.astype(np.float64), (w, h), flags=flags)[my:h - my, mx:w - mx]
    wv = cv2.warpPerspective(mask.astype(np.float32), warp.astype(np.float64), (w, h), flags=flags)
    cover = wv[my:h - my, mx:w - mx] > 0.99
    if cover.sum() < 16:
        return -1.0
    a, b = t[my:h - my, mx:w - mx][cover], wm[cover]
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt(float(a @ a) * float(b @ b)))
    return float(a @ b) / d * float(cover.mean()) if d > 0 else -1.0


def _criteria(iterations: int, eps: float) -> tuple[int, int, float]:
    return cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, max(1, int(iterations)), float(eps)


def model_of(warp: np.ndarray) -> str:
    """"homography" when `warp` has perspective terms, else "affine"."""
    return "homography" if np.abs(warp[2, :2]).max() >= 1e-9 else "affine"


def _base(warp: np.ndarray) -> np.ndarray:
    """The part of an affine warp's linear map that is not a zoom and rotation (the anisotropy of
    plain resizing between two aspect ratios, say): `warp`'s linear map is this times a similarity."""
    lin = warp[:2, :2]
    a, b = (lin[0, 0] + lin[1, 1]) / 2, (lin[1, 0] - lin[0, 1]) / 2
    if a * a + b * b < 1e-12 * max(1.0, float(np.abs(lin).max()) ** 2):
        raise cv2.error("the start has no zoom and rotation to refine (a mirror image?)")
    return lin @ np.linalg.inv(np.array([[a, -b], [b, a]]))


def _similarity_matrix(base: np.ndarray, p: np.ndarray) -> np.ndarray:
    """2x3 float32 warp: `base` times the zoom-rotation-shift [[p0, -p1, p2], [p1, p0, p3]]."""
    s = np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]]])
    return (base @ s).astype(np.float32)


@dataclass(frozen=True)
class Smoothed:
    """What every similarity ECC run on one pyramid level shares: both edge maps smoothed as
    OpenCV smooths them, the input's gradient, its mask shrunk by the gradient's reach, and the
    template's pixel coordinates."""

    t: np.ndarray
    m: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    inside: np.ndarray
    xs: np.ndarray
    ys: np.ndarray

    @classmethod
    def of(cls, t: np.ndarray, m: np.ndarray, mask: np.ndarray) -> Smoothed:
        tb = cv2.GaussianBlur(t, (ECC_GAUSS, ECC_GAUSS), 0)
        mb = cv2.GaussianBlur(m, (ECC_GAUSS, ECC_GAUSS), 0)
        k = np.array([[-0.5, 0.0, 0.5]], np.float32)
        inside = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
        ys, xs = np.mgrid[0:t.shape[0], 0:t.shape[1]].astype(np.float32)
        return cls(tb, mb, cv2.filter2D(mb, -1, k), cv2.filter2D(mb, -1, k.T), inside, xs, ys)


def _ecc_similarity(s: Smoothed, warp: np.ndarray, criteria: tuple[int, int, float]) -> tuple[float, np.ndarray]:
    """ECC (Evangelidis and Psarakis's forward additive iteration, as OpenCV runs it) over a zoom,
    a rotation and a shift on top of the start's fixed anisotropy (`_base`): OpenCV offers no
    such model, and an affine map's two extra terms drift on weak night edges. Raises cv2.error."""
    base = _base(warp)
    q = np.linalg.inv(base) @ warp[:2]  # [[p0, -p1, p2], [p1, p0, p3]]
    p = np.array([(q[0, 0] + q[1, 1]) / 2, (q[1, 0] - q[0, 1]) / 2, q[0, 2], q[1, 2]])
    flags, size = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, (s.t.shape[1], s.t.shape[0])
    jac = np.empty((4, *s.t.shape), np.float32)  # one row per parameter: row-major products stay fast
    rho, last = -1.0, -2.0
    for it in range(criteria[1] + 1):
        mat = _similarity_matrix(base, p)
        valid = cv2.warpAffine(s.inside, mat, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(np.float32)
        n = float(valid.sum())
        if n < 16:
            raise cv2.error("the warped images do not overlap")
        tz = (s.t - float(np.vdot(s.t, valid)) / n) * valid
        iw = cv2.warpAffine(s.m, mat, size, flags=flags)
        iz = (iw - float(np.vdot(iw, valid)) / n) * valid
        corr, tn, inn = float(np.vdot(tz, iz)), float(np.vdot(tz, tz)), float(np.vdot(iz, iz))
        rho = corr / max(math.sqrt(tn * inn), 1e-12)
        if it == criteria[1] or abs(rho - last) < criteria[2]:
            break
        last = rho
        # The image gradient at the warped position, carried back through the fixed anisotropy.
        wx, wy = cv2.warpAffine(s.gx, mat, size, flags=flags), cv2.warpAffine(s.gy, mat, size, flags=flags)
        ux = (base[0, 0] * wx + base[1, 0] * wy) * valid
        uy = (base[0, 1] * wx + base[1, 1] * wy) * valid
        jac[0], jac[1], jac[2], jac[3] = ux * s.xs + uy * s.ys, uy * s.xs - ux * s.ys, ux, uy
        j = jac.reshape(4, -1)
        hess_inv = np.linalg.pinv((j @ j.T).astype(np.float64), hermitian=True)
        ip, tp = (j @ iz.ravel()).astype(np.float64), (j @ tz.ravel()).astype(np.float64)
        lam_d = corr - tp @ hess_inv @ ip
        if lam_d <= 0:
            raise cv2.error("ECC stopped before it converged: the images may be uncorrelated")
        lam = (inn - ip @ hess_inv @ ip) / lam_d
        p = p + hess_inv @ (lam * tp - ip)
    return float(rho), np.vstack([_similarity_matrix(base, p).astype(np.float64), (0.0, 0.0, 1.0)])


def _ecc(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray, model: str,
         criteria: tuple[int, int, float], smoothed: Smoothed | None = None) -> tuple[float, np.ndarray]:
    """One ECC run from `warp` (3x3) fitting `model` ("similarity", "affine" or "homography"); the
    3x3 it ends on and its correlation. OpenCV warps the input's mask along, so EO pixels IR does
    not cover never count. `smoothed`: `Smoothed.of(t, m, mask)`, when several runs share it.
    Raises cv2.error."""
    if model == "similarity":
        return _ecc_similarity(smoothed or Smoothed.of(t, m, mask), warp, criteria)
    affine = model == "affine"
    w32 = (warp[:2] if affine else warp / warp[2, 2]).astype(np.float32)
    rho, w32 = cv2.findTransformECC(t, m, w32, cv2.MOTION_AFFINE if affine else cv2.MOTION_HOMOGRAPHY,
                                    criteria, mask, ECC_GAUSS)
    out = np.vstack([w32, (0.0, 0.0, 1.0)]) if affine else w32
    return float(rho), out.astype(np.float64)


def similarity_about(shape: tuple[int, int], zoom: float, degrees: float) -> np.ndarray:
    """3x3 zooming and rotating template coordinates about the centre of an (H, W) image."""
    h, w = shape
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
    a = math.radians(degrees)
    r = np.array([[zoom * math.cos(a), -zoom * math.sin(a), 0], [zoom * math.sin(a), zoom * math.cos(a), 0],
                  [0, 0, 1.0]])
    return c @ r @ np.linalg.inv(c)


def best_shift(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray) -> tuple[float, np.ndarray]:
    """IR's edge map put on the EO grid by `warp`, then slid over EO's by up to SEARCH_SHIFT of each
    side: the best normalised cross-correlation and `warp` with that shift folded in. Only the
    central part of the warped IR slides (so every offset compares the same pixels); IR's masked
    frame is left out of it."""
    h, w = t.shape
    my, mx = max(1, round(SEARCH_SHIFT * h)), max(1, round(SEARCH_SHIFT * w))
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    wm = cv2.warpPerspective(m, warp, (w, h), flags=flags)[my:h - my, mx:w - mx]
    wv = cv2.warpPerspective(mask.astype(np.float32), warp, (w, h), flags=flags)[my:h - my, mx:w - mx]
    wv = (wv > 0.99).astype(np.float32)
    if wv.mean() < 0.3 or float(wm[wv > 0].std()) <= 0:
        return -1.0, warp
    res = cv2.matchTemplate(t, wm, cv2.TM_CCOEFF_NORMED, mask=wv)
    res[~np.isfinite(res)] = -1.0
    y, x = np.unravel_index(int(np.argmax(res)), res.shape)
    # EO pixel p shows what the warped IR shows at p - (x - mx, y - my).
    shift = np.array([[1, 0, -(x - mx)], [0, 1, -(y - my)], [0, 0, 1.0]])
    return float(res[y, x]), warp @ shift


def search_start(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """The start for ECC's local search: a grid of zooms and rotations about the EO centre, each
    with its best shift by cross-correlation (`best_shift`) and then a few steps of similarity
    ECC; the one that then covers EO's outlines best wins (`overlap_score`). Every grid point gets
    its steps: on a night pair the right one's cross-correlation ranked 13th of 45, and only the
    steps showed it covers EO best."""
    best, best_score = warp, overlap_score(t, m, mask, warp)
    smoothed = Smoothed.of(t, m, mask)
    for z in SEARCH_ZOOMS:
        for deg in SEARCH_DEGREES:
            score, start = best_shift(t, m, mask, warp @ similarity_about(t.shape, z, deg))
            if score <= -1.0:
                continue
            with contextlib.suppress(cv2.error):
                start = _ecc(t, m, mask, start, "similarity", _criteria(SEARCH_ITERATIONS, 1e-4), smoothed)[1]
            score = overlap_score(t, m, mask, start)
            if score > best_score:
                best, best_score = start, score
    return best


def affine_part(warp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The affine map closest to `warp` over an (H, W) template (least squares at its corners and
    centre): where a similarity or affine fit starts from a homography."""
    h, w = shape
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1], [(w - 1) / 2, (h - 1) / 2]], np.float64)
    q = np.c_[src, np.ones(len(src))] @ warp.T
    sol, *_ = np.linalg.lstsq(np.c_[src, np.ones(len(src))], q[:, :2] / q[:, 2:3], rcond=None)
    return np.vstack([sol.T, (0.0, 0.0, 1.0)])


def choose_model(t: np.ndarray, m: np.ndarray, mask: np.ndarray, warp: np.ndarray,
                 criteria: tuple[int, int, float]) -> tuple[float, np.ndarray, str]:
    """The similarity fit, then the affine map and the homography, each from the one before and
    kept when it earns its extra terms (AFFINE_GAIN, PERSPECTIVE_GAIN): correlation, warp, model.
    A start with perspective (clicked pairs) starts the similarity from its affine part and
    competes as one more homography: four clicks a pixel or two off give a perspective ECC keeps."""
    persp = model_of(warp) == "homography"
    rho, best = _ecc(t, m, mask, affine_part(warp, t.shape) if persp else warp, "similarity", criteria)
    chosen = "similarity"
    # A model its extra terms suit converges in a few dozen steps from the simpler fit; one that
    # does not only wanders (a homography on a 1280x1024 pair can spend seconds doing so).
    trial = _criteria(max(1, criteria[1] // TRIAL_SHARE), criteria[2])
    for model, gain in (("affine", AFFINE_GAIN), ("homography", PERSPECTIVE_GAIN)):
        tried = []
        for start, crit in [(best, trial)] + ([(warp, criteria)] if persp and model == "homography" else []):
            with contextlib.suppress(cv2.error):
                tried.append(_ecc(t, m, mask, start, model, crit))
        if tried:
            rho_m, w_m = max(tried, key=lambda r: r[0])
            if rho_m - rho >= gain * (1.0 - rho):
                rho, best, chosen = rho_m, w_m, model
    return rho, best, chosen


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
    correlation of the last level that converged (nan when none did). `search`: search zooms,
    rotations and shifts on the coarsest level. `progress(done, levels)` once per level;
    `cancelled()` before each."""
    eo_shape, ir_shape = tuple(eo.shape[:2]), tuple(ir.shape[:2])
    v_eo, v_ir = valid_mask(eo), valid_mask(ir)
    e_eo, e_ir = edge_map(eo, mask=v_eo), edge_map(ir, mask=v_ir)
    rho, ok_levels = float("nan"), 0
    # The second finest level picks the model (4 times cheaper than the finest, which refines it).
    select, chosen = min(1, levels - 1), None
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
        # Coarse levels fit a similarity (on the start's anisotropy): an affine map's or a
        # homography's extra terms drift on a few thousand pixels (they shear or zoom into one patch
        # that happens to correlate). A start with perspective (clicked pairs) keeps the homography
        # until `choose_model` weighs it against the simpler models.
        model = chosen or ("similarity" if model_of(warp) == "affine" else "homography")
        # Coarse levels only need to bring the next one into its basin: half the iterations.
        crit = _criteria(iterations, eps) if lvl == 0 else _criteria(iterations // 2, eps * 10)
        try:
            if k == 0 and search and model == "similarity":
                warp = search_start(t, m, mask, warp)
            if chosen is None and lvl <= select:
                rho, warp, chosen = choose_model(t, m, mask, warp, crit)
                if lvl == 0 and chosen != "similarity":
                    rho, warp = _ecc(t, m, mask, warp, chosen, crit)
            else:
                rho, warp = _ecc(t, m, mask, warp, model, crit)
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
