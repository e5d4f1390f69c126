"""Cars and bicycles of the demo street, moving or parked: a car is a few boxes (underbody, body,
cabin) with glass, wheels, lights, plate and exhaust painted on the faces the camera sees; a bicycle
is strokes in a sprite. Each look (model, size, colour) is drawn from the thing's key.

IR: a running car has a hot bonnet, tyres, underbody and exhaust, a parked one sits near ambient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from csknet_studio.core.demo.render import CAM_HEIGHT, Canvas, Sprite, circle_pts
from csknet_studio.core.demo.world import BIKE, CAR, WEATHER, Buildings, Thing, Weather, light_at, screen_size

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

ToWorld = Callable[..., np.ndarray]


def _car_frame(t: Thing, length: float) -> ToWorld:
    """Map car-local (a along, s lateral, y) to world, for the four headings."""
    hx, hz = t.heading

    def to_world(a, s, y):
        a = np.asarray(a, np.float64) - length / 2
        s = np.asarray(s, np.float64)
        x = t.x + hx * a + hz * s
        z = t.z + hz * a - hx * s
        return np.stack(np.broadcast_arrays(x, np.asarray(y, np.float64), z), axis=-1)

    return to_world


def _face_visible(to_world: ToWorld, a, s, y, normal_local) -> bool:
    p = to_world(a, s, y)
    q = to_world(a + normal_local[0] * 0.1, s + normal_local[1] * 0.1, y)
    n = q - p
    return float(n @ (np.array([0.0, CAM_HEIGHT, 0.0]) - p)) > 0


@dataclass(frozen=True)
class _CarLook:
    """Model and size of one car, in car-local metres (a along from the rear, y up)."""

    kind: str
    length: float
    width: float
    body_top: float
    roof: float
    cab: tuple[float, float]  # cabin start / end as fractions of the length
    color: np.ndarray


def _car_look(rng: np.random.Generator) -> _CarLook:
    kind = rng.choice(["sedan", "hatch", "suv", "van"], p=[0.4, 0.25, 0.2, 0.15])
    length = {"sedan": 4.6, "hatch": 4.0, "suv": 4.7, "van": 4.8}[kind] + float(rng.uniform(-0.15, 0.15))
    width = float(rng.uniform(1.7, 1.85))
    body_top = {"sedan": 0.95, "hatch": 1.0, "suv": 1.1, "van": 1.15}[kind]
    roof = {"sedan": 1.45, "hatch": 1.5, "suv": 1.75, "van": 1.95}[kind]
    cab = {"sedan": (0.25, 0.72), "hatch": (0.06, 0.7), "suv": (0.06, 0.76), "van": (0.0, 0.8)}[kind]
    color = CAR_COLORS[rng.integers(len(CAR_COLORS))]
    if kind == "van" and rng.random() < 0.6:
        color = CAR_COLORS[0]
    return _CarLook(kind, length, width, body_top, roof, cab, color)


@dataclass(frozen=True)
class _CarTemps:
    """Kelvin of a car's parts: warm where the engine, tyres and exhaust are when it runs."""

    sun: float
    body: float
    glass: float
    hood: float
    tyre: float
    under: float


def _car_temps(w: Weather, cond: str, run: bool) -> _CarTemps:
    amb = w.ambient
    sun = 2.0 if w.sun else 0.0
    t_body = amb + sun + (1.5 if run else 0.0)
    t_glass = amb - (11.0 if cond == "day" else 6.0 if cond == "night" else 2.5)
    t_hood = amb + (22.0 if run else sun + 1.0)
    t_tyre = amb + (9.0 if run else 0.5)
    t_under = amb + (9.0 if run else 0.5)
    return _CarTemps(sun, t_body, t_glass, t_hood, t_tyre, t_under)


