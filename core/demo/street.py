"""The static street of the demo, without traffic: ray-cast sky, ground (asphalt, markings,
paving) and facades (windows, shop fronts), the street furniture painted over them
(`furniture.py`), all lit for the condition (sun and building shadow, street lamps, fog).

Rendered once per (seed, size, condition) and cached (`static_world`): every frame copies it and
paints the traffic over it, so frames stay cheap and the street never changes under moving things.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from csknet_studio.core.demo.furniture import draw_furniture
from csknet_studio.core.demo.render import CAM_HEIGHT, Camera, Canvas
from csknet_studio.core.demo.world import (
    SHADE_RGB,
    STREET,
    SUN_RGB,
    UNLABELED,
    WALL_COLORS,
    WEATHER,
    Buildings,
    Weather,
    buildings,
    hash01,
    night_light,
    sample_tile,
    smooth_noise,
    sun_factor,
)


@dataclass
class Static:
    canvas: Canvas
    ground: np.ndarray  # (H, W) bool: ray hits the ground (for shadows and headlight beams)
    gx: np.ndarray  # world x / z of each pixel's surface point
    gz: np.ndarray
    glare: np.ndarray  # (H, W, 3) additive light of the static lamps (night)
    right: Buildings
    sun: np.ndarray  # (H, W) float32 1 = sunlit (day), else all ones


@dataclass(frozen=True)
class _Tiles:
    """Smooth noise tiles the surfaces are sampled from: coarse, fine and medium grain."""

    lo: np.ndarray
    hi: np.ndarray
    mid: np.ndarray


@dataclass
class _Hits:
    """What each pixel's ray hits first: depth (inf = sky), kind (0 sky, 1 ground, 2 / 3 right / left
    facade, 4 / 5 right / left end wall), and for walls the segment and the coordinate along it."""

    depth: np.ndarray
    kind: np.ndarray
    wall_seg: np.ndarray
    wall_a: np.ndarray
    sides: dict[int, tuple[float, Buildings]]


def _cast_rays(seed: int, dx: np.ndarray, dy: np.ndarray) -> _Hits:
    h_img, w_img = dx.shape
    far = 400.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dy < -1e-5, CAM_HEIGHT / -dy, np.inf)
    t_ground[t_ground > far] = np.inf
    depth = t_ground.astype(np.float32).copy()
    kind = np.where(np.isfinite(depth), 1, 0).astype(np.uint8)

    sides = {2: (STREET.facade_right, buildings(seed, 0)), 3: (STREET.facade_left, buildings(seed, 1))}
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
    return _Hits(depth, kind, wall_seg, wall_a, sides)


def _paint_sky(eo: np.ndarray, temp: np.ndarray, sky: np.ndarray, cam: Camera, cond: str, w: Weather,
               tile_lo: np.ndarray) -> None:
    """Blue with clouds (day), dark with a little city glow (night), flat grey (fog); colder aloft."""
    h_img, w_img = cam.height, cam.width
    elev = np.clip(-(np.arange(h_img, dtype=np.float32) - cam.v0) / cam.f, 0, 1)[:, None]
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


def _road_marks(x: np.ndarray, z: np.ndarray, main: np.ndarray, cross: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """Painted lines: dashed centre line, edge line, parking line and bays, crosswalk, stop line."""
    mark = np.zeros_like(x, bool)
    mark |= main & ~cross & ~cw & (np.abs(x - STREET.centre_line) < 0.08) & (np.mod(z, 9.0) < 4.5)
    mark |= main & ~cross & (np.abs(x - (STREET.road_left + 0.25)) < 0.07)
    mark |= main & ~cross & ~cw & (np.abs(x - STREET.park_line) < 0.07)
    mark |= (
        main & ~cross & ~cw & (x > STREET.park_line) & (z > 3.0) & (np.abs(np.mod(z - 4.0, 6.0) - 3.0) > 2.93)
    )
    mark |= cw & (np.mod(x - STREET.road_left, 1.0) < 0.5)
    mark |= main & (z > 12.55) & (z < 12.9) & (x > STREET.centre_line) & (x < STREET.park_line)
    return mark


def _ground(seed: int, x: np.ndarray, z: np.ndarray, cond: str, w: Weather,
            tiles: _Tiles) -> tuple[np.ndarray, np.ndarray]:
    """EO albedo and kelvin of ground points (x, z): patched asphalt with worn markings, paved
    sidewalks with a tactile strip; the road warmer than the sidewalk, markings cooler by day."""
    lo = sample_tile(tiles.lo, x, z, 8.0)
    mid = sample_tile(tiles.mid, x, z, 24.0)
    hi = sample_tile(tiles.hi, x, z, 48.0) * np.clip(5.0 / z, 0, 1)
    cross = (z >= STREET.cross_road[0]) & (z <= STREET.cross_road[1])
    main = (x >= STREET.road_left) & (x <= STREET.road_right)
    road = main | cross
    walk = ~road
    cw = main & (z >= STREET.crosswalk[0]) & (z <= STREET.crosswalk[1])
    base = 0.31 + 0.05 * lo + 0.035 * mid + 0.05 * hi
    base = np.where((x > STREET.park_line) & main, base + 0.025, base)
    patch = (hash01(seed, np.floor(x / 3.0), np.floor(z / 5.0)) < 0.12) & road
    base = np.where(patch, base - 0.06, base)
    wear = 0.75 + 0.25 * sample_tile(tiles.mid, x + 50, z, 30.0)
    mark = _road_marks(x, z, main, cross, cw)
    tile = 0.6
    ti, tj = np.floor(x / tile), np.floor(z / tile)
    grout = ((np.mod(x, tile) < 0.035) | (np.mod(z, tile) < 0.035)) & (z < 40)
    walk_c = 0.50 + 0.05 * (hash01(seed + 1, ti, tj) - 0.5) + 0.03 * lo + 0.03 * hi
    walk_c = np.where(grout, walk_c - 0.08, walk_c)
    tactile = walk & (x > 2.25) & (x < 2.55) & ~((z >= STREET.gap[0]) & (z <= STREET.gap[1]))
    rgb = np.repeat(base[:, None], 3, axis=1) * np.array([1.0, 1.0, 1.03], np.float32)
    rgb[walk] = walk_c[walk, None] * np.array([1.04, 1.0, 0.95], np.float32)
    rgb[tactile] = np.array([0.78, 0.66, 0.16], np.float32) * (0.9 + 0.1 * hi[tactile, None])
    mk = mark & road
    rgb[mk] = (0.82 * wear[mk, None] + base[mk, None] * (1 - wear[mk, None])) * np.ones(3, np.float32)
    tg = np.where(road, w.asphalt + 1.2 * lo + 0.4 * mid, w.sidewalk + 0.8 * lo)
    tg = np.where(mk, tg - (2.5 if cond == "day" else 0.8), tg)
    return rgb, tg


def _facade(seed: int, k: int, b: Buildings, seg: np.ndarray, a: np.ndarray, y: np.ndarray, cond: str,
            w: Weather, tiles: _Tiles) -> tuple[np.ndarray, np.ndarray]:
    """EO colour and kelvin of facade points of kind k (segment, coordinate along, height): walls,
    windows, shop fronts and a darker cornice; some windows lit at night, left facades sunlit."""
    col = WALL_COLORS[b.colors[seg]]
    p = b.pitch[seg]
    shade = 1.0 + 0.04 * sample_tile(tiles.hi, a, y, 20.0) + 0.05 * sample_tile(tiles.lo, a, y, 6.0)
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
    r = hash01(seed + k, col_i, row_i)
    glass = np.stack([0.10 + 0.10 * r, 0.13 + 0.10 * r, 0.17 + 0.12 * r], axis=1)
    c = col * shade[:, None]
    c = np.where(cornice[:, None], c * 0.75, c)
    c = np.where(win[:, None] | shop[:, None], glass, c)
    if cond == "night":
        lit = (win & (r > 0.7)) | (shop & (r > 0.5))
        c = np.where(lit[:, None], np.array([4.0, 3.0, 1.7], np.float32) * (0.3 + r[:, None]), c)
    tw = np.where(win | shop, w.window + 2 * r, w.wall + 0.6 * shade)
    if cond == "day" and k in (3, 5):
        tw = tw + np.where(win | shop, 0.0, 3.0)  # sun on the left facades
    return c, tw


def _raycast(seed: int, cam: Camera, cond: str) -> tuple[Canvas, np.ndarray, Buildings]:
    """Sky, ground and facades as seen from the camera: (canvas, ground mask, right-hand buildings)."""
    w = WEATHER[cond]
    dx, dy = cam.rays()
    h_img, w_img = cam.height, cam.width
    rng = np.random.default_rng([seed, 3])
    tile_lo = smooth_noise(rng, 256, 10.0)
    tile_hi = smooth_noise(rng, 256, 1.2)
    tile_mid = smooth_noise(rng, 256, 3.0)
    tiles = _Tiles(tile_lo, tile_hi, tile_mid)

    hits = _cast_rays(seed, dx, dy)
    depth, kind, sides = hits.depth, hits.kind, hits.sides
    right = sides[2][1]
    finite = np.isfinite(depth)
    d = np.where(finite, depth, 0.0).astype(np.float32)
    wx, wy, wz = dx * d, CAM_HEIGHT + dy * d, d

    eo = np.zeros((h_img, w_img, 3), np.float32)
    temp = np.zeros((h_img, w_img), np.float32)
    _paint_sky(eo, temp, kind == 0, cam, cond, w, tile_lo)
    g = kind == 1
    eo[g], temp[g] = _ground(seed, wx[g], wz[g], cond, w, tiles)
    for k in (2, 3, 4, 5):
        m = kind == k
        if not m.any():
            continue
        b = sides[2][1] if k in (2, 4) else sides[3][1]
        eo[m], temp[m] = _facade(seed, k, b, hits.wall_seg[m], hits.wall_a[m], wy[m], cond, w, tiles)

    canvas = Canvas(cam, eo, temp, np.zeros((h_img, w_img), np.uint8), depth)
    return canvas, g, right


@lru_cache(maxsize=3)
def static_world(seed: int, height: int, width: int, cond: str) -> Static:
    """The street without traffic, lit for `cond`: built once, copied per frame."""
    cam = Camera(height, width)
    cv, ground, right = _raycast(seed, cam, cond)
    glare = np.zeros((height, width, 3), np.float32)
    draw_furniture(seed, cv, cond, glare)
    ground &= cv.label == UNLABELED
    dx, dy = cam.rays()
    d = np.where(np.isfinite(cv.depth), cv.depth, 0.0).astype(np.float32)
    wx, wy, wz = dx * d, CAM_HEIGHT + dy * d, d
    rng = np.random.default_rng([seed, 9])
    tex = 1.0 + 0.05 * smooth_noise(rng, max(height, width), 1.0)[:height, :width]
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
