"""One frame of the demo as a pure function of (seed, index, size, n_frames): the argument checks,
the per-frame day / night / fog condition, and `render_demo_frame`, which runs the scene, the
optional thermal variety and the camera effects into a `FramePair`.
"""

from __future__ import annotations

import numpy as np

from csknet_studio.core.demo.scene import render_scene
from csknet_studio.core.demo.sensor import IR_CELSIUS, clear_sensor_caches, finish
from csknet_studio.core.demo.street import static_world
from csknet_studio.core.demo.thermal import ThermalVariety
from csknet_studio.core.demo.traffic import FPS
from csknet_studio.core.errors import ConfigError
from csknet_studio.core.frames import FramePair

GENERATOR_VERSION = 2  # bump whenever the pixels change, so cached default demos regenerate
DEFAULT_SIZE = (480, 640)
DEFAULT_FRAMES = 120


def check_args(seed: int, n_frames: int, size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a valid request; ConfigError naming what is wrong otherwise."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"demo seed must be a non-negative integer, got {seed!r}")
    if int(n_frames) < 1:
        raise ConfigError(f"demo frames must be >= 1, got {n_frames!r}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"demo size must be (height, width), got {size!r}") from None
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise ConfigError(f"demo size {h}x{w} out of range: height and width must be in [32, 4096]")
    return h, w


def demo_conditions(seed: int, n_frames: int) -> list[str]:
    """Per-frame condition: contiguous segments day | night | day | fog | day (about 1/6 night,
    1/6 fog), boundaries shifted a little by the seed."""
    n = int(n_frames)
    if n <= 1:
        return ["day"] * n
    if n == 2:
        return ["day", "night"]
    n_night = max(1, round(n / 6))
    n_fog = max(1, round(n / 6))
    days = n - n_night - n_fog
    rng = np.random.default_rng([int(seed), 41])
    a = int(round(days * rng.uniform(0.3, 0.45)))
    c = int(round(days * rng.uniform(0.1, 0.2)))
    b = days - a - c
    return ["day"] * a + ["night"] * n_night + ["day"] * b + ["fog"] * n_fog + ["day"] * c


def render_demo_frame(
    seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE, n_frames: int = DEFAULT_FRAMES,
    *, thermal_variety: bool = False,
) -> tuple[FramePair, str]:
    """Render frame `index` of the demo: (FramePair(eo RGB uint8, ir uint16 centikelvin, label uint8), condition).

    Deterministic for (seed, index, size, n_frames); n_frames only sets where the night and fog
    segments fall. `thermal_variety` draws the clip's scene temperatures at random
    (`ThermalVariety`; training data only, the app's demo keeps its one look)."""
    h, w = check_args(seed, n_frames, size)
    if not 0 <= int(index) < int(n_frames):
        raise ConfigError(f"demo frame index {index} out of range [0, {n_frames})")
    cond = demo_conditions(seed, n_frames)[int(index)]
    cv, glare = render_scene(int(seed), int(index) / FPS, h, w, cond)
    if thermal_variety:
        ThermalVariety.draw(int(seed)).apply(cv, cond, int(seed))
    eo, ir = finish(cv, glare, cond, int(seed), int(index))
    return FramePair(name=f"{int(index):06d}", eo=eo, ir=ir, label=cv.label.copy(), radiometry=IR_CELSIUS), cond


def release_caches() -> None:
    """Drop the cached static streets and noise (tens of MB per size): a long-running app calls
    this, and generate_demo does it when done."""
    static_world.cache_clear()
    clear_sensor_caches()
