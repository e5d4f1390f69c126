"""The lazy `Sequence` every reader builds on: LRU frame cache, background prefetch, alignment,
bad-frame bookkeeping and fixed per-sequence display levels.

Subclasses implement `_read_raw(i)` only (decode one frame, no caching); this class decides what is
kept in memory, so memory is bounded by the cache budget whatever the sequence length.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from collections.abc import Sequence as _Seq
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.errors import (
    AspectMismatchError,
    CorruptImageError,
    CSKNetError,
    EmptySequenceError,
    FrameCountMismatchError,
    SequenceError,
)
from csknet_studio.core.frames import FramePair

from .imaging import fit_to_grid, to_grey, to_label, to_rgb
from .thermal import RadiometricMixin

DEFAULT_CACHE_BYTES = 192 * 1024 * 1024
DEFAULT_CACHE_FRAMES = 256
DEFAULT_PREFETCH = 4
LEVEL_SAMPLE_FRAMES = 32
LEVEL_PERCENTILES = (1.0, 99.0)
PROBE_FRAMES = 8
# A read-ahead job waits this long before decoding, so the frame just returned reaches the screen
# first instead of competing with the decode for the GIL and the (often 2) CPU cores.
PREFETCH_YIELD_S = 0.004


# ------------------------------------------------------------------------------------- alignment
def _resize_map(src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
    """3x3 taking source pixel coordinates to destination ones for a plain resize (pixel centres
    on integers, as cv2.resize samples them)."""
    (sh, sw), (dh, dw) = src_shape, dst_shape
    kx, ky = dw / sw, dh / sh
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Alignment:
    """Where the IR image lies on the EO grid: the one geometry every reader applies to IR.

    The general form is `homography`, a 3x3 (row-major, nested tuples) taking IR pixel coordinates
    of the frame as decoded to EO pixel coordinates (pixel centres on integers). Older projects
    store an offset and a zoom instead: dx, dy in EO pixels (positive = right / down) and scale
    about the image centre (>1 makes IR larger), applied after IR is resized to the EO size. Those
    depend on the two image sizes, so `matrix` turns them into the same 3x3 once the sizes are known.
    """

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    homography: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        for k in ("dx", "dy", "scale"):
            v = getattr(self, k)
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"Alignment.{k} must be a finite number, got {v!r}")
        if not 0.05 <= self.scale <= 20.0:
            raise ValueError(f"Alignment.scale must be in [0.05, 20], got {self.scale}")
        if self.homography is not None:
            h = np.asarray(self.homography, dtype=np.float64)
            if h.shape != (3, 3) or not np.isfinite(h).all():
                raise ValueError(f"Alignment.homography must be a finite 3x3, got {self.homography!r}")
            if abs(np.linalg.det(h)) < 1e-12 or abs(h[2, 2]) < 1e-12:
                raise ValueError("Alignment.homography is singular")
            if (self.dx, self.dy, self.scale) != (0.0, 0.0, 1.0):
                raise ValueError("Alignment: give a homography or dx/dy/scale, not both")
            object.__setattr__(self, "homography", tuple(tuple(float(v) for v in row) for row in h / h[2, 2]))

    @classmethod
    def from_matrix(cls, h: np.ndarray) -> Alignment:
        return cls(homography=tuple(tuple(float(v) for v in row) for row in np.asarray(h, dtype=np.float64)))

    @property
    def is_identity(self) -> bool:
        """True when IR is only resized to the EO grid (no offset, zoom or homography)."""
        return self.homography is None and self.dx == 0 and self.dy == 0 and self.scale == 1

    def to_dict(self) -> dict[str, Any]:
        if self.homography is not None:
            return {"homography": [list(row) for row in self.homography]}
        return {"dx": float(self.dx), "dy": float(self.dy), "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Alignment:
        """Reads both forms; keys it does not know (a residual, a method) are ignored."""
        d = d or {}
        if d.get("homography") is not None:
            return cls(homography=tuple(tuple(float(v) for v in row) for row in d["homography"]))
        return cls(dx=float(d.get("dx", 0.0)), dy=float(d.get("dy", 0.0)), scale=float(d.get("scale", 1.0)))

    def matrix(self, src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
        """3x3 taking IR pixel coordinates (IR of `src_shape`) to EO pixel coordinates (`dst_shape`)."""
        if self.homography is not None:
            return np.array(self.homography, dtype=np.float64)
        dh, dw = dst_shape
        cx, cy = (dw - 1) / 2.0, (dh - 1) / 2.0
        s = self.scale
        # x_eo = s * (x_resized - cx) + cx + dx
        zoom = np.array([[s, 0.0, cx - s * cx + self.dx], [0.0, s, cy - s * cy + self.dy], [0.0, 0.0, 1.0]])
        return zoom @ _resize_map(src_shape, dst_shape)

    def as_homography(self, src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> Alignment:
        """The same placement in the general form (how an offset/scale project is carried forward)."""
        return self if self.homography is not None else Alignment.from_matrix(self.matrix(src_shape, dst_shape))


def default_homography(src_shape: tuple[int, int], dst_shape: tuple[int, int]) -> np.ndarray:
    """Where IR goes with no alignment at all: resized to the EO grid."""
    return _resize_map(src_shape, dst_shape)


def warp_to_grid(a: np.ndarray, h: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample `a` onto a grid of `shape` (H, W) through `h` (source pixel -> grid pixel).

    One pass, linear; pixels the source does not cover are 0. An affine `h` takes the cheaper
    warpAffine (same result)."""
    src = a if a.dtype in (np.uint8, np.uint16, np.float32) else a.astype(np.float32)
    size = (shape[1], shape[0])
    if np.allclose(h[2], (0.0, 0.0, 1.0), atol=1e-12):
        return cv2.warpAffine(src, np.ascontiguousarray(h[:2]), size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpPerspective(src, h, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_ir(ir: np.ndarray, shape: tuple[int, int], alignment: Alignment | None) -> np.ndarray:
    """Resample IR onto the EO grid `shape` (H, W), applying the alignment in the same single pass.

    The one place IR meets the EO grid: display, inference, training, fine-tuning and export all
    read frames through it."""
    if alignment is None or alignment.is_identity:
        return fit_to_grid(ir, shape)
    return warp_to_grid(ir, alignment.matrix(ir.shape[:2], shape), shape)


# Relative difference of width/height ratios below which IR is resized onto the EO grid as is
# (rounding of odd sizes, a pixel of crop); beyond it a plain resize would stretch the scene.
ASPECT_TOLERANCE = 0.02


def check_aspect(ir_shape: tuple[int, ...], eo_shape: tuple[int, ...], where: str) -> None:
    """Refuse to stretch IR of another aspect ratio onto the EO grid without an explicit alignment."""
    (ih, iw), (eh, ew) = ir_shape[:2], eo_shape[:2]
    if abs((iw / ih) / (ew / eh) - 1.0) <= ASPECT_TOLERANCE:
        return
    raise AspectMismatchError(
        f"{where}: IR is {iw}x{ih} (aspect {iw / ih:.3f}) but EO is {ew}x{eh} (aspect {ew / eh:.3f}); "
        "resizing IR to the EO grid would stretch it. Register EO/IR first (`csknet-studio align "
        "SEQUENCE`, or View > Register EO/IR in the app, stores a homography in the project), pass "
        "--alignment plain to accept the resize for one run (Python: open_sequence(path, Alignment())), "
        "or crop the IR frames to the EO aspect ratio"
    )


# ------------------------------------------------------------------------------------ display
@functools.lru_cache(maxsize=16)
def _level_lut(n: int, lo: float, hi: float) -> np.ndarray:
    """Levels never change while scrubbing a sequence, so the LUT is built once, not per frame."""
    lut = np.clip((np.arange(n, dtype=np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def apply_levels(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Map [lo, hi] to [0, 255] uint8 (what a screen shows). uint8/uint16 go through a LUT."""
    lo, hi = float(levels[0]), float(levels[1])
    if hi <= lo:
        hi = lo + 1.0
    if a.dtype == np.uint8 and lo == 0.0 and hi == 255.0:
        return a
    if a.dtype in (np.uint8, np.uint16):
        n = 256 if a.dtype == np.uint8 else 65536
        lut = _level_lut(n, lo, hi)
        return cv2.LUT(a, lut) if n == 256 else lut[a]
    f = (a.astype(np.float32, copy=False) - lo) * (255.0 / (hi - lo)) + 0.5
    return np.clip(f, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ cache
def frame_nbytes(fp: FramePair) -> int:
    return sum(a.nbytes for a in (fp.eo, fp.ir, fp.label) if a is not None)


class FrameCache:
    """Thread-safe LRU of FramePairs bounded by bytes and by count (whichever bites first)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, max_frames: int = DEFAULT_CACHE_FRAMES):
        self.max_bytes = int(max_bytes)
        self.max_frames = int(max_frames)
        self._d: OrderedDict[int, FramePair] = OrderedDict()
        self._sizes: dict[int, int] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: int) -> bool:
        return key in self._d

    def get(self, key: int) -> FramePair | None:
        with self._lock:
            fp = self._d.get(key)
            if fp is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return fp

    def put(self, key: int, fp: FramePair) -> None:
        size = frame_nbytes(fp)
        with self._lock:
            if key in self._d:
                self.nbytes -= self._sizes.pop(key)
                del self._d[key]
            if self.max_frames <= 0 or size > self.max_bytes:
                return
            self._d[key] = fp
            self._sizes[key] = size
            self.nbytes += size
            while self._d and (self.nbytes > self.max_bytes or len(self._d) > self.max_frames):
                old, _ = self._d.popitem(last=False)
                self.nbytes -= self._sizes.pop(old)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self._sizes.clear()
            self.nbytes = 0


# ------------------------------------------------------------------------------------ summary
@dataclass(frozen=True)
class SequenceInfo:
    """What a status bar or a log line says about an opened sequence."""

    layout: str
    source: str
    n_frames: int
    frame_shape: tuple[int, int] | None
    eo_dtype: str | None
    ir_dtype: str | None
    has_labels: bool
    scheme: str | None
    split: str | None
    bad_frames: int

    def __str__(self) -> str:
        shape = "x".join(map(str, self.frame_shape)) if self.frame_shape else "?"
        parts = [f"{self.layout}: {self.n_frames} frames {shape}", f"EO {self.eo_dtype}", f"IR {self.ir_dtype}"]
        if self.split:
            parts.append(f"split {self.split}")
        if self.has_labels:
            parts.append(f"labels ({self.scheme or 'no scheme'})")
        if self.bad_frames:
            parts.append(f"{self.bad_frames} bad frame(s)")
        return ", ".join(parts)


@dataclass(frozen=True)
class RawFrame:
    """What a reader decoded for one frame, before resampling: RGB EO, single-channel IR, ids, and
    the IR file's own conversion to °C (a FLIR R-JPEG's, a TIFF's metadata) when it states one."""

    eo: np.ndarray | None
    ir: np.ndarray | None
    label: np.ndarray | None = None
    radiometry: Any = None


# ------------------------------------------------------------------------------------ sequence
class BaseSequence(RadiometricMixin, _Seq):
    """Lazy sequence of FramePairs. Returned arrays are read-only (they live in a shared cache)."""

    def __init__(
        self,
        *,
        layout: str,
        source: Path,
        names: list[str],
        scheme: ClassScheme | None = None,
        alignment: Alignment | None = None,
        split: str | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        cache_frames: int = DEFAULT_CACHE_FRAMES,
        prefetch: int = DEFAULT_PREFETCH,
        workers: int = 2,
    ):
        self.layout = layout
        self.source = Path(source)
        self.names = list(names)
        self.scheme = scheme
        self.split = split
        # Replaced, never mutated in place (copy-on-write): safe to iterate from any thread.
        self.bad_frames: set[int] = set()
        self.bad_reasons: dict[int, str] = {}
        # Frames whose label file could not be read (the images are fine; the label is None).
        self.label_errors: dict[int, str] = {}
        self._alignment = alignment
        self._cache = FrameCache(cache_bytes, cache_frames)
        self._prefetch_n = max(0, int(prefetch))
        self._workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[int, Future] = {}
        self._decoding: set[int] = set()  # read-aheads past their yield, decoding now
        self._claimed: set[int] = set()  # read-aheads the caller took over (they skip)
        self._want: frozenset[int] = frozenset()  # the current read-ahead window
        self._lock = threading.Lock()
        self._closed = False
        self._last = -1
        self._ref: tuple[tuple[int, int], Any, Any] | None = None  # (shape, eo dtype, ir dtype)
        self._levels: dict[str, tuple[float, float]] | None = None
        self._label_provider: Callable[[int], np.ndarray | None] | None = None
        self.label_file: Path | None = None  # set when labels come from an attached export
        self._label_closer: Callable[[], None] | None = None
        self._epoch = 0  # bumped when alignment changes so stale prefetches are dropped
        # What to pass to open_sequence to get this sequence again (a path, or an (eo, ir) pair).
        self.origin: str | tuple[str, str] = str(self.source)
        if not self.names:
            raise EmptySequenceError(f"{self.source}: {layout} layout recognised but it holds no frames")

    # -- subclass hooks ------------------------------------------------------------------------
    def _read_raw(self, i: int) -> RawFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:
        """Release file handles (called once, after the prefetch threads have stopped)."""

    def _has_native_labels(self) -> bool:
        return False

    @property
    def has_labels(self) -> bool:
        return self._label_provider is not None or self._has_native_labels()

    def attach_labels(self, provider: Callable[[int], np.ndarray | None], scheme: ClassScheme | None = None,
                      closer: Callable[[], None] | None = None) -> None:
        """Take labels from elsewhere (e.g. an exported HDF5 of this sequence): provider(i) -> ids."""
        self._label_provider = provider
        self._label_closer = closer
        if scheme is not None:
            self.scheme = scheme
        self._epoch += 1
        self._cache.clear()

    # -- protocol ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> FramePair:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("sequences are indexed by frame number, not slices")
        return self.read(i)

    def read(self, i: int, *, prefetch: bool = True) -> FramePair:
        """Frame i. Background consumers (export, fine-tuning) pass prefetch=False so their reads
        do not steer the read-ahead away from the frame the user is looking at."""
        i = self._index(i)
        if self._closed:
            raise SequenceError(f"{self.source}: sequence was closed; open it again to read frame {i}")
        fp = self._cache.get(i)
        if fp is None:
            with self._lock:
                fut = self._inflight.get(i)
                # Wait for a read-ahead only once it is decoding; one still queued or yielding is
                # claimed (it will skip) and decoded here, so the caller never waits on a sleep.
                wait = fut is not None and i in self._decoding
                if fut is not None and not wait:
                    self._claimed.add(i)
            fp = None
            if wait and fut is not None:
                try:
                    fp = fut.result()
                except Exception:  # noqa: BLE001 - fall back to a direct read below
                    fp = None
            if fp is None:
                epoch = self._epoch
                fp = self._build(i)
                if epoch == self._epoch:
                    self._cache.put(i, fp)
        if prefetch:
            self._schedule(i)
        return fp

    def __iter__(self) -> Iterator[FramePair]:
        for i in range(len(self)):
            yield self[i]

    def __enter__(self) -> BaseSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.layout} {len(self)} frames from {self.source}>"

    def _index(self, i: int) -> int:
        if not isinstance(i, int | np.integer):
            raise TypeError(f"frame index must be an int, not {type(i).__name__}")
        n = len(self.names)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"frame {i} out of range: {self.source} has {n} frames")
        return j

    # -- alignment -----------------------------------------------------------------------------
    @property
    def alignment(self) -> Alignment | None:
        return self._alignment

    @alignment.setter
    def alignment(self, value: Alignment | None) -> None:
        """Changing the alignment invalidates every cached frame (IR is resampled on read)."""
        self._epoch += 1
        self._alignment = value
        self._cancel_pending(keep=())
        self._cache.clear()

    # -- frames --------------------------------------------------------------------------------
    def raw_pair(self, i: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Frame i's (EO, IR) as decoded, IR on its own pixel grid: registration estimates the
        alignment from these, so it must see IR before any alignment is applied. Not cached."""
        j = self._index(i)
        try:
            raw = self._read_raw(j)
        except (OSError, cv2.error) as exc:
            raise SequenceError(f"{self.source}: frame {j} ({self.names[j]}): {type(exc).__name__}: {exc}") from exc
        return raw.eo, raw.ir

    def _build(self, i: int) -> FramePair:
        name = self.names[i]
        try:
            raw = self._read_raw(i)
            if self._label_provider is not None:
                try:
                    raw = replace(raw, label=self._label_provider(i))
                except CSKNetError as exc:  # a broken label keeps the image pair
                    self._mark_label_error(i, str(exc))
                    raw = replace(raw, label=None)
            fp = self._assemble(name, raw)
        except AspectMismatchError as exc:
            if self._ref is None:  # no frame read yet: the whole sequence needs an alignment, say so at open
                raise
            return self._bad(i, str(exc))
        except CSKNetError as exc:
            return self._bad(i, str(exc))
        except (OSError, cv2.error, MemoryError) as exc:
            return self._bad(i, f"{self.source}: frame {i} ({name}): {type(exc).__name__}: {exc}")
        if self._ref is None:
            self._ref = (fp.shape, None if fp.eo is None else fp.eo.dtype, None if fp.ir is None else fp.ir.dtype)
        return fp

    def _assemble(self, name: str, raw: RawFrame) -> FramePair:
        eo, ir, label = raw.eo, raw.ir, raw.label
        if eo is None and ir is None:
            raise CorruptImageError(f"{self.source}: frame {name} has neither EO nor IR")
        shape = eo.shape[:2] if eo is not None else ir.shape[:2]  # type: ignore[union-attr]
        if ir is not None and (ir.shape[:2] != shape or (self._alignment and not self._alignment.is_identity)):
            if self._alignment is None and eo is not None:
                check_aspect(ir.shape, shape, f"{self.source}: frame {name}")
            ir = align_ir(ir, shape, self._alignment)
        if label is not None and label.shape[:2] != shape:
            label = fit_to_grid(label, shape, nearest=True)
        for a in (eo, ir, label):
            if a is not None:
                a.flags.writeable = False
        return FramePair(name=name, eo=eo, ir=ir, label=label,
                         radiometry=None if ir is None else self._frame_radiometry(raw.radiometry))

    def _mark_bad(self, i: int, error: str) -> None:
        """Copy-on-write, so a reader on another thread iterating bad_frames never sees it change."""
        with self._lock:
            if i not in self.bad_frames:
                self.bad_frames = self.bad_frames | {i}
            self.bad_reasons = {**self.bad_reasons, i: error}

    def _mark_label_error(self, i: int, error: str) -> None:
        with self._lock:
            self.label_errors = {**self.label_errors, i: error}

    def _bad(self, i: int, error: str) -> FramePair:
        self._mark_bad(i, error)
        if self._ref is not None:
            shape, eo_dt, ir_dt = self._ref
        else:
            shape, eo_dt, ir_dt = (1, 1), np.uint8, np.uint8
        eo = None if eo_dt is None else np.zeros((*shape, 3), dtype=eo_dt)
        ir = None if ir_dt is None else np.zeros(shape, dtype=ir_dt)
        for a in (eo, ir):
            if a is not None:
                a.flags.writeable = False
        return FramePair(name=self.names[i], eo=eo, ir=ir, label=None, bad=True, error=error)

    def _probe(self) -> None:
        """Decode the first good frame at open: fixes the reference shape and fails fast on junk."""
        first_error = None
        for i in range(min(len(self), PROBE_FRAMES)):
            fp = self._build(i)
            if not fp.bad:
                self._cache.put(i, fp)
                return
            first_error = first_error or fp.error
        self.bad_frames, self.bad_reasons = set(), {}
        raise CorruptImageError(
            f"{self.source}: none of the first {min(len(self), PROBE_FRAMES)} frame(s) could be read; "
            f"first error: {first_error}"
        )

    # -- prefetch ------------------------------------------------------------------------------
    def _schedule(self, i: int) -> None:
        if self._prefetch_n == 0 or self._closed:
            return
        step = -1 if i < self._last else 1
        self._last = i
        n = len(self)
        want = [j for j in (i + step * k for k in range(1, self._prefetch_n + 1)) if 0 <= j < n]
        self._want = frozenset(want)
        self._cancel_pending(keep=want)
        todo = [j for j in want if j not in self._cache]
        if not todo:
            return
        with self._lock:
            if self._closed:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="csknet-prefetch")
            epoch = self._epoch
            for j in todo:
                if j in self._inflight:
                    continue
                fut = self._pool.submit(self._prefetch_one, j, epoch)
                self._inflight[j] = fut

    def _prefetch_one(self, j: int, epoch: int) -> FramePair | None:
        try:
            time.sleep(PREFETCH_YIELD_S)
            with self._lock:
                # Stale by now (the user jumped elsewhere while this job yielded): skip it.
                if self._closed or epoch != self._epoch or j in self._claimed or j not in self._want:
                    return None
                self._decoding.add(j)
            fp = self._cache.get(j)
            if fp is None:
                fp = self._build(j)
                if epoch == self._epoch and not self._closed:
                    self._cache.put(j, fp)
            return fp
        finally:
            with self._lock:
                self._inflight.pop(j, None)
                self._decoding.discard(j)
                self._claimed.discard(j)

    def _cancel_pending(self, keep: list[int] | tuple[int, ...]) -> None:
        with self._lock:
            for j, fut in list(self._inflight.items()):
                if j not in keep and fut.cancel():
                    del self._inflight[j]
                    self._claimed.discard(j)

    @property
    def cache(self) -> FrameCache:
        return self._cache

    def prefetch_pending(self) -> int:
        with self._lock:
            return len(self._inflight)

    def wait_prefetch(self, timeout: float | None = 5.0) -> None:
        """Block until queued prefetches finish (tests and benchmarks; the UI never waits)."""
        with self._lock:
            futs = list(self._inflight.values())
        for f in futs:
            if not f.cancelled():
                # A cancelled or failed prefetch is not the caller's problem: the read retries it.
                with contextlib.suppress(Exception):
                    f.result(timeout=timeout)

    # -- display levels --------------------------------------------------------------------------
    def display_levels(self) -> dict[str, tuple[float, float]]:
        """Fixed (lo, hi) per modality from 1st/99th percentiles over up to 32 evenly spaced frames.

        Per-sequence, not per-frame, so scrubbing never flickers. Computed once, then cached.
        """
        if self._levels is not None:
            return dict(self._levels)
        n = len(self)
        idx = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n, LEVEL_SAMPLE_FRAMES))})
        eo_s: list[np.ndarray] = []
        ir_s: list[np.ndarray] = []
        for i in idx:
            fp = self._cache.get(i) or self._build(i)
            if fp.bad:
                continue
            if fp.eo is not None:
                eo_s.append(_subsample(fp.eo))
            if fp.ir is not None:
                ir_s.append(_subsample(fp.ir))
        self._levels = {"eo": _percentiles(eo_s), "ir": _percentiles(ir_s)}
        return dict(self._levels)

    def display_pair(self, i: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Frame i as screen-ready uint8 (EO RGB, IR grey) with the sequence's fixed levels."""
        fp = self[i]
        lv = self.display_levels()
        return (None if fp.eo is None else apply_levels(fp.eo, lv["eo"]),
                None if fp.ir is None else apply_levels(fp.ir, lv["ir"]))

    # -- misc ----------------------------------------------------------------------------------
    @property
    def frame_shape(self) -> tuple[int, int] | None:
        return None if self._ref is None else self._ref[0]

    def info(self) -> SequenceInfo:
        ref = self._ref
        return SequenceInfo(
            layout=self.layout, source=str(self.source), n_frames=len(self),
            frame_shape=None if ref is None else ref[0],
            eo_dtype=None if ref is None or ref[1] is None else str(np.dtype(ref[1])),
            ir_dtype=None if ref is None or ref[2] is None else str(np.dtype(ref[2])),
            has_labels=self.has_labels, scheme=None if self.scheme is None else self.scheme.name,
            split=self.split, bad_frames=len(self.bad_frames),
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Cancel queued prefetches, join the worker threads, drop the cache, release files."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._inflight.clear()
            self._decoding.clear()
            self._claimed.clear()
        self._cache.clear()
        self._close()
        if self._label_closer is not None:
            self._label_closer()


def _subsample(a: np.ndarray, max_pixels: int = 65536) -> np.ndarray:
    h, w = a.shape[:2]
    step = max(1, int(math.sqrt(h * w / max_pixels)))
    return np.ascontiguousarray(a[::step, ::step]).reshape(-1)


def _percentiles(samples: list[np.ndarray]) -> tuple[float, float]:
    if not samples:
        return (0.0, 255.0)
    v = np.concatenate(samples)
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
        if v.size == 0:
            return (0.0, 1.0)
    lo, hi = np.percentile(v, LEVEL_PERCENTILES)
    lo, hi = float(lo), float(hi)
    if hi <= lo:  # flat image: widen so the display maps it to mid-grey instead of dividing by 0
        hi = lo + 1.0
    return (lo, hi)


# ------------------------------------------------------------------------------------ in memory
class ArraySequence(BaseSequence):
    """The Sequence protocol over arrays already in memory (tests, fine-tuning, the demo).

    eo: (T, H, W, 3) array or list of (H, W, 3) RGB, or None; ir: (T, H, W) array or list, or None;
    labels: (T, H, W) uint8 or list (entries may be None), or None.
    ir_scale: how the IR values read as °C (core/radiometry.py), when they do.
    """

    def __init__(
        self,
        eo: np.ndarray | list[np.ndarray] | None,
        ir: np.ndarray | list[np.ndarray] | None,
        labels: np.ndarray | list[np.ndarray | None] | None = None,
        names: list[str] | None = None,
        *,
        scheme: ClassScheme | None = None,
        alignment: Alignment | None = None,
        source: str | Path = "<memory>",
        layout: str = "memory",
        ir_scale: Any = None,
    ):
        if eo is None and ir is None:
            raise EmptySequenceError(f"{source}: neither EO nor IR frames given")
        counts = {k: len(v) for k, v in (("eo", eo), ("ir", ir), ("labels", labels)) if v is not None}
        if len(set(counts.values())) > 1:
            raise FrameCountMismatchError(f"{source}: frame counts differ: "
                                          + ", ".join(f"{k} {v}" for k, v in counts.items()))
        n = next(iter(counts.values()))
        if names is not None and len(names) != n:
            raise FrameCountMismatchError(f"{source}: {len(names)} names for {n} frames")
        self._eo, self._ir, self._labels = eo, ir, labels
        super().__init__(layout=layout, source=Path(source), names=list(names or [f"{i:06d}" for i in range(n)]),
                         scheme=scheme, alignment=alignment, prefetch=0)
        self._ir_scale = ir_scale  # a LinearScale / PlanckScale when the IR arrays are radiometric
        if n:
            self._probe()

    def _has_native_labels(self) -> bool:
        return self._labels is not None

    def _read_raw(self, i: int) -> RawFrame:
        name = self.names[i]
        try:
            eo = None if self._eo is None else _check_img(np.asarray(self._eo[i]).view(), f"eo[{i}] ({name})", 3)
            ir = None if self._ir is None else _check_img(np.asarray(self._ir[i]).view(), f"ir[{i}] ({name})", 2)
            lab = None
            if self._labels is not None and self._labels[i] is not None:
                lab = to_label(np.asarray(self._labels[i]).view(), self.scheme, f"{self.source}: labels[{i}]")
            return RawFrame(None if eo is None else to_rgb(eo, bgr=False),
                            None if ir is None else to_grey(ir, bgr=False), lab)
        except ValueError as exc:
            raise CorruptImageError(f"{self.source}: frame {i} ({name}): {exc}") from None


def _check_img(a: np.ndarray, what: str, want_ndim: int) -> np.ndarray:
    if a.dtype.kind not in "uifb" or a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise CorruptImageError(f"{what}: expected an (H, W{', 3' if want_ndim == 3 else ''}) numeric image, "
                                f"got shape {a.shape} dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4):
        raise CorruptImageError(f"{what}: {a.shape[2]} channels (expected 1, 3 or 4)")
    return a
