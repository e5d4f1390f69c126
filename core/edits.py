"""Building blocks of the annotation session: rectangles, rasterised tools and the undo history.

Undo entries store the touched box's old and new values (zlib-packed), never whole frames, so a
brush stroke costs a few hundred bytes and the history can be long (napari #2339).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

Point = tuple[float, float]  # (x, y) = (column, row) in frame pixels, like a scene position


class Origin(StrEnum):
    """Where a frame's current labels come from."""

    EMPTY = "empty"  # nothing yet: all 255 (unlabelled)
    PREDICTED = "predicted"  # a model prediction, not checked by a person
    PROPAGATED = "propagated"  # carried from a neighbouring frame by optical flow: to be reviewed
    CORRECTED = "corrected"  # edited or accepted by a person: this is what gets saved


@dataclass(frozen=True)
class Rect:
    """A half-open pixel box [y0, y1) x [x0, x1): what views repaint and what undo stores."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def empty(self) -> bool:
        return self.height == 0 or self.width == 0

    @property
    def area(self) -> int:
        return self.height * self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: Rect) -> Rect:
        if self.empty:
            return other
        if other.empty:
            return self
        return Rect(min(self.y0, other.y0), min(self.x0, other.x0), max(self.y1, other.y1), max(self.x1, other.x1))

    def clip(self, shape: tuple[int, int]) -> Rect:
        h, w = shape
        r = Rect(max(0, self.y0), max(0, self.x0), min(h, self.y1), min(w, self.x1))
        return r if not r.empty else EMPTY_RECT

    @classmethod
    def full(cls, shape: tuple[int, int]) -> Rect:
        return cls(0, 0, int(shape[0]), int(shape[1]))

    @classmethod
    def bbox(cls, mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> Rect:
        """Bounding box of the True pixels of `mask`, shifted by `offset` (y, x); EMPTY_RECT if none."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return EMPTY_RECT
        cols = np.flatnonzero(mask.any(axis=0))
        oy, ox = offset
        return cls(oy + int(rows[0]), ox + int(cols[0]), oy + int(rows[-1]) + 1, ox + int(cols[-1]) + 1)


EMPTY_RECT = Rect(0, 0, 0, 0)


@dataclass(frozen=True)
class Packed:
    """A zlib-packed uint8 array: label masks compress 20-100x, so many fit in little memory."""

    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def pack(cls, arr: np.ndarray) -> Packed:
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        return cls(tuple(int(s) for s in arr.shape), zlib.compress(arr.tobytes(), 1))

    def unpack(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.data), dtype=np.uint8).reshape(self.shape).copy()

    @property
    def nbytes(self) -> int:
        return len(self.data) + 64


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: what the session hands out must not be edited behind its back."""
    v = a.view()
    v.flags.writeable = False
    return v


# --- tools: each returns (rect, boolean mask of the pixels to set inside rect) ------------------
def _as_xy(points: Sequence[Point]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0 or not np.isfinite(pts).all():
        raise ValueError(f"need at least one finite (x, y) point, got {points!r}")
    return pts


def brush_segment(shape: tuple[int, int], p0: Point, p1: Point, radius: float) -> tuple[Rect, np.ndarray]:
    """Pixels whose centre lies within `radius + 0.5` of segment p0-p1 (a round brush, 2r+1 wide)."""
    if radius < 0:
        raise ValueError(f"brush radius must be >= 0, got {radius}")
    (x0, y0), (x1, y1) = _as_xy([p0, p1])
    reach = radius + 0.5
    rect = Rect(
        int(np.floor(min(y0, y1) - reach)), int(np.floor(min(x0, x1) - reach)),
        int(np.ceil(max(y0, y1) + reach)) + 1, int(np.ceil(max(x0, x1) + reach)) + 1,
    ).clip(shape)
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    yy, xx = np.mgrid[rect.y0 : rect.y1, rect.x0 : rect.x1].astype(np.float64)
    dx, dy = x1 - x0, y1 - y0
    seg2 = dx * dx + dy * dy
    t = np.zeros_like(xx) if seg2 == 0 else np.clip(((xx - x0) * dx + (yy - y0) * dy) / seg2, 0.0, 1.0)
    dist2 = (xx - (x0 + t * dx)) ** 2 + (yy - (y0 + t * dy)) ** 2
    return _tight(rect, dist2 <= reach * reach + 1e-9)


def polygon_region(shape: tuple[int, int], points: Sequence[Point]) -> tuple[Rect, np.ndarray]:
    """Pixels inside (and on the outline of) a closed polygon."""
    pts = _as_xy(points)
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    ipts = np.rint(pts).astype(np.int64)
    rect = Rect(int(ipts[:, 1].min()), int(ipts[:, 0].min()), int(ipts[:, 1].max()) + 1, int(ipts[:, 0].max()) + 1)
    rect = rect.clip(shape)
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    canvas = np.zeros((rect.height, rect.width), np.uint8)
    local = (ipts - np.array([rect.x0, rect.y0])).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [local], 1, lineType=cv2.LINE_8)
    cv2.polylines(canvas, [local], True, 1, lineType=cv2.LINE_8)
    return _tight(rect, canvas.astype(bool))


def flood_region(labels: np.ndarray, seed: Point) -> tuple[Rect, np.ndarray]:
    """The 4-connected region of equal label value around `seed` (x, y)."""
    h, w = labels.shape
    x, y = (int(round(v)) for v in _as_xy([seed])[0])
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"flood-fill seed {(x, y)} lies outside the {w}x{h} frame")
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(np.require(labels, np.uint8, ['C', 'W']), mask, (x, y), 0, 0, 0, flags)
    rect = Rect(ry, rx, ry + rh, rx + rw)
    return rect, mask[1 + rect.y0 : 1 + rect.y1, 1 + rect.x0 : 1 + rect.x1].astype(bool)


def label_edges(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbour has another id: the class boundaries, one pixel each side."""
    edge = np.zeros(mask.shape, bool)
    d = mask[1:, :] != mask[:-1, :]
    edge[1:, :] |= d
    edge[:-1, :] |= d
    d = mask[:, 1:] != mask[:, :-1]
    edge[:, 1:] |= d
    edge[:, :-1] |= d
    return edge


