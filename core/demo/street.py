"""The street of the procedural demo: static world (ray-cast ground and facades, curbs, bumps, car
stops, guardrails, cones, lamps, trees, parked cars and bikes) and the traffic that moves through it
(cars, pedestrians, cyclists), in EO albedo and IR temperature with exact MFNet class ids.

The static world is rendered once per (seed, size, condition) and cached; traffic is a
deterministic function of (seed, time) built from fixed time slots, so any frame can be rendered on
its own (random access for scrubbing) and motion is smooth from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from csknet_studio.core.demo_render import CAM_HEIGHT, Camera, Canvas, Sprite, circle_pts, ellipse_pts

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
CAR_COLORS = np.array(
    [
        [0.88, 0.88, 0.87],
        [0.86, 0.86, 0.88],
        [0.62, 0.63, 0.65],
        [0.07, 0.07, 0.08],
        [0.30, 0.31, 0.33],
        [0.62, 0.07, 0.07],
        [0.10, 0.18, 0.45],
        [0.12, 0.25, 0.18],
        [0.70, 0.62, 0.48],
        [0.85, 0.55, 0.10],
        [0.40, 0.08, 0.10],
        [0.55, 0.65, 0.75],
    ],
    np.float32,
)
SHIRT_COLORS = np.array(
    [
        [0.10, 0.10, 0.12],
        [0.85, 0.85, 0.83],
        [0.55, 0.08, 0.10],
        [0.12, 0.22, 0.48],
        [0.35, 0.40, 0.25],
        [0.55, 0.45, 0.30],
        [0.45, 0.45, 0.47],
        [0.80, 0.55, 0.15],
        [0.25, 0.15, 0.30],
        [0.18, 0.35, 0.55],
        [0.70, 0.30, 0.40],
    ],
    np.float32,
)
TROUSER_COLORS = np.array(
    [[0.12, 0.16, 0.30], [0.08, 0.08, 0.09], [0.55, 0.48, 0.36], [0.35, 0.35, 0.37], [0.20, 0.25, 0.40]],
    np.float32,
)
SKIN_COLORS = np.array(
    [[0.87, 0.70, 0.58], [0.76, 0.57, 0.43], [0.55, 0.38, 0.27], [0.36, 0.24, 0.17]], np.float32
)
HAIR_COLORS = np.array(
    [[0.05, 0.04, 0.04], [0.25, 0.15, 0.08], [0.55, 0.42, 0.25], [0.5, 0.5, 0.5]], np.float32
)


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Tileable smooth noise in about [-1, 1] (blurred white noise, wrap borders)."""
    a = rng.standard_normal((n, n)).astype(np.float32)
    pad = min(n, int(4 * sigma) + 1)
    a = cv2.GaussianBlur(np.pad(a, pad, mode="wrap"), (0, 0), sigma)[pad:-pad, pad:-pad]
    return a / (3 * a.std() + 1e-6)


def _sample(tile: np.ndarray, a: np.ndarray, b: np.ndarray, per_m: float) -> np.ndarray:
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


