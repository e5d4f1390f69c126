"""HDF5 files holding EO/IR frame stacks: our own export (with eo/ir copies) or any file with
datasets named like eo / ir (also rgb, visible, thermal, infrared; (T,H,W[,C]) or (T,C,H,W)).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from csknet_studio.core.classes import SCHEMES, ClassScheme
from csknet_studio.core.errors import (
    CorruptImageError,
    EmptySequenceError,
    FrameCountMismatchError,
    UnknownLayoutError,
)

from .base import Alignment, BaseSequence, RawFrame
from .imaging import to_grey, to_label, to_rgb

EO_KEYS = ("eo", "rgb", "visible", "vis", "vi", "color", "colour", "optical")
IR_KEYS = ("ir", "thermal", "infrared", "lwir", "tir")
LABEL_KEYS = ("labels", "label", "gt", "masks")
NAME_KEYS = ("frame_names", "names")


def _find(f: h5py.File, keys: tuple[str, ...]) -> h5py.Dataset | None:
    """Top-level dataset whose lower-case name is in `keys` (or one group down, e.g. data/eo)."""
    places = [f] + [v for v in f.values() if isinstance(v, h5py.Group)]
    for grp in places:
        by_lower = {k.lower(): k for k in grp}
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


def _scheme_from(attrs_list: list[h5py.AttributeManager]) -> ClassScheme | None:
    for attrs in attrs_list:
        if "class_names" not in attrs:
            continue
        try:
            names = tuple(_attr_text(n) for n in np.atleast_1d(attrs["class_names"]))
            name = _attr_text(attrs.get("scheme", attrs.get("class_scheme", "custom")))
            if "palette" in attrs:
                pal = np.asarray(attrs["palette"]).reshape(-1, 3)
                palette = tuple(tuple(int(v) for v in c) for c in pal)
            elif name in SCHEMES:
                palette = SCHEMES[name].palette
            else:
                continue
            ignore = int(attrs.get("ignore_index", 255))
            for known in SCHEMES.values():
                if known.class_names == names and known.palette == palette:
                    return known
            return ClassScheme(name, names, palette, ignore)  # type: ignore[arg-type]
        except (ValueError, TypeError, KeyError):
            continue
    return None


class LabelsOnlyError(UnknownLayoutError):
    """An HDF5 file with labels but no images (a label export); `.source` is its sequence, if recorded."""

    def __init__(self, message: str, source: str = ""):
        super().__init__(message)
        self.source = source


class LabelStack:
    """The `labels` (T, H, W) of an HDF5 file, read one frame at a time (labels for another sequence)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise CorruptImageError(f"{self.path}: not a readable HDF5 file ({exc})", str(self.path)) from None
        self._lock = threading.Lock()
        try:
            lab = _find(self._f, LABEL_KEYS)
            if lab is None or lab.ndim != 3 or lab.dtype.kind not in "ui":
                raise UnknownLayoutError(f"{self.path}: no (T, H, W) 'labels' dataset")
            self._lab = lab
            self.names: list[str] | None = None
            nd = _find(self._f, NAME_KEYS)
            if nd is not None and nd.ndim == 1 and nd.shape[0] == lab.shape[0]:
                with contextlib.suppress(TypeError, ValueError, OSError):
                    self.names = [_attr_text(x) for x in nd[()]]
            self.scheme = _scheme_from([lab.attrs, self._f.attrs])
        except BaseException:
            self._f.close()
            raise

    def __len__(self) -> int:
        return int(self._lab.shape[0])

    def read(self, i: int) -> np.ndarray:
        try:
            with self._lock:
                a = np.asarray(self._lab[i])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CorruptImageError(f"{self.path}: labels of frame {i} unreadable ({exc})", str(self.path)) from None
        return to_label(a, self.scheme, f"{self.path}:labels[{i}]")

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError, RuntimeError):
            self._f.close()


