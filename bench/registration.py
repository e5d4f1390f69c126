"""Automatic EO/IR registration on real pairs: recovery of known warps, day and night.

    nice -n 10 .venv/bin/python bench/registration.py [--data DIR] [--pairs a,b] [--warps 6] [--seed 7]

Each pair is registered by its data set (same size, pixel on pixel). Its IR is warped by a known
homography (zoom 0.90-1.10 about the centre, rotation up to 3 degrees, shift up to 20 px: a
fixed, seeded set, the same for every pair), and `estimate_ecc` runs on it from no alignment at
all, as Auto-align and `csknet-studio align` do, at the images' own resolution. Printed per pair
and warp, mean corner error (EO px) against two references:

- ref:  the method's own reading of the untouched pair composed with the known warp, as
        tests/core/test_registration.py measures it: the data sets register their pairs to a few
        pixels only, and where the scene has depth no one homography fits it, so this asks
        whether the warp is recovered. The reading is the better correlated of two: from no
        alignment, and started at the data set's registration (where the edge correlation has
        two optima a few pixels apart, either may be the one a warp lands in).
        Success: under 1.5 px, with the reading within 2 % of the image diagonal of the data
        set's registration (else the method lost the pair itself: every warp of it fails).
- data: the data set's registration composed with the known warp.

`kept` is the share of the original IR field still in the warped IR (a zoom below 1 crops it,
a shift pushes part off; the warped-in black frame is not counted). The zooms are drawn one per
equal slice of 0.90-1.10, so every pair gets its heavy crops. Also the correlation each result
reports and the time of each run; the untouched pair's own run is the `none` row.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core import registration as reg

DATA = Path("/work/shared/data/rgbt_real")
SUCCESS_PX = 1.5
HEAVY_KEPT = 0.9  # warps that keep less of the IR field than this count as heavy crops
LOST_SHARE = 0.02  # the untouched pair's reading this share of the diagonal off the data set's: lost


@dataclass(frozen=True)
class Pair:
    eo: str
    ir: str
    night: bool
    packed: bool = False  # one 4-channel PNG: R, G, B, thermal (MFNet)


PAIRS: dict[str, Pair] = {
    "road04269": Pair("roadscene/crop_LR_visible/FLIR_04269.jpg", "roadscene/cropinfrared/FLIR_04269.jpg", False),
    "road05105": Pair("roadscene/crop_LR_visible/FLIR_05105.jpg", "roadscene/cropinfrared/FLIR_05105.jpg", False),
    "road00977": Pair("roadscene/crop_LR_visible/FLIR_00977.jpg", "roadscene/cropinfrared/FLIR_00977.jpg", False),
    "msrs00537D": Pair("msrs_piafusion/vi/00537D.png", "msrs_piafusion/ir/00537D.png", False),
    "msrs00556D": Pair("msrs_piafusion/vi/00556D.png", "msrs_piafusion/ir/00556D.png", False),
    "mfnet01477D": Pair("mfnet_pytorch_samples/image/01477D.png", "", False, packed=True),
    "road08094": Pair("roadscene/crop_LR_visible/FLIR_08094.jpg", "roadscene/cropinfrared/FLIR_08094.jpg", True),
    "road09545": Pair("roadscene/crop_LR_visible/FLIR_09545.jpg", "roadscene/cropinfrared/FLIR_09545.jpg", True),
    "msrs00881N": Pair("msrs_piafusion/vi/00881N.png", "msrs_piafusion/ir/00881N.png", True),
    "llvip190001": Pair("llvip/Test_LLVIP_vi/190001.jpg", "llvip/Test_LLVIP_ir/190001.jpg", True),
    "llvip200002": Pair("llvip/Test_LLVIP_vi/200002.jpg", "llvip/Test_LLVIP_ir/200002.jpg", True),
    "m3fd00471": Pair("tardal_samples/vi/M3FD_00471.png", "tardal_samples/ir/M3FD_00471.png", True),
}


def load(root: Path, p: Pair) -> tuple[np.ndarray, np.ndarray]:
    """EO as RGB uint8 and IR as one grey channel, read in place."""
    if p.packed:
        bgrt = cv2.imread(str(root / p.eo), cv2.IMREAD_UNCHANGED)
        if bgrt is None or bgrt.ndim != 3 or bgrt.shape[2] != 4:
            raise FileNotFoundError(f"{root / p.eo}: no 4-channel image there")
        return bgrt[:, :, 2::-1].copy(), bgrt[:, :, 3].copy()
    eo = cv2.imread(str(root / p.eo), cv2.IMREAD_COLOR)
    ir = cv2.imread(str(root / p.ir), cv2.IMREAD_GRAYSCALE)
    if eo is None or ir is None:
        raise FileNotFoundError(f"{root / p.eo} or {root / p.ir}")
    return eo[:, :, ::-1].copy(), ir


def similarity(shape: tuple[int, int], s: float, deg: float, tx: float, ty: float) -> np.ndarray:
    """Zoom s and rotation about the image centre, then a shift (warped IR px -> original IR px)."""
    h, w = shape
    c = np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1.0]])
    a = math.radians(deg)
    r = np.array([[s * math.cos(a), -s * math.sin(a), 0], [s * math.sin(a), s * math.cos(a), 0], [0, 0, 1.0]])
    t = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
    return t @ np.linalg.inv(c) @ r @ c


def known_warps(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    """n (zoom, degrees, tx, ty), the same for every pair; zoom k of n from the k-th slice of 0.90-1.10."""
    rng = np.random.default_rng(seed)
    zooms = 0.9 + 0.2 * (rng.permutation(n) + rng.uniform(0, 1, n)) / n
    return [(float(z), float(rng.uniform(-3, 3)), float(rng.uniform(-20, 20)), float(rng.uniform(-20, 20)))
            for z in zooms]


def kept_share(h: np.ndarray, shape: tuple[int, int]) -> float:
    """Share of the original IR frame that the warped IR still shows."""
    ones = np.ones(shape, np.uint8)
    seen = cv2.warpPerspective(ones, np.linalg.inv(h), (shape[1], shape[0]), flags=cv2.WARP_INVERSE_MAP)
    return float(seen.mean())


@dataclass
class Run:
    pair: str
    warp: str
    kept: float
    err_ref: float
    err_data: float
    rho: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.err_ref < SUCCESS_PX


def register(eo: np.ndarray, ir: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray | None, float, float]:
    """`estimate_ecc`'s homography (None when it refused), its correlation and the seconds it took."""
    t0 = time.perf_counter()
    try:
        r = reg.estimate_ecc(eo, ir, init)
    except reg.RegistrationError:
        return None, float("nan"), time.perf_counter() - t0
    return r.homography, float(r.correlation if r.correlation is not None else float("nan")), time.perf_counter() - t0