def _hash01(seed: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Deterministic per-cell random number in [0, 1) from integer cell indices."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ (seed * 83492791 + 12345)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / 65536.0


# --------------------------------------------------------------------------------------------------
# Lighting shared by static and moving things
# --------------------------------------------------------------------------------------------------
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


def _buildings(seed: int, side: int) -> Buildings:
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
# Static world
# --------------------------------------------------------------------------------------------------
@dataclass
class Static:
    canvas: Canvas
    ground: np.ndarray  # (H, W) bool: ray hits the ground (for shadows and headlight beams)
    gx: np.ndarray  # world x / z of each pixel's surface point
    gz: np.ndarray
    glare: np.ndarray  # (H, W, 3) additive light of the static lamps (night)
    right: Buildings
    sun: np.ndarray  # (H, W) float32 1 = sunlit (day), else all ones


def _raycast(seed: int, cam: Camera, cond: str) -> tuple[Canvas, np.ndarray, Buildings]:
    w = WEATHER[cond]
    dx, dy = cam.rays()
    h_img, w_img = cam.height, cam.width
    rng = np.random.default_rng([seed, 3])
    tile_lo = _smooth_noise(rng, 256, 10.0)
    tile_hi = _smooth_noise(rng, 256, 1.2)
    tile_mid = _smooth_noise(rng, 256, 3.0)

    far = 400.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dy < -1e-5, CAM_HEIGHT / -dy, np.inf)
    t_ground[t_ground > far] = np.inf
    depth = t_ground.astype(np.float32).copy()
    kind = np.where(np.isfinite(depth), 1, 0).astype(np.uint8)

    sides = {2: (STREET.facade_right, _buildings(seed, 0)), 3: (STREET.facade_left, _buildings(seed, 1))}
    wall_seg = np.zeros((h_img, w_img), np.int64)
    wall_a = np.zeros((h_img, w_img), np.float32)
    for k, (xw, b) in sides.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(dx) > 1e-6, xw / dx, -1.0)
        y = CAM_HEIGHT + t * dy
        i, valid = b.index(t)
        hit = (t > 0) & valid & (y >= 0) & (y <= b.heights[i]) & (t < depth)
        depth[hit] = t[hit]
        kind[hit] = k
        wall_seg[hit] = i[hit]
        wall_a[hit] = t[hit]
    # End walls of the far blocks, facing the camera across the cross street.
    for k, (xw, b) in ((4, sides[2]), (5, sides[3])):
        zf = STREET.gap[1]
        x = dx * zf
        y = CAM_HEIGHT + dy * zf
        i0 = int(np.searchsorted(b.starts, zf))
        inside = (x >= xw) & (x <= 90) if k == 4 else (x <= xw) & (x >= -90)
        hit = inside & (y >= 0) & (y <= b.heights[i0]) & (zf < depth)
        depth[hit] = zf
        kind[hit] = k
        wall_seg[hit] = i0
        wall_a[hit] = x[hit]
    right = sides[2][1]

    finite = np.isfinite(depth)
    d = np.where(finite, depth, 0.0).astype(np.float32)
    wx, wy, wz = dx * d, CAM_HEIGHT + dy * d, d

    eo = np.zeros((h_img, w_img, 3), np.float32)
    temp = np.zeros((h_img, w_img), np.float32)

    # Sky.
    elev = np.clip(-(np.arange(h_img, dtype=np.float32) - cam.v0) / cam.f, 0, 1)[:, None]
    sky = kind == 0
    if cond == "day":
        top, hor = np.array([0.33, 0.52, 0.82], np.float32), np.array([0.72, 0.80, 0.90], np.float32)
        tsky = np.clip(elev * 2.5, 0, 1)[..., None]
        sky_rgb = hor * (1 - tsky) + top * tsky
        uu = np.arange(w_img, dtype=np.float32)[None, :] / cam.f
        clouds = cv2.remap(
            tile_lo,
            np.broadcast_to(np.mod(uu * 90, 256), (h_img, w_img)).astype(np.float32),
            np.broadcast_to(np.mod(elev * 300, 256), (h_img, w_img)).astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )
        cl = np.clip(clouds * 2.2 - 0.2, 0, 1)[..., None]
        sky_rgb = sky_rgb * (1 - cl) + np.array([0.93, 0.93, 0.95], np.float32) * cl
        sky_t = w.sky_horizon + (w.sky_zenith - w.sky_horizon) * np.clip(elev * 2.5, 0, 1) + 8 * cl[..., 0]
    elif cond == "night":
        glow = np.exp(-elev * 12)[..., None]
        sky_rgb = np.broadcast_to(
            np.array([0.012, 0.014, 0.03], np.float32) + glow * np.array([0.05, 0.035, 0.02], np.float32),
            (h_img, w_img, 3),
        )
        sky_t = np.broadcast_to(
            w.sky_horizon + (w.sky_zenith - w.sky_horizon) * np.clip(elev * 2.5, 0, 1), (h_img, w_img)
        )
    else:
        sky_rgb = np.broadcast_to(np.array([0.78, 0.79, 0.80], np.float32), (h_img, w_img, 3))
        sky_t = np.broadcast_to(w.sky_horizon + (w.sky_zenith - w.sky_horizon) * elev, (h_img, w_img))
    eo[sky] = np.broadcast_to(sky_rgb, (h_img, w_img, 3))[sky]
    temp[sky] = np.broadcast_to(sky_t, (h_img, w_img))[sky]

    # Ground.
    g = kind == 1
    x, z = wx[g], wz[g]
    lo = _sample(tile_lo, x, z, 8.0)
    mid = _sample(tile_mid, x, z, 24.0)
    hi = _sample(tile_hi, x, z, 48.0) * np.clip(5.0 / z, 0, 1)
    cross = (z >= STREET.cross_road[0]) & (z <= STREET.cross_road[1])
    main = (x >= STREET.road_left) & (x <= STREET.road_right)
    road = main | cross
    walk = ~road
    cw = main & (z >= STREET.crosswalk[0]) & (z <= STREET.crosswalk[1])
    base = 0.31 + 0.05 * lo + 0.035 * mid + 0.05 * hi
    base = np.where((x > STREET.park_line) & main, base + 0.025, base)
    patch = (_hash01(seed, np.floor(x / 3.0), np.floor(z / 5.0)) < 0.12) & road
    base = np.where(patch, base - 0.06, base)
    wear = 0.75 + 0.25 * _sample(tile_mid, x + 50, z, 30.0)
    mark = np.zeros_like(x, bool)
    mark |= main & ~cross & ~cw & (np.abs(x - STREET.centre_line) < 0.08) & (np.mod(z, 9.0) < 4.5)
    mark |= main & ~cross & (np.abs(x - (STREET.road_left + 0.25)) < 0.07)
    mark |= main & ~cross & ~cw & (np.abs(x - STREET.park_line) < 0.07)
    mark |= (
        main & ~cross & ~cw & (x > STREET.park_line) & (z > 3.0) & (np.abs(np.mod(z - 4.0, 6.0) - 3.0) > 2.93)
    )
    mark |= cw & (np.mod(x - STREET.road_left, 1.0) < 0.5)
    mark |= main & (z > 12.55) & (z < 12.9) & (x > STREET.centre_line) & (x < STREET.park_line)
    tile = 0.6
    ti, tj = np.floor(x / tile), np.floor(z / tile)
    grout = ((np.mod(x, tile) < 0.035) | (np.mod(z, tile) < 0.035)) & (z < 40)
    walk_c = 0.50 + 0.05 * (_hash01(seed + 1, ti, tj) - 0.5) + 0.03 * lo + 0.03 * hi
    walk_c = np.where(grout, walk_c - 0.08, walk_c)
    tactile = walk & (x > 2.25) & (x < 2.55) & ~((z >= STREET.gap[0]) & (z <= STREET.gap[1]))
    rgb = np.repeat(base[:, None], 3, axis=1) * np.array([1.0, 1.0, 1.03], np.float32)
    rgb[walk] = walk_c[walk, None] * np.array([1.04, 1.0, 0.95], np.float32)
    rgb[tactile] = np.array([0.78, 0.66, 0.16], np.float32) * (0.9 + 0.1 * hi[tactile, None])
    mk = mark & road
    rgb[mk] = (0.82 * wear[mk, None] + base[mk, None] * (1 - wear[mk, None])) * np.ones(3, np.float32)
    eo[g] = rgb
    tg = np.where(road, w.asphalt + 1.2 * lo + 0.4 * mid, w.sidewalk + 0.8 * lo)
    tg = np.where(mk, tg - (2.5 if cond == "day" else 0.8), tg)
    temp[g] = tg

    # Facades.
    for k in (2, 3, 4, 5):
        m = kind == k
        if not m.any():
            continue
        b = sides[2][1] if k in (2, 4) else sides[3][1]
        seg = wall_seg[m]
        a = wall_a[m]
        y = wy[m]
        col = WALL_COLORS[b.colors[seg]]
        p = b.pitch[seg]
        shade = 1.0 + 0.04 * _sample(tile_hi, a, y, 20.0) + 0.05 * _sample(tile_lo, a, y, 6.0)
        floor_h = 3.2
        col_i = np.floor(a / p)
        row_i = np.floor(y / floor_h)
        win = (
            (np.mod(a, p) > 0.55)
            & (np.mod(a, p) < p - 0.55)
            & (np.mod(y, floor_h) > 1.0)
            & (np.mod(y, floor_h) < 2.5)
            & (y > floor_h)
        )
        shop = (
            b.shop[seg]
            & (y > 0.4)
            & (y < 2.7)
            & (np.mod(a, 2 * p) > 0.35)
            & (np.mod(a, 2 * p) < 2 * p - 0.35)
        )
        cornice = y > b.heights[seg] - 0.35
        r = _hash01(seed + k, col_i, row_i)
        glass = np.stack([0.10 + 0.10 * r, 0.13 + 0.10 * r, 0.17 + 0.12 * r], axis=1)
        c = col * shade[:, None]
        c = np.where(cornice[:, None], c * 0.75, c)
        c = np.where(win[:, None] | shop[:, None], glass, c)
        if cond == "night":
            lit = (win & (r > 0.7)) | (shop & (r > 0.5))
            c = np.where(lit[:, None], np.array([4.0, 3.0, 1.7], np.float32) * (0.3 + r[:, None]), c)
        eo[m] = c
        tw = np.where(win | shop, w.window + 2 * r, w.wall + 0.6 * shade)
        if cond == "day" and k in (3, 5):
            tw = tw + np.where(win | shop, 0.0, 3.0)  # sun on the left facades
        temp[m] = tw

    canvas = Canvas(cam, eo, temp, np.zeros((h_img, w_img), np.uint8), depth)
    return canvas, g, right


