"""Guard for the PySide6 6.12.0 bug that pinned us below 6.12.

6.12.0 on CPython 3.11 drops one reference to None on every call of a void Qt method, so a GUI
aborts with `Fatal Python error: none_dealloc` after a few thousand calls. If this passes on a
newer PySide6, the `<6.12` pin in pyproject.toml can be lifted.
"""

from __future__ import annotations

import sys

from PySide6 import QtWidgets


def test_void_qt_calls_do_not_leak_none_references(qapp):
    w = QtWidgets.QWidget()
    w.resize(50, 50)
    before = sys.getrefcount(None)
    for _ in range(2000):
        w.update()
        w.resize(60, 60)
        qapp.processEvents()
    after = sys.getrefcount(None)
    w.deleteLater()
    assert after >= before - 50, f"None refcount fell by {before - after} over 2000 void calls"
