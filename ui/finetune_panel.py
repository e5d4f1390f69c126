"""Fine-tuning panel: pick corrected frames, train in the background, then accept or reject.

The panel owns no model maths: `core.finetune.finetune` trains a copy of the inference worker's
model in `FinetuneWorker`'s thread. Accepting hands the new state_dict to the inference worker
(new weights_version, cache invalidated, the shown frame recomputed); rejecting leaves the worker
alone, and "Revert" brings back the weights that were in use before the last accept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from csknet_studio.core.errors import CSKNetError
from csknet_studio.ui.finetune_worker import FinetuneWorker

SampleProvider = Callable[[list[int]], Any]
"""For the chosen frame indices: `finetune`'s samples, or a loader the fine-tuning thread calls."""


def samples_from_session(sequence, session, frames: list[int]) -> Callable[[], list[tuple]]:
    """What `finetune` trains on, as a loader: the corrected masks are copied now (the session
    belongs to the GUI thread and later edits may replace them); the frames are read when the
    loader is called, in the fine-tuning thread (the reader is thread-safe), so a long list of
    frames never stalls the GUI."""
    masks = [(i, np.array(session.labels(i), dtype=np.uint8, copy=True)) for i in frames]

    def load() -> list[tuple]:
        out = []
        for i, mask in masks:
            fp = sequence[i]
            if fp.bad:
                raise CSKNetError(f"frame {i} ({fp.name}) is unreadable: {fp.error}")
            out.append((fp.eo, fp.ir, mask))
        return out

    return load


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


