"""The bounded LRU that holds decoded frames, so memory stays fixed whatever the sequence length."""

from __future__ import annotations

import threading
from collections import OrderedDict

from csknet_studio.core.frames import FramePair

DEFAULT_CACHE_BYTES = 192 * 1024 * 1024
DEFAULT_CACHE_FRAMES = 256


def frame_nbytes(fp: FramePair) -> int:
    return sum(a.nbytes for a in (fp.eo, fp.ir, fp.label) if a is not None)


class FrameCache:
    """Thread-safe LRU of FramePairs bounded by bytes and by count (whichever bites first)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, max_frames: int = DEFAULT_CACHE_FRAMES):
        self.max_bytes = int(max_bytes)
        self.max_frames = int(max_frames)
        self._d: OrderedDict[int, FramePair] = OrderedDict()
        self._sizes: dict[int, int] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: int) -> bool:
        return key in self._d

    def get(self, key: int) -> FramePair | None:
        with self._lock:
            fp = self._d.get(key)
            if fp is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return fp

    def put(self, key: int, fp: FramePair) -> None:
        size = frame_nbytes(fp)
        with self._lock:
            if key in self._d:
                self.nbytes -= self._sizes.pop(key)
                del self._d[key]
            if self.max_frames <= 0 or size > self.max_bytes:
                return
            self._d[key] = fp
            self._sizes[key] = size
            self.nbytes += size
            while self._d and (self.nbytes > self.max_bytes or len(self._d) > self.max_frames):
                old, _ = self._d.popitem(last=False)
                self.nbytes -= self._sizes.pop(old)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self._sizes.clear()
            self.nbytes = 0
