"""Docks the analysis panels into the main window and wires them to its signals.

`install_panels(win)` is the only thing `MainWindow` calls: it adds the Model internals, Compare
modes and Fine-tuning docks, File > Export labels (Ctrl+E), Edit > Propagate labels (Ctrl+P),
View > Next most uncertain frame (U), View > Segment and score every frame (with its progress in the
status bar), and Help > Keyboard shortcuts (F1). Every panel stays testable on its
own; this module is the glue (signals in, requests to the worker out), no maths.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui
from PySide6.QtCore import Qt

from csknet_studio.core.export_writer import stop_spare as stop_spare_writer
from csknet_studio.core.uncertainty import UncertaintyTracker
from csknet_studio.ui.compare_view import CompareView
from csknet_studio.ui.export_dialog import ExportDialog
from csknet_studio.ui.feature_worker import FeatureWorker
from csknet_studio.ui.finetune_panel import FinetunePanel, samples_from_session
from csknet_studio.ui.internals_panel import InternalsPanel
from csknet_studio.ui.progress_box import ProgressBox
from csknet_studio.ui.propagate_dialog import PropagateDialog
from csknet_studio.ui.registration_dialog import install_registration
from csknet_studio.ui.segment_all import FrameScanner
from csknet_studio.ui.shortcuts import install_shortcuts_sheet

INTERNALS_SETTLE_MS = 120  # frames must stop changing this long before the internals panel redraws


class PanelHub(QtCore.QObject):
    """Owns the panels' helpers (uncertainty tracker, feature worker, frame scanner)."""

    def __init__(self, win) -> None:
        super().__init__(win)
        self.win = win
        self.state = win.state  # what is shown and edited (read here, changed through its methods)
        self.tracker = UncertaintyTracker()
        self.features = FeatureWorker(self)
        self.scanner = FrameScanner(win, self.tracker)
        self.scan_progress = ProgressBox("Segmenting")
        self.scan_progress.hide()
        win.status.addPermanentWidget(self.scan_progress)

        self.internals = InternalsPanel()
        self.compare = CompareView(win.state.scheme)
        self.finetune = self._make_finetune_panel()
        win.add_panel(self.internals, "Model internals", Qt.DockWidgetArea.RightDockWidgetArea)
        win.add_panel(self.compare, "Compare modes", Qt.DockWidgetArea.BottomDockWidgetArea)
        if self.finetune is not None:
            win.add_panel(self.finetune, "Fine-tuning", Qt.DockWidgetArea.RightDockWidgetArea)
            win.tabifyDockWidget(win.docks["Model internals"], win.docks["Fine-tuning"])
            win.docks["Model internals"].raise_()
        win.docks["Compare modes"].hide()  # opened from the View menu when wanted

        self.next_uncertain_action = QtGui.QAction("Next most uncertain frame", win)
        self.next_uncertain_action.setShortcut(QtGui.QKeySequence("U"))
        self.next_uncertain_action.setToolTip("Go to the uncorrected frame the model is least sure about (U)")
        self.next_uncertain_action.triggered.connect(self.next_uncertain)
        win.add_action("View", self.next_uncertain_action)
        self.scan_action = QtGui.QAction("Segment and score every frame", win)
        self.scan_action.setCheckable(True)
        self.scan_action.setToolTip("Predict every frame in the background (progress, ETA and Cancel in the "
                                    "status bar): export and propagation get the model's labels, and 'Next "
                                    "most uncertain' chooses among all frames")
        self.scan_action.toggled.connect(self.set_scanning)
        win.add_action("View", self.scan_action)
        self.propagate_action = QtGui.QAction("Propagate labels…", win)
        self.propagate_action.setShortcut(QtGui.QKeySequence("Ctrl+P"))
        self.propagate_action.setToolTip("Carry this frame's labels to the next or previous frames by optical "
                                         "flow (Ctrl+P); one undo step")
        self.propagate_action.triggered.connect(self.open_propagate)
        win.add_action("Edit", self.propagate_action)
        self.propagate_dialog = None
        self.export_action = QtGui.QAction("Export labels…", win)
        self.export_action.setShortcut(QtGui.QKeySequence("Ctrl+E"))
        self.export_action.setToolTip("Write the labels as HDF5 or PNG masks (Ctrl+E)")
        self.export_action.triggered.connect(self.open_export)
        win.add_action("File", self.export_action)
        self.shortcuts_action = install_shortcuts_sheet(win)
        self.register_action = install_registration(win)
        win.menus["Help"].addAction(self.shortcuts_action)
        self.export_dialog = None

        win.worker.introspect = True  # gate maps, exchanged channels and entropy for every result
        # The internals panel draws gate and entropy maps (several ms a frame): while the user scrubs
        # it waits until the frames stop changing, then shows the frame they stopped on.
        self._internals_due = QtCore.QTimer(win)
        self._internals_due.setSingleShot(True)
        self._internals_due.setInterval(INTERNALS_SETTLE_MS)
        self._internals_due.timeout.connect(self._refresh_internals)
        win.frame_changed.connect(self._on_frame_changed)
        win.prediction_ready.connect(lambda _p: self._internals_due.start())
        win.sequence_opened.connect(self._on_sequence_opened)
        win.origin_changed.connect(lambda _i: self._refresh_corrected())  # not per stroke move
        win.worker.result_ready.connect(self._on_result)
        win.worker.weights_changed.connect(self._on_weights_changed)
        win.worker.busy_changed.connect(self._on_busy)
        self.internals.next_uncertain_requested.connect(self.next_uncertain)
        self.internals.channel_selected.connect(self._on_channel_selected)
        self.features.ready.connect(self._on_channel_maps)
        self.features.failed.connect(lambda _tag, msg: self.internals.show_feature_error(msg))
        self.scanner.running_changed.connect(self._on_scan_running)
        self.scanner.progress.connect(self.scan_progress.set_progress)
        self.scanner.finished.connect(self._on_scan_finished)
        self.scan_progress.cancel_requested.connect(lambda: self.scan_action.setChecked(False))
        self.compare.modes_changed.connect(lambda _a, _b: self._fill_compare())

    # --- fine-tuning ----------------------------------------------------------------------------
    def _make_finetune_panel(self):
        panel = FinetunePanel(self.win.worker, self._samples, scheme_getter=lambda: self.state.scheme,
                              session_getter=lambda: self.state.session,
                              checkpoint_path_getter=lambda: self.win.checkpoint_path)
        panel.error.connect(lambda msg: self.win.show_error(msg, "Fine-tuning"))
        panel.weights_accepted.connect(
            lambda v: self.win.show_status(f"fine-tuned weights in use (version {v}); recomputing"))
        panel.checkpoint_saved.connect(self._on_checkpoint_saved)
        return panel

    def _on_checkpoint_saved(self, path: str, _weights_hash: str) -> None:
        """The weights in use now live in `path`: later records name that file."""
        self.win.checkpoint_path = Path(path)

    def _samples(self, frames: list[int]):
        return samples_from_session(self.state.sequence, self.state.session, frames)

    def _refresh_corrected(self) -> None:
        session = self.state.session
        if self.finetune is not None:
            self.finetune.set_frames(session.corrected_frames() if session is not None else [],
                                     list(session.names) if session is not None else None)

    # --- export -----------------------------------------------------------------------------------
    def open_export(self) -> None:
        if self.state.session is None:
            self.win.show_error("Open a sequence first: there are no labels to export.", "Export")
            return
        old = self.export_dialog
        if old is not None:
            if old.worker.running:  # an export is still running: bring it back instead
                old.show()
                old.raise_()
                return
            old.deleteLater()
        self.export_dialog = ExportDialog(self.state.session, self.win.worker, mode=self.state.mode, parent=self.win)
        self.export_dialog.open()

    # --- propagation --------------------------------------------------------------------------------
    def open_propagate(self) -> None:
        win = self.win
        if win.state.session is None or win.state.index < 0:
            win.show_error("Open a sequence first: there are no labels to propagate.", "Propagate labels")
            return
        old = self.propagate_dialog
        if old is not None:
            if old.worker.running:
                old.show()
                old.raise_()
                return
            old.deleteLater()
        dlg = PropagateDialog(win.state.session, win.state.index, parent=win)
        dlg.propagated.connect(self._on_propagated)
        dlg.failed.connect(lambda msg: win.show_error(msg, "Propagate labels"))
        self.propagate_dialog = dlg
        dlg.open()

    def _on_propagated(self, frames: list) -> None:
        if frames:
            self.win.show_status(f"labels propagated to {len(frames)} frames ({frames[0] + 1}–{frames[-1] + 1}): "
                                 "review them (amber in the timeline); Ctrl+Z takes them all back", 10000)
        else:
            self.win.show_status("nothing propagated (every frame in range is corrected)")

    # --- frames, predictions ------------------------------------------------------------------------
    def _on_sequence_opened(self, _seq) -> None:
        self.tracker.clear()
        self.scan_action.setChecked(False)
        if self.propagate_dialog is not None:
            self.propagate_dialog.worker.shutdown()  # its result belongs to the previous sequence
        self.compare.set_scheme(self.state.scheme)
        self._refresh_corrected()

    def _on_frame_changed(self, index: int) -> None:
        self.internals.set_prediction(None)  # not the last frame's maps over this frame
        self._internals_due.start()
        self.compare.clear()
        self._fill_compare()

    def _refresh_internals(self) -> None:
        """The shown frame's images and prediction in the internals panel."""
        frame, seq = self.state.frame, self.state.sequence
        levels = None
        if seq is not None and hasattr(seq, "display_levels"):
            try:
                levels = seq.display_levels()
            except Exception:  # levels are cosmetic; min/max stretch is the fallback
                levels = None
        self.internals.set_frame(frame.eo if frame is not None else None,
                                 frame.ir if frame is not None else None, levels)
        self.internals.set_prediction(self.state.prediction)

    def _fill_compare(self) -> None:
        """Show cached modes at once; ask the worker for the others (they arrive via result_ready)."""
        win = self.win
        if win.state.index < 0 or win.state.frame is None or win.state.frame.bad:
            return
        for mode in {self.compare.left_mode, self.compare.right_mode}:
            hit = win.worker.cached(win.state.index, mode)
            if hit is not None:
                self.compare.set_labels(mode, hit.labels)
            elif mode is not win.state.mode:
                win.worker.request(win.state.index, win.state.frame, mode, background=True)

    def _on_result(self, index: int, mode: str, pred) -> None:
        self.tracker.record(index, mode, pred.entropy, pred.weights_version)
        if index == self.state.index:
            self.compare.set_labels(mode, pred.labels)
        self.scanner.on_result(index, mode, pred)

    def _on_weights_changed(self, _version: int) -> None:
        self.compare.set_scheme(self.state.scheme)  # a new checkpoint may bring another scheme
        self.compare.clear()
        self.scanner.restart()

    def _corrected(self) -> set[int]:
        session = self.state.session
        return set(session.corrected_frames()) if session is not None else set()

    def next_uncertain(self) -> int | None:
        """Move to the most uncertain predicted frame that is neither shown nor corrected."""
        win = self.win
        target = self.tracker.next_most_uncertain(win.state.mode, exclude=self._corrected() | {win.state.index})
        if target is None:
            win.show_status("No other predicted, uncorrected frame yet: browse or use View > Segment and score every frame.")
            return None
        win.set_frame(target)
        score = self.tracker.score(target, win.state.mode)
        win.show_status(f"frame {target + 1}: mean entropy {score:.3f} (highest among scored frames)")
        return target

    # --- segmenting every frame in the background ---------------------------------------------------
    def set_scanning(self, on: bool) -> None:
        if on:
            self.scanner.start()
        else:
            self.scanner.cancel()

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self.scanner.on_idle()

    def _on_scan_running(self, running: bool) -> None:
        if running:
            self.scan_progress.start(self.scanner.total, self.scanner.done_count())
        self.scan_progress.setVisible(running)

    def _on_scan_finished(self, n: int) -> None:
        self.scan_action.setChecked(False)
        self.win.show_status(f"all {n} frames segmented and scored; press U for the most uncertain one")

    # --- channel feature maps -------------------------------------------------------------------------
    def _on_channel_selected(self, site: str, direction: str, channel: int) -> None:
        win = self.win
        frame = win.state.frame
        if frame is None or frame.eo is None or frame.ir is None or win.worker.model is None:
            self.internals.show_feature_error("needs a frame with both EO and IR and a model")
            return
        tag = (win.state.index, win.worker.weights_version, direction)
        self.features.request(win.worker.model, frame.eo, frame.ir, site, direction, channel, tag)

    def _on_channel_maps(self, tag, maps) -> None:
        index, version, direction = tag
        if index != self.state.index or version != self.win.worker.weights_version:
            return  # the user moved on
        self.internals.set_feature_maps(maps.site, direction, maps.channel, maps.before, maps.after)

    def shutdown(self) -> None:
        self.scanner.cancel()
        self.features.shutdown()
        if self.propagate_dialog is not None:
            self.propagate_dialog.worker.shutdown()
        if self.export_dialog is not None:
            self.export_dialog.worker.shutdown()  # a running export is cancelled; its file is not written
            stop_spare_writer()  # the writer the dialog started ahead, if no export took it
        if self.finetune is not None:
            self.finetune.shutdown()


def install_panels(win) -> PanelHub:
    """Add the panels and their actions to `win` (a `MainWindow`); returns the hub (kept as `win.panels`)."""
    hub = PanelHub(win)
    win.panels = hub
    return hub

