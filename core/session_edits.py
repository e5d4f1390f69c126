"""Editor: the edit commands of an annotation session, its live strokes and its undo/redo.

Every edit stores only the changed box's old and new values (plus, for a frame's first correction,
a reference to the packed prediction it started from) so undo memory stays small and redo is exact.
A propagation over many frames is one undo step (a MultiFrameEdit of whole packed masks) and never
touches a corrected frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from csknet_studio.core import assist
from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.edits import (
    EMPTY_RECT,
    Edit,
    FrameState,
    History,
    MultiFrameEdit,
    Origin,
    Packed,
    Point,
    Rect,
    brush_segment,
    flood_region,
    polygon_region,
)
from csknet_studio.core.events import SessionEvents
from csknet_studio.core.session_labels import LabelStore


@dataclass
class _Stroke:
    frame: int
    class_id: int
    radius: float
    last: Point
    before: np.ndarray  # the frame's labels when the stroke began (transient, not kept in history)
    origin_before: Origin
    base: Packed | None
    rect: Rect = EMPTY_RECT


class Editor:
    """Edit commands, live strokes and undo/redo over a History, working on a LabelStore.

    Every edit is announced on `events` and handed to `autosave` (the project's I/O) once recorded."""

    def __init__(self, labels: LabelStore, events: SessionEvents, autosave: Callable[[], None],
                 undo_budget_bytes: int) -> None:
        self.labels = labels
        self.events = events
        self._autosave = autosave
        self.history = History(undo_budget_bytes)
        self._stroke: _Stroke | None = None

    # --- edits ----------------------------------------------------------------------------------------
    def _check_class(self, class_id: int) -> int:
        c = int(class_id)
        if not (0 <= c < self.labels.scheme.num_classes or c == IGNORE_INDEX):
            raise ValueError(f"class id {c} is not in scheme {self.labels.scheme.name} (0..{self.labels.scheme.num_classes - 1} or 255)")
        return c

    def _ensure_corrected(self, i: int) -> np.ndarray:
        m = self.labels.correction(i)
        if m is None:
            m = self.labels.current(i).copy()
            self.labels.corr[i] = m
        return m

    def _edit(self, frame: int, kind: str, compute: Callable[[np.ndarray], tuple[Rect, np.ndarray]],
              force_origin: bool = False) -> Rect:
        """Apply `compute(current) -> (rect, new values in rect)` as one undoable step."""
        self.finish_stroke()
        frame = self.labels.check(frame)
        before = self.labels.origin(frame)
        current = self.labels.current(frame)
        rect, block = compute(current)
        changed, new = EMPTY_RECT, np.zeros((0, 0), np.uint8)
        if not rect.empty:
            sub = Rect.bbox(current[rect.slices] != block)
            if not sub.empty:
                changed = Rect(rect.y0 + sub.y0, rect.x0 + sub.x0, rect.y0 + sub.y1, rect.x0 + sub.x1)
                new = block[sub.slices]
        if changed.empty and (before is Origin.CORRECTED or not force_origin):
            return EMPTY_RECT  # nothing changed: not an undo step
        base = self.labels.base_pack(frame) if before is not Origin.CORRECTED else None
        old = Packed.pack(current[changed.slices])
        mask = self.labels.ensure_corrected(frame)
        mask[changed.slices] = new
        self._record(Edit(frame, kind, changed, old, Packed.pack(new), before, Origin.CORRECTED, base))
        return changed

    def _record(self, edit: Edit, emit_labels: bool = True, emit_origin: bool = True) -> None:
        dropped = self.history.push(edit)
        self.labels.dirty_frames.add(edit.frame)
        if emit_labels and not edit.rect.empty:
            self.events.labels_changed.emit(edit.frame, edit.rect)
        if emit_origin and edit.origin_before is not edit.origin_after:
            self.events.origin_changed.emit(edit.frame)
        if dropped:
            self.events.history_trimmed.emit(dropped)
        self.events.history_changed.emit()
        self._autosave()

    def fill_polygon(self, frame: int, points: Sequence[Point], class_id: int) -> Rect:
        c = self._check_class(class_id)
        shape = self.labels.frame_shape(frame)
        return self._edit(frame, "polygon", lambda cur: self._fill(cur, *polygon_region(shape, points), c))

    def flood_fill(self, frame: int, seed: Point, class_id: int) -> Rect:
        """Fill the 4-connected region of equal labels around `seed` (x, y) with `class_id`."""
        c = self._check_class(class_id)
        return self._edit(frame, "fill", lambda cur: self._fill(cur, *flood_region(cur, seed), c))

    @staticmethod
    def _fill(current: np.ndarray, rect: Rect, sel: np.ndarray, c: int) -> tuple[Rect, np.ndarray]:
        block = current[rect.slices].copy()
        block[sel] = c
        return rect, block

    def paint_stroke(self, frame: int, points: Sequence[Point], class_id: int, radius: float) -> Rect:
        """A whole brush stroke at once (one undo step); class 255 erases."""
        pts = list(points)
        if not pts:
            raise ValueError("a stroke needs at least one point")
        rect = self.begin_stroke(frame, class_id, radius, pts[0])
        for p in pts[1:]:
            rect = rect.union(self.extend_stroke(p))
        return rect.union(self.end_stroke())

    def erase_stroke(self, frame: int, points: Sequence[Point], radius: float) -> Rect:
        return self.paint_stroke(frame, points, IGNORE_INDEX, radius)

    def accept_prediction(self, frame: int) -> Rect:
        """Make the prediction the frame's correction (marks it corrected even if no pixel changes).

        On a propagated frame this accepts its propagated labels, which are what the reviewer sees
        and checked; undoing the accept makes the frame propagated again."""
        if self.labels.origin(frame) is Origin.PROPAGATED:
            return self._edit(frame, "accept_propagated", lambda cur: (Rect.full(cur.shape), cur), force_origin=True)
        pred = self.labels.prediction(frame)
        if pred is None:
            raise ValueError(f"frame {frame} ({self.labels.names[self.labels.check(frame)]}) has no prediction to accept")
        return self._edit(frame, "accept_prediction", lambda cur: (Rect.full(cur.shape), pred), force_origin=True)

    def fill_unlabelled_from_prediction(self, frame: int) -> Rect:
        """The prediction fills the pixels still unlabelled (255), the rest stays as painted: one
        undoable step, for strokes made before the prediction arrived."""
        pred = self.labels.prediction(frame)
        if pred is None:
            raise ValueError(f"frame {frame} ({self.labels.names[self.labels.check(frame)]}) has no prediction yet")
        return self._edit(frame, "prediction_under",
                          lambda cur: (Rect.full(cur.shape), np.where(cur == IGNORE_INDEX, pred, cur)))

    def copy_from_previous(self, frame: int) -> Rect:
        """Replace frame's labels with the previous frame's current labels."""
        frame = self.labels.check(frame)
        if frame == 0:
            raise ValueError("frame 0 has no previous frame to copy from")
        prev = self.labels.current(frame - 1)
        if prev.shape != self.labels.frame_shape(frame):
            raise ValueError(f"frame {frame - 1} is {prev.shape}, frame {frame} is {self.labels.frame_shape(frame)}")
        return self._edit(frame, "copy_previous", lambda cur: (Rect.full(cur.shape), prev))

    # --- assisted selections (core/assist.py): each is one undo step ----------------------------------
    def take_region(self, frame: int, seed: Point, class_id: int | None = None) -> Rect:
        """Take the connected region of the predicted class under `seed` (x, y) into the corrected
        labels: it keeps the predicted class, or gets `class_id` when one is given."""
        pred = self.labels.prediction(frame)
        if pred is None:
            raise ValueError(f"frame {frame} ({self.labels.names[self.labels.check(frame)]}) has no prediction to take a region from")
        c = None if class_id is None else self._check_class(class_id)
        return self._edit(frame, "take_region", lambda cur: assist.take_region(cur, pred, seed, c), force_origin=True)

    def fill_superpixels(self, frame: int, segments: np.ndarray, points: Sequence[Point], radius: float,
                         class_id: int, min_cover: float = assist.SNAP_MIN_COVER) -> Rect:
        """Fill with `class_id` every superpixel of `segments` (an (H, W) id map) a brush stroke selects."""
        c = self._check_class(class_id)
        if tuple(np.shape(segments)) != tuple(self.labels.frame_shape(frame)):
            raise ValueError(f"superpixels {np.shape(segments)} do not match frame {frame} {self.labels.frame_shape(frame)}")
        return self._edit(frame, "snap_stroke", lambda cur: self._fill(
            cur, *assist.snap_region(segments, points, radius, min_cover), c))

    def grabcut_box(self, frame: int, corner0: Point, corner1: Point, class_id: int,
                    eo: np.ndarray | None = None, ir: np.ndarray | None = None,
                    levels: assist.Levels | None = None) -> Rect:
        """Give `class_id` to the foreground GrabCut finds in the box between two corners (x, y), on
        the EO + IR composite; the images are read from the sequence when not given."""
        c = self._check_class(class_id)
        if eo is None and ir is None:
            pair = self.labels.sequence[self.labels.check(frame)]
            eo, ir = pair.eo, pair.ir
        box = assist.box_rect(self.labels.frame_shape(frame), corner0, corner1)
        image = assist.grabcut_composite(eo, ir, levels)
        if image.shape[:2] != tuple(self.labels.frame_shape(frame)):
            raise ValueError(f"images {image.shape[:2]} do not match frame {frame} {self.labels.frame_shape(frame)}")
        region = assist.grabcut_region(image, box)
        return self._edit(frame, "grabcut_box", lambda cur: self._fill(cur, *region, c))

    # --- live strokes: the GUI paints while the mouse moves; the whole stroke is one undo step ----------
    def begin_stroke(self, frame: int, class_id: int, radius: float, point: Point) -> Rect:
        self.finish_stroke()
        frame, c = self.labels.check(frame), self._check_class(class_id)
        before = self.labels.origin(frame)
        base = self.labels.base_pack(frame) if before is not Origin.CORRECTED else None
        self._stroke = _Stroke(frame, c, float(radius), point, self.labels.current(frame).copy(), before, base)
        return self._paint(point, point)

    def extend_stroke(self, point: Point) -> Rect:
        if self._stroke is None:
            raise RuntimeError("extend_stroke() without begin_stroke()")
        return self._paint(self._stroke.last, point)

    def _paint(self, p0: Point, p1: Point) -> Rect:
        st = self._stroke
        assert st is not None
        rect, sel = brush_segment(self.labels.frame_shape(st.frame), p0, p1, st.radius)
        st.last = p1
        if rect.empty or not (self.labels.current(st.frame)[rect.slices][sel] != st.class_id).any():
            return EMPTY_RECT
        newly = self.labels.origin(st.frame) is not Origin.CORRECTED
        mask = self.labels.ensure_corrected(st.frame)
        mask[rect.slices][sel] = st.class_id
        st.rect = st.rect.union(rect)
        self.events.labels_changed.emit(st.frame, rect)
        if newly:
            self.events.origin_changed.emit(st.frame)
        return rect

    def end_stroke(self) -> Rect:
        """Finish the stroke: record it as one undo step and autosave. Returns the union of its rects."""
        st, self._stroke = self._stroke, None
        if st is None or st.rect.empty:
            return EMPTY_RECT
        mask = self.labels.corr[st.frame]
        sub = Rect.bbox(st.before[st.rect.slices] != mask[st.rect.slices])
        changed = EMPTY_RECT if sub.empty else Rect(
            st.rect.y0 + sub.y0, st.rect.x0 + sub.x0, st.rect.y0 + sub.y1, st.rect.x0 + sub.x1)
        kind = "erase" if st.class_id == IGNORE_INDEX else "stroke"
        edit = Edit(st.frame, kind, changed, Packed.pack(st.before[changed.slices]),
                    Packed.pack(mask[changed.slices]), st.origin_before, Origin.CORRECTED, st.base)
        self._record(edit, emit_labels=False, emit_origin=False)
        return st.rect

    def cancel_stroke(self) -> Rect:
        """Abandon the stroke in progress, restoring the pixels it painted (no undo step)."""
        st, self._stroke = self._stroke, None
        if st is None or st.rect.empty:
            return EMPTY_RECT
        if st.origin_before is Origin.CORRECTED:
            self.labels.corr[st.frame][st.rect.slices] = st.before[st.rect.slices]
        else:
            del self.labels.corr[st.frame]
            self.events.origin_changed.emit(st.frame)
        self.events.labels_changed.emit(st.frame, st.rect)
        return st.rect

    def finish_stroke(self) -> None:
        if self._stroke is not None:
            self.end_stroke()

    @property
    def stroke_active(self) -> bool:
        return self._stroke is not None

    # --- undo / redo -----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return self.history.can_undo or self._stroke is not None

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def undo(self) -> tuple[int, Rect] | None:
        """Undo the newest step; returns (frame, changed rect) so the GUI can show it, or None."""
        self.finish_stroke()
        return self._replay(self.history.pop_undo(), undo=True)

    def redo(self) -> tuple[int, Rect] | None:
        self.finish_stroke()
        return self._replay(self.history.pop_redo(), undo=False)

    def _replay(self, e: Edit | MultiFrameEdit | None, undo: bool) -> tuple[int, Rect] | None:
        """Put back the state edit `e` left (redo) or found (undo) on its frame."""
        if e is None:
            return None
        if isinstance(e, MultiFrameEdit):
            return self._step_frames(e, undo=undo)
        if e.origin_before is Origin.CORRECTED:
            self.labels.ensure_corrected(e.frame)[e.rect.slices] = (e.old if undo else e.new).unpack()
            return self._after_step(e.frame, e.rect, False)
        before = self.labels.current(e.frame).copy()
        if undo:  # the frame was not corrected before the edit: it goes back to its prediction
            self.labels.drop_correction(e.frame)
        else:
            shape = self.labels.frame_shape(e.frame)
            mask = e.base.unpack() if e.base is not None else np.full(shape, IGNORE_INDEX, np.uint8)
            mask[e.rect.slices] = e.new.unpack()
            self.labels.corr[e.frame] = mask
        return self._after_step(e.frame, Rect.bbox(before != self.labels.current(e.frame)), True)

    def _after_step(self, frame: int, rect: Rect, origin_changed: bool) -> tuple[int, Rect]:
        self.labels.dirty_frames.add(frame)
        if not rect.empty:
            self.events.labels_changed.emit(frame, rect)
        if origin_changed:
            self.events.origin_changed.emit(frame)
        self.events.history_changed.emit()
        self._autosave()
        return frame, rect

    # --- propagation: many frames, one undo step ------------------------------------------------------
    def apply_propagation(self, results: Mapping[int, np.ndarray], kind: str = "propagate") -> list[int]:
        """Make `results` (frame -> (H, W) uint8 labels) those frames' propagated labels, as one undo
        step. Corrected frames are skipped (a person's work is never overwritten, even if a frame was
        corrected while the propagation ran). Returns the frames set, in order."""
        self.finish_stroke()
        states: list[FrameState] = []
        for i in sorted(int(k) for k in results):
            i = self.labels.check(i)
            before = self.labels.origin(i)
            if before is Origin.CORRECTED:
                continue
            lab = np.asarray(results[i])
            if lab.shape != tuple(self.labels.frame_shape(i)):
                raise ValueError(f"propagated labels of frame {i} are {lab.shape}, "
                                 f"the frame is {self.labels.frame_shape(i)}")
            old = self.labels.propagated_pack(i)
            new = Packed.pack(lab.astype(np.uint8, copy=False))
            self.labels.set_propagated(i, new)
            self.labels.shapes[i] = new.shape  # type: ignore[assignment]
            states.append(FrameState(i, old, new, before, Origin.PROPAGATED))
        if not states:
            return []
        dropped = self.history.push(MultiFrameEdit(kind, tuple(states)))
        for st in states:
            self.events.labels_changed.emit(st.frame, Rect.full(self.labels.frame_shape(st.frame)))
            if st.origin_before is not st.origin_after:
                self.events.origin_changed.emit(st.frame)
        if dropped:
            self.events.history_trimmed.emit(dropped)
        self.events.history_changed.emit()
        self._autosave()
        return [st.frame for st in states]

    def _step_frames(self, edit: MultiFrameEdit, undo: bool) -> tuple[int, Rect]:
        """Undo or redo a multi-frame step: each frame's propagated mask goes back (or forward)."""
        for st in edit.frames:
            self.labels.set_propagated(st.frame, st.old if undo else st.new)
            self.events.labels_changed.emit(st.frame, Rect.full(self.labels.frame_shape(st.frame)))
            if st.origin_before is not st.origin_after:
                self.events.origin_changed.emit(st.frame)
        self.events.history_changed.emit()
        self._autosave()
        return edit.frame, Rect.full(self.labels.frame_shape(edit.frame))

    def drop_unknown_propagated_ids(self, num_classes: int) -> None:
        """After a scheme switch: propagated pixels with ids the scheme lacks become 255."""
        for i in self.labels.propagated_frames():
            m = self.labels.propagated_pack(i).unpack()  # type: ignore[union-attr]
            bad = (m >= num_classes) & (m != IGNORE_INDEX)
            if bad.any():
                m[bad] = IGNORE_INDEX
                self.labels.set_propagated(i, Packed.pack(m))
                self.events.labels_changed.emit(i, Rect.full(m.shape))
