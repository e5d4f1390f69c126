"""QApplication set-up and `run_app(args)` behind `csknet-studio` (theme: ui/theme.py; model: ui/model_loading.py).

With no arguments the Studio opens the bundled demo sequence with the bundled default checkpoint
(`resources/default_model.pt`); when that file is absent it runs a freshly initialised model and
says so ("untrained model") rather than refusing to start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from csknet_studio.core.atomic import atomic_path
from csknet_studio.core.demo import default_demo_dir, ensure_default_demo, is_complete_demo
from csknet_studio.core.device import resolve_device
from csknet_studio.core.errors import CSKNetError
from csknet_studio.ui.main_window import MainWindow
from csknet_studio.ui.model_loading import DEFAULT_CHECKPOINT, FALLBACK_MODEL, load_model_into
from csknet_studio.ui.theme import apply_theme

ORG = "CSKNet"
APP = "CSKNet Studio"
SCREENSHOT_TIMEOUT_S = 180

__all__ = ["APP", "DEFAULT_CHECKPOINT", "FALLBACK_MODEL", "ORG", "apply_theme", "display_problem",
           "load_model_into", "make_app", "run_app"]


def display_problem() -> str | None:
    """A message when Qt has nowhere to draw, else None."""
    if sys.platform in ("win32", "darwin"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return None
    return ("csknet-studio: no display found (DISPLAY / WAYLAND_DISPLAY are unset).\n"
            "  Run it under a virtual display:   xvfb-run -a csknet-studio\n"
            "  or render one window to a file:   QT_QPA_PLATFORM=offscreen csknet-studio --screenshot shot.png\n"
            "  Headless work needs no GUI:       csknet-studio infer|eval|export --help")


# How long a background thread may hold the GIL while the GUI thread waits for it (Python's
# default is 5 ms). Inference, read-ahead and frame rendering run Python between their numpy /
# torch calls; at 5 ms each hand-over to the GUI thread could stall a repaint by that much, and a
# frame change needs dozens of them.
GIL_SWITCH_INTERVAL_S = 0.0005


def make_app(theme: str = "dark") -> QtWidgets.QApplication:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "csknet-studio"])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    apply_theme(app, theme)
    return app


def _default_sequence(parent: QtWidgets.QWidget | None = None) -> Path:
    """The bundled demo; generated once per user (a progress dialog shows the first time)."""
    if is_complete_demo(default_demo_dir()):
        return Path(ensure_default_demo())
    dlg = QtWidgets.QProgressDialog("Preparing the demo sequence (first launch only)…", "", 0, 100, parent)
    dlg.setWindowTitle(APP)
    dlg.setCancelButton(None)
    dlg.setMinimumDuration(0)
    dlg.setWindowModality(QtCore.Qt.WindowModality.WindowModal)

    def progress(done: int, total: int) -> None:
        dlg.setMaximum(max(1, total))
        dlg.setValue(done)
        QtWidgets.QApplication.processEvents()

    try:
        return Path(ensure_default_demo(progress=progress))
    finally:
        dlg.close()
        dlg.deleteLater()


def run_app(args) -> int:
    """Start the GUI (blocking until the window closes); with --screenshot, render and exit."""
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    resolve_device(getattr(args, "device", "auto"))  # an unavailable device: one clear CLI error
    app = make_app(getattr(args, "theme", None) or "dark")
    settings = QtCore.QSettings(ORG, APP)
    if getattr(args, "theme", None) is None and settings.value("theme") in ("dark", "light"):
        apply_theme(app, settings.value("theme"))
    win = MainWindow(settings=settings, device=getattr(args, "device", "auto"))
    win.ir_scale = getattr(args, "ir_scale", None)
    win.project_flags = {"read_only": bool(getattr(args, "read_only", False)),
                         "take_over_lock": bool(getattr(args, "take_over_lock", False))}
    shot = getattr(args, "screenshot", None)
    frame = getattr(args, "frame", None)
    result = {"rc": 0}
    if shot:
        _arm_screenshot(app, win, Path(shot), result, None if frame is None else frame - 1)
    win.files.restore_state()
    win.show()
    if load_model_into(win, getattr(args, "checkpoint", None)) == "error" and shot:
        _save_shot(win, Path(shot))
        return 1
    seq = getattr(args, "sequence", None)
    if seq is None:
        try:
            seq = _default_sequence(win)
        except (CSKNetError, OSError) as exc:
            win.show_error(f"Could not prepare the demo sequence: {exc}")
    topics = {k: v for k in ("eo_topic", "ir_topic") if (v := getattr(args, k, None))}
    if seq is not None and not win.open_sequence(seq, topics or None) and shot:
        _save_shot(win, Path(shot))
        return 1
    if frame is not None and win.state.sequence is not None:
        if frame > len(win.state.sequence):
            print(f"csknet-studio: --frame {frame}: the sequence has {len(win.state.sequence)} frames", file=sys.stderr)
            win.confirm_close = lambda: True
            win.close()
            return 2
        win.set_frame(frame - 1)
    rc = app.exec()
    return result["rc"] or rc


def _save_shot(win, path: Path) -> bool:
    img = win.grab().toImage()
    with atomic_path(path, suffix=".png") as tmp:
        ok = img.save(str(tmp), "PNG")
    return ok


def _arm_screenshot(app, win, path: Path, result: dict, frame: int | None = None) -> None:
    """Save the window once the first prediction is on screen (of frame index `frame` when given),
    then quit."""

    def shoot() -> None:
        QtWidgets.QApplication.processEvents()
        if not _save_shot(win, path):
            result["rc"] = 1
        shown = f" (frame {win.state.index + 1})" if win.state.index >= 0 else ""
        print(f"screenshot written to {path}{shown}" if not result["rc"] else f"could not write {path}")
        win.confirm_close = lambda: True
        win.close()
        app.quit()

    def timeout() -> None:
        print(f"no segmentation within {SCREENSHOT_TIMEOUT_S} s; saving the window as it is", file=sys.stderr)
        result["rc"] = 1
        shoot()

    def on_ready(_pred) -> None:
        if frame is not None and win.state.index != frame:
            return
        win.prediction_ready.disconnect(on_ready)
        QtCore.QTimer.singleShot(300, shoot)

    win.prediction_ready.connect(on_ready)
    win.error_shown.connect(lambda msg: print(f"error: {msg}", file=sys.stderr))
    QtCore.QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, timeout)
