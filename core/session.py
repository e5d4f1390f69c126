"""AnnotationSession: the Qt-free model of one sequence's labels, which the GUI observes.

Holds, per frame, a model prediction (zlib-packed: memory stays small) and/or a person's correction,
records every edit as an undoable diff of the touched box, and autosaves each finished edit into the
project folder beside the sequence (core/project.py) so a crash or a full disk loses nothing.
Frames nobody touched cost nothing: masks are created on the first edit.

A frame's labels come from, in order: a person's correction, labels propagated by optical flow
(core/propagate.py; kept apart until a person edits or accepts them), the model's prediction, else
all 255 (unlabelled).

The session is made of three parts, each with one job: a LabelStore (core/session_labels.py: the
masks, their origins and shapes), an Editor (core/session_edits.py: edit commands, live strokes,
undo/redo) and a ProjectIO (core/session_store.py: lock, restore, autosave, save). The session
wires them together, announces changes on `events` and keeps the public API.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from csknet_studio.core import assist
from csknet_studio.core.classes import IGNORE_INDEX, MFNET, ClassScheme
from csknet_studio.core.data.alignment import Alignment
from csknet_studio.core.edits import EMPTY_RECT, Origin, Packed, Point, Rect
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.events import SessionEvents
from csknet_studio.core.project import CheckpointRef, ProjectProblem, default_project_path
from csknet_studio.core.project_lock import LockHolder
from csknet_studio.core.session_edits import Editor
from csknet_studio.core.session_labels import LabelStore
from csknet_studio.core.session_store import ProjectIO

DEFAULT_UNDO_BUDGET = 256 * 1024 * 1024

__all__ = ["AnnotationSession", "Origin", "Rect", "EMPTY_RECT", "CheckpointRef", "DEFAULT_UNDO_BUDGET"]

T = TypeVar("T")


class _Kept(Generic[T]):
    """A session attribute kept by one of its parts (read and set there), so it has one owner."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> T:
        return self if obj is None else getattr(getattr(obj, self.part), self.name)  # type: ignore[return-value]

    def __set__(self, obj: Any, value: T) -> None:
        setattr(getattr(obj, self.part), self.name, value)


