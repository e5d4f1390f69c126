"""UI fixtures: a real MainWindow with the tiny model on a small synthetic sequence.

`main_window` closes the window at the end and fails the test when the inference thread is still
running or a top-level window leaked (napari's make_napari_viewer habit). Settings go to a
temporary INI file, never to the user's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PySide6 import QtCore, QtWidgets

from csknet_studio.core.data.memory import ArraySequence
from csknet_studio.core.model import create_model

H, W, N = 48, 64, 8


def _synthetic_frames(n: int = N, h: int = H, w: int = W, seed: int = 0):
    """Blobs that are bright in EO only, in IR only, or in both, so the modes disagree."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    eo = np.zeros((n, h, w, 3), np.uint8)
    ir = np.zeros((n, h, w), np.uint8)
    for t in range(n):
        eo[t] = (40 + 30 * np.sin(xx / 7.0 + t))[..., None].astype(np.uint8)
        ir[t] = (60 + 20 * np.cos(yy / 5.0 - t)).astype(np.uint8)
        for k in range(3):
            cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 8)
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
            if k != 1:
                eo[t][blob] = (220, 180, 40)
            if k != 0:
                ir[t][blob] = 240
    return eo, ir


@pytest.fixture(scope="session")
def synthetic_frames() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """`synthetic_frames(n=8, h=48, w=64, seed=0)`: (eo, ir) stacks of blobs in EO only, IR only, both."""
    return _synthetic_frames


@pytest.fixture
def qsettings(tmp_path) -> QtCore.QSettings:
    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def tiny_sequence():
    eo, ir = _synthetic_frames()
    seq = ArraySequence(eo, ir, names=[f"f{i:03d}" for i in range(N)])
    yield seq
    seq.close()


def labelling_tiny_model():
    """csknet-tiny, untrained, with a zero classifier bias and a sharper classifier.

    An untrained head's bias decides every pixel (one class everywhere, whatever the mode); without
    it the labels follow the features, so the three modes give different masks, as a trained
    model's do. Still the real model and the real forward pass."""
    torch.manual_seed(0)
    model = create_model("csknet-tiny")
    with torch.no_grad():
        for head in model.heads.values():  # EO, IR and Fusion
            head.bias.zero_()
            head.weight.mul_(20)
    return model


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return create_model("csknet-tiny")


@pytest.fixture
def bare_window(qapp, qsettings):
    """A MainWindow with the tiny model and nothing open; closed and checked at teardown."""
    from csknet_studio.ui.main_window import MainWindow

    before = set(QtWidgets.QApplication.topLevelWidgets())
    threads_before = set(threading.enumerate())
    win = MainWindow(settings=qsettings, device="cpu")
    win.confirm_close = lambda: True  # no modal prompt in tests
    win.set_model(labelling_tiny_model(), None, torch.device("cpu"))
    win.resize(1000, 600)
    win.show()
    yield win
    win.close()
    assert not win.worker.is_running(), "inference thread still running after close"
    for t in set(threading.enumerate()) - threads_before:  # reader prefetch pools, job threads
        t.join(timeout=5)
        assert not t.is_alive(), f"thread {t.name} still running after close"
    win.deleteLater()
    QtWidgets.QApplication.processEvents()
    leaked = [w for w in QtWidgets.QApplication.topLevelWidgets()
              if w not in before and w.isVisible() and w is not win]
    assert not leaked, f"top-level widgets left open: {leaked}"


@pytest.fixture
def main_window(bare_window, tiny_sequence, tmp_path, qtbot):
    """`bare_window` showing `tiny_sequence` (project in tmp_path), first result on screen."""
    with qtbot.waitSignal(bare_window.prediction_ready, timeout=30000):
        bare_window.set_sequence(tiny_sequence, project_path=tmp_path / "project")
    return bare_window
