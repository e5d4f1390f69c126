"""AnnotationSession: the Qt-free model of one sequence's labels, which the GUI observes.

Holds, per frame, a model prediction (zlib-packed: memory stays small) and/or a person's correction,
records every edit as an undoable diff of the touched box, and autosaves each finished edit into the
project folder beside the sequence (core/project.py) so a crash or a full disk loses nothing.
Frames nobody touched cost nothing: masks are created on the first edit.

A frame's labels come from, in order: a person's correction, labels propagated by optical flow
(core/propagate.py; kept apart until a person edits or accepts them), the model's prediction, else
all 255 (unlabelled).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX, MFNET, ClassScheme
from csknet_studio.core.edits import EMPTY_RECT, History, Origin, Packed, Rect, cached_unpack, readonly
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.events import SessionEvents
from csknet_studio.core.project import CheckpointRef, ProjectProblem, ProjectStore, default_project_path
from csknet_studio.core.project_lock import LockHolder, ProjectLock
from csknet_studio.core.session_edits import EditingMixin, _Stroke
from csknet_studio.core.session_propagated import PropagatedMixin
from csknet_studio.core.session_store import ProjectIOMixin

DEFAULT_UNDO_BUDGET = 256 * 1024 * 1024

__all__ = ["AnnotationSession", "Origin", "Rect", "EMPTY_RECT", "CheckpointRef", "DEFAULT_UNDO_BUDGET"]


class AnnotationSession(EditingMixin, PropagatedMixin, ProjectIOMixin):
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
        self.autosave = autosave
        self.names: list[str] = [str(n) for n in sequence.names]
        self._n = len(sequence)
        if len(self.names) != self._n:
            raise ProjectError(f"sequence {getattr(sequence, 'source', '?')}: {self._n} frames but {len(self.names)} names")
        src = getattr(sequence, "source", None)
        # an in-memory sequence (ArraySequence's "<memory>") has no place on disk for a project
        self.source: Path | None = Path(src) if src is not None and not str(src).startswith("<") else None
        if project_path is None and self.source is not None:
            project_path = default_project_path(self.source)
        self.project_path: Path | None = Path(project_path) if project_path is not None else None
        self._store = ProjectStore(self.project_path) if self.project_path is not None else None
        self.scheme: ClassScheme = scheme or getattr(sequence, "scheme", None) or MFNET
        self.checkpoint: CheckpointRef | None = None
        self.alignment: dict[str, Any] | None = None
        self.last_save_error: ProjectError | None = None
        self.read_only = bool(read_only)
        self.problems: list[ProjectProblem] = []  # what loading repaired or could not use, and how
        self.lock_taken_over: LockHolder | None = None  # a dead process's lock this session replaced
        self.removed_temps: list[Path] = []  # temporary files of a killed save, cleared on open
        self._lock: ProjectLock | None = None
        self._journal_lines = 0  # lines appended since the last compaction
        self._journal_cut = 0  # journal size at the last compaction
        self._pending: dict[int, tuple[str | None, bytes | None]] = {}  # journalled, not yet in mask files
        self._inline: dict[int, bytes] = {}  # masks read from the journal on open, not yet decoded
        self._compaction = None  # the background compaction running, if any
        self._corr: dict[int, np.ndarray] = {}
        self._on_disk: dict[int, str] = {}  # corrected frames whose mask is still only on disk
        self._pred: dict[int, Packed] = {}
        self._pred_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._prop: dict[int, Packed] = {}  # propagated labels (kept under a correction made on top)
        self._prop_on_disk: dict[int, str] = {}  # propagated frames whose mask is still only on disk
        self._prop_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._shapes: dict[int, tuple[int, int]] = {}
        self._empties: dict[tuple[int, int], np.ndarray] = {}
        self._dirty_frames: set[int] = set()
        self._meta_dirty = False
        self._dirty = False
        self._history = History(undo_budget_bytes)
        self._stroke: _Stroke | None = None
        if self._store is not None and not self.read_only:
            self._take_lock(take_over_lock)  # before reading: nobody else writes while we load
        try:
            if self._store is not None and self._store.exists():
                self._restore(self._store.load(), relink)
        except BaseException:
            self.release_lock()
            raise

    @classmethod
    def open(cls, sequence: Any, project_path: str | os.PathLike | None = None, **kw: Any) -> AnnotationSession:
        """Open `sequence` with its project (restoring every saved correction)."""
        return cls(sequence, project_path, **kw)

    # --- reading ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def _check(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self._n:
            raise IndexError(f"frame {i} out of range (sequence has {self._n} frames)")
        return i

    def origin(self, i: int) -> Origin:
        i = self._check(i)
        if i in self._corr or i in self._on_disk:
            return Origin.CORRECTED
        if i in self._prop or i in self._prop_on_disk:
            return Origin.PROPAGATED
        return Origin.PREDICTED if i in self._pred else Origin.EMPTY

    def origins(self) -> list[Origin]:
        return [self.origin(i) for i in range(self._n)]

    def corrected_frames(self) -> list[int]:
        return sorted(set(self._corr) | set(self._on_disk))

    def frame_shape(self, i: int) -> tuple[int, int]:
        """(H, W) of frame i, read from the sequence only when no mask tells it."""
        i = self._check(i)
        if i in self._corr:
            return self._corr[i].shape  # type: ignore[return-value]
        if i in self._prop:
            return self._prop[i].shape  # type: ignore[return-value]
        if i in self._pred:
            return self._pred[i].shape  # type: ignore[return-value]
        if i not in self._shapes:
            self._shapes[i] = tuple(self.sequence[i].shape)  # type: ignore[assignment]
        return self._shapes[i]

    def _correction(self, i: int) -> np.ndarray | None:
        if i in self._on_disk:
            mask = self._read_project_mask(i, self._on_disk.pop(i), "corrected")
            if mask is not None:
                self._corr[i] = mask
        return self._corr.get(i)

    def prediction(self, i: int) -> np.ndarray | None:
        """The model's labels for frame i (read-only), or None."""
        i = self._check(i)
        return cached_unpack(self._pred_cache, i, lambda: self._pred.get(i))

    def labels(self, i: int) -> np.ndarray:
        """Current (H, W) uint8 mask: the correction, else the propagated labels, else the prediction,
        else all 255. Read-only."""
        i = self._check(i)
        m = self._correction(i)
        if m is not None:
            return readonly(m)
        m = self.propagated(i)
        if m is not None:
            return m
        p = self.prediction(i)
        if p is not None:
            return p
        shape = self.frame_shape(i)
        if shape not in self._empties:
            self._empties[shape] = readonly(np.full(shape, IGNORE_INDEX, np.uint8))
        return self._empties[shape]

    # --- predictions (not edits: not undoable, never saved as corrections) ---------------------------
    def set_prediction(self, i: int, labels: np.ndarray) -> None:
        i = self._check(i)
        arr = np.asarray(labels)
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"prediction for frame {i} must be a 2-D integer mask, got {arr.dtype} {arr.shape}")
        known = self._corr[i].shape if i in self._corr else self._shapes.get(i)
        if known is not None and tuple(arr.shape) != tuple(known):
            raise ValueError(f"prediction for frame {i} has shape {arr.shape}, the frame is {known}")
        before = self.origin(i)
        arr = arr.astype(np.uint8, copy=True)
        self._pred[i] = Packed.pack(arr)
        self._pred_cache[i] = readonly(arr)
        self._pred_cache.move_to_end(i)
        self._shapes[i] = arr.shape  # type: ignore[assignment]
        if before in (Origin.PREDICTED, Origin.EMPTY):
            self.events.labels_changed.emit(i, Rect.full(arr.shape))
        if before is Origin.EMPTY:
            self.events.origin_changed.emit(i)

    def clear_predictions(self) -> None:
        """Forget every prediction (e.g. new weights): uncorrected frames fall back to empty."""
        frames = list(self._pred)
        self._pred.clear()
        self._pred_cache.clear()
        for i in frames:
            if self.origin(i) is Origin.EMPTY:
                self.events.labels_changed.emit(i, Rect.full(self.frame_shape(i)))
                self.events.origin_changed.emit(i)

    # --- project settings -------------------------------------------------------------------------------
    def set_scheme(self, scheme: ClassScheme, *, force: bool = False) -> None:
        """Switch the class scheme. Corrected pixels with ids the new scheme lacks make this refuse
        (ProjectError listing the frames) unless force=True, which turns them into 255 (unlabelled).
        Predictions are dropped when the class names change, and the undo history is cleared (its
        diffs hold ids of the old scheme)."""
        if scheme == self.scheme:
            return
        self._finish_stroke()
        n = scheme.num_classes
        bad = [i for i in self.corrected_frames() if ((m := self._correction(i)) >= n)[m != IGNORE_INDEX].any()]
        if bad and not force:
            names = ", ".join(self.names[i] for i in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise ProjectError(
                f"cannot switch to class scheme {scheme.name!r} ({n} classes): {len(bad)} corrected frame(s) "
                f"use class ids >= {n} ({names}); use force to make those pixels unlabelled (255)"
            )
        for i in bad:
            m = self._corr[i]
            m[(m >= n) & (m != IGNORE_INDEX)] = IGNORE_INDEX
            self._dirty_frames.add(i)
            self.events.labels_changed.emit(i, Rect.full(m.shape))
        self._drop_unknown_propagated_ids(n)  # unreviewed labels: no need to ask
        if scheme.class_names != self.scheme.class_names:
            self.clear_predictions()
        self._history.clear()
        self.scheme = scheme
        self._meta_dirty = True
        self.events.scheme_changed.emit(scheme)
        self.events.history_changed.emit()
        self._autosave()

    def set_checkpoint(self, path: str | os.PathLike, weights_hash: str = "") -> None:
        """Record which weights produced the predictions (path + hash go into the project)."""
        self.checkpoint = CheckpointRef(str(Path(path).resolve()), str(weights_hash))
        self._meta_dirty = True
        self._autosave()

    @property
    def alignment(self) -> dict[str, Any] | None:
        """Where IR lies on the EO grid, as the project stores it (`Alignment.to_dict()` or
        `Registration.to_dict()`); None: IR is only resized."""
        return getattr(self, "_alignment", None)

    @alignment.setter
    def alignment(self, value: dict[str, Any] | None) -> None:
        """The sequence resamples IR on every read, so handing it the alignment here (set, or
        restored from the project) puts display, inference, fine-tuning and export on one grid."""
        old = self.alignment
        self._alignment = dict(value) if value is not None else None
        if (value is None and old is None) or not hasattr(self.sequence, "alignment"):
            return
        from csknet_studio.core.data.alignment import Alignment

        try:
            self.sequence.alignment = Alignment.from_dict(value) if value else None
        except (ValueError, TypeError, KeyError) as exc:
            self._alignment = old
            raise ProjectError(f"bad EO/IR alignment {value!r}: {exc}") from None

    def set_alignment(self, alignment: dict[str, Any] | None) -> None:
        self.alignment = dict(alignment) if alignment is not None else None
        self._meta_dirty = True
        self._autosave()

    def snapshot(self) -> SessionSnapshot:
        """A frozen, packed copy of the labels for a background export while editing goes on."""
        self._finish_stroke()
        return SessionSnapshot(self)


class SessionSnapshot:
    """The read side of AnnotationSession (what export needs), frozen at one instant.

    Corrections are zlib-packed copies and predictions are shared immutable packs, so taking one
    costs ~1 ms per corrected frame and little memory; it may be read from a worker thread."""

    def __init__(self, s: AnnotationSession) -> None:
        self.sequence, self.names, self.scheme = s.sequence, list(s.names), s.scheme
        self.source, self.checkpoint, self.project_path = s.source, s.checkpoint, s.project_path
        self._n = len(s)
        self._corr = {i: Packed.pack(s._correction(i)) for i in s.corrected_frames()}  # type: ignore[arg-type]
        self._prop = {i: s._propagated_pack(i) for i in s.propagated_frames()}
        self._pred = dict(s._pred)
        self._shapes = dict(s._shapes)

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
