"""Class legend: colour swatch per class, visibility toggle, click (or Shift+id) to pick.

Hiding a class only changes the overlay's LUT alpha: the labels themselves are untouched. The
background class (id 0 in MFNet, PST900 and FMB) and unlabelled pixels (255, what the eraser
writes) start hidden, so the labels never darken the picture; their rows show them on demand.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.core.classes import IGNORE_INDEX, ClassScheme

# Drawn for unlabelled pixels when their row is ticked: light grey reads over EO and IR alike.
UNLABELLED_RGB = (220, 220, 220)


# The key that picks "unlabelled" (255, ignored by training and scoring) as the paint class.
UNLABELLED_KEY = "Shift+I"


def class_key(cls: int) -> str:
    """The key that picks class `cls`: Shift+ its id, for ids 0..9 (the legend shows the same id);
    Shift+I for unlabelled (ignore)."""
    if cls == IGNORE_INDEX:
        return UNLABELLED_KEY
    return f"Shift+{cls}" if 0 <= cls <= 9 else ""


def default_hidden(scheme: ClassScheme) -> frozenset[int]:
    """Ids drawn transparent until the user ticks them: background and unlabelled."""
    hidden = {IGNORE_INDEX}
    if scheme.shown_name(0) == "background":
        hidden.add(0)
    return frozenset(hidden)


class ClassLegend(QtWidgets.QWidget):
    """Rows of (eye checkbox, swatch, "n  name"), then "unlabelled"; the picked class is highlighted."""

    class_picked = Signal(int)
    visibility_changed = Signal(object)  # frozenset of hidden class ids (255 for unlabelled)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QtWidgets.QListWidget(self)
        self.list.setToolTip("Click a class to paint with it (Shift+its id also picks it); tick or untick "
                             "to show or hide it")
        self.list.setIconSize(QtCore.QSize(16, 16))
        self.setMinimumWidth(150)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentRowChanged.connect(self._on_row)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list)
        self._scheme: ClassScheme | None = None

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        """Every row and no more: the dock beside it (Frames) gets the rest of the column."""
        rows = max(self.list.count(), 4)
        row_h = self.list.sizeHintForRow(0) if self.list.count() else self.fontMetrics().height() + 4
        return QtCore.QSize(190, rows * row_h + 2 * self.list.frameWidth() + 8)

    def set_scheme(self, scheme: ClassScheme) -> None:
        self._scheme = scheme
        hidden = default_hidden(scheme)
        self.list.blockSignals(True)
        self.list.clear()
        rows = [(i, name, rgb) for i, (name, rgb) in enumerate(zip(scheme.class_names, scheme.palette, strict=True))]
        rows.append((IGNORE_INDEX, "unlabelled", UNLABELLED_RGB))
        for i, name, rgb in rows:
            pix = QtGui.QPixmap(16, 16)
            pix.fill(QtGui.QColor(*rgb))
            text = f"{i}  {scheme.shown_name(i)}" if i != IGNORE_INDEX else "    unlabelled"
            item = QtWidgets.QListWidgetItem(QtGui.QIcon(pix), text)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, i)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Unchecked if i in hidden else QtCore.Qt.CheckState.Checked)
            if i == IGNORE_INDEX:
                item.setToolTip("Pixels nobody labelled, ignored by training and scoring: pick it (Shift+I) to "
                                "paint, fill or outline them with any tool; the eraser (E) makes them too; "
                                "tick to show them")
            else:
                tip = f"class {i} '{name}' {class_key(i)}".strip()
                if scheme.shown_name(i) != name:
                    tip += ": the scheme's background class, a class like any other (not the unlabelled pixels)"
                item.setToolTip(tip)
            self.list.addItem(item)
        self.list.blockSignals(False)
        # No taller than its rows: the empty half of a column went to the legend, not to Frames.
        self.setMaximumHeight(self.sizeHint().height())
        self.set_current(min(1, scheme.num_classes - 1))
        self.visibility_changed.emit(self.hidden())

    def _row_of(self, cls: int) -> int:
        if self._scheme is not None and cls == IGNORE_INDEX:
            return self._scheme.num_classes
        return cls

    def set_current(self, cls: int) -> None:
        row = self._row_of(cls)
        if 0 <= row < self.list.count():
            self.list.blockSignals(True)
            self.list.setCurrentRow(row)
            self.list.blockSignals(False)

    def hidden(self) -> frozenset[int]:
        return frozenset(self.list.item(r).data(QtCore.Qt.ItemDataRole.UserRole) for r in range(self.list.count())
                         if self.list.item(r).checkState() != QtCore.Qt.CheckState.Checked)

    def set_visible(self, cls: int, visible: bool) -> None:
        item = self.list.item(self._row_of(cls))
        if item is not None:
            item.setCheckState(QtCore.Qt.CheckState.Checked if visible else QtCore.Qt.CheckState.Unchecked)

    def _on_item_changed(self, _item) -> None:
        self.visibility_changed.emit(self.hidden())

    def _on_row(self, row: int) -> None:
        if 0 <= row < self.list.count() - 1:
            self.class_picked.emit(row)
        elif row == self.list.count() - 1 and row >= 0:
            self.class_picked.emit(IGNORE_INDEX)
