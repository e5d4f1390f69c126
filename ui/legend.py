"""Class legend: colour swatch per class, visibility toggle, click (or Shift+number) to pick.

Hiding a class only changes the overlay's LUT alpha: the labels themselves are untouched.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.core.classes import ClassScheme


class ClassLegend(QtWidgets.QWidget):
    """Rows of (eye checkbox, swatch, "n  name"); the picked class is highlighted."""

    class_picked = Signal(int)
    visibility_changed = Signal(object)  # frozenset of hidden class ids

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QtWidgets.QListWidget(self)
        self.list.setToolTip("Click a class to paint with it (Shift+1..9 also picks); untick to hide it")
        self.list.setIconSize(QtCore.QSize(16, 16))
        self.setMinimumWidth(170)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentRowChanged.connect(self._on_row)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list)
        self._scheme: ClassScheme | None = None

    def set_scheme(self, scheme: ClassScheme) -> None:
        self._scheme = scheme
        self.list.blockSignals(True)
        self.list.clear()
        for i, (name, rgb) in enumerate(zip(scheme.class_names, scheme.palette, strict=True)):
            pix = QtGui.QPixmap(16, 16)
            pix.fill(QtGui.QColor(*rgb))
            key = f"Shift+{i + 1}" if i < 9 else ""
            item = QtWidgets.QListWidgetItem(QtGui.QIcon(pix), f"{i}  {name}")
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked)
            item.setToolTip(f"class {i} '{name}' {key}".strip())
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.set_current(min(1, scheme.num_classes - 1))

    def set_current(self, cls: int) -> None:
        if 0 <= cls < self.list.count():
            self.list.blockSignals(True)
            self.list.setCurrentRow(cls)
            self.list.blockSignals(False)

    def hidden(self) -> frozenset[int]:
        return frozenset(i for i in range(self.list.count())
                         if self.list.item(i).checkState() != QtCore.Qt.CheckState.Checked)

    def set_visible(self, cls: int, visible: bool) -> None:
        item = self.list.item(cls)
        if item is not None:
            item.setCheckState(QtCore.Qt.CheckState.Checked if visible else QtCore.Qt.CheckState.Unchecked)

    def _on_item_changed(self, _item) -> None:
        self.visibility_changed.emit(self.hidden())

    def _on_row(self, row: int) -> None:
        if row >= 0:
            self.class_picked.emit(row)
