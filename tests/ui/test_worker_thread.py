"""The worker-thread pieces: policy applied inside the thread, newest-request-wins, shutdown."""

from __future__ import annotations

import os
import sys
import threading

import pytest
import torch
from PySide6 import QtCore

from csknet_studio.core.errors import CancelledError
from csknet_studio.ui.worker_thread import LatestWorker, RequestSlot, ThreadPolicy


def test_a_superseded_request_is_never_taken_and_a_cleared_one_is_not_current():
    slot = RequestSlot()
    first = slot.put("a", (1,))
    second = slot.put("b", (2,))
    assert slot.queued == "b"
    assert slot.take() == second and slot.take() is None and slot.queued is None
    assert not slot.is_current(first.serial) and slot.is_current(second.serial)
    slot.clear()
    assert not slot.is_current(second.serial)


class _Gate:
    """compute() that records what it ran and, for tag "slow", waits until released."""

    def __init__(self) -> None:
        self.ran: list[object] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.seen: dict[str, object] = {}

    def __call__(self, tag, *, cancelled):
        self.ran.append(tag)
        self.seen.update(torch_threads=torch.get_num_threads(),
                         nice=os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                         name=QtCore.QThread.currentThread().objectName())
        if tag == "slow":
            self.started.set()
            assert self.release.wait(30)
        if tag == "cancel-me" and cancelled():
            raise CancelledError("superseded")
        return f"result of {tag}"


@pytest.fixture
def gate_worker(qapp):
    gate = _Gate()
    worker = LatestWorker(ThreadPolicy("test", 1, 3), gate)
    worker.request = lambda tag: worker._submit(tag, tag)
    yield worker, gate
    gate.release.set()
    worker.shutdown()
    assert not worker.is_running()


def test_newest_request_wins_and_a_superseded_running_result_is_dropped(gate_worker, qtbot):
    worker, gate = gate_worker
    got: list[tuple] = []
    worker.ready.connect(lambda tag, result: got.append((tag, result)))
    worker.request("slow")
    assert gate.started.wait(30)
    worker.request("skipped")  # superseded before it starts
    worker.request("newest")
    assert worker.queued == "newest"
    gate.release.set()
    with qtbot.waitSignal(worker.ready, timeout=30000):
        pass
    qtbot.wait(50)  # any late delivery of "slow" would land now
    assert got == [("newest", "result of newest")]
    assert gate.ran == ["slow", "newest"]


def test_the_thread_policy_is_applied_inside_the_worker_thread(gate_worker, qtbot):
    worker, gate = gate_worker
    with qtbot.waitSignal(worker.ready, timeout=30000):
        worker.request("one")
    assert gate.seen["torch_threads"] == 1
    assert gate.seen["name"] == "csknet-test"
    if sys.platform.startswith("linux"):  # the nice value is the thread's own (refused below the process's)
        assert gate.seen["nice"] >= 3
    assert QtCore.QThread.currentThread().objectName() != "csknet-test"


def test_shutdown_drops_the_pending_request(gate_worker, qtbot):
    worker, gate = gate_worker
    got: list[object] = []
    worker.ready.connect(lambda tag, _r: got.append(tag))
    worker.request("slow")
    assert gate.started.wait(30)
    worker.request("never")
    gate.release.set()
    worker.shutdown()
    assert not worker.is_running()
    QtCore.QCoreApplication.processEvents()
    assert gate.ran == ["slow"] and got == []
