"""Background threads stop with the interpreter, even when the app never ran its event loop.

A QThread still running when Python drops its wrapper aborts the process ("QThread: Destroyed
while thread ... is still running"). `aboutToQuit` only comes when `exec()` returns, so a window
built from a script or a notebook and simply dropped never sees it; an `atexit` hook does, and it
runs before PySide6's own clean-up because it is registered after PySide6 is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from collections.abc import Callable

from PySide6 import QtCore

_stoppers: list[weakref.WeakMethod] = []


def stop_with_app(shutdown: Callable[[], object]) -> None:
    """Call the bound method `shutdown` on quit or at interpreter exit, whichever comes first.

    Held weakly: a worker that is already gone is skipped."""
    _stoppers[:] = [r for r in _stoppers if r() is not None]
    _stoppers.append(weakref.WeakMethod(shutdown))
    app = QtCore.QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(shutdown)


def _stop_all() -> None:
    for ref in reversed(_stoppers):
        fn = ref()
        if fn is None:
            continue
        with contextlib.suppress(RuntimeError):  # its C++ side is gone, and its thread with it
            fn()
    _stoppers.clear()


atexit.register(_stop_all)
