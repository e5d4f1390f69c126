"""Background read-ahead for a lazy sequence: decode the next few frames in the direction the user
is moving, drop jobs that went stale, and hand a queued job's frame to the reader that wants it now.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from csknet_studio.core.frames import FramePair
from csknet_studio.core.threads import READ_AHEAD_NICE, lower_thread_priority

from .cache import FrameCache

DEFAULT_PREFETCH = 4
# A read-ahead job waits this long before decoding, so the frame just returned reaches the screen
# first instead of competing with the decode for the GIL and the (often 2) CPU cores.
PREFETCH_YIELD_S = 0.004


class ReadAheadMixin:
    """The prefetch half of `BaseSequence`; the sequence provides the attributes annotated here."""

    _cache: FrameCache
    _lock: threading.Lock
    _closed: bool
    _epoch: int
    _build: Callable[[int], FramePair]

    def _init_read_ahead(self, prefetch: int, workers: int) -> None:
        self._prefetch_n = max(0, int(prefetch))
        self._workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[int, Future] = {}
        self._decoding: set[int] = set()  # read-aheads past their yield, decoding now
        self._claimed: set[int] = set()  # read-aheads the caller took over (they skip)
        self._want: frozenset[int] = frozenset()  # the current read-ahead window
        self._last = -1

    def _take_read_ahead(self, i: int) -> FramePair | None:
        """Frame i from a read-ahead already decoding it, else None (a queued or yielding job is
        claimed, so it skips and the caller decodes i itself without waiting on a sleep)."""
        with self._lock:
            fut = self._inflight.get(i)
            wait = fut is not None and i in self._decoding
            if fut is not None and not wait:
                self._claimed.add(i)
        if wait and fut is not None:
            try:
                return fut.result()
            except Exception:  # noqa: BLE001 - fall back to a direct read
                return None
        return None

    def _schedule(self, i: int) -> None:
        if self._prefetch_n == 0 or self._closed:
            return
        step = -1 if i < self._last else 1
        self._last = i
        n = len(self)  # type: ignore[arg-type]
        want = [j for j in (i + step * k for k in range(1, self._prefetch_n + 1)) if 0 <= j < n]
        self._want = frozenset(want)
        self._cancel_pending(keep=want)
        todo = [j for j in want if j not in self._cache]
        if not todo:
            return
        with self._lock:
            if self._closed:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="csknet-prefetch",
                                                initializer=lower_thread_priority, initargs=(READ_AHEAD_NICE,))
            epoch = self._epoch
            for j in todo:
                if j in self._inflight:
                    continue
                fut = self._pool.submit(self._prefetch_one, j, epoch)
                self._inflight[j] = fut

    def _prefetch_one(self, j: int, epoch: int) -> FramePair | None:
        try:
            time.sleep(PREFETCH_YIELD_S)
            with self._lock:
                # Stale by now (the user jumped elsewhere while this job yielded): skip it.
                if self._closed or epoch != self._epoch or j in self._claimed or j not in self._want:
                    return None
                self._decoding.add(j)
            fp = self._cache.get(j)
            if fp is None:
                fp = self._build(j)
                if epoch == self._epoch and not self._closed:
                    self._cache.put(j, fp)
            return fp
        finally:
            with self._lock:
                self._inflight.pop(j, None)
                self._decoding.discard(j)
                self._claimed.discard(j)

    def _cancel_pending(self, keep: list[int] | tuple[int, ...]) -> None:
        with self._lock:
            for j, fut in list(self._inflight.items()):
                if j not in keep and fut.cancel():
                    del self._inflight[j]
                    self._claimed.discard(j)

    def _stop_read_ahead(self) -> None:
        """Cancel queued jobs and join the worker threads (the sequence is closing)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._inflight.clear()
            self._decoding.clear()
            self._claimed.clear()

    def prefetch_pending(self) -> int:
        with self._lock:
            return len(self._inflight)

    def wait_prefetch(self, timeout: float | None = 5.0) -> None:
        """Block until queued prefetches finish (tests and benchmarks; the UI never waits)."""
        with self._lock:
            futs = list(self._inflight.values())
        for f in futs:
            if not f.cancelled():
                # A cancelled or failed prefetch is not the caller's problem: the read retries it.
                with contextlib.suppress(Exception):
                    f.result(timeout=timeout)