class AnnotationSession:
    """Labels, origins, undo/redo and autosave for one sequence (see docs/architecture.md, Data).

    `sequence` follows the Sequence protocol (len, names, [i] -> FramePair, source, scheme, layout).
    The project defaults to `<source>.csknet/`; an existing one is restored (ProjectError when it was
    made for another sequence). Masks returned by `labels()` are read-only views: copy to keep one.
    Points are (x, y) = (column, row) frame pixels; every edit returns the Rect of changed pixels.

    A writable session holds the project's lock until `close()`: a project another running copy of
    the app holds raises ProjectLockedError, unless `read_only` (nothing is ever written) or
    `take_over_lock` (only for a holder on another machine, whose life cannot be checked). What
    loading repaired or could not use is listed in `problems` (core/session_store.py).
    """

    scheme = _Kept[ClassScheme]("_labels")
    project_path = _Kept[Path | None]("_io")
    checkpoint = _Kept[CheckpointRef | None]("_io")
    autosave = _Kept[bool]("_io")
    read_only = _Kept[bool]("_io")
    last_save_error = _Kept[ProjectError | None]("_io")
    problems = _Kept[list[ProjectProblem]]("_io")  # what loading repaired or could not use, and how
    lock_taken_over = _Kept[LockHolder | None]("_io")  # a dead process's lock this session replaced
    removed_temps = _Kept[list[Path]]("_io")  # temporary files of a killed save, cleared on open

    def __init__(
        self,
        sequence: Any,
        project_path: str | os.PathLike | None = None,
        *,
        scheme: ClassScheme | None = None,
        autosave: bool = True,
        undo_budget_bytes: int = DEFAULT_UNDO_BUDGET,
        relink: bool = False,
        read_only: bool = False,
        take_over_lock: bool = False,
    ) -> None:
        self.sequence = sequence
        self.events = SessionEvents()
        self.names: list[str] = [str(n) for n in sequence.names]
        if len(self.names) != len(sequence):
            raise ProjectError(f"sequence {getattr(sequence, 'source', '?')}: {len(sequence)} frames but "
                               f"{len(self.names)} names")
        src = getattr(sequence, "source", None)
        # an in-memory sequence (ArraySequence's "<memory>") has no place on disk for a project
        self.source: Path | None = Path(src) if src is not None and not str(src).startswith("<") else None
        if project_path is None and self.source is not None:
            project_path = default_project_path(self.source)
        self._labels = LabelStore(sequence, self.names, scheme or getattr(sequence, "scheme", None) or MFNET)
        self._io = ProjectIO(self._labels, self.events, Path(project_path) if project_path is not None else None,
                             self.source, autosave=autosave, read_only=bool(read_only))
        self._editor = Editor(self._labels, self.events, self._io.changed, undo_budget_bytes)
        weakref.finalize(self, self._io.release_lock)  # a session dropped without close() frees its share
        store = self._io.store
        if store is not None and not self.read_only:
            self._io.take_lock(take_over_lock)  # before reading: nobody else writes while we load
        try:
            if store is not None and store.exists():
                data = store.load()
                self._io.check_belongs(data, relink)
                self.scheme, self.checkpoint, self.alignment = data.scheme, data.checkpoint, data.alignment
                self._io.restore(data)
        except BaseException:
            self.release_lock()
            raise

    @classmethod
    def open(cls, sequence: Any, project_path: str | os.PathLike | None = None, **kw: Any) -> AnnotationSession:
        """Open `sequence` with its project (restoring every saved correction)."""
        return cls(sequence, project_path, **kw)

    # --- reading (the LabelStore) ----------------------------------------------------------------------
    def __len__(self) -> int:
        return self._labels.n

    def origin(self, i: int) -> Origin:
        return self._labels.origin(i)

    def origins(self) -> list[Origin]:
        return self._labels.origins()

    def corrected_frames(self) -> list[int]:
        return self._labels.corrected_frames()

    def propagated_frames(self) -> list[int]:
        """Frames whose labels are propagated and not yet corrected (origin PROPAGATED)."""
        return self._labels.propagated_frames()

    def frame_shape(self, i: int) -> tuple[int, int]:
        """(H, W) of frame i, read from the sequence only when no mask tells it."""
        return self._labels.frame_shape(i)

    def prediction(self, i: int) -> np.ndarray | None:
        """The model's labels for frame i (read-only), or None."""
        return self._labels.prediction(i)

    def propagated(self, i: int) -> np.ndarray | None:
        """Frame i's propagated labels (read-only), or None. A correction made on top hides them
        from `labels()` but keeps them here, so undoing that correction shows them again."""
        return self._labels.propagated(i)

    def labels(self, i: int) -> np.ndarray:
        """Current (H, W) uint8 mask: the correction, else the propagated labels, else the prediction,
        else all 255. Read-only."""
        return self._labels.current(i)

    # --- predictions (not edits: not undoable, never saved as corrections) ---------------------------
    def set_prediction(self, i: int, labels: np.ndarray) -> None:
        i = self._labels.check(i)
        before = self._labels.origin(i)
        shape = self._labels.put_prediction(i, labels)
        if before in (Origin.PREDICTED, Origin.EMPTY):
            self.events.labels_changed.emit(i, Rect.full(shape))
        if before is Origin.EMPTY:
            self.events.origin_changed.emit(i)

    def clear_predictions(self) -> None:
        """Forget every prediction (e.g. new weights): uncorrected frames fall back to empty."""
        for i in self._labels.clear_predictions():
            if self._labels.origin(i) is Origin.EMPTY:
                self.events.labels_changed.emit(i, Rect.full(self._labels.frame_shape(i)))
                self.events.origin_changed.emit(i)

    # --- edits (the Editor): each returns the Rect of changed pixels, one undo step ------------------
    def fill_polygon(self, frame: int, points: Sequence[Point], class_id: int) -> Rect:
        return self._editor.fill_polygon(frame, points, class_id)

    def flood_fill(self, frame: int, seed: Point, class_id: int) -> Rect:
        """Fill the 4-connected region of equal labels around `seed` (x, y) with `class_id`."""
        return self._editor.flood_fill(frame, seed, class_id)

    def paint_stroke(self, frame: int, points: Sequence[Point], class_id: int, radius: float) -> Rect:
        """A whole brush stroke at once (one undo step); class 255 erases."""
        return self._editor.paint_stroke(frame, points, class_id, radius)

    def erase_stroke(self, frame: int, points: Sequence[Point], radius: float) -> Rect:
        return self._editor.erase_stroke(frame, points, radius)

    def accept_prediction(self, frame: int) -> Rect:
        """Make the prediction the frame's correction (marks it corrected even if no pixel changes).

        On a propagated frame this accepts its propagated labels, which are what the reviewer sees
        and checked; undoing the accept makes the frame propagated again."""
        return self._editor.accept_prediction(frame)

    def fill_unlabelled_from_prediction(self, frame: int) -> Rect:
        """The prediction fills the pixels still unlabelled (255), the rest stays as painted: one
        undoable step, for strokes made before the prediction arrived."""
        return self._editor.fill_unlabelled_from_prediction(frame)

    def copy_from_previous(self, frame: int) -> Rect:
        """Replace frame's labels with the previous frame's current labels."""
        return self._editor.copy_from_previous(frame)

    def take_region(self, frame: int, seed: Point, class_id: int | None = None) -> Rect:
        """Take the connected region of the predicted class under `seed` (x, y) into the corrected
        labels: it keeps the predicted class, or gets `class_id` when one is given."""
        return self._editor.take_region(frame, seed, class_id)

    def fill_superpixels(self, frame: int, segments: np.ndarray, points: Sequence[Point], radius: float,
                         class_id: int, min_cover: float = assist.SNAP_MIN_COVER) -> Rect:
        """Fill with `class_id` every superpixel of `segments` (an (H, W) id map) a brush stroke selects."""
        return self._editor.fill_superpixels(frame, segments, points, radius, class_id, min_cover)

    def grabcut_box(self, frame: int, corner0: Point, corner1: Point, class_id: int,
                    eo: np.ndarray | None = None, ir: np.ndarray | None = None,
                    levels: assist.Levels | None = None) -> Rect:
        """Give `class_id` to the foreground GrabCut finds in the box between two corners (x, y), on
        the EO + IR composite; the images are read from the sequence when not given."""
        return self._editor.grabcut_box(frame, corner0, corner1, class_id, eo, ir, levels)

    def apply_propagation(self, results: Mapping[int, np.ndarray], kind: str = "propagate") -> list[int]:
        """Make `results` (frame -> (H, W) uint8 labels) those frames' propagated labels, as one undo
        step. Corrected frames are skipped (a person's work is never overwritten, even if a frame was
        corrected while the propagation ran). Returns the frames set, in order."""
        return self._editor.apply_propagation(results, kind)

    # --- live strokes: the GUI paints while the mouse moves; the whole stroke is one undo step ----------
    def begin_stroke(self, frame: int, class_id: int, radius: float, point: Point) -> Rect:
        return self._editor.begin_stroke(frame, class_id, radius, point)

    def extend_stroke(self, point: Point) -> Rect:
        return self._editor.extend_stroke(point)

    def end_stroke(self) -> Rect:
        """Finish the stroke: record it as one undo step and autosave. Returns the union of its rects."""
        return self._editor.end_stroke()

    def cancel_stroke(self) -> Rect:
        """Abandon the stroke in progress, restoring the pixels it painted (no undo step)."""
        return self._editor.cancel_stroke()

    @property
    def stroke_active(self) -> bool:
        return self._editor.stroke_active

    # --- undo / redo -----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return self._editor.can_undo

    @property
    def can_redo(self) -> bool:
        return self._editor.can_redo

    @property
    def undo_nbytes(self) -> int:
        """Memory held by the undo/redo history (bounded by undo_budget_bytes)."""
        return self._editor.history.nbytes

    @property
    def history_dropped(self) -> int:
        """How many of the oldest undo steps were dropped to stay within the memory budget."""
        return self._editor.history.dropped_total

    def undo(self) -> tuple[int, Rect] | None:
        """Undo the newest step; returns (frame, changed rect) so the GUI can show it, or None."""
        return self._editor.undo()

    def redo(self) -> tuple[int, Rect] | None:
        return self._editor.redo()

    # --- the project (ProjectIO) ------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True while something is not yet written to the project."""
        return self._io.dirty

    @property
    def locked(self) -> bool:
        """True while this session holds the project's lock."""
        return self._io.locked

    def release_lock(self) -> None:
        """Let another copy of the app write the project (close() does this)."""
        self._io.release_lock()

    def open_notes(self) -> list[str]:
        """One line per thing a command-line user should hear about the opened project: each repair,
        and that another copy of the app is writing it (a read-only reader sees its saved state)."""
        return self._io.open_notes()

    def save(self) -> Path:
        """Write dirty masks, then the whole manifest (emptying the journal).

        On failure (e.g. disk full) raises ProjectError and keeps everything in memory, still dirty,
        so the next save writes it all."""
        return self._io.save()

    def save_as(self, project_path: str | os.PathLike) -> Path:
        """Move the project to a new folder (e.g. the sequence's own folder is read-only, or the
        project is open read-only) and save everything there; later autosaves go to the new place.
        The old project is left as it was."""
        return self._io.save_as(project_path)

    def _collect_compaction(self, wait: bool = False) -> None:
        """Take in a finished background compaction (wait=True: wait for the one running)."""
        self._io.collect_compaction(wait)

    def close(self) -> None:
        """Finish any stroke, save what is unsaved (raises ProjectError if that fails) and release
        the lock, so another copy of the app may open the project."""
        self._editor.finish_stroke()
        self._io.close()

    # --- project settings -------------------------------------------------------------------------------
    def set_scheme(self, scheme: ClassScheme, *, force: bool = False) -> None:
        """Switch the class scheme. Corrected pixels with ids the new scheme lacks make this refuse
        (ProjectError listing the frames) unless force=True, which turns them into 255 (unlabelled).
        Predictions are dropped when the class names change, and the undo history is cleared (its
        diffs hold ids of the old scheme)."""
        if scheme == self.scheme:
            return
        self._editor.finish_stroke()
        lab, n = self._labels, scheme.num_classes
        bad = [i for i in lab.corrected_frames() if ((m := lab.correction(i)) >= n)[m != IGNORE_INDEX].any()]
        if bad and not force:
            names = ", ".join(self.names[i] for i in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise ProjectError(
                f"cannot switch to class scheme {scheme.name!r} ({n} classes): {len(bad)} corrected frame(s) "
                f"use class ids >= {n} ({names}); use force to make those pixels unlabelled (255)"
            )
        for i in bad:
            m = lab.corr[i]
            m[(m >= n) & (m != IGNORE_INDEX)] = IGNORE_INDEX
            lab.dirty_frames.add(i)
            self.events.labels_changed.emit(i, Rect.full(m.shape))
        self._editor.drop_unknown_propagated_ids(n)  # unreviewed labels: no need to ask
        if scheme.class_names != self.scheme.class_names:
            self.clear_predictions()
        self._editor.history.clear()
        self.scheme = scheme
        self._io.meta_dirty = True
        self.events.scheme_changed.emit(scheme)
        self.events.history_changed.emit()
        self._io.changed()

    def set_checkpoint(self, path: str | os.PathLike, weights_hash: str = "") -> None:
        """Record which weights produced the predictions (path + hash go into the project)."""
        self.checkpoint = CheckpointRef(str(Path(path).resolve()), str(weights_hash))
        self._io.meta_dirty = True
        self._io.changed()

    @property
    def alignment(self) -> dict[str, Any] | None:
        """Where IR lies on the EO grid, as the project stores it (`Alignment.to_dict()` or
        `Registration.to_dict()`); None: IR is only resized."""
        return self._io.alignment

    @alignment.setter
    def alignment(self, value: dict[str, Any] | None) -> None:
        """The sequence resamples IR on every read, so handing it the alignment here (set, or
        restored from the project) puts display, inference, fine-tuning and export on one grid."""
        old = self.alignment
        self._io.alignment = dict(value) if value is not None else None
        if (value is None and old is None) or not hasattr(self.sequence, "alignment"):
            return
        try:
            self.sequence.alignment = Alignment.from_dict(value) if value else None
        except (ValueError, TypeError, KeyError) as exc:
            self._io.alignment = old
            raise ProjectError(f"bad EO/IR alignment {value!r}: {exc}") from None

    def set_alignment(self, alignment: dict[str, Any] | None) -> None:
        self.alignment = dict(alignment) if alignment is not None else None
        self._io.meta_dirty = True
        self._io.changed()

    def snapshot(self) -> SessionSnapshot:
        """A frozen, packed copy of the labels for a background export while editing goes on."""
        self._editor.finish_stroke()
        return SessionSnapshot(self._labels, self)


class SessionSnapshot:
    """The read side of AnnotationSession (what export needs), frozen at one instant.

    Corrections are zlib-packed copies and predictions are shared immutable packs, so taking one
    costs ~1 ms per corrected frame and little memory; it may be read from a worker thread."""

    def __init__(self, labels: LabelStore, s: AnnotationSession) -> None:
        self.sequence, self.names, self.scheme = s.sequence, list(s.names), s.scheme
        self.source, self.checkpoint, self.project_path = s.source, s.checkpoint, s.project_path
        self._n = len(s)
        self._corr = {i: Packed.pack(labels.correction(i)) for i in labels.corrected_frames()}  # type: ignore[arg-type]
        self._prop = {i: labels.propagated_pack(i) for i in labels.propagated_frames()}
        self._pred = dict(labels.pred)
        self._shapes = dict(labels.shapes)

    def __len__(self) -> int:
        return self._n

    def origin(self, i: int) -> Origin:
        if i in self._corr:
            return Origin.CORRECTED
        if i in self._prop:
            return Origin.PROPAGATED
        return Origin.PREDICTED if i in self._pred else Origin.EMPTY

    def corrected_frames(self) -> list[int]:
        return sorted(self._corr)

    def propagated_frames(self) -> list[int]:
        return sorted(self._prop)

    def frame_shape(self, i: int) -> tuple[int, int]:
        packed = self._corr.get(i) or self._prop.get(i) or self._pred.get(i)
        if packed is not None:
            return packed.shape  # type: ignore[return-value]
        if i not in self._shapes:
            self._shapes[i] = tuple(self.sequence[i].shape)  # type: ignore[assignment]
        return self._shapes[i]

    def prediction(self, i: int) -> np.ndarray | None:
        packed = self._pred.get(i)
        return packed.unpack() if packed is not None else None

    def labels(self, i: int) -> np.ndarray:
        packed = self._corr.get(i) or self._prop.get(i) or self._pred.get(i)
        if packed is not None:
            return packed.unpack()
        return np.full(self.frame_shape(i), IGNORE_INDEX, np.uint8)
