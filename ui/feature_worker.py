"""Computes one exchange-site channel (before/after) off the GUI thread for the internals panel.

Newest request wins (clicking through channels quickly runs only the last one). The model is the
inference worker's: a no-grad eval forward only reads it, so sharing it costs no copy, but the
inference thread may be loading new weights into it, so the forward holds the model's lock
(`core.predictor.model_lock`) and never sees half of one set of weights and half of another.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject

from csknet_studio.core.errors import CancelledError
from csknet_studio.ui.worker_thread import FEATURE_THREADS, ON_DEMAND_NICE, LatestWorker, ThreadPolicy


def _channel_maps(model, eo: np.ndarray, ir: np.ndarray, site: str, direction: str, channel: int, *,
                  cancelled: Callable[[], bool]):
    from csknet_studio.core.introspect import channel_maps  # heavy: torch, only once a channel is asked for
    from csknet_studio.core.predictor import model_lock

    with model_lock(model):  # waits for a forward pass or a weight swap on the inference thread
        if cancelled():  # another channel was clicked while we waited
            raise CancelledError("superseded")
        return channel_maps(model, eo, ir, site, direction, channel)


class FeatureWorker(LatestWorker):
    """`request(model, eo, ir, site, direction, channel, tag)` -> `ready(tag, ChannelMaps)` / `failed`."""

    def __init__(self, parent: QObject | None = None, num_threads: int = FEATURE_THREADS) -> None:
        super().__init__(ThreadPolicy("features", num_threads, ON_DEMAND_NICE), _channel_maps, parent)

    def request(self, model, eo: np.ndarray, ir: np.ndarray, site: str, direction: str, channel: int,
                tag: object = None) -> None:
        self._submit(tag, model, eo, ir, site, direction, int(channel))
