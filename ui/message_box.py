"""One builder for the app's question boxes (an icon, a title, the question and its details)."""

from __future__ import annotations

from PySide6 import QtWidgets


def question_box(parent: QtWidgets.QWidget | None, icon: QtWidgets.QMessageBox.Icon, title: str, text: str,
                 details: str) -> QtWidgets.QMessageBox:
    """A message box the caller adds its buttons to and runs (`exec()`)."""
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setText(text)
    box.setInformativeText(details)
    return box
