"""Layout and look of the demo street, shared by the static world and the traffic: MFNet class ids,
the street's dimensions, per-condition temperatures, the building blocks, sun / night lighting, the
texture noise surfaces are sampled from, and `Thing`, one car, person or cyclist placed in it.

Kept apart from the painting code so the static street (`street.py`), the things that move through
it (`vehicles.py`, `people.py`) and the scene (`scene.py`) light and place everything the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from csknet_studio.core.demo.render import CAM_HEIGHT, Canvas

# MFNet class ids (core/classes.py MFNET).
UNLABELED, CAR, PERSON, BIKE, CURVE, CAR_STOP, GUARDRAIL, CONE, BUMP = range(9)

CONDITIONS = ("day", "night", "fog")


@dataclass(frozen=True)
class Street:
    """Layout in metres (x right, z forward). The camera is parked in the right parking lane."""

    road_left: float = -8.0
    road_right: float = 1.0
    centre_line: float = -4.5
    park_line: float = -1.0
    facade_right: float = 5.0
    facade_left: float = -12.5
    gap: tuple[float, float] = (18.0, 26.0)  # the cross street between the building blocks
    cross_road: tuple[float, float] = (18.5, 25.5)
    crosswalk: tuple[float, float] = (13.5, 17.0)
    far: float = 220.0
    lamps_z: tuple[float, ...] = (11.0, 36.0, 61.0, 86.0, 111.0)
    trees_z: tuple[float, ...] = (13.0, 30.0, 44.0, 58.0, 72.0, 86.0)


STREET = Street()


@dataclass(frozen=True)
class Weather:
    """Per-condition temperatures (kelvin) and lighting switches."""

    ambient: float
    sky_zenith: float
    sky_horizon: float
    asphalt: float
    sidewalk: float
    wall: float
    window: float
    shade_drop: float  # IR drop of ground in building shadow (sun only)
    sun: bool
    lights_on: bool
    temps: dict = field(default_factory=dict)


# fmt: off
WEATHER = {
    # ambient, sky zenith / horizon, asphalt, sidewalk, wall, window glass, shade drop, sun, lights
    "day": Weather(290.0, 279.0, 285.0, 293.5, 292.0, 289.5, 283.0, 3.0, True, False, {
        "curb": 292.5, "bump": 294.0, "stop": 292.5, "rail": 283.0, "cone": 293.5, "pole": 288.0,
        "lamp": 290.0, "tree": 287.5, "trunk": 289.0}),
    "night": Weather(285.0, 275.0, 280.0, 289.0, 287.0, 286.5, 280.0, 0.0, False, True, {
        "curb": 286.0, "bump": 288.5, "stop": 286.0, "rail": 279.0, "cone": 284.5, "pole": 282.0,
        "lamp": 330.0, "tree": 282.0, "trunk": 283.0}),
    "fog": Weather(286.0, 283.0, 285.0, 290.0, 288.0, 287.5, 283.5, 0.0, False, True, {
        "curb": 287.5, "bump": 289.5, "stop": 287.5, "rail": 283.0, "cone": 286.5, "pole": 285.0,
        "lamp": 305.0, "tree": 284.5, "trunk": 285.0}),
}
# fmt: on

WALL_COLORS = np.array(
    [
        [0.55, 0.30, 0.22],
        [0.74, 0.67, 0.54],
        [0.60, 0.60, 0.59],
        [0.84, 0.83, 0.80],
        [0.42, 0.31, 0.23],
        [0.36, 0.37, 0.40],
        [0.68, 0.36, 0.22],
        [0.42, 0.47, 0.56],
        [0.63, 0.55, 0.47],
    ],
    np.float32,
)


def smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Tileable smooth noise in about [-1, 1] (blurred white noise, wrap borders)."""
    a = rng.standard_normal((n, n)).astype(np.float32)
    pad = min(n, int(4 * sigma) + 1)
    a = cv2.GaussianBlur(np.pad(a, pad, mode="wrap"), (0, 0), sigma)[pad:-pad, pad:-pad]
    return a / (3 * a.std() + 1e-6)


def sample_tile(tile: np.ndarray, a: np.ndarray, b: np.ndarray, per_m: float) -> np.ndarray:
    """Sample a tile at world coordinates (a, b) metres, perspective-correct and wrapping."""
    n = tile.shape[0]
    fx = np.mod(a * per_m, n)
    fy = np.mod(b * per_m, n)
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = (fx - x0).astype(np.float32), (fy - y0).astype(np.float32)
    x0, y0 = x0 % n, y0 % n
    x1, y1 = (x0 + 1) % n, (y0 + 1) % n
    top = tile[y0, x0] * (1 - tx) + tile[y0, x1] * tx
    bot = tile[y1, x0] * (1 - tx) + tile[y1, x1] * tx
    return top * (1 - ty) + bot * ty


