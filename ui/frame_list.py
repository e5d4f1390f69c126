"""The frame list: every frame's name with its state (not seen / predicted / propagated / corrected / bad)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.ui.timeline import STATE_COLORS, STATE_TEXT


class FrameList(QtWidgets.QListWidget):
    """Click a row to show that frame; colours match the timeline strip."""

    frame_requested = Signal(int)
    FOLLOW_MS = 250

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
        # While the frames change fast (a slider drag, playback) the list follows at most every
        # FOLLOW_MS: moving its current row and scrolling repainted the list and its dock, 3-4 ms of
        # the GUI thread on every frame change.
        self._pending = -1
        self._follow = QtCore.QTimer(self)
        self._follow.setSingleShot(True)
        self._follow.setInterval(self.FOLLOW_MS)
        self._follow.timeout.connect(self._catch_up)

    def set_frames(self, names: list[str], states: list[str]) -> None:
        self.blockSignals(True)
        self.clear()
        self._pending = -1
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

    def follow(self, index: int) -> None:
        """Make `index` the current row now, or, within FOLLOW_MS of the last move, when that
        time is up (the newest index wins)."""
        self._pending = index
        if not self._follow.isActive():
            self._catch_up()

    def _catch_up(self) -> None:
        if self._pending < 0 or self._pending == self.currentRow():
            return
        self.set_current(self._pending)
        self._follow.start()

    def set_current(self, index: int) -> None:
        self._pending = index
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
