"""Opening sizes that fit the screen: a window wider than a 1366x768 laptop screen hides its
right-hand docks and dialog buttons off the edge."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


def fitted_size(width: int, height: int, avail: QtCore.QRect, share: float = 0.9) -> QtCore.QSize:
    """width x height, or `share` of the available screen area along each side where that is smaller."""
    return QtCore.QSize(min(width, int(avail.width() * share)), min(height, int(avail.height() * share)))


def fit_to_screen(widget: QtWidgets.QWidget, width: int, height: int, share: float = 0.9,
                  on: QtWidgets.QWidget | None = None) -> None:
    """Resize `widget` to width x height, shrunk to fit the screen `on` (default: the widget's own)
    is shown on, and centre it there when it is a top-level window."""
    screen = (on or widget).screen() or QtGui.QGuiApplication.primaryScreen()
    avail = screen.availableGeometry()
    widget.resize(fitted_size(width, height, avail, share))
    if widget.isWindow() and widget.parentWidget() is None:
        frame = widget.frameGeometry()
        frame.moveCenter(avail.center())
        widget.move(frame.topLeft())
