from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from csknet_studio.ui.shortcuts import ShortcutsDialog, collect_shortcuts, install_shortcuts_sheet


def _window(qtbot) -> QtWidgets.QMainWindow:
    win = QtWidgets.QMainWindow()
    qtbot.addWidget(win)
    menu = win.menuBar().addMenu("&File")
    save = QtGui.QAction("&Save", win)
    save.setShortcut(QtGui.QKeySequence("Ctrl+S"))
    menu.addAction(save)
    sc = QtGui.QShortcut(QtGui.QKeySequence("U"), win)
    sc.setWhatsThis("Next most uncertain frame")
    QtGui.QShortcut(QtGui.QKeySequence("X"), win)  # unnamed: internal, not listed
    return win


def test_sheet_lists_the_live_actions_and_follows_changes(qtbot):
    win = _window(qtbot)
    f1 = install_shortcuts_sheet(win)
    got = {(e.keys, e.description, e.group) for e in collect_shortcuts(win)}
    assert ("Ctrl+S", "Save", "File") in got
    assert ("U", "Next most uncertain frame", "General") in got
    assert ("F1", "Keyboard shortcuts", "General") in got
    assert not any(k == "X" for k, _, _ in got)

    dlg = ShortcutsDialog(win)
    qtbot.addWidget(dlg)
    [save] = [a for a in win.findChildren(QtGui.QAction) if a.text() == "&Save"]
    save.setShortcut(QtGui.QKeySequence("Ctrl+Shift+S"))
    dlg.show()  # re-reads on show: the sheet cannot go stale
    keys = [dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())]
    assert "Ctrl+Shift+S" in keys and "Ctrl+S" not in keys
    assert "Left drag" in keys  # fixed (mouse) entries are listed too

    dlg.filter_edit.setText("uncertain")
    visible = [r for r in range(dlg.table.rowCount()) if not dlg.table.isRowHidden(r)]
    assert [dlg.table.item(r, 1).text() for r in visible] == ["U"]
    dlg.close()

    f1.trigger()
    sheets = [w for w in win.findChildren(ShortcutsDialog) if w.isVisible()]
    assert len(sheets) == 1
    sheets[0].close()
