"""Camera effects that turn the demo's lit scene into sensor images: glare and bloom, fog, optics
blur, vignetting, sensor noise and quantisation for EO; atmosphere, blur, microbolometer fixed
pattern, noise and the radiometric centikelvin encoding for IR.

The noise comes from pools cached per (seed, size), each frame taking a window at its own seeded
offset: cheaper than fresh noise, still different every frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from csknet_studio.core.demo.render import Canvas
from csknet_studio.core.radiometry import ZERO_CELSIUS_K, LinearScale

IR_SCALE = 0.01  # kelvin per IR count
IR_CELSIUS = LinearScale(IR_SCALE, -ZERO_CELSIUS_K, "demo centikelvin")  # what demo.json's `ir` block says


@lru_cache(maxsize=8)
def _vignette(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return (1.0 - 0.12 * r2)[..., None].astype(np.float32)


@lru_cache(maxsize=8)
def _fixed_pattern(seed: int, h: int, w: int) -> np.ndarray:
    """Microbolometer fixed-pattern noise: column and row offsets in kelvin, constant per camera."""
    rng = np.random.default_rng([seed, 61])
    cols = rng.normal(0, 0.12, w).astype(np.float32)
    rows = rng.normal(0, 0.04, h).astype(np.float32)
    return rows[:, None] + cols[None, :]


@lru_cache(maxsize=2)
def _noise_pool(seed: int, h: int, w: int) -> np.ndarray:
    """Gaussian noise, 3 EO channels + 1 IR, a little larger than the frame: each frame takes a
    window at its own offset (cheaper than fresh noise, still different every frame)."""
    rng = np.random.default_rng([seed, 71])
    return rng.standard_normal((h + 48, w + 48, 4), dtype=np.float32)


def clear_sensor_caches() -> None:
    """Drop the cached noise pools, fixed patterns and vignettes."""
    _noise_pool.cache_clear()
    _vignette.cache_clear()
    _fixed_pattern.cache_clear()


def _bloom(glare: np.ndarray, s: float) -> np.ndarray:
    """Glare plus a wide soft halo around it (night and fog)."""
    h, w = glare.shape[:2]
    small = cv2.resize(glare, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 2.5 * s + 0.5)
    return cv2.scaleAdd(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 1.5, glare)


def _eo_image(eo: np.ndarray, depth: np.ndarray, glare: np.ndarray, noise: np.ndarray, cond: str,
              s: float) -> np.ndarray:
    """EO uint8 RGB: fog veil or night glare, optics blur, vignetting, sensor noise (stronger and
    brightness-dependent at night), quantisation."""
    h, w = depth.shape
    if cond == "fog":
        tr = np.exp(np.minimum(depth, 1e3) * np.float32(-0.2))
        air = np.array([0.74, 0.75, 0.77], np.float32)
        eo = (eo - air) * tr[..., None] + air
        eo += 0.5 * glare
        grey = eo.mean(axis=2, keepdims=True)
        eo = 0.5 * (eo + grey)
    elif cond == "night":
        eo = eo + glare
    eo = cv2.GaussianBlur(eo, (0, 0), 0.5 * s + 0.2)
    eo *= _vignette(h, w)
    if cond == "night":
        lum = np.sqrt(np.clip(eo.mean(axis=2), 0, 1))
        sigma = (0.018 + 0.045 * lum)[..., None]
        eo *= 1.15
        eo += sigma * noise
    else:
        eo += (0.014 if cond == "fog" else 0.011) * noise
    eo *= 255.0
    eo += 0.5
    np.clip(eo, 0, 255, out=eo)
    return eo.astype(np.uint8)


def _ir_image(temp: np.ndarray, depth: np.ndarray, noise: np.ndarray, cond: str, s: float,
              seed: int) -> np.ndarray:
    """IR uint16 centikelvin: fog pulls far things towards the air, blur, fixed pattern, noise."""
    h, w = depth.shape
    if cond == "fog":
        tr_ir = np.exp(np.minimum(depth, 1e3) * np.float32(-0.01))
        temp = (temp - 285.0) * tr_ir + 285.0
    temp = cv2.GaussianBlur(temp, (0, 0), 0.9 * s + 0.2)
    temp += _fixed_pattern(seed, h, w)
    temp += 0.07 * noise
    temp *= 1.0 / IR_SCALE
    temp += 0.5
    np.clip(temp, 0, 65535, out=temp)
    return temp.astype(np.uint16)


def finish(cv: Canvas, glare: np.ndarray, cond: str, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera effects on frame `index`: (EO uint8 RGB, IR uint16 centikelvin)."""
    h, w = cv.label.shape
    s = w / 640.0
    rng = np.random.default_rng([seed, 51, index])
    oy, ox = (int(v) for v in rng.integers(0, 48, 2))
    noise = _noise_pool(seed, h, w)[oy : oy + h, ox : ox + w]
    if cond != "day":
        glare = _bloom(glare, s)
    eo8 = _eo_image(cv.eo, cv.depth, glare, noise[..., :3], cond, s)
    return eo8, _ir_image(cv.temp, cv.depth, noise[..., 3], cond, s, seed)
