"""The inference worker: a QThread that owns the model, so the event loop never waits on torch.

The GUI-side `InferenceWorker` keeps the cache and the request slots; the `_Engine` living in the
worker thread owns the `Predictor` and runs one job per event-loop turn, so weight swaps and
shutdown interleave with a long queue of background jobs. Requests coalesce: the foreground slot
holds only the newest request (scrubbing runs the frame the user stopped on, not every frame it
passed), and background jobs (the other modes of the shown frame) run only when it is empty.
Results are numpy-only `Prediction`s, cached per (frame, mode, weights_version) in a bounded LRU.
The version counts everything that changes what the model answers: new weights, and test-time
mirroring switched on or off (`set_mirror`), so every prediction made before either is stale.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import QObject, Signal, Slot

from csknet_studio.core.frames import FramePair
from csknet_studio.core.lru import BoundedLRU
from csknet_studio.core.modes import Mode
from csknet_studio.ui.worker_thread import (
    INFERENCE_NICE,
    Engine,
    ThreadPolicy,
    WorkerThread,
    inference_threads,
)

# Background modes start after the user has stayed this long on a frame (not while scrubbing).
BACKGROUND_DWELL_MS = 400


@dataclass(frozen=True)
class _Job:
    index: int
    mode: Mode
    eo: np.ndarray | None
    ir: np.ndarray | None
    introspect: bool
    features: tuple[str, ...]
    version: int
    inputs: int = 0  # the worker's input generation when asked (a new sequence or alignment bumps it)


class _JobQueue:
    """Thread-safe: one foreground slot (newest wins) and a FIFO of background jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fore: _Job | None = None
        self._back: deque[_Job] = deque()

    def put(self, job: _Job, background: bool) -> None:
        with self._lock:
            if background:
                if all((j.index, j.mode) != (job.index, job.mode) for j in self._back):
                    self._back.append(job)
            else:
                self._fore = job

    def take(self) -> tuple[_Job | None, bool]:
        with self._lock:
            if self._fore is not None:
                job, self._fore = self._fore, None
                return job, False
            if self._back:
                return self._back.popleft(), True
            return None, False

    def put_back(self, job: _Job, background: bool) -> None:
        """Return a job taken too early (its weights are still on their way); newer requests win."""
        with self._lock:
            if background:
                self._back.appendleft(job)
            elif self._fore is None:
                self._fore = job

    def clear(self, background_only: bool = False) -> None:
        with self._lock:
            self._back.clear()
            if not background_only:
                self._fore = None

    def pending(self) -> bool:
        with self._lock:
            return self._fore is not None or bool(self._back)


class _Engine(Engine):
    """Lives in the worker thread; the only place predictions are computed (thread policy: ui/worker_thread.py)."""

    result = Signal(int, object, int, object, object, bool)  # index, Mode, version, (introspect, features), pred, bg
    failed = Signal(int, object, str)  # index (-1: the model), Mode or None, message
    idle = Signal()

    def __init__(self, queue: _JobQueue, num_threads: int) -> None:
        super().__init__(ThreadPolicy("inference", num_threads, INFERENCE_NICE))
        self._queue = queue
        self._predictor = None
        self._version = -1
        self._mirror = False
        self.count = 0

    @Slot(object, object, object, int)
    def set_model(self, model, scheme, device, version: int) -> None:
        from csknet_studio.core.predictor import Predictor  # heavy: torch, only when a model is set

        self._predictor = Predictor(model, device, scheme, weights_version=version, mirror=self._mirror)
        self._version = version

    @Slot(bool, int)
    def set_mirror(self, on: bool, version: int) -> None:
        self._mirror = on
        if self._predictor is not None:
            self._predictor.mirror = on
            self._predictor.weights_version = version
        self._version = version

    @Slot(object, int)
    def load_state_dict(self, state_dict, version: int) -> None:
        if self._predictor is not None:
            try:  # under the model's lock: a feature-map forward on another thread waits for it
                self._predictor.set_state_dict(state_dict, version)
            except Exception as exc:  # wrong keys / shapes: say so, keep the old weights
                self.failed.emit(-1, None, f"new weights rejected: {exc}")
            self._version = version  # (old weights on failure) so requests of this version run

    @Slot()
    def drain(self) -> None:
        """Run one job, then yield to the thread's event loop before the next one."""
        job, background = self._queue.take()
        if job is None:
            self.idle.emit()
            return
        if self._predictor is None or job.version > self._version:
            # the model / weights this job was asked for are queued behind us: run it after them
            self._queue.put_back(job, background)
            return
        if job.version == self._version:
            try:
                pred = self._predictor.predict(job.eo, job.ir, job.mode, introspect=job.introspect,
                                               features=job.features)
                self.count += 1
                self.result.emit(job.index, job.mode, self._version,
                                 (job.introspect, job.features, job.inputs), pred, background)
            except Exception as exc:  # a model failure is shown to the user; the worker lives on
                self.failed.emit(job.index, job.mode, f"{type(exc).__name__}: {exc}")
        QtCore.QTimer.singleShot(0, self.drain)