class FinetunePanel(QtWidgets.QWidget):
    """Signals: `weights_accepted(version)`, `weights_reverted(version)`, `error(message)`."""

    weights_accepted = QtCore.Signal(int)
    weights_reverted = QtCore.Signal(int)
    error = QtCore.Signal(str)

    def __init__(self, inference_worker, samples: SampleProvider, *, scheme_getter: Callable[[], Any] | None = None,
                 defaults=None, num_threads: int | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from csknet_studio.core.finetune import FinetuneConfig

        self._infer = inference_worker
        self._samples = samples
        self._scheme_getter = scheme_getter or (lambda: getattr(inference_worker, "scheme", None))
        # steps and lr are on screen; crop, modes, batch, ... come from `defaults` (core's by default)
        self._defaults = defaults if defaults is not None else FinetuneConfig()
        self.worker = FinetuneWorker(self, num_threads=num_threads)
        self.result = None  # FinetuneResult awaiting accept / reject
        self._previous_state = None  # the worker's weights before the last accept (for Revert)
        self._losses: list[float] = []
        self._t0 = 0.0
        self._build()
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.saved.connect(lambda p: self.status_label.setText(f"Checkpoint saved to {p}"))
        self.worker.running_changed.connect(self._update_buttons)
        if hasattr(inference_worker, "weights_changed"):
            inference_worker.weights_changed.connect(self._on_weights_changed)
        self._accepted_model = None  # the model object the Revert weights belong to
        self._update_buttons()

    # --- construction -------------------------------------------------------------------------
    def _build(self) -> None:
        self.frame_list = QtWidgets.QListWidget()
        self.frame_list.setToolTip("Corrected frames to train on (all by default)")
        self.frame_list.itemChanged.connect(lambda _item: self._update_buttons())
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(1, 100000)
        self.steps_spin.setValue(self._defaults.steps)
        self.steps_spin.setToolTip("Optimiser steps")
        self.lr_spin = QtWidgets.QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1.0)
        self.lr_spin.setSingleStep(1e-5)
        self.lr_spin.setValue(self._defaults.lr)
        self.lr_spin.setToolTip("Learning rate")
        self.start_button = QtWidgets.QPushButton("Start fine-tuning")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.accept_button = QtWidgets.QPushButton("Accept new weights")
        self.accept_button.setToolTip("Use the fine-tuned weights; every cached prediction is recomputed")
        self.reject_button = QtWidgets.QPushButton("Reject")
        self.reject_button.setToolTip("Discard the fine-tuned weights; the current weights stay")
        self.revert_button = QtWidgets.QPushButton("Revert")
        self.revert_button.setToolTip("Bring back the weights used before the last accept")
        self.save_button = QtWidgets.QPushButton("Save checkpoint…")
        self.save_button.setToolTip("Write the current model (accepted weights) to a checkpoint file")
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setFormat("%v / %m steps")
        self.eta_label = QtWidgets.QLabel("ETA –")
        self.miou_label = QtWidgets.QLabel("mIoU on the chosen frames: before – / after –")
        self.status_label = QtWidgets.QLabel("")
        self.status_label.setWordWrap(True)
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff7f0e", width=2))
        self.loss_plot.setMinimumHeight(120)

        form = QtWidgets.QFormLayout()
        form.addRow("Steps", self.steps_spin)
        form.addRow("Learning rate", self.lr_spin)
        run_row = QtWidgets.QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        prog_row = QtWidgets.QHBoxLayout()
        prog_row.addWidget(self.progress_bar, 1)
        prog_row.addWidget(self.eta_label)
        decide_row = QtWidgets.QHBoxLayout()
        for b in (self.accept_button, self.reject_button, self.revert_button, self.save_button):
            decide_row.addWidget(b)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel("Corrected frames"))
        lay.addWidget(self.frame_list, 1)
        lay.addLayout(form)
        lay.addLayout(run_row)
        lay.addLayout(prog_row)
        lay.addWidget(self.loss_plot, 2)
        lay.addWidget(self.miou_label)
        lay.addLayout(decide_row)
        lay.addWidget(self.status_label)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.accept_button.clicked.connect(self.accept_result)
        self.reject_button.clicked.connect(self.reject_result)
        self.revert_button.clicked.connect(self.revert)
        self.save_button.clicked.connect(self._ask_save)

    # --- frames -------------------------------------------------------------------------------
    def set_frames(self, corrected: list[int], names: list[str] | None = None) -> None:
        """List the corrected frames; new ones start checked, unchecked ones stay unchecked."""
        unchecked = {i for i in self._all_frames()
                     if self._item(i).checkState() != QtCore.Qt.CheckState.Checked}
        with QtCore.QSignalBlocker(self.frame_list):
            self.frame_list.clear()
            for i in sorted(corrected):
                name = names[i] if names is not None and i < len(names) else ""
                item = QtWidgets.QListWidgetItem(f"{i}  {name}".rstrip())
                item.setData(QtCore.Qt.ItemDataRole.UserRole, int(i))
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(QtCore.Qt.CheckState.Unchecked if i in unchecked
                                   else QtCore.Qt.CheckState.Checked)
                self.frame_list.addItem(item)
        self._update_buttons()

    def _all_frames(self) -> list[int]:
        return [self.frame_list.item(r).data(QtCore.Qt.ItemDataRole.UserRole) for r in range(self.frame_list.count())]

    def _item(self, index: int) -> QtWidgets.QListWidgetItem:
        return next(self.frame_list.item(r) for r in range(self.frame_list.count())
                    if self.frame_list.item(r).data(QtCore.Qt.ItemDataRole.UserRole) == index)

    def selected_frames(self) -> list[int]:
        return [self.frame_list.item(r).data(QtCore.Qt.ItemDataRole.UserRole) for r in range(self.frame_list.count())
                if self.frame_list.item(r).checkState() == QtCore.Qt.CheckState.Checked]

    # --- run ----------------------------------------------------------------------------------
    def config(self):
        """The `FinetuneConfig` the controls describe (other fields keep core's defaults)."""
        import dataclasses

        return dataclasses.replace(self._defaults, steps=self.steps_spin.value(), lr=self.lr_spin.value())

    def start(self) -> bool:
        frames = self.selected_frames()
        model = getattr(self._infer, "model", None)
        if self.worker.running or not frames or model is None:
            return False
        try:
            samples = self._samples(frames)
        except Exception as exc:  # unreadable frame etc.: say so, keep the panel usable
            self._report(f"Could not read the chosen frames: {exc}")
            return False
        self.result = None
        self._losses = []
        self.loss_curve.setData([], [])
        self.progress_bar.setRange(0, self.steps_spin.value())
        self.progress_bar.setValue(0)
        self.eta_label.setText("ETA –")
        self.miou_label.setText("mIoU on the chosen frames: before – / after –")
        self.status_label.setText(f"Fine-tuning on {len(frames)} frame(s)…")
        self._t0 = time.monotonic()
        self._base_version = self._infer.weights_version
        self.worker.start_finetune(model, samples, self.config())
        return True

    def cancel(self) -> None:
        if self.worker.running:
            self.status_label.setText("Cancelling…")
            self.worker.cancel()

    def _on_progress(self, step: int, total: int, loss: float) -> None:
        self._losses.append(loss)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(step)
        elapsed = time.monotonic() - self._t0
        eta = elapsed / step * (total - step) if step > 0 else float("nan")
        self.eta_label.setText(f"ETA {_format_eta(eta)}")
        y = np.asarray(self._losses, dtype=np.float64)
        self.loss_curve.setData(np.arange(1, y.size + 1), y)

    def _on_finished(self, result) -> None:
        self.result = result
        self.loss_curve.setData(np.arange(1, len(result.losses) + 1), np.asarray(result.losses, np.float64))
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.eta_label.setText(f"took {_format_eta(time.monotonic() - self._t0)}")
        self.miou_label.setText(f"mIoU on the chosen frames: before {100 * result.miou_before:.1f} % / "
                                f"after {100 * result.miou_after:.1f} %")
        self.status_label.setText("Done. Accept the new weights or reject them.")
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self._report(f"Fine-tuning failed; the weights are unchanged.\n\n{message}")

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled; the weights are unchanged.")
        self.eta_label.setText("ETA –")
        self._update_buttons()

    def _report(self, message: str) -> None:
        self.status_label.setText(message.splitlines()[0])
        self.error.emit(message)
        self._update_buttons()

    # --- decide -------------------------------------------------------------------------------
    def accept_result(self) -> int | None:
        """Hand the new weights to the inference worker; returns its new weights_version."""
        if self.result is None:
            return None
        model = self._infer.model
        # The worker's current weights, kept for Revert (a copy: the worker loads in place).
        self._previous_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._accepted_model = model
        version = self._infer.set_state_dict(self.result.state_dict)
        self.result = None
        self.status_label.setText(f"New weights in use (version {version}); predictions are recomputed.")
        self._update_buttons()
        self.weights_accepted.emit(version)
        return version

    def _on_weights_changed(self, _version: int) -> None:
        if self._infer.model is not self._accepted_model:  # another checkpoint: nothing to revert to
            self._previous_state = None
        self._update_buttons()

    def reject_result(self) -> None:
        self.result = None
        self.status_label.setText("Rejected; the previous weights stay.")
        self._update_buttons()

    def revert(self) -> int | None:
        if self._previous_state is None:
            return None
        version = self._infer.set_state_dict(self._previous_state)
        self._previous_state = None
        self.status_label.setText(f"Previous weights restored (version {version}).")
        self._update_buttons()
        self.weights_reverted.emit(version)
        return version

    def _ask_save(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save checkpoint", "finetuned.pt",
                                                        "Checkpoints (*.pt)")
        if path:
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str) -> None:
        """Save the weights in use (in the worker thread; `saved` or `error` reports back)."""
        model = self._infer.model
        if model is None or self.worker.running:
            return
        self.status_label.setText(f"Saving {path}…")
        self.worker.save(path, model, scheme=self._scheme_getter(),
                         extra={"source": "csknet-studio fine-tune"})

    def _update_buttons(self, *_args) -> None:
        running = self.worker.running
        has_model = getattr(self._infer, "model", None) is not None
        self.start_button.setEnabled(not running and has_model and bool(self.selected_frames()))
        self.cancel_button.setEnabled(running)
        self.accept_button.setEnabled(not running and self.result is not None)
        self.reject_button.setEnabled(not running and self.result is not None)
        self.revert_button.setEnabled(not running and self._previous_state is not None)
        self.save_button.setEnabled(not running and has_model)
        for w in (self.steps_spin, self.lr_spin, self.frame_list):
            w.setEnabled(not running)

    def shutdown(self) -> None:
        self.worker.shutdown()