def _draw_statics(seed: int, cv: Canvas, cond: str, glare: np.ndarray) -> None:
    w = WEATHER[cond]
    tp = w.temps
    rng = np.random.default_rng([seed, 5])
    s = STREET
    # Curbs ("curve"): along both sides of the main road, and across the sidewalks at the cross street.
    curb = np.array([0.66, 0.66, 0.63], np.float32)
    shade = {"y+": 1.15, "x-": 0.72, "x+": 0.72, "z-": 0.8}
    for z0, z1 in ((0.4, s.gap[0]), (s.gap[1], s.far)):
        cv.box((s.road_right, 0, z0), (s.road_right + 0.18, 0.15, z1), curb, tp["curb"], CURVE, shade)
        cv.box((s.road_left - 0.18, 0, z0), (s.road_left, 0.15, z1), curb, tp["curb"], CURVE, shade)
    for x0, x1 in ((s.road_right + 0.18, s.facade_right), (s.facade_left, s.road_left - 0.18)):
        cv.box((x0, 0, s.gap[1] - 0.18), (x1, 0.15, s.gap[1]), curb, tp["curb"], CURVE, shade)
        cv.box((x0, 0, s.gap[0]), (x1, 0.15, s.gap[0] + 0.18), curb, tp["curb"], CURVE, shade)
    # Speed bumps: yellow / black stripes across the driving lanes.
    for zb in (7.7, 48.0):
        xs = np.arange(s.road_left, s.park_line, 0.5)
        for j, x0 in enumerate(xs):
            c = (0.85, 0.70, 0.12) if j % 2 == 0 else (0.12, 0.12, 0.12)
            cv.box(
                (x0, 0, zb),
                (min(x0 + 0.5, s.park_line), 0.08, zb + 0.6),
                c,
                tp["bump"],
                BUMP,
                {"y+": 1.05, "z-": 0.85},
            )
    # Car stops (wheel stoppers) in the parking bays of the right parking lane.
    stop_c = (0.72, 0.71, 0.68) if rng.random() < 0.5 else (0.80, 0.70, 0.20)
    for zc in (3.5, 9.5, 40.5, 46.5, 52.5):
        cv.box(
            (-0.75, 0, zc - 0.1), (0.75, 0.14, zc + 0.1), stop_c, tp["stop"], CAR_STOP, {"y+": 1.1, "z-": 0.9}
        )
    # Guardrails with posts.
    rail = np.array([0.78, 0.80, 0.82], np.float32)
    for xr, z0 in ((s.road_left - 0.45, 27.0), (s.road_right + 0.35, 46.0)):
        cv.box(
            (xr, 0.5, z0),
            (xr + 0.1, 0.8, 160.0),
            rail,
            tp["rail"],
            GUARDRAIL,
            {"y+": 1.1, "x+": 0.95, "x-": 0.8},
        )
        face = xr + 0.1 if xr < 0 else xr
        cv.poly(
            [(face, 0.63, z0), (face, 0.63, 160.0), (face, 0.68, 160.0), (face, 0.68, z0)],
            rail * 0.6,
            tp["rail"] - 1,
            GUARDRAIL,
            bias=0.02,
        )
        for zp in np.arange(z0, 160.0, 2.5):
            xp = xr - 0.1 if xr < 0 else xr + 0.1
            cv.box((xp, 0, zp), (xp + 0.1, 0.78, zp + 0.1), rail * 0.7, tp["rail"], GUARDRAIL)
    # Traffic cones: a work zone in the parking lane, and two on the sidewalk.
    for xc, zc in (
        (-0.6, 6.2),
        (-0.5, 36.5),
        (-0.7, 38.5),
        (-0.9, 40.0),
        (3.6, 10.6),
        (3.95, 11.4),
        (-9.6, 34.0),
    ):
        draw_cone(cv, xc, zc, tp["cone"])
    # Street lamps (unlabelled), glaring at night.
    for zl in s.lamps_z:
        pole = (0.35, 0.36, 0.37)
        cv.box((1.5, 0, zl - 0.07), (1.64, 6.9, zl + 0.07), pole, tp["pole"], UNLABELED)
        cv.box((-1.3, 6.75, zl - 0.05), (1.6, 6.85, zl + 0.05), pole, tp["pole"], UNLABELED)
        head = (2.5, 2.2, 1.6) if w.lights_on else (0.6, 0.6, 0.58)
        cv.box((-1.5, 6.6, zl - 0.2), (-0.8, 6.75, zl + 0.2), head, tp["lamp"], UNLABELED)
        if w.lights_on:
            cv.glow((-1.15, 6.55, zl), 0.35, SODIUM, 1.2 if cond == "night" else 0.5, glare)
    # Trees on the left sidewalk.
    for zt in s.trees_z:
        xt = -10.6 + float(rng.uniform(-0.3, 0.3))
        cv.box(
            (xt - 0.14, 0, zt - 0.14), (xt + 0.14, 2.6, zt + 0.14), (0.30, 0.22, 0.15), tp["trunk"], UNLABELED
        )
        a = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        r = 1.9 * (1 + 0.18 * np.sin(3 * a + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(28))
        pts = np.stack([xt + r * np.cos(a), 4.3 + 0.9 * r * np.sin(a), np.full(28, zt)], axis=1)
        g = float(rng.uniform(0.8, 1.2))
        cv.poly(
            pts,
            np.array([[0.22, 0.38, 0.14], [0.10, 0.20, 0.07]], np.float32) * g,
            (tp["tree"] - 1.0, tp["tree"] + 0.5),
            UNLABELED,
        )
    # A parked car (engine off) and parked bikes.
    draw_car(
        cv,
        Thing("car", 0.0, 32.8, (0.0, 1.0), 0.0, int(rng.integers(1 << 30)), moving=False),
        cond,
        glare,
        _buildings(seed, 0),
    )
    for k, (xb, zb) in enumerate(((4.55, 6.0), (4.5, 6.7), (4.45, 7.5), (-12.0, 36.0))):
        sp = Sprite(cv, zb)
        draw_bike(
            sp,
            xb,
            zb,
            (0.0, 1.0),
            0.4 * k,
            rng.random(3) * 0.7,
            WEATHER[cond].ambient,
            False,
            light_at(cond, _buildings(seed, 0), xb, 0.5, zb) if cond == "night" else 1.0,
        )
        sp.flush()


@lru_cache(maxsize=3)
def static_world(seed: int, height: int, width: int, cond: str) -> Static:
    """The street without traffic, lit for `cond`: built once, copied per frame."""
    cam = Camera(height, width)
    cv, ground, right = _raycast(seed, cam, cond)
    glare = np.zeros((height, width, 3), np.float32)
    _draw_statics(seed, cv, cond, glare)
    ground &= cv.label == UNLABELED
    dx, dy = cam.rays()
    d = np.where(np.isfinite(cv.depth), cv.depth, 0.0).astype(np.float32)
    wx, wy, wz = dx * d, CAM_HEIGHT + dy * d, d
    rng = np.random.default_rng([seed, 9])
    tex = 1.0 + 0.05 * _smooth_noise(rng, max(height, width), 1.0)[:height, :width]
    finite = np.isfinite(cv.depth)
    sun = np.ones((height, width), np.float32)
    if cond == "day":
        s = sun_factor(right, wx, wy, wz)
        s[~finite] = 1.0
        s = cv2.GaussianBlur(s, (0, 0), 0.7)
        light = SHADE_RGB[None, None, :] + s[..., None] * (SUN_RGB - SHADE_RGB)[None, None, :]
        light[~finite] = 1.0
        cv.eo *= light * tex[..., None]
        cv.temp -= WEATHER[cond].shade_drop * (1 - s) * ground
        sun = s
    elif cond == "night":
        light = night_light(wx, wy, wz)
        light[~finite] = 1.0
        emissive = cv.eo > 1.0  # lit windows and lamp heads keep their own light
        cv.eo = np.where(emissive, cv.eo * 0.14, cv.eo * light * tex[..., None])
    else:
        cv.eo *= (0.82 * tex)[..., None] * np.where(finite, 1.0, 1 / 0.82)[..., None]
    cv.eo = cv.eo.astype(np.float32)
    return Static(cv, ground, wx, wz, glare, right, sun)


# --------------------------------------------------------------------------------------------------
# Things: cars, people, bikes
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


def _screen_size(cv: Canvas, x: float, z: float, half_width: float, height: float) -> float:
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


def draw_cone(cv: Canvas, x: float, z: float, temp: float) -> None:
    orange = np.array([0.95, 0.36, 0.06], np.float32)
    cv.poly(
        [(x - 0.2, 0, z), (x + 0.2, 0, z), (x + 0.2, 0.04, z), (x - 0.2, 0.04, z)], orange * 0.6, temp, CONE
    )
    cv.poly(
        [(x - 0.15, 0.04, z), (x + 0.15, 0.04, z), (x + 0.035, 0.7, z), (x - 0.035, 0.7, z)],
        np.array([orange, orange * 0.8]),
        (temp + 0.5, temp - 0.5),
        CONE,
    )
    cv.poly(
        [(x - 0.1, 0.3, z), (x + 0.1, 0.3, z), (x + 0.075, 0.44, z), (x - 0.075, 0.44, z)],
        (0.92, 0.92, 0.9),
        temp - 0.8,
        CONE,
        bias=0.01,
    )


def _car_frame(t: Thing, length: float):
    """Map car-local (a along, s lateral, y) to world, for the four headings."""
    hx, hz = t.heading

    def to_world(a, s, y):
        a = np.asarray(a, np.float64) - length / 2
        s = np.asarray(s, np.float64)
        x = t.x + hx * a + hz * s
        z = t.z + hz * a - hx * s
        return np.stack(np.broadcast_arrays(x, np.asarray(y, np.float64), z), axis=-1)

    return to_world


def _face_visible(to_world, a, s, y, normal_local) -> bool:
    p = to_world(a, s, y)
    q = to_world(a + normal_local[0] * 0.1, s + normal_local[1] * 0.1, y)
    n = q - p
    return float(n @ (np.array([0.0, CAM_HEIGHT, 0.0]) - p)) > 0


def draw_car(cv: Canvas, t: Thing, cond: str, glare: np.ndarray, right: Buildings) -> None:
    w = WEATHER[cond]
    px = _screen_size(cv, t.x, t.z, 2.6, 2.0)
    if px <= 0:
        return
    rng = np.random.default_rng([t.key, 1])
    kind = rng.choice(["sedan", "hatch", "suv", "van"], p=[0.4, 0.25, 0.2, 0.15])
    length = {"sedan": 4.6, "hatch": 4.0, "suv": 4.7, "van": 4.8}[kind] + float(rng.uniform(-0.15, 0.15))
    width = float(rng.uniform(1.7, 1.85))
    body_top = {"sedan": 0.95, "hatch": 1.0, "suv": 1.1, "van": 1.15}[kind]
    roof = {"sedan": 1.45, "hatch": 1.5, "suv": 1.75, "van": 1.95}[kind]
    cab = {"sedan": (0.25, 0.72), "hatch": (0.06, 0.7), "suv": (0.06, 0.76), "van": (0.0, 0.8)}[kind]
    color = CAR_COLORS[rng.integers(len(CAR_COLORS))]
    if kind == "van" and rng.random() < 0.6:
        color = CAR_COLORS[0]
    light = light_at(cond, right, t.x, 1.0, t.z)
    body = color * light
    to_world = _car_frame(t, length)
    hw = width / 2
    amb = w.ambient
    run = t.moving
    sun = 2.0 if w.sun else 0.0
    t_body = amb + sun + (1.5 if run else 0.0)
    t_glass = amb - (11.0 if cond == "day" else 6.0 if cond == "night" else 2.5)
    t_hood = amb + (22.0 if run else sun + 1.0)
    t_tyre = amb + (9.0 if run else 0.5)
    t_under = amb + (9.0 if run else 0.5)

    def box(a0, a1, s0, s1, y0, y1, col, temp, temps=None, shade=None):
        p = to_world([a0, a1], [s0, s1], [y0, y1])
        lo, hi = np.minimum(p[0], p[1]), np.maximum(p[0], p[1])
        cv.box(
            lo, hi, col, temp, CAR, shade or {"y+": 1.12, "x-": 0.8, "x+": 0.8, "z-": 0.95, "z+": 0.95}, temps
        )

    def decal(a, s, y, col, temp, normal):
        if _face_visible(to_world, a[0], s[0], y[0], normal):
            cv.poly(to_world(a, s, y), col, temp, CAR, bias=0.02)

    # Underbody shadow and tyres (dark band under the body), then the body and cabin.
    box(0.12 * length, 0.88 * length, -hw + 0.12, hw - 0.12, 0.05, 0.3, (0.03, 0.03, 0.03), t_under)
    # Hot end: the engine is at the front (a = length); temps per world face of the body box.
    front_key = {(0.0, 1.0): "z+", (0.0, -1.0): "z-", (1.0, 0.0): "x+", (-1.0, 0.0): "x-"}[t.heading]
    box(0, length, -hw, hw, 0.28, body_top, body, t_body, temps={front_key: t_hood, "y+": t_body + sun})
    box(cab[0] * length, cab[1] * length, -hw + 0.08, hw - 0.08, body_top, roof, body, t_body + sun)
    if px < 14:  # a few pixels tall: details would not show
        return
    # Glass on the cabin.
    g_col = np.array([[0.24, 0.28, 0.34], [0.06, 0.07, 0.09]], np.float32) * (light if cond != "day" else 1.0)
    a0, a1 = cab[0] * length, cab[1] * length
    yg0, yg1 = body_top + 0.05, roof - 0.06
    for s_side, nrm in ((hw - 0.08, (0.0, 1.0)), (-hw + 0.08, (0.0, -1.0))):
        decal(
            [a0 + 0.12, a1 - 0.12, a1 - 0.2, a0 + 0.2],
            [s_side] * 4,
            [yg0, yg0, yg1, yg1],
            g_col,
            t_glass,
            nrm,
        )
    decal(
        [a1] * 4,
        [-hw + 0.18, hw - 0.18, hw - 0.25, -hw + 0.25],
        [yg0, yg0, yg1, yg1],
        g_col,
        t_glass,
        (1.0, 0.0),
    )
    decal(
        [a0] * 4,
        [-hw + 0.18, hw - 0.18, hw - 0.25, -hw + 0.25],
        [yg0, yg0, yg1, yg1],
        g_col,
        t_glass,
        (-1.0, 0.0),
    )
    # Wheels on both sides (round in side view).
    hx, hz = t.heading
    side_axis = np.array([hz, 0.0, -hx])
    along = np.array([hx, 0.0, hz])
    for a_w in (0.18 * length, 0.8 * length):
        for s_w, nrm in ((hw + 0.005, (0.0, 1.0)), (-hw - 0.005, (0.0, -1.0))):
            if not _face_visible(to_world, a_w, s_w, 0.3, nrm):
                continue
            c = to_world(a_w, s_w, 0.31)
            cv.poly(circle_pts(c, 0.31, along, [0, 1, 0], 14), (0.05, 0.05, 0.05), t_tyre, CAR, bias=0.03)
            cv.poly(
                circle_pts(c, 0.17, along, [0, 1, 0], 10),
                np.array([0.45, 0.45, 0.47]) * light,
                t_tyre - 3,
                CAR,
                bias=0.05,
            )
    del side_axis
    # Lights, plate and bumper on both ends.
    lit = w.lights_on and run
    for a_end, nrm, lamp_col, lamp_on in (
        (0.0, (-1.0, 0.0), (0.75, 0.05, 0.05), (3.0, 0.2, 0.15)),
        (length, (1.0, 0.0), (0.85, 0.85, 0.8), (4.0, 3.8, 3.2)),
    ):
        if not _face_visible(to_world, a_end, 0.0, 0.6, nrm):
            continue
        decal([a_end] * 4, [-hw, hw, hw, -hw], [0.3, 0.3, 0.44, 0.44], (0.06, 0.06, 0.06), t_body, nrm)
        decal(
            [a_end] * 4,
            [-0.26, 0.26, 0.26, -0.26],
            [0.47, 0.47, 0.6, 0.6],
            np.array([0.85, 0.85, 0.8]) * light,
            t_body,
            nrm,
        )
        for sgn in (-1, 1):
            s_in, s_out = sgn * (hw - 0.35), sgn * (hw - 0.06)
            col = np.asarray(lamp_on if lit else lamp_col, np.float32) * (1.0 if lit else light)
            decal(
                [a_end] * 4,
                [s_in, s_out, s_out, s_in],
                [0.7, 0.7, 0.86, 0.86],
                col,
                t_body + (6 if lit else 0),
                nrm,
            )
            if lit:
                c = to_world(a_end, (s_in + s_out) / 2, 0.78)
                head = a_end > 0
                cv.glow(
                    c,
                    0.18 if head else 0.1,
                    np.array([1.0, 0.95, 0.85]) if head else np.array([1.0, 0.1, 0.05]),
                    1.6 if head else 0.6,
                    glare,
                )
        if a_end == 0.0 and run:
            # Exhaust pipe: a small, very hot spot under the rear bumper.
            decal(
                [0.0] * 4,
                [hw - 0.45, hw - 0.3, hw - 0.3, hw - 0.45],
                [0.22, 0.22, 0.32, 0.32],
                (0.15, 0.15, 0.15),
                amb + 55.0,
                nrm,
            )


def draw_bike(
    sp: Sprite, x: float, z: float, heading, phase: float, frame_col, amb: float, moving: bool, light=1.0
) -> None:
    """A bicycle (wheels, spokes, frame, bar, saddle, crank) into a sprite."""
    hx, hz = heading
    along = np.array([hx, 0.0, hz])
    c = np.array([x, 0.0, z])
    t_tyre = amb + (4.0 if moving else 0.3)
    col = np.asarray(frame_col, np.float32) * light
    up = np.array([0.0, 1.0, 0.0])

    def p(a, y):
        return c + a * along + y * up

    wr, wf = p(-0.52, 0.34), p(0.52, 0.34)
    grey = np.array([0.5, 0.5, 0.5]) * light
    for wc in (wr, wf):
        sp.line(circle_pts(wc, 0.33, along, up, 18), 0.05, (0.04, 0.04, 0.04), t_tyre, BIKE, closed=True)
        for k in range(2):
            ang = phase + k * np.pi / 2
            d = 0.3 * (np.cos(ang) * along + np.sin(ang) * up)
            sp.line(np.array([wc - d, wc + d]), 0.01, grey, amb, BIKE)
    bb, seat, head, bar = p(0.0, 0.3), p(-0.17, 0.88), p(0.4, 0.88), p(0.36, 1.02)
    sp.line(np.array([wr, bb, seat, wr]), 0.035, col, amb, BIKE)
    sp.line(np.array([seat, head, bb]), 0.035, col, amb, BIKE)
    sp.line(np.array([wf, head, bar]), 0.035, col, amb, BIKE)
    lat = np.array([hz, 0.0, -hx]) * 0.28
    sp.line(np.array([bar - lat, bar + lat]), 0.03, np.array([0.1, 0.1, 0.1]) * light, amb, BIKE)
    sp.line(
        np.array([seat + 0.08 * along + 0.03 * up, seat - 0.1 * along + 0.03 * up]),
        0.05,
        np.array([0.05, 0.05, 0.05]) * light,
        amb,
        BIKE,
    )
    crank = 0.17 * (np.cos(phase) * along + np.sin(phase) * up)
    sp.line(np.array([bb - crank, bb + crank]), 0.03, np.array([0.3, 0.3, 0.3]) * light, amb, BIKE)


def _limb(p0, p1, width: float) -> np.ndarray:
    """A quad of `width` metres from p0 to p1, both (x, y) in a billboard plane."""
    x0, y0 = float(p0[0]), float(p0[1])
    x1, y1 = float(p1[0]), float(p1[1])
    dx, dy = x1 - x0, y1 - y0
    k = width / 2 / (np.hypot(dx, dy) + 1e-9)
    nx, ny = -dy * k, dx * k
    return np.array([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)])


