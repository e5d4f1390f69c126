"""A compact progress read-out for a background job: bar, "done / total", ETA and a Cancel button.

Used in the status bar (segment every frame) and in the propagation dialog, so every long job in
the window looks and cancels the same way.
"""

from __future__ import annotations

import math
import time

from PySide6 import QtWidgets
from PySide6.QtCore import Signal


def format_eta(seconds: float) -> str:
    """'12 s', '3 min 05 s', '1 h 02 min'; '–' while unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class ProgressBox(QtWidgets.QWidget):
    """`start(total)`, `set_progress(done, total)`, `finish()`; emits `cancel_requested`.

    The ETA extrapolates from the frames done since `start` (frames that were already done when it
    started, e.g. cached ones, are not counted as speed)."""

    cancel_requested = Signal()

    def __init__(self, what: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.label = QtWidgets.QLabel(what)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(140)
        self.eta_label = QtWidgets.QLabel("ETA –")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the job; what is done so far is kept")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.eta_label, self.cancel_button):
            lay.addWidget(w)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self._t0 = time.monotonic()
        self._done0 = 0

    def start(self, total: int, done: int = 0) -> None:
        self._t0 = time.monotonic()
        self._done0 = done
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)
        self.eta_label.setText("ETA –")
        self.cancel_button.setEnabled(True)

    def set_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done)
        self.bar.setFormat(f"{done} / {total}")
        ran = done - self._done0
        rate = ran / max(1e-6, time.monotonic() - self._t0)
        self.eta_label.setText(f"ETA {format_eta((total - done) / rate if ran > 0 else math.nan)}")

    @property
    def percent(self) -> float:
        return 100.0 * self.bar.value() / max(1, self.bar.maximum())

    def finish(self, text: str = "") -> None:
        self.eta_label.setText(text)
        self.cancel_button.setEnabled(False)
