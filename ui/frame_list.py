"""The frame list: every frame's name with its state (not seen / predicted / propagated / corrected / bad)."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.ui.timeline import STATE_COLORS, STATE_TEXT


class FrameList(QtWidgets.QListWidget):
    """Click a row to show that frame; colours match the timeline strip."""

    frame_requested = Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUniformItemSizes(True)
        self.setToolTip("Frames and their state; click to open (green corrected, amber propagated, blue "
                        "predicted, red bad)")
        self._icons = {}
        for state, color in STATE_COLORS.items():
            pix = QtGui.QPixmap(10, 10)
            pix.fill(color)
            self._icons[state] = QtGui.QIcon(pix)
        self._states: list[str] = []
        self.currentRowChanged.connect(self._on_row)

    def set_frames(self, names: list[str], states: list[str]) -> None:
        self.blockSignals(True)
        self.clear()
        self._states = list(states)
        for i, (name, st) in enumerate(zip(names, states, strict=True)):
            item = QtWidgets.QListWidgetItem(self._icons[st], f"{i + 1:5d}  {name}")
            item.setToolTip(STATE_TEXT[st])
            self.addItem(item)
        self.blockSignals(False)

    def set_state(self, index: int, state: str) -> None:
        if 0 <= index < self.count() and self._states[index] != state:
            self._states[index] = state
            item = self.item(index)
            item.setIcon(self._icons[state])
            item.setToolTip(STATE_TEXT[state])

    def set_current(self, index: int) -> None:
        self.blockSignals(True)
        self.setCurrentRow(index)
        self.blockSignals(False)
        item = self.item(index)
        if item is not None:
            self.scrollToItem(item, QtWidgets.QAbstractItemView.ScrollHint.EnsureVisible)

    def _on_row(self, row: int) -> None:
        if row >= 0:
            self.frame_requested.emit(row)

    def state(self, index: int) -> str:
        return self._states[index]


__all__ = ["FrameList"]
