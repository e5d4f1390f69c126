"""HDF5 files holding EO/IR frame stacks: our own export (with eo/ir copies) or any file with
datasets named like eo / ir (also rgb, visible, thermal, infrared; (T,H,W[,C]) or (T,C,H,W)).

A damaged file gives one CorruptImageError naming the file and the dataset or attribute at fault,
never another exception, and never a long wait: every read of file content is bounded first by
the sizes HDF5 declares (group members, frame count, class names, palette), because a flipped bit
can declare billions of entries. Only numeric frame stacks and short string tables are read.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from csknet_studio.core.classes import SCHEMES, ClassScheme
from csknet_studio.core.errors import (
    CorruptImageError,
    CSKNetError,
    EmptySequenceError,
    FrameCountMismatchError,
    UnknownLayoutError,
)

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import to_grey, to_label, to_rgb

EO_KEYS = ("eo", "rgb", "visible", "vis", "vi", "color", "colour", "optical")
IR_KEYS = ("ir", "thermal", "infrared", "lwir", "tir")
LABEL_KEYS = ("labels", "label", "gt", "masks")
NAME_KEYS = ("frame_names", "names")
MAX_MEMBERS = 1024  # group members looked at (root, and each group one level down)
MAX_GROUPS = 64  # groups one level down searched for datasets
MAX_FRAMES = 10_000_000  # a longer stack is a damaged header, not a sequence
MAX_CLASSES = 256  # labels are uint8 ids
MAX_FRAME_VALUES = 1 << 30  # values in one frame (24 MP RGB is 72 M): more is a damaged header
# What a reader of a damaged HDF5 file can raise from h5py / numpy; turned into CorruptImageError.
H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, MemoryError, OverflowError, IndexError,
             AttributeError, SystemError)


def _members(grp: h5py.Group) -> list[str]:
    """The first MAX_MEMBERS member names (a damaged link table may claim any count)."""
    return list(itertools.islice(iter(grp), MAX_MEMBERS))


def _find(f: h5py.File, keys: tuple[str, ...]) -> h5py.Dataset | None:
    """Top-level dataset whose lower-case name is in `keys` (or one group down, e.g. data/eo)."""
    groups = (f.get(k) for k in _members(f))
    places = [f] + list(itertools.islice((g for g in groups if isinstance(g, h5py.Group)), MAX_GROUPS))
    for grp in places:
        by_lower = {k.lower(): k for k in _members(grp)}
        for k in keys:
            if k in by_lower:
                obj = grp.get(by_lower[k])
                if isinstance(obj, h5py.Dataset):
                    return obj
    return None


def _axes(ds: h5py.Dataset, path: Path, what: str) -> tuple[str, int]:
    """Classify a frame stack: ('last', C) for (T,H,W,C), ('first', C) for (T,C,H,W), ('grey', 1)."""
    s = ds.shape
    if ds.dtype.kind not in "uifb":
        raise UnknownLayoutError(f"{path}: dataset '{ds.name}' ({what}) has dtype {ds.dtype}; expected numbers")
    if len(s) in (3, 4) and math.prod(s[1:]) > MAX_FRAME_VALUES:
        raise CorruptImageError(f"{path}: dataset '{ds.name}' ({what}) declares frames of shape {s[1:]}; the "
                                "file is damaged", str(path))
    if len(s) == 3 and s[1] > 0 and s[2] > 0:
        return "grey", 1
    if len(s) == 4 and s[3] in (1, 3, 4) and s[1] > 0 and s[2] > 0:
        return "last", s[3]
    if len(s) == 4 and s[1] in (1, 3, 4) and s[2] > 0 and s[3] > 0:
        return "first", s[1]
    want = "(T, H, W, 3)" if what == "EO" else "(T, H, W)"
    raise UnknownLayoutError(f"{path}: dataset '{ds.name}' ({what}) has shape {s}; expected {want}")


def _frame(ds: h5py.Dataset, kind: str, i: int) -> np.ndarray:
    a = np.asarray(ds[i])
    if kind == "first":
        a = np.moveaxis(a, 0, -1)
    return a


def _attr_text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _small_attr(attrs: h5py.AttributeManager, key: str, max_size: int) -> Any:
    """attrs[key] when it declares at most `max_size` values, else ValueError (before reading)."""
    size = math.prod(attrs.get_id(key).shape or ())
    if size > max_size:
        raise ValueError(f"attribute {key!r} declares {size} values (at most {max_size} expected)")
    return attrs[key]


def _scheme_from(attrs_list: list[h5py.AttributeManager]) -> ClassScheme | None:
    """The class scheme recorded in the first of `attrs_list` that records a usable one, else None.

    Every loop here is over at most MAX_CLASSES values, whatever the file declares."""
    for attrs in attrs_list:
        try:
            if "class_names" not in attrs:
                continue
            names = tuple(_attr_text(n) for n in np.atleast_1d(_small_attr(attrs, "class_names", MAX_CLASSES)))
            key = "scheme" if "scheme" in attrs else "class_scheme" if "class_scheme" in attrs else ""
            name = _attr_text(_small_attr(attrs, key, 1)) if key else "custom"
            if "palette" in attrs:
                pal = np.asarray(_small_attr(attrs, "palette", 4 * MAX_CLASSES)).reshape(-1, 3)
                if pal.dtype.kind not in "uif":
                    continue
                palette = tuple(tuple(int(v) for v in c) for c in pal)
            elif name in SCHEMES:
                palette = SCHEMES[name].palette
            else:
                continue
            ignore = int(_small_attr(attrs, "ignore_index", 1)) if "ignore_index" in attrs else 255
            for known in SCHEMES.values():
                if known.class_names == names and known.palette == palette:
                    return known
            return ClassScheme(name, names, palette, ignore)  # type: ignore[arg-type]
        except (*H5_ERRORS, CSKNetError):  # no usable scheme here (the file may still be readable)
            continue
    return None


def _frame_count(ds: h5py.Dataset, path: Path) -> int:
    """The stack's frame count, once its declared sizes are checked against what a sequence can be."""
    n = int(ds.shape[0]) if ds.shape else 0
    if n > MAX_FRAMES or math.prod(ds.shape[1:]) > MAX_FRAME_VALUES:
        raise CorruptImageError(f"{path}: dataset '{ds.name}' declares shape {ds.shape} (at most {MAX_FRAMES} "
                                f"frames of {MAX_FRAME_VALUES} values); the file is damaged", str(path))
    return n


