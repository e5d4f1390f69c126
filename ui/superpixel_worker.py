"""Computes a frame's EO + IR superpixels off the GUI thread for the snap brush.

SLIC takes most of a second on a 480x640 frame and longer on big ones, so it never runs in the GUI
thread: the tool asks when the snap brush is picked or the frame changes, and a stroke made before
the map is ready waits for it. Newest request wins (scrubbing computes only the frame kept).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject

from csknet_studio.core.assist import superpixels
from csknet_studio.ui.worker_thread import ON_DEMAND_NICE, LatestWorker, ThreadPolicy


def _superpixels(eo: np.ndarray | None, ir: np.ndarray | None, levels, *, cancelled: Callable[[], bool]):
    return superpixels(eo, ir, levels)


class SuperpixelWorker(LatestWorker):
    """`request(tag, eo, ir, levels)` -> `ready(tag, segments)` or `failed(tag, message)`.

    The tag (e.g. the session and frame index) comes back unchanged, so a late map is never
    mistaken for another sequence's frame."""

    def __init__(self, parent: QObject | None = None) -> None:
        # SLIC is numpy / scikit-image: the thread never runs torch, so its thread count is left alone
        super().__init__(ThreadPolicy("superpixels", None, ON_DEMAND_NICE), _superpixels, parent)

    def request(self, tag: object, eo: np.ndarray | None, ir: np.ndarray | None,
                levels: dict[str, tuple[float, float]] | None = None) -> None:
        self._submit(tag, eo, ir, levels)