def _tight(rect: Rect, mask: np.ndarray) -> tuple[Rect, np.ndarray]:
    sub = Rect.bbox(mask)
    if sub.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    return Rect(rect.y0 + sub.y0, rect.x0 + sub.x0, rect.y0 + sub.y1, rect.x0 + sub.x1), mask[sub.slices]


# --- undo history --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One undoable step on one frame: the box's values before and after, and the origin change.

    `base` is the mask the frame's correction was started from when the frame had none before (the
    packed prediction, or None for all-255), so redo rebuilds it exactly.
    """

    frame: int
    kind: str
    rect: Rect
    old: Packed
    new: Packed
    origin_before: Origin
    origin_after: Origin
    base: Packed | None = None

    @property
    def nbytes(self) -> int:
        return 200 + self.old.nbytes + self.new.nbytes + (self.base.nbytes if self.base is not None else 0)


@dataclass(frozen=True)
class FrameState:
    """One frame's propagated labels before and after a multi-frame step (None = it had none)."""

    frame: int
    old: Packed | None
    new: Packed | None
    origin_before: Origin
    origin_after: Origin


@dataclass(frozen=True)
class MultiFrameEdit:
    """One undoable step over many frames (a propagation): whole packed masks per frame.

    Only the propagated layer changes; corrected frames are never part of one, so undo puts each
    frame's earlier propagated mask back (or removes it) and the frame shows what it showed before.
    """

    kind: str
    frames: tuple[FrameState, ...]

    @property
    def frame(self) -> int:
        """The frame the GUI shows after undo / redo: the first one the step touched."""
        return self.frames[0].frame

    @property
    def nbytes(self) -> int:
        return 200 + sum(100 + (f.old.nbytes if f.old is not None else 0) + (f.new.nbytes if f.new is not None else 0)
                         for f in self.frames)


class History:
    """Linear undo/redo over all frames, bounded by a memory budget (oldest steps dropped first)."""

    def __init__(self, budget_bytes: int = 256 * 1024 * 1024) -> None:
        if budget_bytes <= 0:
            raise ValueError("undo budget must be positive")
        self.budget_bytes = int(budget_bytes)
        self._undo: deque[Edit | MultiFrameEdit] = deque()
        self._redo: list[Edit | MultiFrameEdit] = []
        self.nbytes = 0
        self.dropped_total = 0

    def push(self, edit: Edit | MultiFrameEdit) -> int:
        """Record a new step (clears redo); returns how many old steps were dropped for the budget."""
        for e in self._redo:
            self.nbytes -= e.nbytes
        self._redo.clear()
        self._undo.append(edit)
        self.nbytes += edit.nbytes
        dropped = 0
        while self.nbytes > self.budget_bytes and len(self._undo) > 1:
            self.nbytes -= self._undo.popleft().nbytes
            dropped += 1
        self.dropped_total += dropped
        return dropped

    def pop_undo(self) -> Edit | MultiFrameEdit | None:
        if not self._undo:
            return None
        e = self._undo.pop()
        self._redo.append(e)
        return e

    def pop_redo(self) -> Edit | MultiFrameEdit | None:
        if not self._redo:
            return None
        e = self._redo.pop()
        self._undo.append(e)
        return e

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self.nbytes = 0

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo) + len(self._redo)