def bench_pair(name: str, eo: np.ndarray, ir: np.ndarray,
               warps: list[tuple[float, float, float, float]]) -> tuple[float, list[Run]]:
    """The untouched pair's reading (its offset from the data set's registration) and one run per warp."""
    shape = ir.shape[:2]
    data_h = reg.default_homography(shape, eo.shape[:2])
    plain, rho, sec = register(eo, ir)
    ref, rho_p, _ = register(eo, ir, data_h)
    if ref is None or rho_p <= rho:  # nan from a failed run loses
        ref = plain
    off = float("inf") if ref is None else reg.corner_error(ref, data_h, shape)
    lost = not off < LOST_SHARE * math.hypot(*shape)
    e_plain = float("inf") if lost or plain is None else reg.corner_error(plain, ref, shape)
    d_plain = float("inf") if plain is None else reg.corner_error(plain, data_h, shape)
    runs = [Run(name, "none", 1.0, e_plain, d_plain, rho, sec)]
    cases = [(f"{s:.3f}/{d:+.1f}/{x:+.0f},{y:+.0f}", similarity(shape, s, d, x, y)) for s, d, x, y in warps]
    for label, h_known in cases:
        ir2 = cv2.warpPerspective(ir, h_known, (shape[1], shape[0]), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
        est, rho, sec = register(eo, ir2)
        if est is None:
            e_ref = e_data = float("inf")
        else:
            e_ref = float("inf") if lost else reg.corner_error(est, ref @ h_known, shape)
            e_data = reg.corner_error(est, data_h @ h_known, shape)
        runs.append(Run(name, label, kept_share(h_known, shape), e_ref, e_data, rho, sec))
    return off, runs


def summary(title: str, runs: list[Run]) -> str:
    if not runs:
        return f"{title:28s}   (none)"
    ok = sum(r.ok for r in runs)
    e = np.array([r.err_ref for r in runs])
    d = np.array([r.err_data for r in runs])
    t = np.array([r.seconds for r in runs])
    return (f"{title:28s} {ok:3d}/{len(runs):<3d} ({100 * ok / len(runs):5.1f} %)  ref median {np.median(e):7.2f} px"
            f"  data median {np.median(d):7.2f} px  time median {np.median(t):5.2f} s, max {t.max():5.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="the real pairs folder (read in place)")
    ap.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated names from the fixed list")
    ap.add_argument("--warps", type=int, default=6, help="known warps per pair")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    names = [n for n in args.pairs.split(",") if n]
    warps = known_warps(args.warps, args.seed)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.1f}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)")
    print(f"{'pair':12s} {'warp (zoom/deg/shift)':24s} {'kept':>5s} {'ref px':>8s} {'data px':>8s} {'rho':>6s} {'s':>6s}")
    everything: list[Run] = []
    night: set[str] = set()
    t0 = time.perf_counter()
    for name in names:
        p = PAIRS[name]
        if p.night:
            night.add(name)
        eo, ir = load(args.data, p)
        off, runs = bench_pair(name, eo, ir, warps)
        print(f"{name:12s} {eo.shape[1]}x{eo.shape[0]} {'night' if p.night else 'day'}, untouched pair's reading "
              f"{off:.2f} px off the data set's{' (lost)' if runs[0].err_ref == float('inf') else ''}")
        for r in runs:
            print(f"{'':12s} {r.warp:24s} {r.kept:5.2f} {r.err_ref:8.2f} {r.err_data:8.2f} {r.rho:6.3f} {r.seconds:6.2f}"
                  f"{'' if r.ok else '  FAIL'}", flush=True)
        everything += runs
    warped = [r for r in everything if r.warp != "none"]
    print()
    print(f"success: mean corner error against ref under {SUCCESS_PX} px; total {time.perf_counter() - t0:.0f} s")
    print(summary("all warps", warped))
    print(summary("day", [r for r in warped if r.pair not in night]))
    print(summary("night", [r for r in warped if r.pair in night]))
    print(summary(f"heavy crop (kept < {HEAVY_KEPT})", [r for r in warped if r.kept < HEAVY_KEPT]))
    print(summary("light crop", [r for r in warped if r.kept >= HEAVY_KEPT]))
    print(summary("untouched pair (none)", [r for r in everything if r.warp == "none"]))


if __name__ == "__main__":
    main()
