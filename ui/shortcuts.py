"""The F1 shortcuts sheet, read from the window's live QActions and QShortcuts.

Built each time it opens from what is actually registered, so it cannot drift from the keys the
application really answers to; only keys handled outside Qt's shortcut system (mouse, brush
modifiers) are listed as fixed entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.ui.screen_fit import fit_to_screen

# Keys handled by event filters / mouse handlers rather than QAction or QShortcut.
FIXED_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Mouse", "Left drag", "Paint with the brush or eraser (Pan tool: pan the views)"),
    ("Mouse", "Left click", "Flood fill, or add a polygon vertex"),
    ("Mouse", "Left drag a vertex (Polygon)", "Move that vertex of the polygon in progress"),
    ("Mouse", "Left click (Take region)", "Take the model's region under the cursor, with its predicted class"),
    ("Mouse", "Shift+left click (Take region)", "Take the model's region under the cursor as the picked class"),
    ("Mouse", "Left drag (Snap brush)", "Fill the EO + IR superpixels the stroke crosses with the picked class"),
    ("Mouse", "Left drag (Box)", "GrabCut inside the box: its foreground gets the picked class"),
    ("Mouse", "Wheel / right drag", "Zoom the views (they move together)"),
    ("Mouse", "Right click", "View menu: reset zoom"),
    ("Mouse", "Click a legend entry", "Pick that class"),
    ("Mouse", "Click a point (Model internals > Exchange)", "Show that channel before / after exchange"),
)


# The Keys column's widest (px): longer mouse gestures wrap, so What it does keeps its room.
KEYS_COLUMN_MAX = 220


@dataclass(frozen=True)
class ShortcutEntry:
    keys: str
    description: str
    group: str


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…").strip()


def _action_group(action: QtGui.QAction) -> str:
    """Top-level menu holding the action ("File", "View", ...) or "General"."""
    for obj in action.associatedObjects():
        if isinstance(obj, QtWidgets.QMenu):
            menu = obj
            while isinstance(menu.parent(), QtWidgets.QMenu):
                menu = menu.parent()
            title = _clean(menu.title())
            if title:
                return title
    return "General"


def collect_shortcuts(root: QtWidgets.QWidget) -> list[ShortcutEntry]:
    """Every enabled-or-not QAction and QShortcut under `root` that has a key, sorted by group."""
    entries: dict[tuple[str, str], ShortcutEntry] = {}
    fmt = QtGui.QKeySequence.SequenceFormat.NativeText
    for action in root.findChildren(QtGui.QAction):
        keys = [k.toString(fmt) for k in action.shortcuts() if not k.isEmpty()]
        if not keys or not action.isVisible():  # hidden: e.g. a class id the scheme lacks
            continue
        desc = _clean(action.toolTip() if not action.text() else action.text())
        entry = ShortcutEntry(", ".join(keys), desc, _action_group(action))
        entries.setdefault((entry.keys, entry.description), entry)
    for sc in root.findChildren(QtGui.QShortcut):
        if sc.key().isEmpty():
            continue
        desc = _clean(sc.whatsThis() or sc.objectName() or "")
        if not desc:
            continue  # an unnamed internal shortcut has nothing to tell the user
        entry = ShortcutEntry(sc.key().toString(fmt), desc, "General")
        entries.setdefault((entry.keys, entry.description), entry)
    return sort_by_group(list(entries.values()), menu_order(root))


def menu_order(root: QtWidgets.QWidget) -> list[str]:
    """Titles of the menu bar's menus, left to right (the order a user reads them in)."""
    bar = root.menuBar() if isinstance(root, QtWidgets.QMainWindow) else None
    if bar is None:
        return []
    return [_clean(a.text()) for a in bar.actions() if a.menu() is not None]


def sort_by_group(entries: list[ShortcutEntry], order: list[str]) -> list[ShortcutEntry]:
    """Groups in menu-bar order, then "General", then the rest (Mouse) by name; inside a group the
    entries keep the order they were created in, which is the order of their menu."""
    def rank(e: ShortcutEntry) -> tuple:
        if e.group in order:
            return (0, order.index(e.group), "")
        return (1 if e.group == "General" else 2, 0, e.group)

    return sorted(entries, key=rank)


class ShortcutsDialog(QtWidgets.QDialog):
    """Non-modal table of shortcuts (group, keys, what they do) with a filter box."""

    def __init__(self, root: QtWidgets.QWidget, fixed: tuple[tuple[str, str, str], ...] = FIXED_KEYS,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent or root)
        self.setWindowTitle("Keyboard shortcuts")
        fit_to_screen(self, 720, 600, share=0.85, on=parent or root)
        self._root = root
        self._fixed = fixed
        self.filter_edit = QtWidgets.QLineEdit()
        self.filter_edit.setPlaceholderText("Filter…")
        self.filter_edit.setClearButtonEnabled(True)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Group", "Keys", "Action"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(True)  # a long mouse gesture wraps in its cell, not off the sheet's right edge
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.refresh()

    def entries(self) -> list[ShortcutEntry]:
        fixed = [ShortcutEntry(k, d, g) for g, k, d in self._fixed]
        return sort_by_group(collect_shortcuts(self._root) + fixed, menu_order(self._root))

    def refresh(self) -> None:
        """Re-read the window's shortcuts (called on every show)."""
        rows = self.entries()
        self.table.setRowCount(len(rows))
        for r, e in enumerate(rows):
            for c, text in enumerate((e.group, e.keys, e.description)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        keys_w = min(self.table.columnWidth(1), KEYS_COLUMN_MAX)
        self.table.setColumnWidth(1, keys_w)
        self.table.resizeRowsToContents()
        self._apply_filter(self.filter_edit.text())

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt override)
        self.refresh()
        super().showEvent(event)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r in range(self.table.rowCount()):
            row = " ".join(self.table.item(r, c).text().lower() for c in range(3))
            self.table.setRowHidden(r, bool(needle) and needle not in row)


def install_shortcuts_sheet(window: QtWidgets.QMainWindow) -> QtGui.QAction:
    """Create the F1 action on `window` that opens (and re-reads) the shortcuts sheet."""
    action = QtGui.QAction("Keyboard shortcuts…", window)
    action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_F1))
    action.setShortcutContext(QtCore.Qt.ShortcutContext.ApplicationShortcut)
    action.setToolTip("List every keyboard shortcut")
    dialog: list[ShortcutsDialog] = []

    def show() -> None:
        if not dialog:
            dialog.append(ShortcutsDialog(window))
        dialog[0].show()
        dialog[0].raise_()
        dialog[0].activateWindow()

    action.triggered.connect(show)
    window.addAction(action)
    return action
