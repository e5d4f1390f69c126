"""Random scene temperatures per training clip (`ThermalVariety`), applied to a rendered canvas
before the camera effects. Kept apart from the scene: only training data uses it, the app's demo
keeps its one thermal look.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from csknet_studio.core.demo.render import Canvas


@dataclass(frozen=True)
class ThermalVariety:
    """Scene temperatures a clip draws at random, for training data: the demo's street has one
    thermal look (cool walls and road, warm people), real scenes do not. A sunny road or facade can
    be as warm as a person, a clear sky is far colder than an overcast one. Drawn per clip from the
    seed, so a clip stays consistent over its frames."""

    sky_offset_k: float     # added to the sky
    surface_amp_k: float    # amplitude of the smooth warming of background surfaces (day; a third at night)
    surface_tilt_k: float   # bottom-to-top gradient over background surfaces (sun on the road)

    @staticmethod
    def draw(seed: int) -> ThermalVariety:
        rng = np.random.default_rng([int(seed), 81])
        return ThermalVariety(float(rng.uniform(-12.0, 8.0)), float(rng.uniform(0.0, 10.0)),
                              float(rng.uniform(-4.0, 8.0)))

    def apply(self, cv: Canvas, cond: str, seed: int) -> None:
        """Change the canvas temperatures in place (the canvas is the frame's own copy)."""
        h, w = cv.label.shape
        sky = ~np.isfinite(cv.depth)
        surface = (cv.label == 0) & ~sky
        rng = np.random.default_rng([int(seed), 82])
        field = cv2.resize(rng.uniform(0.0, 1.0, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        rows = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
        sun = 1.0 if cond == "day" else 0.35
        warm = sun * (self.surface_amp_k * field + self.surface_tilt_k * rows)
        temp = cv.temp.copy()
        temp[surface] += warm[surface]
        temp[sky] += self.sky_offset_k
        cv.temp = temp
