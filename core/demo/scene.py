"""One lit frame of the demo street before the camera: the cached static world with the traffic
at time t painted over it, far to near, with sun shadows on the ground by day and headlight beams
on the road at night and in fog.

The result is the canvas (EO albedo times light, IR kelvin, labels, depth) and an additive glare
layer; the camera effects (`sensor.py`) turn those into the images.
"""

from __future__ import annotations

import numpy as np

from csknet_studio.core.demo.people import draw_person
from csknet_studio.core.demo.render import Canvas, Sprite
from csknet_studio.core.demo.street import Static, static_world
from csknet_studio.core.demo.traffic import traffic
from csknet_studio.core.demo.vehicles import draw_bike, draw_car
from csknet_studio.core.demo.world import (
    SHADE_RGB,
    SUN_RGB,
    WEATHER,
    Thing,
    light_at,
    screen_size,
    sun_factor,
)


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
    """The shadow a thing in the sun casts on the ground (the sun is low, from the right)."""
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


def _draw_cyclist(cv: Canvas, st: Static, th: Thing, cond: str) -> None:
    """A bike and its rider, sitting a little behind the bottom bracket, in one sprite."""
    fwd = th.heading[0] if abs(th.heading[0]) > 0.5 else 0.0
    rider = Thing(
        "person",
        th.x - 0.17 * fwd,
        th.z - (0.17 * th.heading[1] if fwd == 0 else 0.0),
        th.heading,
        th.phase,
        th.key,
    )
    if screen_size(cv, th.x, th.z, 1.0, 1.9) <= 0:
        return
    sp = Sprite(cv, th.z)
    rng = np.random.default_rng([th.key, 3])
    light = light_at(cond, st.right, th.x, 0.6, th.z)
    draw_bike(sp, th.x, th.z, th.heading, th.phase / 1.8, rng.random(3) * 0.8, WEATHER[cond].ambient, True, light)
    draw_person(cv, rider, cond, st.right, riding=True, sprite=sp)
    sp.flush()


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
            _draw_cyclist(cv, st, th, cond)
    if w.lights_on:  # beams light the road only where no nearer thing stands
        for th in things:
            if th.kind == "car":
                _beam(cv, st, th, glare)
    return cv, glare
