"""The lazy `Sequence` every reader builds on: reads through the frame cache (`cache.py`) and the
read-ahead (`prefetch.py`), applies the IR alignment (`alignment.py`), keeps bad-frame bookkeeping
and the fixed per-sequence display levels (`levels.py`).

Subclasses implement `_read_raw(i)` only (decode one frame, no caching); this class decides what is
kept in memory, so memory is bounded by the cache budget whatever the sequence length.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from collections.abc import Sequence as _Seq
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
    SequenceError,
)
from csknet_studio.core.frames import FramePair
from csknet_studio.core.radiometry import Radiometry

from .alignment import Alignment, align_ir, check_aspect
from .cache import DEFAULT_CACHE_BYTES, DEFAULT_CACHE_FRAMES, FrameCache
from .imaging import fit_to_grid
from .levels import _percentiles, _subsample, apply_levels
from .prefetch import DEFAULT_PREFETCH, ReadAhead
from .thermal import IRScale

LEVEL_SAMPLE_FRAMES = 32
PROBE_FRAMES = 8


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
class BaseSequence(_Seq):
    """Lazy sequence of FramePairs. Returned arrays are read-only (they live in a shared cache).

    It owns its read-ahead (`ReadAhead`, which fills the same cache under the same lock) and its
    IR-to-°C rule (`IRScale`)."""

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
        self._lock = threading.Lock()
        self._closed = False
        self._epoch = 0  # bumped when alignment, labels or IR scale change so stale prefetches are dropped
        self._read_ahead = ReadAhead(cache=self._cache, lock=self._lock, build=self._build,
                                     epoch=lambda: self._epoch, closed=lambda: self._closed,
                                     prefetch=prefetch, workers=workers)
        self._ir_scale = IRScale()
        self._ref: tuple[tuple[int, int], Any, Any] | None = None  # (shape, eo dtype, ir dtype)
        self._levels: dict[str, tuple[float, float]] | None = None
        self._label_provider: Callable[[int], np.ndarray | None] | None = None
        self.label_file: Path | None = None  # set when labels come from an attached export
        self._label_closer: Callable[[], None] | None = None
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
            fp = self._read_ahead.take(i)
            if fp is None:
                epoch = self._epoch
                fp = self._build(i)
                if epoch == self._epoch:
                    self._cache.put(i, fp)
        if prefetch:
            self._read_ahead.schedule(i, len(self))
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
        self._read_ahead.cancel_pending(keep=())
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
                         radiometry=None if ir is None else self._ir_scale.frame_radiometry(raw.radiometry))

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

    @property
    def cache(self) -> FrameCache:
        return self._cache

    # -- read-ahead ----------------------------------------------------------------------------
    def prefetch_pending(self) -> int:
        """Read-ahead jobs queued or decoding."""
        return self._read_ahead.pending()

    def wait_prefetch(self, timeout: float | None = 5.0) -> None:
        """Block until queued prefetches finish (tests and benchmarks; the UI never waits)."""
        self._read_ahead.wait(timeout)

    # -- temperature ---------------------------------------------------------------------------
    def set_ir_scale(self, scale: Radiometry | None, *, override: bool = True) -> None:
        """Change how IR counts read as °C (see `IRScale`: with override the scale wins over every
        file, without it it is the fallback for files that state none). Cached frames carry the
        old conversion, so they go."""
        self._ir_scale = IRScale(scale, bool(override))
        self._epoch += 1
        self._cache.clear()

    @property
    def radiometry(self) -> Radiometry | None:
        """The conversion of the first readable frame (frames of one sequence share their kind)."""
        forced = self._ir_scale.forced
        if forced is not None:
            return forced
        for i in range(min(len(self), PROBE_FRAMES)):
            fp = self.read(i, prefetch=False)
            if not fp.bad:
                return fp.radiometry
        return None

    @property
    def radiometric(self) -> bool:
        """True when IR counts read as °C (the status bar, the °C span and `ir_celsius` apply)."""
        return self.radiometry is not None

    def ir_celsius(self, i: int) -> np.ndarray | None:
        """(H, W) float32 °C of frame i's IR on the EO grid, or None when it is not radiometric."""
        return self.read(i, prefetch=False).ir_celsius()

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
        self._read_ahead.close()
        self._cache.clear()
        self._close()
        if self._label_closer is not None:
            self._label_closer()
