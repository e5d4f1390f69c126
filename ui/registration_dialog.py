"""View > Register EO/IR…: click point pairs, or let ECC align the edges; preview; Apply.

Left: EO and IR of the shown frame side by side, IR on its own pixel grid (as decoded). A click on
EO and a click on IR make a pair, in order; with 4 or more pairs the homography and its mean
residual update at once, and the preview below shows IR warped onto EO as a blend or a
checkerboard. Auto-align runs ECC (core/registration.py) in a worker thread, started from the
clicked pairs when there are 4, else from the alignment in use. Apply stores the homography in the
session (and so in the project); every later read of IR goes through it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core import registration as reg
from csknet_studio.core.data import Alignment, apply_levels
from csknet_studio.core.errors import AspectMismatchError
from csknet_studio.ui.job_thread import JobRunner
from csknet_studio.ui.message_box import question_box
from csknet_studio.ui.screen_fit import fit_to_screen
from csknet_studio.ui.worker_thread import REGISTRATION_NICE

CHECKER_PX = 32


def _grey_u8(a: np.ndarray | None, levels: tuple[float, float]) -> np.ndarray | None:
    if a is None:
        return None
    g = apply_levels(a, levels)
    return g if g.ndim == 2 else g.mean(axis=2).astype(np.uint8)


def compose_preview(eo_u8: np.ndarray, ir_u8: np.ndarray, mode: str, alpha: float = 0.5) -> np.ndarray:
    """EO RGB and warped IR grey (same grid) as one RGB image: a blend, or a checkerboard."""
    ir_rgb = np.repeat(ir_u8[..., None], 3, axis=2)
    if mode == "checkerboard":
        h, w = ir_u8.shape
        yy, xx = np.mgrid[:h, :w]
        tile = ((yy // CHECKER_PX + xx // CHECKER_PX) % 2).astype(bool)
        return np.where(tile[..., None], ir_rgb, eo_u8)
    return (eo_u8.astype(np.float32) * (1 - alpha) + ir_rgb.astype(np.float32) * alpha).astype(np.uint8)


class _PointView(pg.GraphicsLayoutWidget):
    """One image with numbered, clickable points (x, y frame pixels, centres on integers)."""

    clicked = QtCore.Signal(float, float)

    def __init__(self, title: str, colour: str) -> None:
        super().__init__()
        self.box = self.addViewBox(lockAspect=True, invertY=True)
        self.box.setMenuEnabled(False)
        self.addLabel(title, row=1, col=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.points = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k"), brush=pg.mkBrush(colour))
        self.box.addItem(self.points)
        self._labels: list[pg.TextItem] = []
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_image(self, a: np.ndarray) -> None:
        self.image.setImage(a, levels=(0, 255), autoLevels=False)
        # ImageItem pixel i spans [i, i+1): shift so pixel centres sit on integer coordinates.
        self.image.setPos(-0.5, -0.5)
        self.box.autoRange(padding=0)

    def set_points(self, pts: list[tuple[float, float]]) -> None:
        self.points.setData([p[0] for p in pts], [p[1] for p in pts])
        for t in self._labels:
            self.box.removeItem(t)
        self._labels = []
        for k, (x, y) in enumerate(pts):
            t = pg.TextItem(str(k + 1), color="y", anchor=(0, 1))
            t.setPos(x + 2, y - 2)
            self.box.addItem(t)
            self._labels.append(t)

    def _on_click(self, ev) -> None:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton or ev.double():
            return
        p = self.box.mapSceneToView(ev.scenePos())
        self.clicked.emit(float(p.x()), float(p.y()))


class RegistrationDialog(QtWidgets.QDialog):
    """Signals `applied(dict)` (the stored alignment) and `failed(message)`."""

    applied = QtCore.Signal(dict)
    failed = QtCore.Signal(str)

    def __init__(self, session, frame_index: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Register EO/IR")
        fit_to_screen(self, 1100, 800, on=parent)  # Apply stays on a 1366x768 laptop's screen
        self._session = session
        seq = session.sequence
        self._eo, self._ir = seq.raw_pair(frame_index)
        if self._eo is None or self._ir is None:
            raise ValueError("registration needs a frame with both EO and IR")
        lv = seq.display_levels()
        self._eo_u8 = apply_levels(self._eo, lv["eo"])
        self._ir_u8 = _grey_u8(self._ir, lv["ir"])
        self.eo_shape, self.ir_shape = self._eo.shape[:2], self._ir.shape[:2]
        self.eo_points: list[tuple[float, float]] = []
        self.ir_points: list[tuple[float, float]] = []
        self.result: reg.Registration | None = None
        self._start_h = reg.current_homography(session.alignment, self.ir_shape, self.eo_shape)
        self.runner = JobRunner(self, num_threads=1, name="registration", nice=REGISTRATION_NICE, freeze_gc=False)

        self.eo_view = _PointView("EO: click a point", "#ff4040")
        self.ir_view = _PointView("IR: click the same point", "#40c0ff")
        self.preview = pg.GraphicsLayoutWidget()
        self.preview_box = self.preview.addViewBox(lockAspect=True, invertY=True)
        self.preview_image = pg.ImageItem(axisOrder="row-major")
        self.preview_box.addItem(self.preview_image)
        self.preview.addLabel("Preview: IR warped onto EO through the estimate", row=1, col=0)
        self.eo_view.set_image(self._eo_u8)
        self.ir_view.set_image(self._ir_u8)
        self.eo_view.clicked.connect(lambda x, y: self.add_point("eo", x, y))
        self.ir_view.clicked.connect(lambda x, y: self.add_point("ir", x, y))

        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItem("Blend", "blend")
        self.mode_combo.addItem("Checkerboard", "checkerboard")
        self.mode_combo.currentIndexChanged.connect(lambda _i: self._update_preview())
        self.status_label = QtWidgets.QLabel()
        self.status_label.setWordWrap(True)
        self.undo_button = QtWidgets.QPushButton("Remove last point")
        self.clear_button = QtWidgets.QPushButton("Clear points")
        self.auto_button = QtWidgets.QPushButton("Auto-align")
        self.auto_button.setToolTip("ECC on edge maps of both images, coarse to fine; starts from the clicked "
                                    "pairs when there are 4 or more")
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Apply
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.apply_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Apply)
        self.undo_button.clicked.connect(self.remove_last_point)
        self.clear_button.clicked.connect(self.clear_points)
        self.auto_button.clicked.connect(self.auto_align)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        self.runner.failed.connect(self._on_auto_failed)
        self.runner.cancelled.connect(lambda: self._set_busy(False))

        pair = QtWidgets.QSplitter()
        pair.addWidget(self.eo_view)
        pair.addWidget(self.ir_view)
        tools = QtWidgets.QHBoxLayout()
        for w in (self.undo_button, self.clear_button, self.auto_button):
            w.setMinimumWidth(w.sizeHint().width() + 16)  # the theme's padding leaves the text touching the edge
            tools.addWidget(w)
        tools.addStretch(1)
        tools.addWidget(QtWidgets.QLabel("Preview"))
        tools.addWidget(self.mode_combo)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(pair)
        split.addWidget(self.preview)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addLayout(tools)
        lay.addWidget(self.status_label)
        lay.addWidget(self.buttons)
        self._refresh()

    # --- points ---------------------------------------------------------------------------------
    def add_point(self, which: str, x: float, y: float) -> None:
        """A click on EO or IR; a pair is complete once both have the same number of points."""
        shape = self.eo_shape if which == "eo" else self.ir_shape
        if not (-0.5 <= x <= shape[1] - 0.5 and -0.5 <= y <= shape[0] - 0.5):
            return
        pts = self.eo_points if which == "eo" else self.ir_points
        other = self.ir_points if which == "eo" else self.eo_points
        if len(pts) > len(other):  # this side is ahead: the new click replaces its unpaired point
            pts[-1] = (x, y)
        else:
            pts.append((x, y))
        self._refresh()

    def remove_last_point(self) -> None:
        longer = self.eo_points if len(self.eo_points) >= len(self.ir_points) else self.ir_points
        if longer:
            longer.pop()
        self._refresh()

    def clear_points(self) -> None:
        self.eo_points.clear()
        self.ir_points.clear()
        self._refresh()

    def _pairs(self) -> int:
        return min(len(self.eo_points), len(self.ir_points))

    def _refresh(self) -> None:
        self.eo_view.set_points(self.eo_points)
        self.ir_view.set_points(self.ir_points)
        n = self._pairs()
        if n >= reg.MIN_POINTS:
            try:
                self.result = reg.from_points(self.ir_points[:n], self.eo_points[:n], self.ir_shape, self.eo_shape)
            except reg.RegistrationError as exc:
                self.result = None
                self.status_label.setText(f"{n} pairs: {exc}")
            else:
                self.status_label.setText(f"{n} pairs: mean residual {self.result.residual:.2f} px")
        elif self.result is None or self.result.method == "manual":
            self.result = None
            self.status_label.setText(f"{n} pair(s): click {reg.MIN_POINTS - n} more in EO and IR, or Auto-align")
        self._update_preview()

    # --- preview and estimate ---------------------------------------------------------------------
    @property
    def homography(self) -> np.ndarray:
        """What the preview shows: the estimate, else the alignment in use."""
        return self.result.homography if self.result is not None else self._start_h

    def preview_array(self) -> np.ndarray:
        warped = reg.warp_ir(self._ir_u8, self.homography, self.eo_shape)
        return compose_preview(self._eo_u8, warped, str(self.mode_combo.currentData()))

    def _update_preview(self) -> None:
        self.preview_image.setImage(self.preview_array(), levels=(0, 255), autoLevels=False)
        self.apply_button.setEnabled(self.result is not None and not self.runner.running)

    def auto_align(self) -> bool:
        """Start ECC in the worker thread; False when one is running already."""
        if self.runner.running:
            return False
        init = self.result.homography if self.result is not None and self._pairs() >= reg.MIN_POINTS else None
        if init is None and self._session.alignment:
            init = self._start_h
        eo, ir = self._eo, self._ir

        def job(progress, cancel):
            r = reg.estimate_ecc(eo, ir, init, progress=lambda d, t: progress(d, t, 0.0), cancelled=cancel)
            reg.check_plausible(r)
            return r

        self._set_busy(True)
        self.runner.start(job, self._on_auto_done)
        return True

    def _set_busy(self, busy: bool) -> None:
        self.auto_button.setEnabled(not busy)
        self.apply_button.setEnabled(not busy and self.result is not None)
        if busy:
            self.status_label.setText("Auto-align: ECC on edge maps, coarse to fine…")

    def _on_auto_done(self, result: reg.Registration) -> None:
        self.result = result
        self._set_busy(False)
        self.status_label.setText(f"Auto-align: edge correlation {result.correlation:.3f}"
                                  + (f" (from {self._pairs()} clicked pairs)" if result.method == "manual+ecc" else ""))
        self._update_preview()

    def _on_auto_failed(self, message: str) -> None:
        self._set_busy(False)
        self.status_label.setText(f"Auto-align failed: {message}")
        self.failed.emit(message)

    def apply(self) -> None:
        """Store the estimate in the session (the project); the sequence re-reads IR through it."""
        if self.result is None:
            return
        d = self.result.to_dict()
        self._session.set_alignment(d)
        self.applied.emit(d)
        self.status_label.setText("Applied: IR is now resampled through this homography everywhere")

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        """Closing cancels a running Auto-align."""
        self.runner.shutdown()
        super().done(result)


def install_registration(win):
    """View > Register EO/IR…: opens the dialog on the shown frame; Apply re-reads the frame and
    drops the predictions made on the old IR grid."""
    act = QtGui.QAction("Register EO/IR…", win)
    act.setToolTip("Align IR onto EO by a homography: click point pairs or Auto-align (ECC on edges)")
    state: dict[str, RegistrationDialog | None] = {"dialog": None}

    def on_applied(_d: dict) -> None:
        if win.state.session is not None:
            win.state.session.clear_predictions()
        win.worker.clear_cache()
        win.reload_frame()
        win.show_status("EO/IR registration applied: IR is resampled through the new homography")

    def open_dialog() -> None:
        if win.state.session is None or win.state.index < 0:
            win.show_error("Open a sequence first: there is nothing to register.", "Register EO/IR")
            return
        old = state["dialog"]
        if old is not None:
            old.close()
            old.deleteLater()
        try:
            dlg = RegistrationDialog(win.state.session, win.state.index, parent=win)
        except (ValueError, OSError) as exc:
            win.show_error(str(exc), "Register EO/IR")
            return
        dlg.applied.connect(on_applied)
        dlg.failed.connect(lambda msg: win.show_status(f"Auto-align failed: {msg}", 10000))
        state["dialog"] = dlg
        dlg.open()

    act.triggered.connect(open_dialog)
    win.actions_by_name["register"] = act
    win.add_action("View", act)
    win.open_registration = open_dialog
    win.registration_state = state
    return act


def ask_register_dialog(parent: QtWidgets.QWidget | None, err: AspectMismatchError) -> bool:
    """True when the user opens a sequence whose IR has another aspect ratio in order to register it."""
    box = question_box(parent, QtWidgets.QMessageBox.Icon.Question, "IR needs registering",
                       "The IR frames have another aspect ratio than the EO frames.",
                       f"{err}\n\nOpen the sequence with IR plainly resized for now, and register EO/IR "
                       "(click point pairs or Auto-align) so IR lies on the EO grid?")
    register = box.addButton("Open and register…", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(register)
    box.exec()
    return box.clickedButton() is register


def open_or_register(win, path, project, **kw):
    """(sequence, needs registering) for the window's open: the project's stored alignment applied,
    or, when IR of another aspect ratio has none and the user agrees (`win.ask_register(err)`, which
    tests replace), IR plainly resized until the registration dialog stores one. None: declined."""
    try:
        return reg.open_aligned(path, project_path=project, **kw), False
    except AspectMismatchError as err:
        ask = getattr(win, "ask_register", None) or (lambda e: ask_register_dialog(win, e))
        if not ask(err):
            return None
    return reg.open_aligned(path, project_path=project, alignment=Alignment(), **kw), True
