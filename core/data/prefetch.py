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


class ReadAhead:
    """The read-ahead a sequence owns. It is handed everything it touches: the frame cache it fills,
    the lock it shares with its sequence (so a job's stale check and the sequence's state agree),
    `build(i)` to decode one frame, and `epoch()` / `closed()` to tell whether a job went stale.
    Workers are started on first use, at a lower OS priority than the UI thread."""

    def __init__(self, *, cache: FrameCache, lock: threading.Lock, build: Callable[[int], FramePair],
                 epoch: Callable[[], int], closed: Callable[[], bool], prefetch: int, workers: int):
        self._cache = cache
        self._lock = lock
        self._build = build
        self._epoch = epoch
        self._closed = closed
        self._prefetch_n = max(0, int(prefetch))
        self._workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[int, Future] = {}
        self._decoding: set[int] = set()  # read-aheads past their yield, decoding now
        self._claimed: set[int] = set()  # read-aheads the caller took over (they skip)
        self._want: frozenset[int] = frozenset()  # the current read-ahead window
        self._last = -1

    def take(self, i: int) -> FramePair | None:
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

    def schedule(self, i: int, n_frames: int) -> None:
        """Frame i was just read: queue the next frames past it, in the direction of travel."""
        if self._prefetch_n == 0 or self._closed():
            return
        step = -1 if i < self._last else 1
        self._last = i
        want = [j for j in (i + step * k for k in range(1, self._prefetch_n + 1)) if 0 <= j < n_frames]
        self._want = frozenset(want)
        self.cancel_pending(keep=want)
        todo = [j for j in want if j not in self._cache]
        if not todo:
            return
        with self._lock:
            if self._closed():
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="csknet-prefetch",
                                                initializer=lower_thread_priority, initargs=(READ_AHEAD_NICE,))
            epoch = self._epoch()
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
                if self._closed() or epoch != self._epoch() or j in self._claimed or j not in self._want:
                    return None
                self._decoding.add(j)
            fp = self._cache.get(j)
            if fp is None:
                fp = self._build(j)
                if epoch == self._epoch() and not self._closed():
                    self._cache.put(j, fp)
            return fp
        finally:
            with self._lock:
                self._inflight.pop(j, None)
                self._decoding.discard(j)
                self._claimed.discard(j)

    def cancel_pending(self, keep: list[int] | tuple[int, ...] = ()) -> None:
        """Cancel queued jobs for frames not in keep (jobs already decoding run to the end)."""
        with self._lock:
            for j, fut in list(self._inflight.items()):
                if j not in keep and fut.cancel():
                    del self._inflight[j]
                    self._claimed.discard(j)

    def close(self) -> None:
        """Cancel queued jobs and join the worker threads (the sequence is closing)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._inflight.clear()
            self._decoding.clear()
            self._claimed.clear()

    def pending(self) -> int:
        """Jobs queued or decoding."""
        with self._lock:
            return len(self._inflight)

    def wait(self, timeout: float | None = 5.0) -> None:
        """Block until queued jobs finish (tests and benchmarks; the UI never waits)."""
        with self._lock:
            futs = list(self._inflight.values())
        for f in futs:
            if not f.cancelled():
                # A cancelled or failed prefetch is not the caller's problem: the read retries it.
                with contextlib.suppress(Exception):
                    f.result(timeout=timeout)
