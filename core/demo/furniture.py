"""Street furniture of the demo's static world: curbs, speed bumps, car stops, guardrails, traffic
cones, street lamps, trees, a parked car and parked bikes, each with its MFNet class (lamps and trees
are unlabelled) and its temperature for the condition.

One generator per seed serves all of it in paint order (`draw_furniture`), so the same seed always
places and colours the same things.
"""

from __future__ import annotations

import numpy as np

from csknet_studio.core.demo.render import Canvas, Sprite
from csknet_studio.core.demo.vehicles import draw_bike, draw_car
from csknet_studio.core.demo.world import (
    BUMP,
    CAR_STOP,
    CONE,
    CURVE,
    GUARDRAIL,
    SODIUM,
    STREET,
    UNLABELED,
    WEATHER,
    Thing,
    Weather,
    buildings,
    light_at,
)

CONES = ((-0.6, 6.2), (-0.5, 36.5), (-0.7, 38.5), (-0.9, 40.0), (3.6, 10.6), (3.95, 11.4), (-9.6, 34.0))


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


def _curbs(cv: Canvas, tp: dict) -> None:
    """Curbs ("curve"): along both sides of the main road, and across the sidewalks at the cross street."""
    s = STREET
    curb = np.array([0.66, 0.66, 0.63], np.float32)
    shade = {"y+": 1.15, "x-": 0.72, "x+": 0.72, "z-": 0.8}
    for z0, z1 in ((0.4, s.gap[0]), (s.gap[1], s.far)):
        cv.box((s.road_right, 0, z0), (s.road_right + 0.18, 0.15, z1), curb, tp["curb"], CURVE, shade)
        cv.box((s.road_left - 0.18, 0, z0), (s.road_left, 0.15, z1), curb, tp["curb"], CURVE, shade)
    for x0, x1 in ((s.road_right + 0.18, s.facade_right), (s.facade_left, s.road_left - 0.18)):
        cv.box((x0, 0, s.gap[1] - 0.18), (x1, 0.15, s.gap[1]), curb, tp["curb"], CURVE, shade)
        cv.box((x0, 0, s.gap[0]), (x1, 0.15, s.gap[0] + 0.18), curb, tp["curb"], CURVE, shade)


def _speed_bumps(cv: Canvas, tp: dict) -> None:
    """Yellow / black stripes across the driving lanes."""
    s = STREET
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


def _car_stops(cv: Canvas, tp: dict, rng: np.random.Generator) -> None:
    """Wheel stoppers in the parking bays of the right parking lane (grey or yellow, per seed)."""
    stop_c = (0.72, 0.71, 0.68) if rng.random() < 0.5 else (0.80, 0.70, 0.20)
    for zc in (3.5, 9.5, 40.5, 46.5, 52.5):
        cv.box(
            (-0.75, 0, zc - 0.1), (0.75, 0.14, zc + 0.1), stop_c, tp["stop"], CAR_STOP, {"y+": 1.1, "z-": 0.9}
        )


def _guardrails(cv: Canvas, tp: dict) -> None:
    """Guardrails with a groove and posts, beyond both curbs further down the street."""
    s = STREET
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


def _street_lamps(cv: Canvas, w: Weather, cond: str, glare: np.ndarray) -> None:
    """Street lamps (unlabelled), glaring at night and in fog."""
    tp = w.temps
    for zl in STREET.lamps_z:
        pole = (0.35, 0.36, 0.37)
        cv.box((1.5, 0, zl - 0.07), (1.64, 6.9, zl + 0.07), pole, tp["pole"], UNLABELED)
        cv.box((-1.3, 6.75, zl - 0.05), (1.6, 6.85, zl + 0.05), pole, tp["pole"], UNLABELED)
        head = (2.5, 2.2, 1.6) if w.lights_on else (0.6, 0.6, 0.58)
        cv.box((-1.5, 6.6, zl - 0.2), (-0.8, 6.75, zl + 0.2), head, tp["lamp"], UNLABELED)
        if w.lights_on:
            cv.glow((-1.15, 6.55, zl), 0.35, SODIUM, 1.2 if cond == "night" else 0.5, glare)


def _trees(cv: Canvas, tp: dict, rng: np.random.Generator) -> None:
    """Trees on the left sidewalk: a trunk and a ragged crown, each a little different."""
    for zt in STREET.trees_z:
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


def _parked(seed: int, cv: Canvas, cond: str, glare: np.ndarray, rng: np.random.Generator) -> None:
    """A parked car (engine off) and parked bikes."""
    draw_car(
        cv,
        Thing("car", 0.0, 32.8, (0.0, 1.0), 0.0, int(rng.integers(1 << 30)), moving=False),
        cond,
        glare,
        buildings(seed, 0),
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
            light_at(cond, buildings(seed, 0), xb, 0.5, zb) if cond == "night" else 1.0,
        )
        sp.flush()


def draw_furniture(seed: int, cv: Canvas, cond: str, glare: np.ndarray) -> None:
    """The street furniture, in paint order; one generator serves all of it, in this order."""
    w = WEATHER[cond]
    tp = w.temps
    rng = np.random.default_rng([seed, 5])
    _curbs(cv, tp)
    _speed_bumps(cv, tp)
    _car_stops(cv, tp, rng)
    _guardrails(cv, tp)
    for xc, zc in CONES:  # a work zone in the parking lane, and two on the sidewalk
        draw_cone(cv, xc, zc, tp["cone"])
    _street_lamps(cv, w, cond, glare)
    _trees(cv, tp, rng)
    _parked(seed, cv, cond, glare, rng)
