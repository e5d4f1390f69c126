"""LabelStore: the labels of one sequence and where each frame's labels come from.

A frame's labels come from, in order: a person's correction, labels propagated by optical flow, the
model's prediction, else all 255 (unlabelled). Corrections are plain arrays (edits change them in
place); predictions and propagated labels are zlib-packed, with the last few unpacked kept, so a
long sequence costs little memory and stepping back and forth decompresses nothing twice. Masks of
a restored project stay on disk until first read, through `read_mask` (set by the project's I/O).
It knows no events, no undo and no files: the session's Editor and ProjectIO work on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX, ClassScheme
from csknet_studio.core.edits import Origin, Packed, readonly
from csknet_studio.core.lru import BoundedLRU

MaskReader = Callable[[int, str, str], "np.ndarray | None"]  # (frame, path in the project, kind) -> mask
UNPACKED_KEPT = 8  # unpacked masks kept per layer: stepping between frames decompresses nothing twice


def _unpacked(packed: Packed | None) -> np.ndarray | None:
    return readonly(packed.unpack()) if packed is not None else None


class LabelStore:
    """Corrections, propagated labels and predictions of `sequence`, with their shapes and origins.

    `scheme` is the class scheme the ids mean. `dirty_frames` collects the frames whose labels
    changed since the project last took them in (the editor adds, the project's I/O clears)."""

    def __init__(self, sequence: Any, names: list[str], scheme: ClassScheme) -> None:
        self.sequence = sequence
        self.names = names
        self.n = len(names)
        self.scheme = scheme
        self.corr: dict[int, np.ndarray] = {}  # corrections in memory (writable)
        self.corr_unread: dict[int, str] = {}  # corrected frames whose mask is still only on disk
        self.pred: dict[int, Packed] = {}
        self.prop: dict[int, Packed] = {}  # propagated labels (kept under a correction made on top)
        self.prop_unread: dict[int, str] = {}  # propagated frames whose mask is still only on disk
        self.shapes: dict[int, tuple[int, int]] = {}
        self.dirty_frames: set[int] = set()
        self.read_mask: MaskReader | None = None
        self._pred_cache: BoundedLRU[int, np.ndarray] = BoundedLRU(max_items=UNPACKED_KEPT)
        self._prop_cache: BoundedLRU[int, np.ndarray] = BoundedLRU(max_items=UNPACKED_KEPT)
        self._empties: dict[tuple[int, int], np.ndarray] = {}

    def check(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.n:
            raise IndexError(f"frame {i} out of range (sequence has {self.n} frames)")
        return i

    # --- origins and shapes ---------------------------------------------------------------------------
    def origin(self, i: int) -> Origin:
        i = self.check(i)
        if i in self.corr or i in self.corr_unread:
            return Origin.CORRECTED
        if i in self.prop or i in self.prop_unread:
            return Origin.PROPAGATED
        return Origin.PREDICTED if i in self.pred else Origin.EMPTY

    def origins(self) -> list[Origin]:
        return [self.origin(i) for i in range(self.n)]

    def corrected_frames(self) -> list[int]:
        return sorted(set(self.corr) | set(self.corr_unread))

    def propagated_frames(self) -> list[int]:
        """Frames whose labels are propagated and not yet corrected (origin PROPAGATED)."""
        return sorted((set(self.prop) | set(self.prop_unread)) - set(self.corr) - set(self.corr_unread))

    def frame_shape(self, i: int) -> tuple[int, int]:
        """(H, W) of frame i, read from the sequence only when no mask tells it."""
        i = self.check(i)
        if i in self.corr:
            return self.corr[i].shape  # type: ignore[return-value]
        if i in self.prop:
            return self.prop[i].shape  # type: ignore[return-value]
        if i in self.pred:
            return self.pred[i].shape  # type: ignore[return-value]
        if i not in self.shapes:
            self.shapes[i] = tuple(self.sequence[i].shape)  # type: ignore[assignment]
        return self.shapes[i]

    def expected_shape(self, i: int, seen: tuple[int, int]) -> tuple[int, int] | None:
        """Frame i's size, decoding the frame only when the sequence's usual size differs from `seen`
        (so a project of thousands of masks opens without reading thousands of images)."""
        if i in self.shapes:
            return self.shapes[i]
        ref = getattr(self.sequence, "frame_shape", None)
        if isinstance(ref, tuple) and tuple(ref) == seen:
            return seen
        read = getattr(self.sequence, "read", None)
        try:
            fp = read(i, prefetch=False) if read is not None else self.sequence[i]
        except Exception:  # noqa: BLE001 - an unreadable frame cannot say its size; keep the mask
            return None
        if getattr(fp, "bad", False):
            return None
        self.shapes[i] = tuple(fp.shape)  # type: ignore[assignment]
        return self.shapes[i]

    # --- reading --------------------------------------------------------------------------------------
    def _read(self, unread: dict[int, str], i: int, kind: str) -> np.ndarray | None:
        rel = unread.pop(i)
        return self.read_mask(i, rel, kind) if self.read_mask is not None else None

    def correction(self, i: int) -> np.ndarray | None:
        """Frame i's correction (writable: edits change it in place), read from disk on first use."""
        if i in self.corr_unread:
            mask = self._read(self.corr_unread, i, "corrected")
            if mask is not None:
                self.corr[i] = mask
        return self.corr.get(i)

    def prediction(self, i: int) -> np.ndarray | None:
        """The model's labels for frame i (read-only), or None."""
        i = self.check(i)
        return self._pred_cache.get_or_load(i, lambda: _unpacked(self.pred.get(i)))

    def propagated_pack(self, i: int) -> Packed | None:
        if i in self.prop_unread:
            mask = self._read(self.prop_unread, i, "propagated")
            if mask is not None:
                self.prop[i] = Packed.pack(mask)
        return self.prop.get(i)

    def propagated(self, i: int) -> np.ndarray | None:
        """Frame i's propagated labels (read-only), or None."""
        i = self.check(i)
        return self._prop_cache.get_or_load(i, lambda: _unpacked(self.propagated_pack(i)))

    def base_pack(self, i: int) -> Packed | None:
        """What a first correction of frame i starts from: its propagated labels, else its prediction."""
        packed = self.propagated_pack(i)
        return packed if packed is not None else self.pred.get(i)

    def current(self, i: int) -> np.ndarray:
        """Current (H, W) uint8 mask (read-only): correction, propagated, prediction, else all 255."""
        i = self.check(i)
        m = self.correction(i)
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

    def read_all(self) -> None:
        """Read every mask that still lives only on disk (before the project moves elsewhere)."""
        for i in list(self.corr_unread):
            self.correction(i)
        for i in list(self.prop_unread):
            self.propagated_pack(i)

    # --- writing --------------------------------------------------------------------------------------
    def ensure_corrected(self, i: int) -> np.ndarray:
        """Frame i's correction, started from its current labels when it has none."""
        m = self.correction(i)
        if m is None:
            m = self.current(i).copy()
            self.corr[i] = m
        return m

    def drop_correction(self, i: int) -> None:
        self.corr.pop(i, None)
        self.corr_unread.pop(i, None)

    def put_prediction(self, i: int, labels: np.ndarray) -> tuple[int, int]:
        """Store frame i's prediction (checked: a 2-D integer mask of the frame's size); returns its shape."""
        arr = np.asarray(labels)
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"prediction for frame {i} must be a 2-D integer mask, got {arr.dtype} {arr.shape}")
        known = self.corr[i].shape if i in self.corr else self.shapes.get(i)
        if known is not None and tuple(arr.shape) != tuple(known):
            raise ValueError(f"prediction for frame {i} has shape {arr.shape}, the frame is {known}")
        arr = arr.astype(np.uint8, copy=True)
        self.pred[i] = Packed.pack(arr)
        self._pred_cache.put(i, readonly(arr))
        self.shapes[i] = arr.shape  # type: ignore[assignment]
        return arr.shape  # type: ignore[return-value]

    def clear_predictions(self) -> list[int]:
        """Forget every prediction; returns the frames that had one."""
        frames = list(self.pred)
        self.pred.clear()
        self._pred_cache.clear()
        return frames

    def set_propagated(self, i: int, packed: Packed | None) -> None:
        """Make `packed` frame i's propagated labels (None: it has none)."""
        self.prop_unread.pop(i, None)
        self._prop_cache.pop(i)
        if packed is None:
            self.prop.pop(i, None)
        else:
            self.prop[i] = packed
        self.dirty_frames.add(i)