def draw_person(
    cv: Canvas, t: Thing, cond: str, right: Buildings, riding: bool = False, sprite: Sprite | None = None
) -> None:
    """A pedestrian (or, into the cyclist's sprite, a rider) as a camera-facing billboard, front /
    back or side view. Shapes are painted back to front inside the sprite."""
    own = sprite is None
    sp = Sprite(cv, t.z) if own else sprite
    _person_shapes(sp, cv, t, cond, right, riding)
    if own:
        sp.flush()


def _person_shapes(sp: Sprite, cv: Canvas, t: Thing, cond: str, right: Buildings, riding: bool) -> None:
    w = WEATHER[cond]
    px = _screen_size(cv, t.x, t.z, 0.5, 1.9)
    if px <= 0:
        return
    rng = np.random.default_rng([t.key, 2])
    height = float(rng.uniform(1.58, 1.9)) if rng.random() > 0.08 else float(rng.uniform(1.15, 1.35))
    shirt = SHIRT_COLORS[rng.integers(len(SHIRT_COLORS))]
    trousers = TROUSER_COLORS[rng.integers(len(TROUSER_COLORS))]
    skin = SKIN_COLORS[rng.integers(len(SKIN_COLORS))]
    hair = HAIR_COLORS[rng.integers(len(HAIR_COLORS))]
    bag = rng.random() < 0.35
    coat = rng.random() < 0.3
    light = light_at(cond, right, t.x, 1.2, t.z)
    amb = w.ambient
    t_skin = 306.5 + (0.0 if cond == "day" else -1.0)
    t_cloth = amb + (306.0 - amb) * (0.45 if coat else 0.62)
    t_legs = amb + (305.0 - amb) * 0.55
    t_shoe = amb + (305.0 - amb) * 0.3
    H = height
    x, z = t.x, t.z
    ph = t.phase
    side = abs(t.heading[0]) > 0.5
    fwd = float(np.sign(t.heading[0])) if side else 1.0
    towards = t.heading[1] < 0
    shirt_c, trouser_c, skin_c, hair_c = shirt * light, trousers * light, skin * light, hair * light
    hip_y = (0.9 + 0.05) if riding else 0.5 * H
    sh_y = hip_y + 0.33 * H
    hips = np.array([x, hip_y])
    if riding:
        sh = np.array([x + (0.22 * fwd if side else 0.0), sh_y - 0.05])
    else:
        sh = np.array([x, sh_y])

    def poly2(pts2, col, temp, bias=0.0):
        pts2 = np.asarray(pts2, np.float64)
        sp.poly_xy(pts2, col, temp, PERSON)

    def limb(p0, p1, wd, col, temp, bias=0.0):
        sp.poly_xy(_limb(p0, p1, wd), col, temp, PERSON)

    if px < 22 and not riding:  # far away: legs, torso and head are all that would show
        hw = (0.07 if side else 0.11) * H
        sw = 0.04 * H * np.sin(ph) if side else 0.0
        poly2(
            [(x - hw + sw, 0), (x + hw - sw, 0), (x + 0.8 * hw, hip_y), (x - 0.8 * hw, hip_y)],
            trouser_c,
            t_legs,
        )
        poly2(
            [(x - 0.8 * hw, hip_y), (x + 0.8 * hw, hip_y), (x + hw, sh_y), (x - hw, sh_y)], shirt_c, t_cloth
        )
        poly2(
            [(x - 0.06 * H, sh_y), (x + 0.06 * H, sh_y), (x + 0.055 * H, H), (x - 0.055 * H, H)],
            skin_c if towards or side else hair_c,
            t_skin - 0.5,
        )
        return

    leg_w = 0.075 * H
    if side:
        # Legs: scissoring thighs and shins (walking) or turning on the pedals (riding).
        for k, sgn in ((0, 1.0), (1, -1.0)):
            if riding:
                ped = np.array(
                    [
                        x + 0.17 * fwd + 0.17 * np.cos(ph + k * np.pi) * fwd,
                        0.3 + 0.17 * np.sin(ph + k * np.pi),
                    ]
                )
                knee = (hips + ped) / 2 + np.array([0.18 * fwd, 0.12])
                foot = ped
            else:
                a = 0.42 * np.sin(ph) * sgn
                knee = hips + 0.26 * H * np.array([np.sin(a) * fwd, -np.cos(a)])
                bend = max(0.0, -np.sin(ph) * sgn) * 0.5
                foot = knee + 0.25 * H * np.array([np.sin(a - bend) * fwd, -np.cos(a - bend)])
            b = 0.0 if k == 0 else 0.01
            limb(hips, knee, leg_w * 1.1, trouser_c * (0.85 if k else 1.0), t_legs, b)
            limb(knee, foot, leg_w, trouser_c * (0.85 if k else 1.0), t_legs, b)
            limb(
                foot,
                foot + np.array([0.12 * fwd, 0.0]),
                0.05,
                np.array([0.08, 0.08, 0.08]) * light,
                t_shoe,
                b,
            )
        torso = [hips + (-0.06, 0), hips + (0.06, 0), sh + (0.07, 0), sh + (-0.07, 0)]
        poly2(torso, shirt_c, t_cloth, 0.02)
        if bag:
            poly2(
                [
                    sh + (-0.07 * fwd - 0.16 * fwd, -0.05),
                    sh + (-0.07 * fwd, -0.05),
                    sh + (-0.07 * fwd, -0.42),
                    sh + (-0.07 * fwd - 0.16 * fwd, -0.40),
                ],
                np.array([0.12, 0.12, 0.14]) * light,
                t_cloth - 2,
                0.02,
            )
        if riding:
            hand = np.array([x + 0.53 * fwd, 1.02])
            limb(sh, hand, 0.06 * H, shirt_c * 0.9, t_cloth, 0.04)
        else:
            arm_a = -0.35 * np.sin(ph)
            elbow = sh + 0.19 * H * np.array([np.sin(arm_a) * fwd, -np.cos(arm_a)])
            hand = elbow + 0.17 * H * np.array([np.sin(arm_a + 0.2) * fwd, -np.cos(arm_a + 0.2)])
            limb(sh, elbow, 0.055 * H, shirt_c * 0.9, t_cloth, 0.04)
            limb(
                elbow,
                hand,
                0.045 * H,
                skin_c if not coat else shirt_c * 0.9,
                t_skin - 1.5 if not coat else t_cloth,
                0.04,
            )
        neck = sh + (0.0, 0.0)
    else:
        for k, sgn in ((0, -1.0), (1, 1.0)):
            lift = 0.04 * max(0.0, np.sin(ph) * sgn) if not riding else 0.0
            xl = x + sgn * 0.055 * H
            foot_y = (0.3 + 0.15 * np.sin(ph + k * np.pi)) if riding else lift
            limb((x + sgn * 0.04 * H, hip_y), (xl, foot_y + 0.04), leg_w * 1.15, trouser_c, t_legs)
            poly2(
                [
                    (xl - 0.05, foot_y),
                    (xl + 0.05, foot_y),
                    (xl + 0.05, foot_y + 0.06),
                    (xl - 0.05, foot_y + 0.06),
                ],
                np.array([0.08, 0.08, 0.08]) * light,
                t_shoe,
                0.01,
            )
        half_sh, half_hip = 0.125 * H, 0.095 * H
        torso = [
            (x - half_hip, hip_y - 0.03),
            (x + half_hip, hip_y - 0.03),
            (x + half_sh, sh_y),
            (x - half_sh, sh_y),
        ]
        poly2(torso, shirt_c, t_cloth, 0.02)
        if bag and not towards:
            poly2(
                [
                    (x - 0.1 * H * 0.9, sh_y - 0.05),
                    (x + 0.1 * H * 0.9, sh_y - 0.05),
                    (x + 0.09 * H, sh_y - 0.3 * H),
                    (x - 0.09 * H, sh_y - 0.3 * H),
                ],
                np.array([0.12, 0.12, 0.14]) * light,
                t_cloth - 3,
                0.04,
            )
        for sgn in (-1.0, 1.0):
            swing = 0.03 * np.sin(ph) * sgn
            top = (x + sgn * (half_sh - 0.02), sh_y - 0.02)
            wrist = (x + sgn * 0.2, 1.0) if riding else (x + sgn * (half_sh + 0.03) + swing, sh_y - 0.36 * H)
            limb(top, wrist, 0.05 * H, shirt_c * 0.9, t_cloth, 0.03)
            poly2(
                ellipse_pts((wrist[0], wrist[1] - 0.03, z), 0.035, 0.045, [1, 0, 0], 8)[:, :2],
                skin_c,
                t_skin - 1.0,
                0.05,
            )
        neck = np.array([x, sh_y])
    # Neck and head (face warm; hair covers the back of the head).
    head_c = np.array([neck[0] + (0.03 * fwd if side else 0.0), neck[1] + 0.115 * H])
    poly2(
        [neck + (-0.03, -0.02), neck + (0.03, -0.02), neck + (0.03, 0.05), neck + (-0.03, 0.05)],
        skin_c,
        t_skin,
        0.03,
    )
    head = ellipse_pts((head_c[0], head_c[1], z), 0.062 * H, 0.072 * H, [1, 0, 0], 14)[:, :2]
    poly2(head, skin_c if (towards or side) else hair_c, t_skin if (towards or side) else t_skin - 3.0, 0.05)
    hair_pts = ellipse_pts(
        (head_c[0] - (0.01 * fwd if side else 0), head_c[1] + 0.02 * H, z), 0.064 * H, 0.06 * H, [1, 0, 0], 12
    )[:, :2]
    hair_pts = hair_pts[hair_pts[:, 1] >= head_c[1] + 0.01 * H - (0.03 * H if side else 0)]
    if side:
        back = hair_pts[:, 0] * fwd <= head_c[0] * fwd + 0.02
        hair_pts = (
            np.vstack([hair_pts, [[head_c[0] - 0.05 * fwd, head_c[1] - 0.03 * H]]])
            if back.any()
            else hair_pts
        )
    if len(hair_pts) >= 3:
        poly2(hair_pts, hair_c, t_skin - 4.0, 0.06)


