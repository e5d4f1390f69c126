"""Computes one exchange-site channel (before/after) off the GUI thread for the internals panel.

Newest request wins (clicking through channels quickly runs only the last one). The model is the
inference worker's: a no-grad eval forward only reads it, so sharing it costs no copy.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import QObject, Signal, Slot

from csknet_studio.ui.thread_exit import stop_with_app


class _Engine(QObject):
    done = Signal(object, object)  # request tag, ChannelMaps
    failed = Signal(object, str)

    def __init__(self, owner: FeatureWorker, num_threads: int) -> None:
        super().__init__()
        self._owner = owner
        self._num_threads = num_threads

    @Slot()
    def on_started(self) -> None:
        import torch

        torch.set_num_threads(self._num_threads)

    @Slot()
    def run(self) -> None:
        from csknet_studio.core.introspect import channel_maps

        job = self._owner._take()
        if job is None:
            return
        tag, model, eo, ir, site, direction, channel = job
        try:
            self.done.emit(tag, channel_maps(model, eo, ir, site, direction, channel))
        except Exception as exc:  # shown in the panel; the worker lives on
            self.failed.emit(tag, f"{type(exc).__name__}: {exc}")


class FeatureWorker(QObject):
    """`request(model, eo, ir, site, direction, channel, tag)` -> `ready(tag, ChannelMaps)` / `failed`."""

    ready = Signal(object, object)
    failed = Signal(object, str)

    _wake = Signal()

    def __init__(self, parent: QObject | None = None, num_threads: int = 1) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: tuple | None = None
        self._thread = QtCore.QThread()
        self._thread.setObjectName("csknet-features")
        self._engine = _Engine(self, num_threads)
        self._engine.moveToThread(self._thread)
        self._thread.started.connect(self._engine.on_started)
        self._wake.connect(self._engine.run)
        self._engine.done.connect(self._relay_ready)  # @Slot receivers: see ui/job_thread.py
        self._engine.failed.connect(self._relay_failed)
        self._thread.start()
        stop_with_app(self.shutdown)

    def request(self, model, eo: np.ndarray, ir: np.ndarray, site: str, direction: str, channel: int,
                tag: object = None) -> None:
        with self._lock:
            self._pending = (tag, model, eo, ir, site, direction, int(channel))
        self._wake.emit()

    @Slot(object, object)
    def _relay_ready(self, tag, maps) -> None:
        self.ready.emit(tag, maps)

    @Slot(object, str)
    def _relay_failed(self, tag, message: str) -> None:
        self.failed.emit(tag, message)

    def _take(self) -> tuple | None:
        with self._lock:
            job, self._pending = self._pending, None
            return job

    @Slot()
    def shutdown(self) -> None:
        with self._lock:
            self._pending = None
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
