"""Thermal wiring of the main window: the °C span controls feed the views, the span controls are
enabled for radiometric sequences, and View ▸ IR temperature scale… tells the app how a sequence's
counts read as °C when its files do not say (a unit, or GAIN,OFFSET). The scale the user gives
(the dialog, or `--ir-scale` at launch) is kept in the open sequence's project, which applies it
on the next open (`core.project_settings`)."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from csknet_studio.core.data.detect import sidecar_ir_scale, sidecar_root
from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.project_settings import store_ir_scale, stored_ir_scale_text
from csknet_studio.core.radiometry import parse_ir_scale


def install_thermal(win) -> None:
    """Wire the span controls, the colour bar and View ▸ IR temperature scale… into `win`."""
    win.controls.span_changed.connect(win.views.set_span)
    win.views.set_span(*win.controls.span)
    win.sequence_opened.connect(lambda seq: win.controls.set_radiometric(bool(getattr(seq, "radiometric", False))))
    win.sequence_opened.connect(lambda _seq: remember_ir_scale(win) if win.ir_scale else None)
    act = QtGui.QAction("IR temperature scale…", win)
    act.setToolTip("How the IR values of the open sequence read as °C (a unit or GAIN,OFFSET)")
    act.triggered.connect(lambda: ask_ir_scale(win))
    win.actions_by_name["ir_scale"] = act
    win.add_action("View", act)


def ask_ir_scale(win, text: str | None = None) -> bool:
    """Ask for (or take `text` as) the open sequence's IR scale and apply it; empty = as its files say."""
    seq = win.state.sequence
    if seq is None:
        return False
    if text is None:
        current = win.ir_scale or project_ir_scale(win) or ""
        text, ok = QtWidgets.QInputDialog.getText(
            win, "IR temperature scale",
            "How the IR values read as °C: a unit (centikelvin, kelvin, celsius, ...) or GAIN,OFFSET\n"
            "(°C = value × GAIN + OFFSET). Leave empty to use what the files state.", text=current)
        if not ok:
            return False
    text = text.strip()
    try:
        scale = parse_ir_scale(text) if text else None
    except ValueError as exc:
        win.show_error(str(exc))
        return False
    win.ir_scale = text or None
    if scale is not None:
        seq.set_ir_scale(scale)
    else:  # back to what the files and a sidecar JSON say
        root = sidecar_root(seq)
        try:
            fallback = None if root is None else sidecar_ir_scale(root)
        except CSKNetError as exc:
            win.show_error(str(exc))
            fallback = None
        seq.set_ir_scale(fallback, override=False)
    remember_ir_scale(win)
    win.controls.set_radiometric(seq.radiometric)
    win.reload_frame()
    win.show_status("IR values read as " + (seq.radiometry.describe() if seq.radiometric else "raw counts (not °C)"))
    return True


def _writable_project(win):
    session = win.state.session
    if session is None or getattr(session, "read_only", True) or getattr(session, "project_path", None) is None:
        return None
    return session.project_path


def project_ir_scale(win) -> str | None:
    """The IR scale the open sequence's project keeps (what its open applied), else None."""
    session = win.state.session
    try:
        return stored_ir_scale_text(None, getattr(session, "project_path", None)) if session is not None else None
    except CSKNetError:
        return None


def remember_ir_scale(win) -> bool:
    """Keep `win.ir_scale` (None: forget the kept one) in the open sequence's project, when the
    app may write it (not read-only, not held by another copy)."""
    project = _writable_project(win)
    if project is None:
        return False
    try:
        store_ir_scale(project, win.ir_scale)
    except (CSKNetError, OSError, ValueError) as exc:
        win.show_error(f"The IR temperature scale could not be kept in the project {project}:\n{exc}")
        return False
    return True
