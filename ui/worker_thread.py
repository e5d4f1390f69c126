"""What every worker thread in ui/ is built from: one thread policy, one start and one join.

A worker is a QThread with one engine object living in it. `ThreadPolicy` names the thread and
says how many torch threads it runs and at which nice value; the table below is the only place
those numbers are set. `Engine.on_started` applies the policy inside the thread (torch's thread
count and Linux's nice value are both per thread). `WorkerThread` starts, stops-with-the-app and
joins one such thread. `RequestSlot` and `LatestWorker` give newest-request-wins with cancel
points, for workers that answer what the user asked last (feature maps, superpixels).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore
from PySide6.QtCore import QObject, Signal, Slot

from csknet_studio.core.errors import CancelledError
from csknet_studio.core.threads import lower_thread_priority
from csknet_studio.ui.thread_exit import stop_with_app

# Nice values (Linux: per thread; a higher value is served later when the cores are busy). The GUI
# thread stays at 0: what a user feels is stalls, not throughput.
INFERENCE_NICE = 4  # the shown frame's prediction: served right after the GUI thread
ON_DEMAND_NICE = 4  # a channel map or superpixels the user just asked for: as urgent as inference
EXPORT_NICE = 0  # the export dialog is modal while it runs, and the job asks the GUI thread for
# every frame's labels: nothing of the GUI competes with it
REGISTRATION_NICE = 5  # ECC in the registration dialog: the dialog's preview keeps drawing meanwhile
PROPAGATE_NICE = 2  # a dialog shows its progress, but it runs many frames: behind inference
DISPLAY_NICE = 2  # frames rendered ahead while scrubbing: behind the GUI thread, ahead of inference
# (a rendering not ready in time is made by the GUI thread itself)
FINETUNE_NICE = 10  # minutes of training: bench/gui_latency.py measured p99 stalls of 10-19 ms
# at nice 10 against 19-30 ms at nice 0 (docs/benchmarks.md)


def _cores() -> int:
    return os.cpu_count() or 2


def inference_threads() -> int:
    """Torch threads of the inference worker: every core but one, which the GUI thread keeps."""
    return max(1, _cores() - 1)


def default_num_threads() -> int:
    """Torch threads of a long job: one core left to the GUI and one to inference where there are enough."""
    return max(1, _cores() - 2)


# A channel map is one frame's forward pass, run while inference may be using every other core.
FEATURE_THREADS = 1


@dataclass(frozen=True)
class ThreadPolicy:
    """How one worker thread runs: its name (`csknet-<name>`), torch threads (None: torch is not
    touched, the thread never runs it) and nice value."""

    name: str
    num_threads: int | None
    nice: int = 0

    @property
    def thread_name(self) -> str:
        return f"csknet-{self.name}"


def apply_policy(policy: ThreadPolicy) -> None:
    """Apply `policy` to the calling thread: call it from inside the worker thread."""
    if policy.num_threads is not None:
        import torch  # heavy: torch, only for threads that set a thread count

        torch.set_num_threads(policy.num_threads)
    if policy.nice:
        lower_thread_priority(policy.nice)


class Engine(QObject):
    """Base of the objects that live in a worker thread; applies the thread's policy when it starts."""

    def __init__(self, policy: ThreadPolicy) -> None:
        super().__init__()
        self.policy = policy

    @Slot()
    def on_started(self) -> None:
        apply_policy(self.policy)