class _CarPainter:
    """Paints one car's parts in car-local coordinates; the order of the calls is the paint order."""

    def __init__(self, cv: Canvas, t: Thing, look: _CarLook, light: np.ndarray, temps: _CarTemps):
        self.cv, self.t, self.look, self.light, self.temps = cv, t, look, light, temps
        self.to_world = _car_frame(t, look.length)
        self.hw = look.width / 2

    def box(self, a0, a1, s0, s1, y0, y1, col, temp, temps=None, shade=None) -> None:
        p = self.to_world([a0, a1], [s0, s1], [y0, y1])
        lo, hi = np.minimum(p[0], p[1]), np.maximum(p[0], p[1])
        self.cv.box(
            lo, hi, col, temp, CAR, shade or {"y+": 1.12, "x-": 0.8, "x+": 0.8, "z-": 0.95, "z+": 0.95}, temps
        )

    def decal(self, a, s, y, col, temp, normal) -> None:
        if _face_visible(self.to_world, a[0], s[0], y[0], normal):
            self.cv.poly(self.to_world(a, s, y), col, temp, CAR, bias=0.02)

    def body(self) -> None:
        """Underbody shadow and tyres (dark band under the body), then the body and cabin."""
        look, tp, hw = self.look, self.temps, self.hw
        length = look.length
        body = look.color * self.light
        self.box(0.12 * length, 0.88 * length, -hw + 0.12, hw - 0.12, 0.05, 0.3, (0.03, 0.03, 0.03), tp.under)
        # Hot end: the engine is at the front (a = length); temps per world face of the body box.
        front_key = {(0.0, 1.0): "z+", (0.0, -1.0): "z-", (1.0, 0.0): "x+", (-1.0, 0.0): "x-"}[self.t.heading]
        self.box(0, length, -hw, hw, 0.28, look.body_top, body, tp.body,
                 temps={front_key: tp.hood, "y+": tp.body + tp.sun})
        self.box(look.cab[0] * length, look.cab[1] * length, -hw + 0.08, hw - 0.08, look.body_top, look.roof,
                 body, tp.body + tp.sun)

    def glass(self, cond: str) -> None:
        """Side windows, windscreen and rear window on the cabin."""
        look, hw, t_glass = self.look, self.hw, self.temps.glass
        g_col = np.array([[0.24, 0.28, 0.34], [0.06, 0.07, 0.09]], np.float32) * (
            self.light if cond != "day" else 1.0
        )
        a0, a1 = look.cab[0] * look.length, look.cab[1] * look.length
        yg0, yg1 = look.body_top + 0.05, look.roof - 0.06
        for s_side, nrm in ((hw - 0.08, (0.0, 1.0)), (-hw + 0.08, (0.0, -1.0))):
            self.decal([a0 + 0.12, a1 - 0.12, a1 - 0.2, a0 + 0.2], [s_side] * 4, [yg0, yg0, yg1, yg1],
                       g_col, t_glass, nrm)
        across = [-hw + 0.18, hw - 0.18, hw - 0.25, -hw + 0.25]
        self.decal([a1] * 4, across, [yg0, yg0, yg1, yg1], g_col, t_glass, (1.0, 0.0))
        self.decal([a0] * 4, across, [yg0, yg0, yg1, yg1], g_col, t_glass, (-1.0, 0.0))

    def wheels(self) -> None:
        """Tyres and rims on both sides (round in side view)."""
        hx, hz = self.t.heading
        along = np.array([hx, 0.0, hz])
        t_tyre, hw = self.temps.tyre, self.hw
        for a_w in (0.18 * self.look.length, 0.8 * self.look.length):
            for s_w, nrm in ((hw + 0.005, (0.0, 1.0)), (-hw - 0.005, (0.0, -1.0))):
                if not _face_visible(self.to_world, a_w, s_w, 0.3, nrm):
                    continue
                c = self.to_world(a_w, s_w, 0.31)
                self.cv.poly(circle_pts(c, 0.31, along, [0, 1, 0], 14), (0.05, 0.05, 0.05), t_tyre, CAR, bias=0.03)
                self.cv.poly(
                    circle_pts(c, 0.17, along, [0, 1, 0], 10),
                    np.array([0.45, 0.45, 0.47]) * self.light,
                    t_tyre - 3,
                    CAR,
                    bias=0.05,
                )

    def ends(self, lit: bool, amb: float, glare: np.ndarray) -> None:
        """Bumper, plate and lamps on both ends; the exhaust at the rear of a running car."""
        for a_end, nrm, lamp_col, lamp_on in (
            (0.0, (-1.0, 0.0), (0.75, 0.05, 0.05), (3.0, 0.2, 0.15)),
            (self.look.length, (1.0, 0.0), (0.85, 0.85, 0.8), (4.0, 3.8, 3.2)),
        ):
            if not _face_visible(self.to_world, a_end, 0.0, 0.6, nrm):
                continue
            self._bumper_and_plate(a_end, nrm)
            self._lamps(a_end, nrm, lamp_col, lamp_on, lit, glare)
            if a_end == 0.0 and self.t.moving:
                # Exhaust pipe: a small, very hot spot under the rear bumper.
                hw = self.hw
                self.decal([0.0] * 4, [hw - 0.45, hw - 0.3, hw - 0.3, hw - 0.45], [0.22, 0.22, 0.32, 0.32],
                           (0.15, 0.15, 0.15), amb + 55.0, nrm)

    def _bumper_and_plate(self, a_end: float, nrm) -> None:
        hw, t_body = self.hw, self.temps.body
        self.decal([a_end] * 4, [-hw, hw, hw, -hw], [0.3, 0.3, 0.44, 0.44], (0.06, 0.06, 0.06), t_body, nrm)
        self.decal([a_end] * 4, [-0.26, 0.26, 0.26, -0.26], [0.47, 0.47, 0.6, 0.6],
                   np.array([0.85, 0.85, 0.8]) * self.light, t_body, nrm)

    def _lamps(self, a_end: float, nrm, lamp_col, lamp_on, lit: bool, glare: np.ndarray) -> None:
        """Head or tail lamps of one end; lit ones glare."""
        hw = self.hw
        for sgn in (-1, 1):
            s_in, s_out = sgn * (hw - 0.35), sgn * (hw - 0.06)
            col = np.asarray(lamp_on if lit else lamp_col, np.float32) * (1.0 if lit else self.light)
            self.decal([a_end] * 4, [s_in, s_out, s_out, s_in], [0.7, 0.7, 0.86, 0.86], col,
                       self.temps.body + (6 if lit else 0), nrm)
            if lit:
                c = self.to_world(a_end, (s_in + s_out) / 2, 0.78)
                head = a_end > 0
                self.cv.glow(
                    c,
                    0.18 if head else 0.1,
                    np.array([1.0, 0.95, 0.85]) if head else np.array([1.0, 0.1, 0.05]),
                    1.6 if head else 0.6,
                    glare,
                )


def draw_car(cv: Canvas, t: Thing, cond: str, glare: np.ndarray, right: Buildings) -> None:
    """A car lit for `cond`; lamps of a running car at night or in fog glare into `glare`."""
    w = WEATHER[cond]
    px = screen_size(cv, t.x, t.z, 2.6, 2.0)
    if px <= 0:
        return
    look = _car_look(np.random.default_rng([t.key, 1]))
    light = light_at(cond, right, t.x, 1.0, t.z)
    car = _CarPainter(cv, t, look, light, _car_temps(w, cond, t.moving))
    car.body()
    if px < 14:  # a few pixels tall: details would not show
        return
    car.glass(cond)
    car.wheels()
    car.ends(w.lights_on and t.moving, w.ambient, glare)


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
