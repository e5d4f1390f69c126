"""Segment every frame: feed the whole sequence through the inference worker in the background.

One frame is queued at a time as a background request, so the user's own requests (the frame on
screen) always go first and the worker's cache and weights version are shared. Each result is
scored for "next most uncertain" and its labels go into the session as the frame's prediction, so
export, propagation and Accept have them. The mode is the one shown when the run started.
"""

from __future__ import annotations

from PySide6 import QtCore
from PySide6.QtCore import Signal

from csknet_studio.core.modes import Mode


class FrameScanner(QtCore.QObject):
    """`start()`, `cancel()`; signals progress(done, total), finished(total), cancelled().

    Frames already scored at the current weights count as done. A weights change restarts the count
    (old predictions no longer stand); a frame that cannot be read is skipped and counted."""

    progress = Signal(int, int)
    finished = Signal(int)
    cancelled = Signal()
    running_changed = Signal(bool)

    def __init__(self, win, tracker) -> None:
        super().__init__(win)
        self.win = win
        self.state = win.state  # what is shown and edited (read here, changed through its methods)
        self.tracker = tracker
        self.mode: Mode = Mode.BOTH
        self._running = False
        self._todo: list[int] = []
        self._pending: int | None = None
        self._skipped: set[int] = set()
        self._attempts: dict[int, int] = {}

    @property
    def running(self) -> bool:
        return self._running

    @property
    def total(self) -> int:
        seq = self.state.sequence
        return len(seq) if seq is not None else 0

    def done_count(self) -> int:
        n = self.total
        return sum(1 for i in range(n) if i in self._skipped or self.tracker.score(i, self.mode) is not None)

    def start(self) -> None:
        if self._running or self.state.sequence is None:
            return
        self.mode = self.state.mode
        self._running = True
        self._skipped = set()
        self._attempts = {}
        self._plan()
        self.running_changed.emit(True)
        self.progress.emit(self.done_count(), self.total)
        self._step()

    def _plan(self) -> None:
        self._todo = [i for i in range(self.total) if self.tracker.score(i, self.mode) is None]
        self._pending = None

    def cancel(self) -> None:
        if not self._running:
            return
        self._stop()
        self.cancelled.emit()

    def _stop(self) -> None:
        self._running = False
        self._todo = []
        self._pending = None
        self.running_changed.emit(False)

    def restart(self) -> None:
        """New weights: every frame is to be segmented again."""
        if self._running:
            self._skipped = set()
            self._attempts = {}
            self._plan()
            self.progress.emit(self.done_count(), self.total)
            QtCore.QTimer.singleShot(0, self._step)

    def on_result(self, index: int, mode: str, pred) -> None:
        """Every result of the worker comes here (the scan's own and the user's)."""
        if Mode(mode) is not self.mode:
            return
        session = self.state.session
        # the frame on screen in another mode keeps showing that mode's labels
        shown_elsewhere = index == self.state.index and self.state.mode is not self.mode
        if session is not None and not shown_elsewhere and 0 <= index < len(session):
            session.set_prediction(index, pred.labels)
        if not self._running:
            return
        self.progress.emit(self.done_count(), self.total)
        if index == self._pending:
            self._pending = None
            QtCore.QTimer.singleShot(0, self._step)

    def on_idle(self) -> None:
        """The worker went idle: a frame change may have dropped our background job."""
        if self._running:
            self._pending = None
            QtCore.QTimer.singleShot(0, self._step)

    def _step(self) -> None:
        win, seq = self.win, self.state.sequence
        if not self._running or seq is None or self._pending is not None or win.worker.busy:
            return
        while self._todo and self.tracker.score(self._todo[0], self.mode) is not None:
            self._todo.pop(0)
        if not self._todo:
            n = self.total
            self._stop()
            self.progress.emit(n, n)
            self.finished.emit(n)
            return
        i = self._todo[0]  # popped once scored: a request dropped by a frame change is asked again
        self._attempts[i] = self._attempts.get(i, 0) + 1
        try:
            frame = seq[i]
        except Exception:  # an unreadable frame is skipped, not fatal
            frame = None
        if frame is None or frame.bad or self._attempts[i] > 3:  # (> 3: the model keeps failing on it)
            self._todo.pop(0)
            self._skipped.add(i)
            self.progress.emit(self.done_count(), self.total)
            QtCore.QTimer.singleShot(0, self._step)
            return
        self._pending = i
        hit = win.worker.request(i, frame, self.mode, background=True)
        if hit is not None:
            self.tracker.record(i, self.mode, hit.entropy, hit.weights_version)
            self.on_result(i, self.mode.value, hit)