class WorkerThread:
    """One named QThread with `engine` moved into it; `engine.on_started` runs first in the thread.

    Cross-thread signals go to @Slot methods, never straight to another signal or a lambda
    (PySide6 >= 6.8 can crash on those, PYSIDE-3124)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.qthread = QtCore.QThread()
        self.qthread.setObjectName(engine.policy.thread_name)
        engine.moveToThread(self.qthread)
        self.qthread.started.connect(engine.on_started)

    def start(self, shutdown: Callable[[], object] | None = None) -> None:
        """Start the thread; `shutdown` (the owner's bound method) is called on quit or at exit."""
        self.qthread.start()
        if shutdown is not None:
            stop_with_app(shutdown)

    def join(self, timeout_ms: int | None = None, process_events: bool = False) -> bool:
        """Stop the thread's event loop and wait (at most `timeout_ms`; the job it runs finishes
        first). `process_events`: keep the caller's events flowing, for jobs that ask the GUI
        thread for data. True when the thread has ended."""
        thread = self.qthread
        if not thread.isRunning():
            return True
        thread.quit()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while not thread.wait(20):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if process_events:
                QtCore.QCoreApplication.processEvents()
        return True

    def is_running(self) -> bool:
        return self.qthread.isRunning()


@dataclass(frozen=True)
class Request:
    serial: int
    tag: object
    args: tuple


class RequestSlot:
    """Newest request wins; thread-safe.

    `put` replaces the request waiting, so one superseded before it starts is never run. A running
    request checks `is_current(serial)` at its cancel points, and its result is dropped once a newer
    request (or `clear`) came."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Request | None = None
        self._serial = 0

    def put(self, tag: object, args: tuple) -> Request:
        with self._lock:
            self._serial += 1
            self._pending = Request(self._serial, tag, args)
            return self._pending

    def take(self) -> Request | None:
        with self._lock:
            req, self._pending = self._pending, None
            return req

    def is_current(self, serial: int) -> bool:
        with self._lock:
            return serial == self._serial

    def clear(self) -> None:
        """Drop the waiting request and supersede the running one."""
        with self._lock:
            self._serial += 1
            self._pending = None

    @property
    def queued(self) -> object:
        """The tag of the request waiting to start, if any (not the one running)."""
        with self._lock:
            return None if self._pending is None else self._pending.tag


# compute(*args, cancelled) -> result, run in the worker thread; `cancelled()` is its cancel point
# (raise CancelledError, or return anything: a superseded result is dropped either way).
Compute = Callable[..., Any]


class _LatestEngine(Engine):
    done = Signal(int, object, object)  # serial, tag, result
    failed = Signal(int, object, str)

    def __init__(self, policy: ThreadPolicy, slot: RequestSlot, compute: Compute) -> None:
        super().__init__(policy)
        self._slot = slot
        self._compute = compute

    @Slot()
    def run(self) -> None:
        req = self._slot.take()
        if req is None:
            return  # coalesced into a run that already took the newest request

        def cancelled() -> bool:
            return not self._slot.is_current(req.serial)

        try:
            result = self._compute(*req.args, cancelled=cancelled)
        except CancelledError:
            return
        except Exception as exc:  # shown by the owner; the worker lives on
            if not cancelled():
                self.failed.emit(req.serial, req.tag, f"{type(exc).__name__}: {exc}")
            return
        if not cancelled():
            self.done.emit(req.serial, req.tag, result)


class LatestWorker(QObject):
    """A worker thread that answers only the newest request: `_submit(tag, *args)` ->
    `ready(tag, result)` or `failed(tag, message)`, the tag coming back unchanged.

    Subclasses give the policy and the `compute` function, and a typed `request` method."""

    ready = Signal(object, object)
    failed = Signal(object, str)

    _wake = Signal()

    def __init__(self, policy: ThreadPolicy, compute: Compute, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._slot = RequestSlot()
        self._engine = _LatestEngine(policy, self._slot, compute)
        self._thread = WorkerThread(self._engine)
        self._wake.connect(self._engine.run)
        self._engine.done.connect(self._relay_ready)
        self._engine.failed.connect(self._relay_failed)
        self._thread.start(self.shutdown)

    def _submit(self, tag: object, *args: object) -> None:
        self._slot.put(tag, args)
        self._wake.emit()

    @property
    def queued(self) -> object:
        """The tag of the request waiting to be computed, if any (not the one being computed)."""
        return self._slot.queued

    @Slot(int, object, object)
    def _relay_ready(self, serial: int, tag: object, result: object) -> None:
        if self._slot.is_current(serial):  # a newer request came while this one was on its way
            self.ready.emit(tag, result)

    @Slot(int, object, str)
    def _relay_failed(self, serial: int, tag: object, message: str) -> None:
        if self._slot.is_current(serial):
            self.failed.emit(tag, message)

    @Slot()
    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Drop pending work and join the thread (a running computation finishes first)."""
        self._slot.clear()
        self._thread.join(timeout_ms)

    def is_running(self) -> bool:
        return self._thread.is_running()
