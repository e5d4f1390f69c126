"""BoundedLRU: the one least-recently-used cache of the engine and the GUI.

Decoded frames, unpacked label masks, superpixel maps and the inference worker's predictions all
use it, so memory stays bounded whatever the sequence length. It is bounded by count, by bytes (a
`size` function tells each value's), or both: whichever bites first. It takes a lock around every
call, since the frame cache is filled by read-ahead threads while the GUI thread reads it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """Values by key; `get` makes a key the most recent, `put` drops the least recent ones past a bound.

    A value that alone exceeds `max_bytes` (or any value, when `max_items` is 0 or less) is not kept, unless
    `keep_newest`: then the newest value always stays, even over the byte budget."""

    def __init__(self, max_items: int | None = None, max_bytes: int | None = None,
                 size: Callable[[V], int] | None = None, *, keep_newest: bool = False) -> None:
        if max_bytes is not None and size is None:
            raise ValueError("a byte bound needs a size function")
        self.max_items = None if max_items is None else int(max_items)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.keep_newest = keep_newest
        self._size = size
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[K]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def get_or_load(self, key: K, load: Callable[[], V | None]) -> V | None:
        """The cached value, else `load()`'s (kept unless None). `load` runs outside the lock."""
        value = self.get(key)
        if value is None:
            value = load()
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        size = self._size(value) if self._size is not None else 0
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            fits = (self.max_items is None or self.max_items > 0) and (self.max_bytes is None or size <= self.max_bytes)
            if not fits and not self.keep_newest:
                return
            self._items[key] = (value, size)
            self.nbytes += size
            while len(self._items) > 1 and self._over():  # the newest fits alone, or is kept anyway
                _, (_, dropped) = self._items.popitem(last=False)
                self.nbytes -= dropped

    def _over(self) -> bool:
        return ((self.max_bytes is not None and self.nbytes > self.max_bytes)
                or (self.max_items is not None and len(self._items) > self.max_items))

    def pop(self, key: K) -> V | None:
        with self._lock:
            item = self._items.pop(key, None)
            if item is None:
                return None
            self.nbytes -= item[1]
            return item[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0
