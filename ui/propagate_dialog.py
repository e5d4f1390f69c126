"""Edit > Propagate labels: how many frames, which way; then progress, ETA and Cancel.

The shown frame's labels are carried by optical flow (core/propagate.py) to the next or previous N
frames, stopping before the first corrected one. The whole run is one undo step.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from csknet_studio.ui.progress_box import ProgressBox
from csknet_studio.ui.propagate_worker import PropagateWorker


class PropagateDialog(QtWidgets.QDialog):
    """Signals `propagated(frames)`, `failed(message)`, `cancelled()`; closes itself when done."""

    propagated = QtCore.Signal(list)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()

    def __init__(self, session, start: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Propagate labels")
        self._session = session
        self.start_frame = int(start)
        self.worker = PropagateWorker(self)

        self.count_spin = QtWidgets.QSpinBox()
        self.count_spin.setRange(1, max(1, len(session) - 1))
        self.count_spin.setValue(min(10, max(1, len(session) - 1)))
        self.count_spin.setSuffix(" frames")
        self.direction_combo = QtWidgets.QComboBox()
        self.direction_combo.addItem("Forward (next frames)", 1)
        self.direction_combo.addItem("Backward (previous frames)", -1)
        note = QtWidgets.QLabel(
            f"Carries the labels of frame {self.start_frame + 1} by optical flow (IR or EO, whichever tracks "
            "better). Pixels the flow cannot vouch for take the model's prediction. Stops before the first "
            "corrected frame; propagated frames show in amber until you edit or accept them. One undo step.")
        note.setWordWrap(True)
        self.progress = ProgressBox("Propagating")
        self.progress.setVisible(False)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.start_button = self.buttons.addButton("Propagate", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)

        form = QtWidgets.QFormLayout()
        form.addRow("Propagate over", self.count_spin)
        form.addRow("Direction", self.direction_combo)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(note)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.buttons)

        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        self.progress.cancel_requested.connect(self.worker.cancel)
        self.worker.progress.connect(lambda d, t, _v: self.progress.set_progress(d, t))
        self.worker.propagated.connect(self._on_propagated)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)

    @property
    def direction(self) -> int:
        return int(self.direction_combo.currentData())

    def start(self) -> bool:
        """Start the job; False (with `failed` or `propagated([])`) when there is nothing to run."""
        if self.worker.running:
            return False
        try:
            targets = self.worker.start_propagation(self._session, self.start_frame, self.count_spin.value(),
                                                    self.direction)
        except (ValueError, IndexError) as exc:
            self._on_failed(str(exc))
            return False
        if not targets:
            self.propagated.emit([])
            self.accept()
            return False
        self.progress.start(len(targets))
        self.progress.setVisible(True)
        self.start_button.setEnabled(False)
        return True

    def _reset(self) -> None:
        self.progress.setVisible(False)
        self.start_button.setEnabled(True)

    def _on_propagated(self, frames: list) -> None:
        self._reset()
        self.propagated.emit(list(frames))
        self.accept()

    def _on_failed(self, message: str) -> None:
        self._reset()
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        self._reset()
        self.cancelled.emit()

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        """Closing the dialog cancels a running propagation (nothing is applied)."""
        if self.worker.running and int(result) != QtWidgets.QDialog.DialogCode.Accepted.value:
            self.worker.shutdown()
        super().done(result)
