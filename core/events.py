"""A tiny Qt-free signal: the session announces changes through these, the GUI listens.

Plain callbacks (psygnal / napari `layer.events` style) keep `core/` headless: the same session runs
in the GUI, in the CLI and in tests. Qt widgets connect a method and redraw; nothing here knows Qt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class Signal:
    """An ordered list of callbacks called synchronously by `emit(*args)`.

    Errors raised by a callback propagate to the emitter (a broken listener is a bug to see, not to
    hide). `blocked()` silences the signal for a while, e.g. while a widget writes back a value.
    """

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.__doc__ = doc or name
        self._slots: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Add a callback (once); returns it so `connect` works as a decorator."""
        if callback not in self._slots:
            self._slots.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any] | None = None) -> None:
        """Remove one callback, or all of them when `callback` is None. Unknown ones are ignored."""
        if callback is None:
            self._slots.clear()
        elif callback in self._slots:
            self._slots.remove(callback)

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        for cb in list(self._slots):
            cb(*args)

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return f"<Signal {self.name} ({len(self._slots)} callbacks)>"


class SessionEvents:
    """Everything an `AnnotationSession` announces (arguments in brackets).

    labels_changed(frame: int, rect: Rect)  pixels of `frame` inside `rect` changed; repaint only that
    origin_changed(frame: int)              the frame's Origin (empty / predicted / propagated / corrected) changed
    history_changed()                       can_undo / can_redo may have changed
    history_trimmed(dropped: int)           the oldest undo steps were dropped to stay in the budget
    saved(path: Path)                       the project was written to disk
    save_failed(error: ProjectError)        an autosave failed (disk full, ...); nothing in memory lost
    dirty_changed(dirty: bool)              whether the project has unsaved changes
    scheme_changed(scheme: ClassScheme)     the class scheme of the project changed
    problems_found(problems: list)          mask files found unusable when first read (ProjectProblem
                                            list; the frame was dropped or its ids set to 255)
    """

    def __init__(self) -> None:
        self.labels_changed = Signal("labels_changed")
        self.origin_changed = Signal("origin_changed")
        self.history_changed = Signal("history_changed")
        self.history_trimmed = Signal("history_trimmed")
        self.saved = Signal("saved")
        self.save_failed = Signal("save_failed")
        self.dirty_changed = Signal("dirty_changed")
        self.scheme_changed = Signal("scheme_changed")
        self.problems_found = Signal("problems_found")

    def all(self) -> list[Signal]:
        return [v for v in vars(self).values() if isinstance(v, Signal)]

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for sig in self.all():
                stack.enter_context(sig.blocked())
            yield