def hash01(seed: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Deterministic per-cell random number in [0, 1) from integer cell indices."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ (seed * 83492791 + 12345)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / 65536.0


@dataclass(frozen=True)
class Buildings:
    """Facade segments of one side: start z of each segment, heights, colour ids, window pitch."""

    starts: np.ndarray
    ends: np.ndarray
    heights: np.ndarray
    colors: np.ndarray
    pitch: np.ndarray
    shop: np.ndarray

    def index(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.clip(np.searchsorted(self.starts, z, side="right") - 1, 0, len(self.starts) - 1)
        valid = (z >= self.starts[i]) & (z < self.ends[i])
        return i, valid


def buildings(seed: int, side: int) -> Buildings:
    """The building blocks of one side of the street (0 right, 1 left), drawn from the seed."""
    rng = np.random.default_rng([seed, 11, side])
    starts, ends, heights, colors, pitch, shop = [], [], [], [], [], []
    for b0, b1 in ((-6.0, STREET.gap[0]), (STREET.gap[1], STREET.far)):
        z = b0
        while z < b1:
            length = float(rng.uniform(7.0, 16.0))
            starts.append(z)
            ends.append(min(z + length, b1))
            heights.append(float(rng.uniform(6.5, 19.0)))
            colors.append(int(rng.integers(len(WALL_COLORS))))
            pitch.append(float(rng.uniform(2.3, 3.6)))
            shop.append(bool(rng.random() < 0.5))
            z += length
    return Buildings(*(np.asarray(v) for v in (starts, ends, heights, colors, pitch, shop)))


# --------------------------------------------------------------------------------------------------
# Lighting shared by static and moving things
# --------------------------------------------------------------------------------------------------
def sun_factor(right: Buildings, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """1 where sunlit, 0 in the shadow of the right-hand buildings (sun low from the right)."""
    i, valid = right.index(z)
    h = np.where(valid, right.heights[i], 0.0)
    shadow = (x > STREET.facade_right - 0.55 * (h - y)) & (x <= STREET.facade_right + 0.01)
    return (~shadow).astype(np.float32)


SUN_RGB = np.array([1.05, 1.0, 0.93], np.float32)
SHADE_RGB = np.array([0.42, 0.46, 0.55], np.float32)
SODIUM = np.array([1.0, 0.72, 0.42], np.float32)
NIGHT_AMBIENT = np.array([0.016, 0.018, 0.028], np.float32)


def night_light(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """RGB illumination at night: dim ambient plus sodium street-lamp pools."""
    x = np.asarray(x, np.float32)
    z = np.asarray(z, np.float32)
    acc = np.zeros(np.shape(x), np.float32)
    for lz in STREET.lamps_z:
        acc += np.exp(-((x + 1.0) ** 2 + (z - lz) ** 2) / (2 * 3.5**2))
    return NIGHT_AMBIENT + 0.42 * acc[..., None] * SODIUM


def light_at(cond: str, right: Buildings, x: float, y: float, z: float) -> np.ndarray:
    """RGB factor applied to a moving object's albedo at (x, y, z)."""
    if cond == "day":
        s = float(sun_factor(right, np.array([x]), np.array([y]), np.array([z]))[0])
        return SHADE_RGB + s * (SUN_RGB - SHADE_RGB)
    if cond == "night":
        return night_light(np.array(x), np.array(y), np.array(z))
    return np.array([0.8, 0.8, 0.8], np.float32)


# --------------------------------------------------------------------------------------------------
# Things placed in the street: parked or moving through it
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Thing:
    kind: str  # "car" | "person" | "cyclist"
    x: float
    z: float
    heading: tuple[float, float]  # unit (hx, hz), one of the four axis directions
    phase: float  # gait / crank phase in radians
    key: int  # seeds the look (colours, sizes)
    moving: bool = True


def screen_size(cv: Canvas, x: float, z: float, half_width: float, height: float) -> float:
    """Projected height in pixels of a thing, or 0 when it is entirely off screen / behind."""
    if z < 0.4:
        return 0.0
    cam = cv.cam
    u = cam.cx + cam.f * x / z
    r = cam.f * half_width / z
    if u + r < -1 or u - r > cam.width + 1:
        return 0.0
    v_top = cam.v0 + cam.f * (CAM_HEIGHT - height) / z
    if v_top > cam.height + 1:
        return 0.0
    return cam.f * height / z
