"""Traffic of the demo street: routes for cars, pedestrians and cyclists, each with fixed time
slots that may send one thing at a seeded time and speed.

Why slots: where everything is at time t is a pure function of (seed, t) that only looks at the
slots able to reach t, so any frame renders on its own (random access for scrubbing) and motion is
smooth from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from csknet_studio.core.demo.world import Thing

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
