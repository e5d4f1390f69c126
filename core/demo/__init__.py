"""The bundled demo sequence: a seeded, procedural EO/IR street scene with exact MFNet ground truth.

Why it exists: the app needs something to open with no data, and that something has to show why the
missing-modality switch matters. About a third of the frames are NIGHT (EO dark, noisy, glare from
headlights and lamps, pedestrians lost in the dark) or FOG (EO washed out), while IR keeps showing
warm people, engines and tyres against a cooler street.

Images follow the app's conventions (core/frames.py):
- EO: (H, W, 3) uint8 RGB.
- IR: (H, W) uint16 *radiometric*, in centikelvin (kelvin = value / 100; 29315 = 20 C), like a
  TLinear thermal camera, so the 16-bit path is exercised. Plausible values span about 23,800
  (cold night sky) to 34,500 (exhaust pipes); people sit near 30,100-30,650.
- label: (H, W) uint8 MFNet ids (0 unlabeled/background ... 8 bump), exact for every pixel
  (EO, IR and label come from the same z-buffered polygons).

Frames are a pure function of (seed, index, size, n_frames): any frame renders on its own, the
same arrays every time.

Modules, from the bottom up: `render` (camera, z-buffered canvas, sprites), `world` (layout, class
ids, temperatures, lighting, `Thing`), `vehicles` and `people` (cars, bikes, pedestrians, riders),
`furniture` and `street` (the cached static world), `traffic` (who is where at time t), `scene`
(one lit frame), `thermal` (`ThermalVariety`), `sensor` (camera effects, IR encoding), `frame`
(`render_demo_frame`, conditions) and `sequence` (the demo on disk, the default demo). This package
re-exports the public API.
"""

from __future__ import annotations

from csknet_studio.core.demo.frame import (
    DEFAULT_FRAMES,
    DEFAULT_SIZE,
    GENERATOR_VERSION,
    demo_conditions,
    release_caches,
    render_demo_frame,
)
from csknet_studio.core.demo.scene import render_scene
from csknet_studio.core.demo.sensor import IR_CELSIUS, IR_SCALE
from csknet_studio.core.demo.sequence import (
    META_NAME,
    ProgressFn,
    default_demo_dir,
    ensure_default_demo,
    generate_demo,
    is_complete_demo,
    read_demo_meta,
)
from csknet_studio.core.demo.street import static_world
from csknet_studio.core.demo.thermal import ThermalVariety
from csknet_studio.core.demo.traffic import FPS

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_SIZE",
    "FPS",
    "GENERATOR_VERSION",
    "IR_CELSIUS",
    "IR_SCALE",
    "META_NAME",
    "ProgressFn",
    "ThermalVariety",
    "default_demo_dir",
    "demo_conditions",
    "ensure_default_demo",
    "generate_demo",
    "is_complete_demo",
    "read_demo_meta",
    "release_caches",
    "render_demo_frame",
    "render_scene",
    "static_world",
]