MAX_NAME_BYTES = 4096


def _vlen_lengths_ok(f: h5py.File, ds: h5py.Dataset) -> bool:
    """False when a contiguous variable-length string table declares a string over MAX_NAME_BYTES.

    HDF5 allocates and copies what a damaged length declares (seconds of CPU for gigabytes), so the
    lengths are read from the raw records first: 4-byte length, heap address, 4-byte index."""
    if h5py.check_string_dtype(ds.dtype) is None or ds.dtype.kind != "O":
        return True
    offset = ds.id.get_offset()
    if offset is None:  # chunked or compact: no raw records to look at
        return True
    sizeof_addr = f.id.get_create_plist().get_sizes()[0]
    record = 4 + sizeof_addr + 4
    with open(f.filename, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(record * ds.shape[0])
    if len(raw) < record * ds.shape[0]:
        return False
    lengths = np.frombuffer(raw, "<u4")[:: record // 4] if record % 4 == 0 else np.zeros(0, np.uint32)
    return bool((lengths <= MAX_NAME_BYTES).all())


def _frame_names(f: h5py.File, n: int) -> list[str] | None:
    """The file's frame names when it has a 1-D table of n strings (or numbers), else None."""
    nd = _find(f, NAME_KEYS)
    if nd is None or nd.ndim != 1 or nd.shape[0] != n or nd.dtype.kind not in "OSUiu":
        return None
    if not _vlen_lengths_ok(f, nd):
        return None
    with contextlib.suppress(*H5_ERRORS):
        names = [_attr_text(x) for x in nd[()]]
        return names if len(names) == n else None
    return None


def _unreadable(path: Path, where: str, exc: BaseException) -> CorruptImageError:
    detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return CorruptImageError(f"{path}: {where} unreadable, the file is damaged ({detail})", str(path))


class LabelsOnlyError(UnknownLayoutError):
    """An HDF5 file with labels but no images (a label export); `.source` is its sequence, if recorded."""

    def __init__(self, message: str, source: str = ""):
        super().__init__(message)
        self.source = source


class LabelStack:
    """The `labels` (T, H, W) of an HDF5 file, read one frame at a time (labels for another sequence)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = _open(self.path)
        self._lock = threading.Lock()
        where = "the file's datasets"
        try:
            lab = _find(self._f, LABEL_KEYS)
            if lab is None or lab.ndim != 3 or lab.dtype.kind not in "ui":
                raise UnknownLayoutError(f"{self.path}: no (T, H, W) 'labels' dataset")
            where = f"dataset '{lab.name}'"
            _frame_count(lab, self.path)
            self._lab = lab
            where = "dataset 'frame_shape'"
            self._shapes = _frame_shapes(self._f, int(lab.shape[0]), self.path)
            where = "the frame names"
            self.names: list[str] | None = _frame_names(self._f, int(lab.shape[0]))
            where = "the class scheme"
            self.scheme = _scheme_from([lab.attrs, self._f.attrs])
        except BaseException as exc:
            self._f.close()
            if isinstance(exc, H5_ERRORS):
                raise _unreadable(self.path, where, exc) from None
            raise

    def __len__(self) -> int:
        return int(self._lab.shape[0])

    def read(self, i: int) -> np.ndarray:
        try:
            with self._lock:
                a = crop_frame(np.asarray(self._lab[i]), self._shapes, i)
        except H5_ERRORS as exc:
            raise _unreadable(self.path, f"dataset '{self._lab.name}' frame {i}", exc) from None
        return to_label(a, self.scheme, f"{self.path}:labels[{i}]")

    def close(self) -> None:
        with self._lock, contextlib.suppress(*H5_ERRORS):
            self._f.close()


def _frame_shapes(f: h5py.File, n: int, path: Path) -> np.ndarray | None:
    """The (T, 2) `frame_shape` of a file whose frames differ in size (their datasets are padded to
    the largest), or None."""
    ds = f.get("frame_shape")
    if ds is None:
        return None
    shapes = np.asarray(ds[()], np.int64)
    if shapes.shape != (n, 2) or (shapes < 1).any():
        raise UnknownLayoutError(f"{path}: dataset 'frame_shape' has shape {shapes.shape}; expected ({n}, 2) "
                                 "positive (height, width) pairs")
    return shapes


def crop_frame(a: np.ndarray, shapes: np.ndarray | None, i: int) -> np.ndarray:
    """Frame i's array `a` at the frame's own size, in a file whose frames are padded to the largest."""
    if shapes is None:
        return a
    h, w = (int(v) for v in shapes[i])
    return a[:h, :w]


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise UnknownLayoutError(f"{path}: no such file") from None
    except H5_ERRORS as exc:
        raise CorruptImageError(f"{path}: not a readable HDF5 file ({exc})", str(path)) from None


class HDF5Sequence(BaseSequence):
    """Frames sliced lazily out of an HDF5 file (one frame per read; h5py serialises access)."""

    def __init__(self, path: str | Path, *, alignment: Alignment | None = None, **cache_kw: Any):
        path = Path(path)
        f = _open(path)
        self._f = f
        self._h5lock = threading.Lock()
        try:
            self._setup(path)
        except BaseException:
            f.close()
            raise
        super().__init__(layout="hdf5", source=path, names=self._names, scheme=self._scheme,
                         alignment=alignment, **cache_kw)
        try:
            self._probe()
        except BaseException:
            self.close()
            raise

    def _setup(self, path: Path) -> None:
        f = self._f
        where = "the file's datasets"
        try:
            eo, ir = _find(f, EO_KEYS), _find(f, IR_KEYS)
            lab = _find(f, LABEL_KEYS)
            if eo is None and ir is None:
                where = "attribute 'source'"
                src = _attr_text(_small_attr(f.attrs, "source", 1)) if "source" in f.attrs else ""
                where = "the file's datasets"
                hint = (f" It looks like a label export of {src!r}: open that sequence instead (labels load with "
                        f"the project)." if src else "")
                found = ", ".join(sorted(_members(f))) or "nothing"
                raise LabelsOnlyError(
                    f"{path}: no EO/IR image datasets (looked for {', '.join(EO_KEYS)} / {', '.join(IR_KEYS)}); "
                    f"found: {found}.{hint}", source=src)
            self._eo = eo
            self._ir = ir
            for ds, what in ((eo, "EO"), (ir, "IR")):
                if ds is not None:
                    where = f"dataset '{ds.name}'"
                    setattr(self, f"_{what.lower()}_kind", _axes(ds, path, what)[0])
                else:
                    setattr(self, f"_{what.lower()}_kind", "")
            counts = {ds.name: _frame_count(ds, path) for ds in (eo, ir) if ds is not None}
            if lab is not None:
                where = f"dataset '{lab.name}'"
                if lab.ndim != 3 or lab.dtype.kind not in "ui":
                    raise UnknownLayoutError(f"{path}: dataset '{lab.name}' has shape {lab.shape} dtype {lab.dtype}; "
                                             f"expected (T, H, W) integer class ids")
                counts[lab.name] = _frame_count(lab, path)
            if len(set(counts.values())) > 1:
                raise FrameCountMismatchError(f"{path}: datasets hold different frame counts: "
                                              + ", ".join(f"{k} {v}" for k, v in counts.items()))
            self._lab = lab
            n = next(iter(counts.values()))
            if n == 0:
                raise EmptySequenceError(f"{path}: datasets {', '.join(counts)} hold no frames")
            where = "dataset 'frame_shape'"
            self._shapes = _frame_shapes(f, n, path)
            where = "the frame names"
            self._names = _frame_names(f, n) or [f"{i:06d}" for i in range(n)]
            where = "the class scheme"
            self._scheme = _scheme_from([a for a in (lab.attrs if lab is not None else None, f.attrs) if a is not None])
        except H5_ERRORS as exc:
            raise _unreadable(path, where, exc) from None

    def _has_native_labels(self) -> bool:
        return self._lab is not None

    def _read_raw(self, i: int) -> RawFrame:
        try:
            with self._h5lock:
                if not self._f:
                    raise CorruptImageError(f"{self.source}: file closed")
                eo = None if self._eo is None else crop_frame(_frame(self._eo, self._eo_kind, i), self._shapes, i)
                ir = None if self._ir is None else crop_frame(_frame(self._ir, self._ir_kind, i), self._shapes, i)
                lab = None if self._lab is None else crop_frame(np.asarray(self._lab[i]), self._shapes, i)
        except H5_ERRORS as exc:
            raise _unreadable(Path(self.source), f"frame {i}", exc) from None
        try:
            return RawFrame(
                None if eo is None else to_rgb(eo, bgr=False),
                None if ir is None else to_grey(ir, bgr=False),
                None if lab is None else to_label(lab, self.scheme, f"{self.source}:labels[{i}]"),
            )
        except (ValueError, TypeError) as exc:
            raise CorruptImageError(f"{self.source}: frame {i}: {exc}", str(self.source)) from None

    def _close(self) -> None:
        with self._h5lock, contextlib.suppress(*H5_ERRORS):
            self._f.close()