# --------------------------------------------------------------------------------------------------
# Traffic: fixed time slots per route, so frame t only looks at the slots that can reach it
# --------------------------------------------------------------------------------------------------
FPS = 10.0


@dataclass(frozen=True)
class Route:
    kind: str
    waypoints: tuple[tuple[float, float], ...]
    speed: tuple[float, float]  # m/s range (per seed for cars: one speed per lane, no overtaking)
    slot: float  # seconds between possible departures
    prob: float  # chance that a slot sends one
    jitter: tuple[float, float] = (0.0, 0.0)  # random shift of the whole route (x, z), metres

    @property
    def length(self) -> float:
        w = np.asarray(self.waypoints)
        return float(np.linalg.norm(np.diff(w, axis=0), axis=1).sum())


ROUTES = (
    Route("car", ((-2.75, -3.0), (-2.75, 150.0)), (7.0, 10.0), 2.6, 0.55),
    Route("car", ((-6.25, 150.0), (-6.25, -3.0)), (7.0, 10.0), 2.6, 0.5),
    Route("car", ((-70.0, 23.6), (70.0, 23.6)), (6.0, 9.0), 3.5, 0.45),
    Route("car", ((70.0, 20.4), (-70.0, 20.4)), (6.0, 9.0), 3.5, 0.45),
    Route("person", ((3.2, -1.0), (3.2, 60.0)), (1.1, 1.6), 4.5, 0.6, (1.2, 0.0)),
    Route("person", ((3.2, 60.0), (3.2, -1.0)), (1.1, 1.6), 4.5, 0.6, (1.2, 0.0)),
    Route("person", ((-10.3, -1.0), (-10.3, 70.0)), (1.1, 1.6), 6.0, 0.5, (1.3, 0.0)),
    Route("person", ((-10.3, 70.0), (-10.3, -1.0)), (1.1, 1.6), 6.0, 0.5, (1.3, 0.0)),
    Route(
        "person", ((3.0, -1.0), (3.0, 15.0), (-10.0, 15.0), (-10.0, 60.0)), (1.1, 1.5), 6.0, 0.6, (0.6, 1.2)
    ),
    Route(
        "person", ((-10.0, 60.0), (-10.0, 15.5), (3.0, 15.5), (3.0, -1.0)), (1.1, 1.5), 6.0, 0.6, (0.6, 1.2)
    ),
    Route("cyclist", ((-1.4, -2.0), (-1.4, 120.0)), (3.5, 5.5), 5.0, 0.6),
    Route("cyclist", ((60.0, 19.3), (-60.0, 19.3)), (3.5, 5.0), 8.0, 0.55),
    Route("cyclist", ((-7.4, 100.0), (-7.4, -2.0)), (3.5, 5.0), 9.0, 0.4),
    Route("cyclist", ((4.0, 70.0), (4.0, -1.0)), (3.0, 4.5), 7.0, 0.6, (0.5, 0.0)),
)


