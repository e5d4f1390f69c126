"""The propagated layer of AnnotationSession: labels carried along the sequence by optical flow.

Propagated labels sit between a person's correction and the model's prediction: they are shown and
exported (on request) but are not corrections until a person edits or accepts them. A propagation
over many frames is one undo step (a MultiFrameEdit of whole packed masks), and it never touches a
corrected frame. The masks are saved in the project (`propagated/`), so a relaunch shows them again.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.edits import FrameState, MultiFrameEdit, Origin, Packed, Rect, cached_unpack


class PropagatedMixin:
    """Propagation commands of AnnotationSession; relies on its state (_prop, _history, events, ...)."""

    def propagated_frames(self) -> list[int]:
        """Frames whose labels are propagated and not yet corrected (origin PROPAGATED)."""
        return sorted((set(self._prop) | set(self._prop_on_disk)) - set(self._corr) - set(self._on_disk))

    def _propagated_pack(self, i: int) -> Packed | None:
        if i in self._prop_on_disk:
            mask = self._read_project_mask(i, self._prop_on_disk.pop(i), "propagated")
            if mask is not None:
                self._prop[i] = Packed.pack(mask)
        return self._prop.get(i)

    def propagated(self, i: int) -> np.ndarray | None:
        """Frame i's propagated labels (read-only), or None. A correction made on top hides them
        from `labels()` but keeps them here, so undoing that correction shows them again."""
        i = self._check(i)
        return cached_unpack(self._prop_cache, i, lambda: self._propagated_pack(i))

    def _base_pack(self, i: int) -> Packed | None:
        """What a first correction of frame i starts from: its propagated labels, else its prediction."""
        packed = self._propagated_pack(i)
        return packed if packed is not None else self._pred.get(i)

    def _set_propagated(self, i: int, packed: Packed | None) -> None:
        self._prop_on_disk.pop(i, None)
        self._prop_cache.pop(i, None)
        if packed is None:
            self._prop.pop(i, None)
        else:
            self._prop[i] = packed
        self._dirty_frames.add(i)

    def apply_propagation(self, results: Mapping[int, np.ndarray], kind: str = "propagate") -> list[int]:
        """Make `results` (frame -> (H, W) uint8 labels) those frames' propagated labels, as one undo
        step. Corrected frames are skipped (a person's work is never overwritten, even if a frame was
        corrected while the propagation ran). Returns the frames set, in order."""
        self._finish_stroke()
        states: list[FrameState] = []
        for i in sorted(int(k) for k in results):
            i = self._check(i)
            before = self.origin(i)
            if before is Origin.CORRECTED:
                continue
            lab = np.asarray(results[i])
            if lab.shape != tuple(self.frame_shape(i)):
                raise ValueError(f"propagated labels of frame {i} are {lab.shape}, the frame is {self.frame_shape(i)}")
            old = self._propagated_pack(i)
            new = Packed.pack(lab.astype(np.uint8, copy=False))
            self._set_propagated(i, new)
            self._shapes[i] = new.shape  # type: ignore[assignment]
            states.append(FrameState(i, old, new, before, Origin.PROPAGATED))
        if not states:
            return []
        dropped = self._history.push(MultiFrameEdit(kind, tuple(states)))
        for st in states:
            self.events.labels_changed.emit(st.frame, Rect.full(self.frame_shape(st.frame)))
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
            self._set_propagated(st.frame, st.old if undo else st.new)
            self.events.labels_changed.emit(st.frame, Rect.full(self.frame_shape(st.frame)))
            if st.origin_before is not st.origin_after:
                self.events.origin_changed.emit(st.frame)
        self.events.history_changed.emit()
        self._autosave()
        return edit.frame, Rect.full(self.frame_shape(edit.frame))

    def _drop_unknown_propagated_ids(self, num_classes: int) -> None:
        """After a scheme switch: propagated pixels with ids the scheme lacks become 255."""
        for i in self.propagated_frames():
            m = self._propagated_pack(i).unpack()  # type: ignore[union-attr]
            bad = (m >= num_classes) & (m != IGNORE_INDEX)
            if bad.any():
                m[bad] = IGNORE_INDEX
                self._set_propagated(i, Packed.pack(m))
                self.events.labels_changed.emit(i, Rect.full(m.shape))
