"""The application's look: qdarkstyle's dark (default) or light palette."""

from __future__ import annotations

import qdarkstyle
from PySide6 import QtWidgets
from qdarkstyle.light.palette import LightPalette

THEMES = ("dark", "light")


def apply_theme(app: QtWidgets.QApplication, theme: str) -> None:
    """qdarkstyle dark (default) or its light palette. Image views keep a dark background."""
    if theme == "light":
        app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6", palette=LightPalette))
    elif theme == "dark":
        app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    else:
        raise ValueError(f"unknown theme {theme!r} (dark or light)")
