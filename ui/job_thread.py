"""A QThread that runs one long core job at a time (fine-tuning, export, checkpoint saving).

The job is a plain function `fn(progress, cancel) -> result` from core/; it runs in its own
thread with fewer torch threads than cores (so painting and inference keep a core), reports
through queued signals, and turns CancelledError / CSKNetError / anything else into `cancelled` /
`failed(message)`, so no job can take the application down.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore
from PySide6.QtCore import QObject, Signal, Slot

from csknet_studio.core.errors import CancelledError, CSKNetError
from csknet_studio.ui.thread_exit import stop_with_app
from csknet_studio.ui.worker_thread import Engine, ThreadPolicy, WorkerThread, default_num_threads

__all__ = ["GuiCall", "Job", "JobRunner", "default_num_threads"]

Job = Callable[[Callable[[int, int, float], None], Callable[[], bool]], Any]


class _Job(Engine):
    """Lives in the worker thread for one run (its policy applied first, by `on_started`)."""

    progress = Signal(int, int, float)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, fn: Job, cancel: threading.Event, policy: ThreadPolicy) -> None:
        super().__init__(policy)
        self._fn = fn
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(lambda s, t, loss: self.progress.emit(int(s), int(t), float(loss)),
                              self._cancel.is_set)
        except CancelledError:
            self.cancelled.emit()
            return
        except CSKNetError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a bug or an OOM must not kill the app; the dialog names it
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        if self._cancel.is_set():
            self.cancelled.emit()  # a result that raced a cancel is discarded
        else:
            self.done.emit(result)


class JobRunner(QObject):
    """GUI-side handle of one job thread: `start(fn, on_done)`, `cancel()`, `shutdown()`.

    Signals: progress(done, total, value), failed(message), cancelled(), running_changed(bool);
    the result goes to `on_done` (subclasses re-emit it as a typed signal).
    """

    progress = Signal(int, int, float)
    failed = Signal(str)
    cancelled = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, num_threads: int | None = None, name: str = "job",
                 nice: int = 0, freeze_gc: bool = True) -> None:
        super().__init__(parent)
        self.name = name
        self.nice = nice
        self.freeze_gc = freeze_gc
        self.num_threads = num_threads or default_num_threads()
        self._thread: WorkerThread | None = None
        self._job: _Job | None = None
        self._cancel = threading.Event()
        self._on_done: Callable[[Any], None] | None = None
        self._finished: tuple | None = None
        self.started_at: float | None = None
        self._gc_thresholds: tuple[int, int, int] | None = None
        stop_with_app(self.shutdown)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def cancel(self) -> None:
        self._cancel.set()

    def start(self, fn: Job, on_done: Callable[[Any], None]) -> None:
        if self.running:
            raise RuntimeError(f"{self.name}: a job is already running")
        self._cancel = threading.Event()
        self._on_done = on_done
        if self.freeze_gc:
            # A full GC pass triggered by the job's allocations holds the GIL while it walks the
            # whole heap (torch, Qt, pyqtgraph objects): 370 ms GUI stalls measured. Freezing what
            # exists now (O(1)) leaves those passes only the job's new objects to walk.
            gc.freeze()
            # ... and no full pass at all while the job runs (young generations still collect):
            # measured 65-137 ms gen-2 passes mid-job even after the freeze. Restored in _join.
            if self._gc_thresholds is None:
                self._gc_thresholds = gc.get_threshold()
                gc.set_threshold(self._gc_thresholds[0], self._gc_thresholds[1], 1_000_000)
        job = _Job(fn, self._cancel, ThreadPolicy(self.name, self.num_threads, self.nice))
        thread = WorkerThread(job)  # its policy is applied before `run`: connected first
        thread.qthread.started.connect(job.run)
        thread.qthread.finished.connect(job.deleteLater)  # deleted in its own thread, not by Python's GC here
        job.progress.connect(self._relay_progress)
        job.done.connect(self._finish_done)
        job.failed.connect(self._finish_failed)
        job.cancelled.connect(self._finish_cancelled)
        self._thread, self._job = thread, job
        self.started_at = time.monotonic()
        thread.start()
        self.running_changed.emit(True)

    @Slot(int, int, float)
    def _relay_progress(self, done: int, total: int, value: float) -> None:
        self.progress.emit(done, total, value)

    def _join(self) -> None:
        thread, job = self._thread, self._job
        self._thread = self._job = None
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None
        if thread is not None:
            thread.join()
            self._finished = (thread, job)  # dropped at the next start, long after the thread ended
        self.running_changed.emit(False)

    @Slot(object)
    def _finish_done(self, result) -> None:
        on_done = self._on_done
        self._join()
        if on_done is not None:
            on_done(result)

    @Slot(str)
    def _finish_failed(self, message: str) -> None:
        self._join()
        self.failed.emit(message)

    @Slot()
    def _finish_cancelled(self) -> None:
        self._join()
        self.cancelled.emit()

    @Slot()
    def shutdown(self) -> None:
        """Cancel and join (on quit, or when the owner closes). Events keep flowing while waiting,
        so a job that asks the GUI thread for data (export) cannot deadlock the join."""
        thread = self._thread
        if thread is not None:
            self._cancel.set()
            thread.join(process_events=True)
            self._thread, self._job = None, None


class GuiCall(QObject):
    """Runs a function in the GUI thread for a job thread and hands back its result (or error).

    For objects that belong to the GUI thread and are not thread-safe (the annotation session):
    the job asks, the GUI thread answers between two events, nothing is shared unguarded.
    """

    _call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._call.connect(self._run, QtCore.Qt.ConnectionType.BlockingQueuedConnection)

    @Slot(object)
    def _run(self, box: list) -> None:
        try:
            box[1] = box[0]()
        except BaseException as exc:  # re-raised in the calling thread
            box[2] = exc

    def __call__(self, fn: Callable[[], Any]) -> Any:
        if QtCore.QThread.currentThread() is self.thread():
            return fn()
        box: list = [fn, None, None]
        self._call.emit(box)
        if box[2] is not None:
            raise box[2]
        return box[1]