@lru_cache(maxsize=8192)
def _departure(seed: int, route: int, k: int) -> tuple[float, float, float, float, int] | None:
    """(start time, speed, shift x, shift z, look key) of slot k of a route, or None."""
    r = ROUTES[route]
    g = np.random.default_rng([seed, 31, route, k + (1 << 24)])
    if g.random() >= r.prob:
        return None
    t0 = k * r.slot + float(g.uniform(0.0, 0.25 * r.slot))
    if r.kind == "car":  # one speed per lane: cars never drive through each other
        lane = np.random.default_rng([seed, 21, route]).uniform(*r.speed)
        v = float(lane * g.uniform(0.985, 1.015))
    else:
        v = float(g.uniform(*r.speed))
    sx = float(g.uniform(-r.jitter[0], r.jitter[0]))
    sz = float(g.uniform(-r.jitter[1], r.jitter[1]))
    return t0, v, sx, sz, int(g.integers(1 << 30))


def traffic(seed: int, t: float) -> list[Thing]:
    """Everything moving at time t (seconds): a pure function of (seed, t)."""
    things = []
    for ri, r in enumerate(ROUTES):
        duration = r.length / r.speed[0] * 1.02
        for k in range(int(np.floor((t - duration) / r.slot)) - 1, int(np.floor(t / r.slot)) + 1):
            dep = _departure(seed, ri, k)
            if dep is None:
                continue
            t0, v, sx, sz, key = dep
            s = (t - t0) * v
            if s < 0 or s > r.length:
                continue
            w = np.asarray(r.waypoints) + np.array([sx, sz])
            seg = np.linalg.norm(np.diff(w, axis=0), axis=1)
            i = int(np.searchsorted(np.cumsum(seg), s))
            i = min(i, len(seg) - 1)
            s_in = s - (np.cumsum(seg)[i] - seg[i])
            d = (w[i + 1] - w[i]) / seg[i]
            pos = w[i] + d * s_in
            stride = 1.45 if r.kind == "person" else 2.1 * 1.8
            phase = 2 * np.pi * s / stride
            things.append(
                Thing(r.kind, float(pos[0]), float(pos[1]), (float(d[0]), float(d[1])), float(phase), key)
            )
    return things