class HDF5Sequence(BaseSequence):
    """Frames sliced lazily out of an HDF5 file (one frame per read; h5py serialises access)."""

    def __init__(self, path: str | Path, *, alignment: Alignment | None = None, **cache_kw: Any):
        path = Path(path)
        try:
            f = h5py.File(path, "r")
        except FileNotFoundError:
            raise UnknownLayoutError(f"{path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise CorruptImageError(f"{path}: not a readable HDF5 file ({exc})", str(path)) from None
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
        try:
            eo, ir = _find(f, EO_KEYS), _find(f, IR_KEYS)
            lab = _find(f, LABEL_KEYS)
            if eo is None and ir is None:
                src = _attr_text(f.attrs["source"]) if "source" in f.attrs else ""
                hint = (f" It looks like a label export of {src!r}: open that sequence instead (labels load with "
                        f"the project)." if src else "")
                raise LabelsOnlyError(
                    f"{path}: no EO/IR image datasets (looked for {', '.join(EO_KEYS)} / {', '.join(IR_KEYS)}); "
                    f"found: {', '.join(sorted(f.keys())) or 'nothing'}.{hint}", source=src)
            self._eo = eo
            self._ir = ir
            self._eo_kind = _axes(eo, path, "EO")[0] if eo is not None else ""
            self._ir_kind = _axes(ir, path, "IR")[0] if ir is not None else ""
            counts = {ds.name: ds.shape[0] for ds in (eo, ir) if ds is not None}
            if lab is not None:
                if lab.ndim != 3 or lab.dtype.kind not in "ui":
                    raise UnknownLayoutError(f"{path}: dataset '{lab.name}' has shape {lab.shape} dtype {lab.dtype}; "
                                             f"expected (T, H, W) integer class ids")
                counts[lab.name] = lab.shape[0]
            if len(set(counts.values())) > 1:
                raise FrameCountMismatchError(f"{path}: datasets hold different frame counts: "
                                              + ", ".join(f"{k} {v}" for k, v in counts.items()))
            self._lab = lab
            n = next(iter(counts.values()))
            if n == 0:
                raise EmptySequenceError(f"{path}: datasets {', '.join(counts)} hold no frames")
            names = [f"{i:06d}" for i in range(n)]
            nd = _find(f, NAME_KEYS)
            if nd is not None and nd.ndim == 1 and nd.shape[0] == n:
                with contextlib.suppress(TypeError, ValueError, OSError):
                    names = [_attr_text(x) for x in nd[()]]
            self._names = names
            self._scheme = _scheme_from([a for a in (lab.attrs if lab is not None else None, f.attrs) if a is not None])
        except (OSError, KeyError, RuntimeError) as exc:
            raise CorruptImageError(f"{path}: HDF5 structure unreadable ({exc})", str(path)) from None

    def _has_native_labels(self) -> bool:
        return self._lab is not None

    def _read_raw(self, i: int) -> RawFrame:
        try:
            with self._h5lock:
                if not self._f:
                    raise CorruptImageError(f"{self.source}: file closed")
                eo = None if self._eo is None else _frame(self._eo, self._eo_kind, i)
                ir = None if self._ir is None else _frame(self._ir, self._ir_kind, i)
                lab = None if self._lab is None else np.asarray(self._lab[i])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CorruptImageError(f"{self.source}: frame {i} unreadable ({exc})", str(self.source)) from None
        try:
            return RawFrame(
                None if eo is None else to_rgb(eo, bgr=False),
                None if ir is None else to_grey(ir, bgr=False),
                None if lab is None else to_label(lab, self.scheme, f"{self.source}:labels[{i}]"),
            )
        except ValueError as exc:
            raise CorruptImageError(f"{self.source}: frame {i}: {exc}", str(self.source)) from None

    def _close(self) -> None:
        with self._h5lock, contextlib.suppress(OSError, RuntimeError):
            self._f.close()
