"""StudioState: what the Studio is showing and editing, held apart from any widget.

The window, timeline, frame list, panels and tools observe this object through `StudioEvents` and
change it only by calling it (napari's habit: `ViewerModel` holds the state, the Qt views follow),
so navigation, mode switches, editing and the prediction rule run and are tested without Qt.

The state holds the open sequence and its `AnnotationSession`, the current frame, the modality mode,
the frame's prediction, which labels the overlay shows (`OverlaySource`), the tool and paint class,
and the hidden classes. It also derives the one mask the overlay draws, and announces each change of
it once: a whole repaint (`overlay_changed`) or only the touched box (`overlay_rect_changed`).

The prediction rule: a prediction is the shown frame's only when it is for the shown frame and mode
(`offer_prediction`); it then becomes what "accept" takes in the session, and it never replaces a
person's correction. Strokes made before it arrives start from unlabelled pixels; with
`PaintStart.PREDICTION` the unlabelled pixels of such a frame take the prediction once it comes,
as one undoable step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX, MFNET, ClassScheme
from csknet_studio.core.edits import Origin, Rect
from csknet_studio.core.events import Signal
from csknet_studio.core.frames import FramePair
from csknet_studio.core.modes import Mode

TOOLS: tuple[str, ...] = ("pan", "brush", "eraser", "fill", "polygon", "take", "snap", "box")
ROUND_TOOLS: tuple[str, ...] = ("brush", "eraser", "snap")  # tools with a radius (round cursor)


class OverlaySource(StrEnum):
    """Which labels the overlay draws: the session's (corrections, else the prediction) or the raw
    prediction of the shown mode."""

    LABELS = "labels"
    PREDICTION = "prediction"


class PaintStart(StrEnum):
    """What a stroke on a frame with no prediction yet paints over."""

    EMPTY = "empty"  # unlabelled pixels; the prediction arriving later leaves the frame alone
    PREDICTION = "prediction"  # the same, then the prediction fills the pixels still unlabelled


class StudioEvents:
    """Everything a `StudioState` announces (arguments in brackets).

    sequence_changed(sequence | None)   another sequence (and session) is open, or none
    frame_changed(index: int)           the shown frame changed (`state.frame` is its FramePair)
    mode_changed(mode: Mode)            the modality mode changed
    prediction_changed(index: int)      the shown frame's prediction arrived (or was dropped)
    overlay_changed()                   the overlay mask is new: repaint it whole
    overlay_rect_changed(rect: Rect)    only `rect` of the overlay mask changed: repaint that
    labels_changed(frame: int)          a frame's session labels changed (any frame)
    source_changed(source: OverlaySource)
    tool_changed(tool: str)
    class_changed(class_id: int)
    radius_changed(radius: float)
    hidden_changed(hidden: frozenset[int])
    scheme_changed(scheme: ClassScheme)
    """

    def __init__(self) -> None:
        for name in ("sequence_changed", "frame_changed", "mode_changed", "prediction_changed",
                     "overlay_changed", "overlay_rect_changed", "labels_changed", "source_changed",
                     "tool_changed", "class_changed", "radius_changed", "hidden_changed", "scheme_changed"):
            setattr(self, name, Signal(name))

    sequence_changed: Signal
    frame_changed: Signal
    mode_changed: Signal
    prediction_changed: Signal
    overlay_changed: Signal
    overlay_rect_changed: Signal
    labels_changed: Signal
    source_changed: Signal
    tool_changed: Signal
    class_changed: Signal
    radius_changed: Signal
    hidden_changed: Signal
    scheme_changed: Signal


class StudioState:
    """The Studio's state (see the module docstring). Every setter announces a real change once."""

    def __init__(self, scheme: ClassScheme = MFNET) -> None:
        self.events = StudioEvents()
        self.sequence: Any = None
        self.session: Any = None
        self.scheme: ClassScheme = scheme
        self.index = -1
        self.frame: FramePair | None = None
        self.mode: Mode = Mode.BOTH
        self.prediction: Any = None  # the shown frame's Prediction (numpy `labels`), or None
        self.source: OverlaySource = OverlaySource.LABELS
        self.tool = "pan"
        self.class_id = 1
        self.radius = 6.0
        self.hidden: frozenset[int] = frozenset()
        self.paint_start: PaintStart = PaintStart.EMPTY
        self._mask: np.ndarray | None = None
        self._painted_early: set[int] = set()  # frames first edited before their prediction came
        self._recorded: dict[int, tuple] = {}  # (mode, weights version) of each frame's prediction in the session

    # ------------------------------------------------------------------ sequence
    def open(self, sequence: Any, session: Any) -> None:
        """Show `sequence` with `session` (its labels). Call `go_to(0)` after, once views are ready."""
        self._unhook()
        self.sequence, self.session = sequence, session
        self.index, self.frame, self.prediction, self._mask = -1, None, None, None
        self._painted_early.clear()
        self._recorded.clear()
        if session is not None:
            session.events.labels_changed.connect(self._on_session_labels)
            session.events.origin_changed.connect(self._on_session_origin)
        self.events.sequence_changed.emit(sequence)

    def close(self) -> Any:
        """Forget the sequence and session (the caller closes them); returns the session."""
        session = self.session
        self._unhook()
        self.sequence = self.session = None
        self.index, self.frame, self.prediction, self._mask = -1, None, None, None
        self._painted_early.clear()
        self._recorded.clear()
        self.events.sequence_changed.emit(None)
        self.events.overlay_changed.emit()
        return session

    def _unhook(self) -> None:
        if self.session is not None:
            self.session.events.labels_changed.disconnect(self._on_session_labels)
            self.session.events.origin_changed.disconnect(self._on_session_origin)

    def __len__(self) -> int:
        return 0 if self.sequence is None else len(self.sequence)

    # ------------------------------------------------------------------ navigation
    def go_to(self, index: int, prediction: Any = None) -> bool:
        """Show frame `index` (0-based), with its prediction when one is at hand (a cache hit), so
        the overlay is painted once. False when there is no such frame or it is already shown;
        the sequence's read errors propagate and leave the state as it was."""
        if self.sequence is None or not 0 <= index < len(self.sequence) or index == self.index:
            return False
        frame = self.sequence[index]
        if prediction is not None:
            self._record_prediction(index, prediction)
        self.index, self.frame, self.prediction = index, frame, prediction
        self._mask = self._compute_mask()
        self.events.frame_changed.emit(index)
        self.events.overlay_changed.emit()
        if prediction is not None:
            self.events.prediction_changed.emit(index)
        return True

    def step(self, delta: int) -> bool:
        """Move `delta` frames, clamped to the sequence."""
        if self.sequence is None:
            return False
        return self.go_to(min(len(self.sequence) - 1, max(0, self.index + delta)))

    def reread(self, prediction: Any = None) -> bool:
        """Read the shown frame again (the sequence changed under it, e.g. a new alignment)."""
        index, self.index = self.index, -1
        return index >= 0 and self.go_to(index, prediction)

    def set_mode(self, mode: Mode | str, prediction: Any = None) -> bool:
        """Switch the modality mode; `prediction` is the shown frame's in that mode when cached."""
        mode = Mode(mode)
        if mode is self.mode:
            return False
        self.mode = mode
        self.prediction = None
        self.events.mode_changed.emit(mode)
        if self.frame is not None:
            if prediction is not None:
                self.offer_prediction(self.index, mode, prediction)
            elif self.source is OverlaySource.PREDICTION:
                self._repaint()
        return True

    # ------------------------------------------------------------------ the prediction rule
    def offer_prediction(self, index: int, mode: Mode | str, prediction: Any) -> bool:
        """A prediction arrived. It is the shown frame's only for the shown frame and mode: then it
        becomes what "accept" takes and what an uncorrected frame shows. False when it is not."""
        if index != self.index or Mode(mode) is not self.mode or self.frame is None:
            return False
        self.prediction = prediction
        self._record_prediction(index, prediction)  # the session announces what it changed
        if self.source is OverlaySource.PREDICTION:
            self._repaint()
        self.events.prediction_changed.emit(index)
        return True

    def _record_prediction(self, index: int, prediction: Any) -> None:
        """Give the session the prediction: an uncorrected frame's labels change with it, and the
        session's announcement repaints the overlay (`_on_session_labels`)."""
        s = self.session
        if s is None:
            return
        key = (getattr(prediction, "mode", None), getattr(prediction, "weights_version", None))
        if key[1] is not None and self._recorded.get(index) == key and s.prediction(index) is not None:
            return  # this very prediction is the session's already (a revisit): no repacking
        s.set_prediction(index, prediction.labels)
        self._recorded[index] = key
        if index in self._painted_early and self.paint_start is PaintStart.PREDICTION:
            self._painted_early.discard(index)
            s.fill_unlabelled_from_prediction(index)

    def drop_prediction(self) -> None:
        """New weights or inputs: the shown prediction is stale (the session keeps what it had)."""
        self.prediction = None
        if self.source is OverlaySource.PREDICTION:
            self._repaint()

    # ------------------------------------------------------------------ overlay
    @property
    def mask(self) -> np.ndarray | None:
        """The class-id mask the overlay shows now (read it, do not write it); None: no overlay."""
        return self._mask

    def _compute_mask(self) -> np.ndarray | None:
        if self.index < 0:
            return None
        if self.source is OverlaySource.PREDICTION:
            src = None if self.prediction is None else self.prediction.labels
        elif self.session is not None and self.session.origin(self.index) is not Origin.EMPTY:
            src = self.session.labels(self.index)
        else:  # nothing yet (scrubbing ahead of the model): no overlay rather than all-unlabelled
            src = None
        return None if src is None else np.array(src, dtype=np.uint8, copy=True)

    def _repaint(self) -> None:
        self._mask = self._compute_mask()
        self.events.overlay_changed.emit()

    def _on_session_labels(self, frame: int, rect: Rect) -> None:
        if frame == self.index and self.source is OverlaySource.LABELS:
            if self._mask is None or rect == Rect.full(self._mask.shape):
                self._repaint()
            else:
                ys, xs = rect.slices
                self._mask[ys, xs] = self.session.labels(frame)[ys, xs]
                self.events.overlay_rect_changed.emit(rect)
        self.events.labels_changed.emit(frame)

    def set_source(self, source: OverlaySource | str) -> bool:
        source = OverlaySource(source)
        if source is self.source:
            return False
        self.source = source
        self.events.source_changed.emit(source)
        self._repaint()
        return True

    def toggle_source(self) -> None:
        self.set_source(OverlaySource.PREDICTION if self.source is OverlaySource.LABELS else OverlaySource.LABELS)

    def class_at(self, x: int, y: int) -> str | None:
        """The overlay's class name at pixel (x, y), None where no overlay is shown."""
        m = self._mask
        if m is None or not (0 <= y < m.shape[0] and 0 <= x < m.shape[1]):
            return None
        c = int(m[y, x])
        return self.scheme.shown_name(c) if c < self.scheme.num_classes else "unlabelled"

    # ------------------------------------------------------------------ tools and classes
    def set_tool(self, tool: str) -> bool:
        """Pick a tool. A painting tool shows the labels it changes, not the raw prediction."""
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r} (one of {', '.join(TOOLS)})")
        if tool != "pan":
            self.set_source(OverlaySource.LABELS)
        if tool == self.tool:
            return False
        self.tool = tool
        self.events.tool_changed.emit(tool)
        return True

    def set_class(self, class_id: int) -> bool:
        """Pick the paint class: a class of the scheme, or 255 (unlabelled, ignored by training)."""
        c = int(class_id)
        if not (0 <= c < self.scheme.num_classes or c == IGNORE_INDEX):
            raise ValueError(f"class {c} is not in scheme {self.scheme.name} (0..{self.scheme.num_classes - 1} or 255)")
        if c == self.class_id:
            return False
        self.class_id = c
        self.events.class_changed.emit(c)
        return True

    def class_name(self, class_id: int | None = None) -> str:
        c = self.class_id if class_id is None else int(class_id)
        return "unlabelled (ignore)" if c == IGNORE_INDEX else self.scheme.class_names[c]

    @property
    def stroke_class(self) -> int:
        """What the current tool paints: the eraser writes unlabelled."""
        return IGNORE_INDEX if self.tool == "eraser" else self.class_id

    def set_radius(self, radius: float) -> bool:
        r = float(min(100.0, max(1.0, radius)))
        if r == self.radius:
            return False
        self.radius = r
        self.events.radius_changed.emit(r)
        return True

    def grow(self, step: int) -> None:
        """[ / ]: resize the brush by about a fifth of its radius per step."""
        self.set_radius(self.radius + step * max(1, self.radius // 5))

    def set_hidden(self, hidden: frozenset[int] | set[int]) -> bool:
        hidden = frozenset(int(c) for c in hidden)
        if hidden == self.hidden:
            return False
        self.hidden = hidden
        self.events.hidden_changed.emit(hidden)
        return True

    def set_scheme(self, scheme: ClassScheme) -> None:
        """Another class scheme (the session follows; ProjectError when its corrections forbid it)."""
        if self.session is not None and self.session.scheme != scheme:
            self.session.set_scheme(scheme)
        changed = scheme != self.scheme
        self.scheme = scheme
        if not (0 <= self.class_id < scheme.num_classes or self.class_id == IGNORE_INDEX):
            self.set_class(min(1, scheme.num_classes - 1))
        if changed:
            self.events.scheme_changed.emit(scheme)

    # ------------------------------------------------------------------ editing
    def _on_session_origin(self, frame: int) -> None:
        """Remember frames corrected before any prediction came (for `PaintStart.PREDICTION`)."""
        s = self.session
        if s.origin(frame) is Origin.CORRECTED and s.prediction(frame) is None:
            self._painted_early.add(frame)
        elif s.origin(frame) is Origin.EMPTY:
            self._painted_early.discard(frame)


__all__ = ["StudioState", "StudioEvents", "OverlaySource", "PaintStart", "TOOLS", "ROUND_TOOLS"]
