"""Fine-tuning panel: pick corrected frames, train in the background, then accept or reject.

The panel owns no model maths: `core.finetune.finetune` trains a copy of the inference worker's
model in `FinetuneWorker`'s thread, holding part of the corrections out to judge the result. The
panel shows the before/after figures on that held-out part only. When they did not improve it says
so, and Reject becomes the default button; Accept stays possible ("Accept anyway").

Accepting hands the new state_dict to the inference worker (new weights_version, cache
invalidated, the shown frame recomputed) and records the new weights hash in the annotation
session, so exports name the weights that made their predictions. Rejecting leaves the worker
alone, and "Revert" brings back the weights that were in use before the last accept.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from csknet_studio.core.errors import CSKNetError
from csknet_studio.ui.finetune_worker import FinetuneWorker

# The frame list's and the loss plot's least heights (px): the rest of the panel is fixed.
MIN_LIST_H, MIN_PLOT_H = 40, 100
WARNING_STYLE = "color: #e8a33d; font-weight: bold;"

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
                raise CSKNetError(f"frame {i + 1} ({fp.name}) is unreadable: {fp.error}")
            out.append((fp.eo, fp.ir, mask))
        return out

    return load


_NO_FRAMES = ("Corrected frames: none yet. Paint a frame's labels, or accept its prediction (A), "
              "to train on it.")
_NO_FIGURES = "mIoU on held-out corrections: before – / after –"


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


class FinetunePanel(QtWidgets.QWidget):
    """Signals: `weights_accepted(version)`, `weights_reverted(version)`, `error(message)`,
    `checkpoint_saved(path, weights_hash)`.

    session_getter / checkpoint_path_getter: the annotation session and the checkpoint file the
    weights in use came from; the session records (path, weights hash) whenever the weights change.
    """

    weights_accepted = QtCore.Signal(int)
    weights_reverted = QtCore.Signal(int)
    checkpoint_saved = QtCore.Signal(str, str)
    error = QtCore.Signal(str)

    def __init__(self, inference_worker, samples: SampleProvider, *, scheme_getter: Callable[[], Any] | None = None,
                 session_getter: Callable[[], Any] | None = None,
                 checkpoint_path_getter: Callable[[], Any] | None = None,
                 defaults=None, num_threads: int | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from csknet_studio.core.finetune import FinetuneConfig  # heavy: torch, loaded when a panel is made

        self._infer = inference_worker
        self._samples = samples
        self._scheme_getter = scheme_getter or (lambda: getattr(inference_worker, "scheme", None))
        self._session_getter = session_getter or (lambda: None)
        self._checkpoint_path_getter = checkpoint_path_getter or (lambda: None)
        # steps and lr are on screen; crop, modes, batch, ... come from `defaults` (core's by default)
        self._defaults = defaults if defaults is not None else FinetuneConfig()
        self.worker = FinetuneWorker(self, num_threads=num_threads)
        self.result = None  # FinetuneResult awaiting accept / reject
        self._previous_state = None  # the worker's weights before the last accept (for Revert)
        self._previous_hash = ""
        self._frames: list[int] = []  # the frames of the run in progress / awaiting a decision
        self._losses: list[float] = []
        self._t0 = 0.0
        self._build()
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.saved.connect(self._on_saved)
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
        self.miou_label = QtWidgets.QLabel(_NO_FIGURES)
        self.miou_label.setToolTip("mIoU on corrections held out of training (whole frames, or regions inside "
                                   "the frames when only a few are corrected)")
        self.held_out_label = QtWidgets.QLabel("")
        self.held_out_label.setWordWrap(True)
        self.warning_label = QtWidgets.QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(WARNING_STYLE)
        self.warning_label.hide()
        self.status_label = QtWidgets.QLabel("")
        self.status_label.setWordWrap(True)
        self.loss_plot = pg.PlotWidget(background=None)  # the theme's background: a plot, not an image
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)  # "loss", never "loss (x0.001)"
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff7f0e", width=2))
        self.loss_plot.setMinimumHeight(MIN_PLOT_H)
        self.frame_list.setMinimumHeight(MIN_LIST_H)
        self.frames_label = QtWidgets.QLabel(_NO_FRAMES)
        self.frames_label.setWordWrap(True)
        self._lay_out()
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.accept_button.clicked.connect(self.accept_result)
        self.reject_button.clicked.connect(self.reject_result)
        self.revert_button.clicked.connect(self.revert)
        self.save_button.clicked.connect(self._ask_save)

    def _lay_out(self) -> None:
        """The controls top to bottom. The list and the plot may shrink far: with Compare modes
        open on a 768-pixel screen, a 460-pixel minimum made the window taller than the screen."""
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
        lay.addWidget(self.frames_label)
        lay.addWidget(self.frame_list, 1)
        lay.addLayout(form)
        lay.addLayout(run_row)
        lay.addLayout(prog_row)
        lay.addWidget(self.loss_plot, 2)
        lay.addWidget(self.miou_label)
        lay.addWidget(self.held_out_label)
        lay.addWidget(self.warning_label)
        lay.addLayout(decide_row)
        lay.addWidget(self.status_label)

    # --- frames -------------------------------------------------------------------------------
    def set_frames(self, corrected: list[int], names: list[str] | None = None) -> None:
        """List the corrected frames; new ones start checked, unchecked ones stay unchecked."""
        unchecked = {i for i in self._all_frames()
                     if self._item(i).checkState() != QtCore.Qt.CheckState.Checked}
        with QtCore.QSignalBlocker(self.frame_list):
            self.frame_list.clear()
            for i in sorted(corrected):
                name = names[i] if names is not None and i < len(names) else ""
                item = QtWidgets.QListWidgetItem(f"{i + 1}  {name}".rstrip())  # 1-based, as the Frames list
                item.setData(QtCore.Qt.ItemDataRole.UserRole, int(i))
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(QtCore.Qt.CheckState.Unchecked if i in unchecked
                                   else QtCore.Qt.CheckState.Checked)
                self.frame_list.addItem(item)
        self.frames_label.setText(f"Corrected frames ({len(corrected)})" if corrected else _NO_FRAMES)
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
        self._set_result(None)
        self._frames = list(frames)
        self._losses = []
        self.loss_curve.setData([], [])
        self.progress_bar.setRange(0, self.steps_spin.value())
        self.progress_bar.setValue(0)
        self.eta_label.setText("ETA –")
        self.miou_label.setText(_NO_FIGURES)
        self.held_out_label.setText("")
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
        self.loss_curve.setData(np.arange(1, len(result.losses) + 1), np.asarray(result.losses, np.float64))
        self.progress_bar.setValue(self.progress_bar.maximum())
        took = f"took {_format_eta(time.monotonic() - self._t0)}"
        if result.stopped_early:
            took += f", stopped at step {result.steps_done}"
        self.eta_label.setText(took)
        before, after = 100 * result.before, 100 * result.after
        self.miou_label.setText(f"mIoU on held-out corrections: before {before:.1f} % / after {after:.1f} %")
        self.held_out_label.setText(f"Held out: {result.held_out.describe([str(i) for i in self._frames])}")
        if result.improved:
            self.status_label.setText(f"Done: {after - before:+.1f} points on the held-out corrections "
                                      f"(best at step {result.best_step}). Accept the new weights or reject them.")
        else:
            self.status_label.setText("Done. Reject keeps the current weights.")
        self._set_result(result)

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
    def _set_result(self, result) -> None:
        """Hold `result` for a decision; without a gain on the held-out corrections, say so and make
        Reject the default button (Enter rejects), Accept a plain "Accept anyway"."""
        self.result = result
        no_gain = result is not None and not result.improved and math.isfinite(result.before)
        if no_gain:
            self.warning_label.setText(
                f"No gain on held-out corrections: {100 * result.after:.1f} % at best after training, "
                f"{100 * result.before:.1f} % before. The current weights are better on corrections the "
                "model did not train on; Reject keeps them.")
        self.warning_label.setVisible(no_gain)
        self.accept_button.setText("Accept anyway" if no_gain else "Accept new weights")
        self.accept_button.setFlat(no_gain)
        self.accept_button.setAutoDefault(not no_gain)
        self.accept_button.setDefault(result is not None and not no_gain)
        self.reject_button.setAutoDefault(no_gain)
        self.reject_button.setDefault(no_gain)
        self._update_buttons()
        if result is not None:
            (self.reject_button if no_gain else self.accept_button).setFocus()

    def accept_result(self) -> int | None:
        """Hand the new weights to the inference worker; returns its new weights_version. Without a
        held-out gain this takes the best weights training reached (the user accepts them anyway)."""
        if self.result is None:
            return None
        from csknet_studio.core.checkpoint import weights_hash  # heavy: torch

        result = self.result
        state, digest = ((result.state_dict, result.weights_hash) if result.improved
                         else (result.trained_state_dict, result.trained_weights_hash))
        model = self._infer.model
        # The worker's current weights, kept for Revert (a copy: the worker loads in place).
        self._previous_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._previous_hash = weights_hash(self._previous_state)
        self._accepted_model = model
        version = self._infer.set_state_dict(state)
        self._record_weights(digest)
        self._set_result(None)
        self.status_label.setText(f"New weights in use (version {version}); predictions are recomputed.")
        self.weights_accepted.emit(version)
        return version

    def _record_weights(self, digest: str, path=None) -> None:
        """Tell the session which weights now make the predictions (the export records the hash).
        Without any checkpoint file to name (an untrained model), Save checkpoint… records one."""
        session = self._session_getter()
        if session is None:
            return
        if path is None:
            path = self._checkpoint_path_getter()
        if path is None and getattr(session, "checkpoint", None) is not None:
            path = session.checkpoint.path
        if path is not None:
            session.set_checkpoint(path, digest)

    def _on_weights_changed(self, _version: int) -> None:
        if self._infer.model is not self._accepted_model:  # another checkpoint: nothing to revert to
            self._previous_state = None
        self._update_buttons()

    def reject_result(self) -> None:
        self._set_result(None)
        self.status_label.setText("Rejected; the previous weights stay.")

    def revert(self) -> int | None:
        if self._previous_state is None:
            return None
        version = self._infer.set_state_dict(self._previous_state)
        self._record_weights(self._previous_hash)
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

    def _on_saved(self, path: str, digest: str) -> None:
        self.status_label.setText(f"Checkpoint saved to {path}")
        self._record_weights(digest, path)
        self.checkpoint_saved.emit(path, digest)

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