def _ground_quad(cv: Canvas, st: Static, corners, factor: np.ndarray) -> None:
    """Darken the sunlit ground under a quad (a moving object's shadow)."""
    pts = np.array([(x, 0.0, z) for x, z in corners], np.float64)
    if pts[:, 2].min() < 0.5:
        return
    hit = cv.polygon_mask(pts)
    if hit is None:
        return
    (u0, u1, v0, v1), mask = hit
    m = mask.astype(bool) & st.ground[v0:v1, u0:u1] & (st.sun[v0:v1, u0:u1] > 0.5)
    cv.eo[v0:v1, u0:u1][m] *= factor


def _shadow(cv: Canvas, st: Static, th: Thing) -> None:
    if sun_factor(st.right, np.array([th.x]), np.array([1.0]), np.array([th.z]))[0] < 0.5:
        return
    k = 0.55
    along_x = abs(th.heading[0]) > 0.5
    if th.kind == "car":
        hl, hw, h = 2.3, 0.9, 1.5
    elif th.kind == "cyclist":
        hl, hw, h = 0.8, 0.2, 1.6
    else:
        hl, hw, h = 0.15, 0.18, 1.7
    ex, ez = (hl, hw) if along_x else (hw, hl)
    x0, x1, z0, z1 = th.x - ex, th.x + ex, th.z - ez, th.z + ez
    s = k * h
    _ground_quad(
        cv, st, [(x0 - s, z0 + 0.3 * ez), (x1, z0), (x1, z1), (x0 - s, z1 - 0.3 * ez)], SHADE_RGB / SUN_RGB
    )


