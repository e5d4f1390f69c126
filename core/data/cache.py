"""The bounded LRU that holds decoded frames, so memory stays fixed whatever the sequence length."""

from __future__ import annotations

from csknet_studio.core.frames import FramePair
from csknet_studio.core.lru import BoundedLRU

DEFAULT_CACHE_BYTES = 192 * 1024 * 1024
DEFAULT_CACHE_FRAMES = 256


def frame_nbytes(fp: FramePair) -> int:
    return sum(a.nbytes for a in (fp.eo, fp.ir, fp.label) if a is not None)


class FrameCache(BoundedLRU[int, FramePair]):
    """Thread-safe LRU of FramePairs bounded by bytes and by count (whichever bites first); the
    read-ahead threads fill it while the GUI thread reads."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, max_frames: int = DEFAULT_CACHE_FRAMES) -> None:
        super().__init__(max_items=max_frames, max_bytes=max_bytes, size=frame_nbytes)