def _prediction_nbytes(pred) -> int:
    """Bytes of a Prediction's arrays (its maps and the dicts of maps it holds)."""
    n = 0
    for v in vars(pred).values():
        if isinstance(v, np.ndarray):
            n += v.nbytes
        elif isinstance(v, dict):
            n += sum(a.nbytes for a in v.values() if isinstance(a, np.ndarray))
    return n


class InferenceWorker(QObject):
    """GUI-thread handle of the worker thread. Every call returns at once."""

    result_ready = Signal(int, object, object)  # index, Mode, Prediction
    failed = Signal(int, object, str)  # index (-1: the model), Mode or None, message
    busy_changed = Signal(bool)
    weights_changed = Signal(int)

    _sig_set_model = Signal(object, object, object, int)
    _sig_state_dict = Signal(object, int)
    _sig_mirror = Signal(bool, int)
    _sig_wake = Signal()

    def __init__(self, parent: QObject | None = None, *, num_threads: int | None = None,
                 cache_bytes: int = 768 * 2**20) -> None:
        super().__init__(parent)
        if num_threads is None:
            num_threads = inference_threads()
        self._queue = _JobQueue()
        # (index, Mode, weights version) -> (Prediction, introspected, bytes, features)
        self._cache: BoundedLRU[tuple, tuple] = BoundedLRU(max_bytes=cache_bytes, size=lambda item: item[2],
                                                           keep_newest=True)
        self._version = 0
        self._inputs = 0  # generation of the frames behind the indices (bumped by clear_cache)
        self._model = None
        self._scheme = None
        self._device = None
        self._introspect = False
        self._features: tuple[str, ...] = ()
        self._mirror = False
        self._busy = False
        self._current: tuple[int, Mode, FramePair] | None = None
        self._dwell = QtCore.QTimer(self)
        self._dwell.setSingleShot(True)
        self._dwell.setInterval(BACKGROUND_DWELL_MS)
        self._dwell.timeout.connect(self._end_dwell)
        self._held: list[_Job] = []
        self._dwell_done: int | None = None  # frame whose dwell has passed
        self._engine = _Engine(self._queue, num_threads)
        self._thread = WorkerThread(self._engine)
        self._sig_set_model.connect(self._engine.set_model)
        self._sig_state_dict.connect(self._engine.load_state_dict)
        self._sig_mirror.connect(self._engine.set_mirror)
        self._sig_wake.connect(self._engine.drain)
        self._engine.result.connect(self._on_result)
        self._engine.failed.connect(self._on_failed)
        self._engine.idle.connect(self._on_idle)
        self._thread.start(self.shutdown)
        self.last_ms: float | None = None

    # ----------------------------------------------------------------- model and weights
    @property
    def model(self):
        return self._model

    @property
    def scheme(self):
        return self._scheme

    @property
    def device(self):
        return self._device

    @property
    def weights_version(self) -> int:
        return self._version

    @property
    def inference_count(self) -> int:
        return self._engine.count

    @property
    def introspect(self) -> bool:
        return self._introspect

    @introspect.setter
    def introspect(self, on: bool) -> None:
        self._introspect = bool(on)

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    @features.setter
    def features(self, names) -> None:
        """Feature maps (model feature names) the next predictions carry, e.g. for the internals panel."""
        self._features = tuple(names)

    def set_model(self, model, scheme, device) -> int:
        """Hand a model to the worker thread (it is moved to `device` there). Returns the new version."""
        self._version += 1
        self._model, self._scheme, self._device = model, scheme, device
        self._queue.clear()
        self._held.clear()
        self._cache.clear()
        self._sig_set_model.emit(model, scheme, device, self._version)
        self.weights_changed.emit(self._version)
        return self._version

    def set_state_dict(self, state_dict) -> int:
        """Swap weights (fine-tune accept / reject): cache invalidated, current frame recomputed."""
        return self._new_version(lambda v: self._sig_state_dict.emit(state_dict, v))

    @property
    def mirror(self) -> bool:
        """Whether predictions average the frame with its mirror (core/mirroring.py)."""
        return self._mirror

    def set_mirror(self, on: bool) -> int:
        """Turn test-time mirroring on or off. Every answer changes, so, as with new weights, the
        version moves on and the current frame is recomputed."""
        if bool(on) is self._mirror:
            return self._version
        self._mirror = bool(on)
        return self._new_version(lambda v: self._sig_mirror.emit(self._mirror, v))

    def _new_version(self, tell_engine) -> int:
        self._version += 1
        self._queue.clear()
        self._held.clear()
        self._cache.clear()
        tell_engine(self._version)  # queued to the worker thread in order, after any earlier model
        self.weights_changed.emit(self._version)
        if self._current is not None:
            index, mode, frame = self._current
            self.request(index, frame, mode)
        return self._version

    # ----------------------------------------------------------------- requests
    def clear_cache(self) -> None:
        """Forget every result, queued job and result still being computed: the frames behind the
        indices changed under the same weights (another sequence opened, a new EO/IR alignment), so
        frame 3's old prediction must never be shown, or edited, as frame 3's."""
        self._inputs += 1
        self._queue.clear()
        self._held.clear()
        self._cache.clear()
        self._current = None
        self._dwell_done = None

    def cached(self, index: int, mode: Mode | str):
        item = self._cache.get((index, Mode(mode), self._version))
        if item is None or (self._introspect and not item[1]):
            return None
        if not set(self._features) <= set(item[3]):
            return None
        return item[0]

    def request(self, index: int, frame: FramePair, mode: Mode | str, background: bool = False):
        """Ask for (index, mode). Returns the cached Prediction at once when there is one.

        Background requests for the shown frame wait until the user has stayed on it for
        BACKGROUND_DWELL_MS: a forward pass cannot be interrupted, so one started while the user
        scrubs or plays would delay the next frame's result by a whole pass."""
        mode = Mode(mode)
        hit = self.cached(index, mode)
        if not background:
            if self._current is None or self._current[0] != index:
                self._queue.clear(background_only=True)  # other modes of a frame we left
                self._held.clear()
                self._dwell_done = None
                self._dwell.start()
            self._current = (index, mode, frame)
        if hit is not None:
            if not background:
                self._queue_background(index, frame, mode)
            return hit
        if self._model is None:
            return None
        eo, ir = mode.keep(frame.eo, frame.ir)
        job = _Job(index, mode, eo, ir, self._introspect, self._features, self._version, self._inputs)
        if background and self._current is not None and index == self._current[0] and self._dwell_done != index:
            if all((j.index, j.mode) != (index, mode) for j in self._held):
                self._held.append(job)
            return None
        self._queue.put(job, background)
        self._set_busy(True)
        self._sig_wake.emit()
        return None

    def _queue_background(self, index: int, frame: FramePair, shown: Mode) -> None:
        """Ask for the other modes of the shown frame (held until the dwell has passed)."""
        for m in (Mode.BOTH, Mode.IR, Mode.EO):
            if m is not shown and self.cached(index, m) is None:
                self.request(index, frame, m, background=True)

    def _end_dwell(self) -> None:
        """The user stayed on the frame: release its held background jobs."""
        if self._current is None:
            return
        self._dwell_done = self._current[0]
        held, self._held = self._held, []
        for job in held:
            if job.index == self._dwell_done and job.version == self._version:
                self._queue.put(job, True)
        if held:
            self._set_busy(True)
            self._sig_wake.emit()

    # ----------------------------------------------------------------- results
    @Slot(int, object, int, object, object, bool)
    def _on_result(self, index: int, mode: Mode, version: int, meta, pred, background: bool):
        introspected, features, inputs = meta
        if version != self._version or inputs != self._inputs:
            return  # computed with weights, or on frames, that were replaced meanwhile
        m = mode
        self._cache.put((index, m, version), (pred, introspected, _prediction_nbytes(pred), tuple(features)))
        self.last_ms = float(getattr(pred, "ms", 0.0))
        self.result_ready.emit(index, m, pred)
        cur = self._current
        if cur is not None and not background and cur[0] == index and cur[1] is m:
            self._dwell_done = None  # the user sees this result now: the dwell counts from here
            self._dwell.start()
            self._queue_background(index, cur[2], m)

    @Slot(int, object, str)
    def _on_failed(self, index: int, mode: Mode | None, message: str) -> None:
        self.failed.emit(index, mode, message)

    @Slot()
    def _on_idle(self) -> None:
        if not self._queue.pending():
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    @property
    def busy(self) -> bool:
        return self._busy

    # ----------------------------------------------------------------- lifetime
    @Slot()
    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Drop pending work and join the thread (a running forward pass finishes first)."""
        self._dwell.stop()
        if not self._thread.is_running():
            return
        self._queue.clear()
        self._thread.join(timeout_ms)

    def is_running(self) -> bool:
        return self._thread.is_running()
