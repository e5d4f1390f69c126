"""The read-ahead and the IR scale rule a sequence owns, driven directly with a real frame cache."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from csknet_studio.core.data import FrameCache
from csknet_studio.core.data.prefetch import ReadAhead
from csknet_studio.core.data.thermal import IRScale
from csknet_studio.core.frames import FramePair
from csknet_studio.core.radiometry import LinearScale
from csknet_studio.core.threads import READ_AHEAD_NICE


class Frames:
    """Builds real frames, records which were built and on which thread, and can hold one frame's
    decode until released (so a test knows which jobs are still queued behind it)."""

    def __init__(self, hold: int | None = None):
        self.hold = hold
        self.release = threading.Event()
        self.started = threading.Event()
        self.built: list[int] = []
        self.nice: list[int] = []
        self.epoch = 0
        self.closed = False
        self.lock = threading.Lock()
        self.cache = FrameCache(10**7, 100)

    def build(self, i: int) -> FramePair:
        with self.lock:
            self.built.append(i)
        if hasattr(os, "getpriority"):
            self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        if i == self.hold:
            self.started.set()
            assert self.release.wait(5.0)
        return FramePair(f"{i:05d}", np.full((4, 4, 3), i, np.uint8), np.full((4, 4), i, np.uint8))

    def read_ahead(self, prefetch: int, workers: int) -> ReadAhead:
        return ReadAhead(cache=self.cache, lock=self.lock, build=self.build, epoch=lambda: self.epoch,
                         closed=lambda: self.closed, prefetch=prefetch, workers=workers)


def test_a_queued_job_is_claimed_by_the_reader_and_skips_its_decode():
    f = Frames(hold=1)
    ra = f.read_ahead(prefetch=3, workers=1)
    ra.schedule(0, 10)  # queues 1, 2, 3; the single worker holds on 1, so 2 and 3 wait behind it
    assert f.started.wait(5.0)
    assert ra.take(2) is None  # still queued: claimed, the reader decodes it itself
    f.release.set()
    ra.wait()
    assert sorted(f.built) == [1, 3] and 2 not in f.cache and {1, 3} <= set(f.cache.keys())
    ra.close()


def test_a_frame_being_decoded_is_handed_to_the_reader():
    f = Frames(hold=1)
    ra = f.read_ahead(prefetch=1, workers=1)
    ra.schedule(0, 10)
    assert f.started.wait(5.0)
    threading.Timer(0.05, f.release.set).start()
    fp = ra.take(1)  # decoding now: the reader waits for it instead of decoding it twice
    assert fp is not None and fp.name == "00001" and f.built == [1]
    ra.close()


def test_jobs_of_an_older_epoch_are_dropped():
    f = Frames(hold=1)
    ra = f.read_ahead(prefetch=3, workers=1)
    ra.schedule(0, 10)
    assert f.started.wait(5.0)
    f.epoch += 1  # the alignment changed while frame 1 decoded
    f.release.set()
    ra.wait()
    assert f.built == [1] and len(f.cache) == 0  # 1 not kept, 2 and 3 never decoded
    ra.close()


def test_reads_ahead_in_the_direction_of_travel_within_the_sequence():
    f = Frames()
    ra = f.read_ahead(prefetch=3, workers=2)
    ra.schedule(8, 10)
    ra.wait()
    assert sorted(f.cache.keys()) == [9]  # past the end: nothing
    ra.schedule(5, 10)  # moved backwards
    ra.wait()
    assert {2, 3, 4} <= set(f.cache.keys()) and 6 not in f.cache
    ra.close()


def _new_workers(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("csknet-prefetch") and t not in before]


def test_the_pool_is_bounded_low_priority_and_joined_on_close():
    f = Frames()
    before = set(threading.enumerate())
    ra = f.read_ahead(prefetch=8, workers=2)
    ra.schedule(0, 100)
    ra.wait()
    workers = _new_workers(before)
    assert 1 <= len(workers) <= 2
    if f.nice and os.getpriority(os.PRIO_PROCESS, 0) < READ_AHEAD_NICE:
        assert all(n == READ_AHEAD_NICE for n in f.nice)
    ra.close()
    assert not any(t.is_alive() for t in workers) and ra.pending() == 0
    f.closed = True
    ra.schedule(50, 100)  # a closed sequence schedules nothing
    assert ra.pending() == 0 and not _new_workers(before)


def test_no_read_ahead_when_prefetch_is_zero():
    f = Frames()
    ra = f.read_ahead(prefetch=0, workers=2)
    ra.schedule(0, 10)
    assert ra.pending() == 0 and f.built == []


def test_ir_scale_rule():
    user, own = LinearScale(0.01, 5.0, "user"), LinearScale(0.04, -273.15, "file")
    assert IRScale().frame_radiometry(own) is own and IRScale().frame_radiometry(None) is None
    assert IRScale().forced is None
    forced = IRScale(user)  # the user's choice wins over every file
    assert forced.forced is user and forced.frame_radiometry(own) is user and forced.frame_radiometry(None) is user
    fallback = IRScale(user, override=False)  # only for files that state nothing
    assert fallback.forced is None
    assert fallback.frame_radiometry(own) is own and fallback.frame_radiometry(None) is user
    with pytest.raises(AttributeError):
        fallback.scale = own  # type: ignore[misc]  # swapped whole, never half-changed
