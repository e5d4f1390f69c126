"""The main window: lays out the views and panels and observes the Studio's state; owns no model maths.

What is shown and edited (frame, mode, prediction, overlay mask, tool, class) lives in
`core.studio.StudioState` (`win.state`); the window's read-only properties (`sequence`, `session`,
`current_index`, `mode`, `current_frame`, `current_prediction`, `displayed_mask`, `scheme`) read it,
and its Qt signals (`frame_changed`, `mode_changed` carrying a `Mode`, `prediction_ready`,
`labels_changed`, `origin_changed`, `sequence_opened`, `error_shown`) re-announce the state's events
for widgets. Menus, toolbars and shortcuts are built in `ui/menus.py`; painting lives in `ui/tools.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt, Signal

from csknet_studio.core.classes import MFNET, ClassScheme
from csknet_studio.core.data.imaging import noticing_colour_mapped_ir
from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.modes import Mode
from csknet_studio.core.studio import StudioState
from csknet_studio.ui.frame_list import FrameList
from csknet_studio.ui.frame_states import FrameStates
from csknet_studio.ui.image_views import ImageViews
from csknet_studio.ui.inference_worker import InferenceWorker
from csknet_studio.ui.legend import UNLABELLED_RGB, ClassLegend
from csknet_studio.ui.menus import build_menus, finish_menus, name_class_actions
from csknet_studio.ui.panels import install_panels
from csknet_studio.ui.project_open import SessionReports, open_project_session
from csknet_studio.ui.readout import CursorReadout
from csknet_studio.ui.registration_dialog import open_or_register
from csknet_studio.ui.screen_fit import fit_to_screen
from csknet_studio.ui.status import StatusBar
from csknet_studio.ui.thermal import install_thermal
from csknet_studio.ui.timeline import Timeline
from csknet_studio.ui.tools import ToolController
from csknet_studio.ui.view_controls import ViewControls, fit_combos
from csknet_studio.ui.window_files import WindowFiles, describe_layout, project_sequence, without_path


class MainWindow(QtWidgets.QMainWindow):
    sequence_opened = Signal(object)
    frame_changed = Signal(int)
    mode_changed = Signal(object)  # Mode
    prediction_ready = Signal(object)
    labels_changed = Signal(int)
    origin_changed = Signal(int)  # a frame became corrected / predicted / propagated / empty
    error_shown = Signal(str)

    def __init__(self, settings: QtCore.QSettings | None = None, device: str = "auto",
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CSKNet Studio")
        self.settings = settings if settings is not None else QtCore.QSettings()
        self.device_name = device
        self.state = StudioState(MFNET)  # what is shown and edited; everything below observes it
        self._error_boxes: list[QtWidgets.QMessageBox] = []
        self._failed_index = -1  # frame whose inference failed (playback must not wait for it)
        self._shown_index = -1  # the frame shown before, for the direction the next ones are rendered in
        self.files = WindowFiles(self)  # recent files, drops, the save prompt, the dock layout
        self.confirm_close = self.files.ask_save  # tests replace this to avoid a modal prompt
        self.checkpoint_path: Path | None = None
        self.ir_scale: str | None = None  # --ir-scale / View ▸ IR temperature scale…: counts to °C
        self.frame_shown_at: float = 0.0  # perf_counter of the last frame change (latency bench)

        self.worker = InferenceWorker(self)
        self.worker.result_ready.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        self.views = ImageViews(self)
        self.controls = ViewControls(self)
        self.timeline = Timeline(self)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.worker.busy_changed.connect(self.status.set_busy)
        central = QtWidgets.QWidget(self)
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.controls)
        lay.addWidget(self.views, 1)
        lay.addWidget(self.timeline)
        self.setCentralWidget(central)

        self.legend = ClassLegend(self)
        self.frame_list = FrameList(self)
        self.tools = ToolController(self)
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self.actions_by_name: dict[str, QtGui.QAction] = {}
        self.menus: dict[str, QtWidgets.QMenu] = {}
        build_menus(self)
        self.add_panel(self.legend, "Classes", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_panel(self.frame_list, "Frames", Qt.DockWidgetArea.LeftDockWidgetArea)

        self.timeline.frame_requested.connect(self.set_frame)
        self.timeline.ready = self._labels_on_screen
        self.frame_list.frame_requested.connect(self.set_frame)
        self.controls.opacity_changed.connect(self.views.set_opacity)
        self.controls.base_changed.connect(self.views.set_base)
        self.controls.palette_changed.connect(self.views.set_palette)
        self.controls.contours_changed.connect(self.views.set_contours)
        self.controls.source_changed.connect(self.state.set_source)
        self.legend.class_picked.connect(self.tools.set_class)
        self.legend.visibility_changed.connect(self.state.set_hidden)
        self._observe_state()
        self.views.hovered.connect(self._on_hover)
        self.frame_states = FrameStates(self.state, self.timeline, self.frame_list)
        self.readout = CursorReadout(self.state, self.views, self.status)
        self.reports = SessionReports(self)
        self.controls.bind_settings(self.settings)  # display settings as the user left them
        self._on_scheme(MFNET)
        install_panels(self)  # internals, compare, fine-tuning, export, F1 sheet, U (sets self.panels)
        install_thermal(self)  # the °C span and colour bar of radiometric IR, View ▸ IR temperature scale…
        finish_menus(self)
        self.status.set_device("-")
        fit_combos(self)
        self._update_undo_actions()  # nothing open yet: nothing to undo, save or accept
        fit_to_screen(self, 1500, 900, share=0.96)  # a 1366x768 laptop keeps its right-hand docks
        geo = self.settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)

    def _observe_state(self) -> None:
        ev = self.state.events
        ev.frame_changed.connect(self._on_frame_shown)
        ev.overlay_changed.connect(self._on_overlay)
        ev.overlay_rect_changed.connect(self._on_overlay_rect)
        ev.labels_changed.connect(self.labels_changed.emit)
        ev.mode_changed.connect(self._on_mode)
        ev.prediction_changed.connect(self._on_prediction)
        ev.hidden_changed.connect(lambda _h: self._apply_lut())
        ev.scheme_changed.connect(self._on_scheme)
        ev.source_changed.connect(self.controls.show_source)

    # ------------------------------------------------------------------ public state (the state's, read-only)
    @property
    def sequence(self):
        return self.state.sequence

    @property
    def session(self):
        return self.state.session

    @property
    def scheme(self) -> ClassScheme:
        return self.state.scheme

    @property
    def current_index(self) -> int:
        return self.state.index

    @property
    def mode(self) -> Mode:
        return self.state.mode

    @property
    def current_frame(self) -> FramePair | None:
        return self.state.frame

    @property
    def current_prediction(self):
        return self.state.prediction

    @property
    def displayed_mask(self) -> np.ndarray | None:
        """The class-id mask the overlay shows now (read it, do not write it)."""
        return self.state.mask

    # ------------------------------------------------------------------ panels and actions
    def add_panel(self, widget: QtWidgets.QWidget, name: str,
                  area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                  shortcut: str | None = None) -> QtWidgets.QDockWidget:
        """Dock `widget`; its show/hide toggle goes into the View menu. State saved with the window."""
        dock = QtWidgets.QDockWidget(name, self)
        dock.setObjectName(f"dock_{name.replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        toggle = dock.toggleViewAction()
        if shortcut:
            toggle.setShortcut(QtGui.QKeySequence(shortcut))
            toggle.setToolTip(f"Show / hide {name} ({shortcut})")
        self.menus["View"].addAction(toggle)
        self.docks[name] = dock
        return dock

    def add_action(self, menu: str, action: QtGui.QAction) -> None:
        if menu not in self.menus:
            self.menus[menu] = self.menuBar().addMenu(menu)
        self.menus[menu].addAction(action)
        self.addAction(action)

    def show_error(self, message: str, title: str = "CSKNet Studio") -> None:
        """Every error dialog goes through here: non-modal, so the app (and tests) never block."""
        self.error_shown.emit(message)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.keep_box(box)
        box.open()

    def keep_box(self, box: QtWidgets.QMessageBox) -> None:
        """Hold a non-modal message box until it is answered; the window closes it when it closes."""
        box.finished.connect(lambda _r, b=box: self._error_boxes.remove(b) if b in self._error_boxes else None)
        self._error_boxes.append(box)

    def show_status(self, message: str, timeout_ms: int = 5000) -> None:
        self.status.showMessage(message, timeout_ms)

    # ------------------------------------------------------------------ model
    def set_model(self, model, scheme: ClassScheme | None, device, note: str = "") -> None:
        self.set_scheme(scheme or self.state.scheme)
        self.worker.set_model(model, self.state.scheme, device)
        self.status.set_device(str(device) + (f" ({note})" if note else ""))
        self.state.drop_prediction()
        self._request()

    def set_scheme(self, scheme: ClassScheme) -> None:
        try:
            self.state.set_scheme(scheme)
        except CSKNetError as exc:  # corrections use ids the new scheme lacks: keep the old one
            self.show_error(str(exc))

    def _on_scheme(self, scheme: ClassScheme) -> None:
        self.legend.set_scheme(scheme)
        name_class_actions(self, scheme)
        self._apply_lut()

    def _apply_lut(self) -> None:
        scheme = self.state.scheme
        lut = scheme.lut()
        lut[scheme.ignore_index] = (*UNLABELLED_RGB, 255)
        for c in self.state.hidden:
            lut[c, 3] = 0
        self.views.set_scheme_lut(lut)

    # ------------------------------------------------------------------ sequences
    def open_sequence(self, path: str | Path, topics: dict[str, str] | None = None) -> bool:
        """Open a folder / video / HDF5 sequence, a recording (its `topics`, else the topic picker),
        or a `<seq>.csknet` project (its sequence with it); on error show it and keep the current one."""
        try:
            seq_path, project = project_sequence(Path(path))
            topic_kw = self.files.recording_topics(seq_path, topics)
            if topic_kw is None:  # the topic picker was cancelled
                return False
            with noticing_colour_mapped_ir() as colour_mapped:
                opened = open_or_register(self, seq_path, project, ir_scale=self.ir_scale, **topic_kw)
                if opened is None:  # IR needs registering and the user declined
                    return False
                seq, register = opened
                self.set_sequence(seq, project_path=project)
            for notice in colour_mapped:
                self.show_error(f"{path}: {notice}", "Colour-mapped thermal")
            if register:
                self.open_registration()
        except (CSKNetError, OSError, ValueError) as exc:
            self.show_error(f"Could not open {path}:\n{without_path(str(exc), path)}")
            return False
        self.files.add_recent(str(path))
        return True

    def set_sequence(self, seq, project_path: str | Path | None = None) -> None:
        """Show `seq` with its annotation session (restoring saved corrections)."""

        session = open_project_session(self, seq, project_path, self.state.scheme)
        self._close_session()
        self.worker.clear_cache()  # the indices now name another sequence's frames
        self.views.prefetcher.clear()
        self._shown_index = -1
        self.state.open(seq, session)
        session.events.origin_changed.connect(self._on_origin_changed)
        session.events.history_changed.connect(self._update_undo_actions)
        self.views.set_levels(seq.display_levels())
        n = len(seq)
        self.frame_states.fill()
        read_only = " (read-only)" if session.read_only else ""
        self.setWindowTitle(f"CSKNet Studio — {getattr(seq, 'source', '')}{read_only}")
        restored = len(session.corrected_frames())
        opened = f"{describe_layout(seq)}, {n} frames"
        if restored:
            self.show_status(f"{opened}; restored {restored} corrected frames from {session.project_path}", 10000)
        else:
            self.show_status(opened, 10000)
        self.reports.watch(session)
        self.sequence_opened.emit(seq)
        self.set_frame(0)
        self._update_undo_actions()

    def _close_session(self) -> None:
        session, seq = self.state.session, self.state.sequence
        if session is not None:
            try:
                session.close()
            except CSKNetError as exc:
                self.show_error(str(exc))
            session.events.origin_changed.disconnect(self._on_origin_changed)
        if seq is not None and hasattr(seq, "close"):
            seq.close()
        if seq is not None or session is not None:
            self.state.close()
        self._update_undo_actions()

    # ------------------------------------------------------------------ navigation
    def set_frame(self, index: int) -> None:
        st = self.state
        if st.sequence is None or not 0 <= index < len(st.sequence) or index == st.index:
            return
        self.tools.finish_gesture()  # a stroke under way stays on its frame
        self.frame_shown_at = time.perf_counter()
        try:  # a cached prediction comes with the frame: the overlay is painted once
            st.go_to(index, self.worker.cached(index, st.mode))
        except (CSKNetError, OSError, ValueError) as exc:
            self.show_error(f"Could not read frame {index + 1}: {exc}")
            return
        self._request()

    def _on_frame_shown(self, index: int) -> None:
        st = self.state
        frame = st.frame
        step, self._shown_index = (index - self._shown_index if self._shown_index >= 0 else 1), index
        self.views.show_sequence_frame(st.sequence, index, frame, step)
        self.timeline.set_current(index, frame.name)
        self.frame_list.follow(index)
        self.status.set_frame(index, len(st), frame.name, st.mode.label)
        if frame.bad:
            self.frame_states.refresh(index)
            self.show_status(f"frame {index + 1} is unreadable: {frame.error}", 10000)
        self.frame_changed.emit(index)

    def reload_frame(self) -> None:
        """Read the shown frame again and re-request its prediction (the sequence changed under
        it, e.g. a new EO/IR alignment)."""
        self.views.prefetcher.clear()  # rendered from the frames as they were
        try:
            shown = self.state.reread()
        except (CSKNetError, OSError, ValueError) as exc:
            self.show_error(f"Could not read frame {self.state.index + 1}: {exc}")
            return
        if shown:
            self._request()

    def next_frame(self) -> None:
        self.timeline.step(1)

    def prev_frame(self) -> None:
        self.timeline.step(-1)

    def set_mode(self, mode: Mode | str) -> None:
        mode = Mode(mode)
        st = self.state
        hit = self.worker.cached(st.index, mode) if st.index >= 0 else None
        if st.set_mode(mode, hit):
            self._request()

    def _on_mode(self, mode: Mode) -> None:
        st = self.state
        act = self.actions_by_name.get(f"mode_{mode.value}")
        if act is not None and not act.isChecked():
            act.setChecked(True)
        if st.frame is not None:
            self.status.set_frame(st.index, len(st), st.frame.name, mode.label)
        self.mode_changed.emit(mode)

    def _request(self) -> None:
        st = self.state
        if st.frame is None or st.frame.bad:
            return
        hit = self.worker.request(st.index, st.frame, st.mode)
        if hit is not None and st.prediction is None:
            st.offer_prediction(st.index, st.mode, hit)

    def _on_result(self, index: int, mode: Mode, pred) -> None:
        self.state.offer_prediction(index, mode, pred)

    def _on_prediction(self, index: int) -> None:
        pred = self.state.prediction
        self.status.set_ms(pred.ms)
        self.frame_states.refresh(index)
        self.prediction_ready.emit(pred)

    def _on_failed(self, index: int, mode: Mode | None, message: str) -> None:
        self._failed_index = index
        where = f"frame {index + 1} ({mode.label})" if index >= 0 and mode is not None else "the model"
        self.show_error(f"Inference failed on {where}:\n{message}")

    # ------------------------------------------------------------------ labels
    def _on_overlay(self) -> None:
        self.views.show_labels(self.state.mask)
        self.readout.update()

    def _on_overlay_rect(self, rect) -> None:
        self.views.label_item.repaint_rect(rect.y0, rect.y1, rect.x0, rect.x1)
        self.readout.update()  # the pixel under the cursor may have changed class

    def _labels_on_screen(self) -> bool:
        """Playback may move on: this frame's labels are shown, or none can come."""
        st = self.state
        f = st.frame
        return (f is None or f.bad or st.mask is not None or self.worker.model is None
                or self._failed_index == st.index)

    def _on_origin_changed(self, frame: int) -> None:
        self.frame_states.refresh(frame)
        self.origin_changed.emit(frame)

    def _update_undo_actions(self) -> None:
        s = self.state.session
        for name, ok in (("undo", s is not None and s.can_undo), ("redo", s is not None and s.can_redo),
                         ("save", s is not None), ("accept", s is not None), ("copy_prev", s is not None)):
            act = self.actions_by_name.get(name)
            if act is not None:
                act.setEnabled(bool(ok))

    def _on_hover(self, x: int, y: int) -> None:
        self.readout.hover(x, y)
        if x >= 0 and self.state.frame is not None:
            self.tools.hover(x, y)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.tools.cancel()
        session = self.state.session
        if session is not None and session.dirty and not self.confirm_close():
            ev.ignore()
            return
        self.timeline.stop()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        if session is not None and session.dirty:
            session.autosave = False  # the user chose to discard
        else:
            self._close_session()
        self.panels.shutdown()  # cancel fine-tuning / feature jobs before the worker goes
        self.tools.shutdown()  # the snap brush's superpixel thread
        self.worker.shutdown()
        self.views.prefetcher.shutdown()
        for box in list(self._error_boxes):
            box.close()
        super().closeEvent(ev)
