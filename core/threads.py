"""Thread priority for background helpers: when the cores are busy, the thread a person waits on
is served first.

Linux keeps a nice value per thread, so a background thread (read-ahead, rendering ahead,
inference, training) raises its own. Elsewhere, or when the system refuses, nothing happens.
"""

from __future__ import annotations

import contextlib
import os
import threading

READ_AHEAD_NICE = 2  # frames decoded ahead while scrubbing: behind the thread that shows them


def lower_thread_priority(nice: int) -> None:
    """Set the calling thread's nice value (higher: served later when the cores are busy)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


__all__ = ["READ_AHEAD_NICE", "lower_thread_priority"]
