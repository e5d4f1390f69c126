"""Camera randomisation for training: what synthetic frames get wrong about real cameras.

The demo renderer draws one clean camera pair. Real EO and thermal cameras differ from it and from
each other: thermal cameras run white-hot or black-hot, with their own gain, offset and automatic
gain control (a non-linear tone curve), noise and column/row fixed-pattern noise; both cameras blur,
and their frames often reach us as JPEGs; visible cameras add colour casts, low light and noise.
A model trained on one clean camera learns that camera. These transforms draw one random camera
per training sample (from the sample's own generator, so runs stay reproducible) and apply it to
the crop the network is about to see. Scene-level differences (sun-warmed roads and facades, a
cold or warm sky) are drawn by the renderer instead (`core.demo.ThermalVariety`).

`strength` scales every probability; 0 turns the randomisation off (and draws nothing from the
generator, so older recipes reproduce exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from csknet_studio.core.errors import ConfigError


@dataclass(frozen=True)
class CameraRandomisation:
    """Per-effect probabilities (times `strength`) and ranges; the defaults are a plausible spread
    of automotive and surveillance cameras."""

    strength: float = 0.0
    ir_polarity: float = 0.15          # black-hot instead of white-hot
    ir_tone: float = 0.8               # gain, offset and an AGC-like gamma curve
    ir_gamma: tuple[float, float] = (0.55, 1.8)
    ir_noise: float = 0.5              # temporal noise, sigma up to ir_noise_max (of the 0..1 range)
    ir_noise_max: float = 0.03
    ir_fixed_pattern: float = 0.4      # column and row stripes
    ir_fixed_pattern_max: float = 0.025
    blur: float = 0.4                  # Gaussian blur, sigma up to blur_max pixels (each camera)
    blur_max: float = 1.3
    jpeg: float = 0.4                  # JPEG artefacts, quality in jpeg_quality
    jpeg_quality: tuple[int, int] = (30, 90)
    eo_cast: float = 0.5               # white balance: per-channel gains
    eo_cast_max: float = 0.15
    eo_low_light: float = 0.25         # darker exposure with a gamma and amplified noise
    eo_noise: float = 0.4
    eo_noise_max: float = 0.04

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ConfigError(f"augment.sim2real must be in [0, 1], got {self.strength!r}")

    def p(self, prob: float) -> float:
        return min(1.0, float(prob) * float(self.strength))


def _jpeg(img8: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # OpenCV always encodes uint8 arrays; keep the frame if it ever does not
        return img8
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out.reshape(img8.shape)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    out = cv2.GaussianBlur(img, (0, 0), float(sigma))
    return out.reshape(img.shape)


def randomise_ir(ir01: np.ndarray, rng: np.random.Generator, cfg: CameraRandomisation) -> np.ndarray:
    """A thermal crop as another camera would show it; `ir01` is float32 (H, W), about 0..1 (the
    percentile-stretched frame, or raw values divided by their full scale)."""
    x = np.clip(np.asarray(ir01, dtype=np.float32), 0.0, 1.0)
    if rng.random() < cfg.p(cfg.ir_tone):
        gamma = float(np.exp(rng.uniform(*np.log(cfg.ir_gamma))))
        lo, hi = sorted(rng.uniform(-0.08, 0.08, 2) + (0.0, 1.0))
        x = np.clip((x - lo) / max(hi - lo, 1e-3), 0.0, 1.0) ** gamma
    if rng.random() < cfg.p(cfg.ir_polarity):
        x = 1.0 - x
    if rng.random() < cfg.p(cfg.blur):
        x = _blur(x, rng.uniform(0.3, cfg.blur_max))
    h, w = x.shape
    if rng.random() < cfg.p(cfg.ir_fixed_pattern):
        amp = rng.uniform(0.2, 1.0) * cfg.ir_fixed_pattern_max
        x = x + (amp * rng.standard_normal(w, dtype=np.float32))[None, :] \
              + (0.4 * amp * rng.standard_normal(h, dtype=np.float32))[:, None]
    if rng.random() < cfg.p(cfg.ir_noise):
        x = x + rng.uniform(0.2, 1.0) * cfg.ir_noise_max * rng.standard_normal((h, w), dtype=np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < cfg.p(cfg.jpeg):
        x = _jpeg((x * 255.0 + 0.5).astype(np.uint8), int(rng.integers(*cfg.jpeg_quality))).astype(np.float32) / 255.0
    return x.astype(np.float32)


def randomise_eo(eo: np.ndarray, rng: np.random.Generator, cfg: CameraRandomisation) -> np.ndarray:
    """A visible crop (H, W, 3), uint8 or float 0..1, as another camera would show it; same dtype back."""
    integer = np.issubdtype(eo.dtype, np.integer)
    full = float(np.iinfo(eo.dtype).max) if integer else 1.0
    x = eo.astype(np.float32) / full
    noise_gain = 1.0
    if rng.random() < cfg.p(cfg.eo_cast):
        gains = 1.0 + rng.uniform(-cfg.eo_cast_max, cfg.eo_cast_max, 3).astype(np.float32)
        x = x * gains
    if rng.random() < cfg.p(cfg.eo_low_light):
        x = (np.clip(x, 0.0, 1.0) ** rng.uniform(1.2, 2.2)) * rng.uniform(0.35, 0.8)
        noise_gain = 2.0
    if rng.random() < cfg.p(cfg.blur):
        x = _blur(x, rng.uniform(0.3, cfg.blur_max))
    if rng.random() < cfg.p(cfg.eo_noise) or noise_gain > 1.0:
        sigma = noise_gain * rng.uniform(0.2, 1.0) * cfg.eo_noise_max
        x = x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < cfg.p(cfg.jpeg):
        x = _jpeg((x * 255.0 + 0.5).astype(np.uint8), int(rng.integers(*cfg.jpeg_quality))).astype(np.float32) / 255.0
    if integer:
        return (x * full + 0.5).astype(eo.dtype)
    return x.astype(np.float32)


def randomise_pair(eo: np.ndarray, ir: np.ndarray, rng: np.random.Generator,
                   cfg: CameraRandomisation) -> tuple[np.ndarray, np.ndarray]:
    """Both crops through their own random camera. IR comes back in its own dtype and scale."""
    if cfg.strength <= 0:
        return eo, ir
    ir_int = np.issubdtype(ir.dtype, np.integer)
    ir_full = float(np.iinfo(ir.dtype).max) if ir_int else 1.0
    ir01 = randomise_ir(ir.astype(np.float32) / ir_full, rng, cfg)
    ir_out = (ir01 * ir_full + 0.5).astype(ir.dtype) if ir_int else ir01
    return randomise_eo(eo, rng, cfg), ir_out