def _beam(cv: Canvas, st: Static, th: Thing, layer: np.ndarray) -> None:
    """Headlight beam on the road ahead of a car at night / in fog."""
    hx, hz = th.heading
    fx, fz = th.x + hx * 2.3, th.z + hz * 2.3
    reach = 28.0
    corners = [
        (fx - 3 * abs(hz) - 0.5, fz),
        (fx + 3 * abs(hz) + 0.5, fz),
        (fx + hx * reach + (5 * abs(hz)), fz + hz * reach + 5 * abs(hx)),
        (fx + hx * reach - (5 * abs(hz)), fz + hz * reach - 5 * abs(hx)),
    ]
    pts = np.array([(x, 0.0, max(z, 0.6)) for x, z in corners])
    uv = cv.cam.project(pts)
    roi = cv._roi(uv)
    if roi is None:
        return
    u0, u1, v0, v1 = roi
    gx, gz = st.gx[v0:v1, u0:u1], st.gz[v0:v1, u0:u1]
    a = (gx - fx) * hx + (gz - fz) * hz  # distance ahead of the car
    lat = (gx - fx) * hz - (gz - fz) * hx
    inten = np.where(a > 0, np.exp(-a / 12.0) * np.exp(-((lat / (0.8 + 0.12 * a)) ** 2)), 0.0)
    m = st.ground[v0:v1, u0:u1] & (cv.depth[v0:v1, u0:u1] >= st.canvas.depth[v0:v1, u0:u1])
    layer[v0:v1, u0:u1] += (0.35 * inten * m)[..., None] * np.array([1.0, 0.96, 0.85], np.float32)


def render_scene(seed: int, t: float, height: int, width: int, cond: str) -> tuple[Canvas, np.ndarray]:
    """The lit scene at time t: (canvas with EO albedo*light, IR kelvin, labels, depth; glare layer)."""
    st = static_world(seed, height, width, cond)
    cv = st.canvas.copy()
    glare = st.glare.copy()
    w = WEATHER[cond]
    things = sorted(traffic(seed, t), key=lambda th: -th.z)
    if w.sun:
        for th in things:
            _shadow(cv, st, th)
    for th in things:
        if th.z < -6.0:
            continue
        if th.kind == "car":
            draw_car(cv, th, cond, glare, st.right)
        elif th.kind == "person":
            draw_person(cv, th, cond, st.right)
        else:
            fwd = th.heading[0] if abs(th.heading[0]) > 0.5 else 0.0
            rider = Thing(
                "person",
                th.x - 0.17 * fwd,
                th.z - (0.17 * th.heading[1] if fwd == 0 else 0.0),
                th.heading,
                th.phase,
                th.key,
            )
            if _screen_size(cv, th.x, th.z, 1.0, 1.9) <= 0:
                continue
            sp = Sprite(cv, th.z)
            rng = np.random.default_rng([th.key, 3])
            light = light_at(cond, st.right, th.x, 0.6, th.z)
            draw_bike(sp, th.x, th.z, th.heading, th.phase / 1.8, rng.random(3) * 0.8, w.ambient, True, light)
            draw_person(cv, rider, cond, st.right, riding=True, sprite=sp)
            sp.flush()
    if w.lights_on:  # beams light the road only where no nearer thing stands
        for th in things:
            if th.kind == "car":
                _beam(cv, st, th, glare)
    return cv, glare
