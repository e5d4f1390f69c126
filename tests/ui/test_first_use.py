"""The window as a new user first drives it: views fitted, 1-based numbers, keys that match the
legend, labels that do not darken the picture, feedback, files, layout and a clean exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_window_dropped_without_close_exits_cleanly(tmp_path):
    """A window built from a script, never closed: the interpreter exits with 0, not an abort."""
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from PySide6 import QtCore, QtWidgets
        app = QtWidgets.QApplication([])
        from csknet_studio.core.data.base import ArraySequence
        from csknet_studio.core.model import create_model
        from csknet_studio.ui.main_window import MainWindow
        settings = QtCore.QSettings({str(tmp_path / "s.ini")!r}, QtCore.QSettings.Format.IniFormat)
        win = MainWindow(settings=settings, device="cpu")
        win.set_model(create_model("csknet-tiny"), None, torch.device("cpu"))
        eo = np.zeros((4, 32, 48, 3), np.uint8); ir = np.zeros((4, 32, 48), np.uint8)
        win.set_sequence(ArraySequence(eo, ir), project_path={str(tmp_path / "p")!r})
        win.show()
        app.processEvents()
        print("built")
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    assert "built" in r.stdout, r.stderr
    assert r.returncode == 0, r.stderr
    assert "QThread: Destroyed" not in r.stderr


def _covers_image(vb, w: int, h: int) -> bool:
    """The view shows the whole frame and not much more (aspect kept)."""
    (x0, x1), (y0, y1) = vb.viewRange()
    return x0 <= 0.5 and y0 <= 0.5 and x1 >= w - 0.5 and y1 >= h - 0.5 and min(x1 - x0 - w, y1 - y0 - h) < 2


def test_compare_modes_opens_with_the_images_fitted(main_window, qtbot):
    win = main_window
    compare = win.panels.compare
    win.docks["Compare modes"].show()
    qtbot.waitUntil(lambda: compare.result is not None, timeout=30000)
    qtbot.waitUntil(lambda: all(_covers_image(vb, 64, 48) for vb in compare.views), timeout=3000)
