"""Computes a frame's EO + IR superpixels off the GUI thread for the snap brush.

SLIC takes most of a second on a 480x640 frame and longer on big ones, so it never runs in the GUI
thread: the tool asks when the snap brush is picked or the frame changes, and a stroke made before
the map is ready waits for it. Newest request wins (scrubbing computes only the frame kept).
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import QObject, Signal, Slot

from csknet_studio.ui.thread_exit import stop_with_app


class _Engine(QObject):
    done = Signal(object, object)  # request tag, (H, W) int32 superpixel ids
    failed = Signal(object, str)

    def __init__(self, owner: SuperpixelWorker) -> None:
        super().__init__()
        self._owner = owner

    @Slot()
    def run(self) -> None:
        from csknet_studio.core.assist import superpixels

        job = self._owner._take()
        if job is None:
            return
        tag, eo, ir, levels = job
        try:
            self.done.emit(tag, superpixels(eo, ir, levels))
        except Exception as exc:  # shown in the status bar; the worker lives on
            self.failed.emit(tag, f"{type(exc).__name__}: {exc}")


class SuperpixelWorker(QObject):
    """`request(tag, eo, ir, levels)` -> `ready(tag, segments)` or `failed(tag, message)`.

    The tag (e.g. the session and frame index) comes back unchanged, so a late map is never
    mistaken for another sequence's frame."""

    ready = Signal(object, object)
    failed = Signal(object, str)

    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: tuple | None = None
        self._queued: object = None
        self._thread = QtCore.QThread()
        self._thread.setObjectName("csknet-superpixels")
        self._engine = _Engine(self)
        self._engine.moveToThread(self._thread)
        self._wake.connect(self._engine.run)
        self._engine.done.connect(self._relay_ready)  # @Slot receivers: see ui/job_thread.py
        self._engine.failed.connect(self._relay_failed)
        self._thread.start()
        stop_with_app(self.shutdown)

    @property
    def queued(self) -> object:
        """The tag of the request waiting to be computed, if any (not the one being computed)."""
        with self._lock:
            return self._queued

    def request(self, tag: object, eo: np.ndarray | None, ir: np.ndarray | None,
                levels: dict[str, tuple[float, float]] | None = None) -> None:
        with self._lock:
            self._pending = (tag, eo, ir, levels)
            self._queued = tag
        self._wake.emit()

    def _take(self) -> tuple | None:
        with self._lock:
            job, self._pending, self._queued = self._pending, None, None
            return job

    @Slot(object, object)
    def _relay_ready(self, tag, segments) -> None:
        self.ready.emit(tag, segments)

    @Slot(object, str)
    def _relay_failed(self, tag, message: str) -> None:
        self.failed.emit(tag, message)

    @Slot()
    def shutdown(self) -> None:
        with self._lock:
            self._pending = None
            self._queued = None
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()

    def is_running(self) -> bool:
        return self._thread.isRunning()
