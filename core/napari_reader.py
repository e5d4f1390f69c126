"""napari reader for our HDF5 label export: `napari labels.h5` opens EO, IR and the labels.

The package's npe2 manifest (csknet_studio/napari.yaml, entry point `napari.manifest`) points napari
at `get_reader`. Nothing here imports napari: the functions return napari's LayerData tuples
`(data, kwargs, layer_type)`, so they are tested, and usable, without it.

- The labels are read into memory (a Labels layer napari can paint on), coloured with the class
  scheme's palette: class 0 (background) and 255 (unlabelled) are transparent. `features` names each
  class, so napari's status bar says which class is under the cursor.
- EO and IR come from the file when the export copied them (`/eo`, `/ir`), else from the sequence the
  file's `source` attribute names (relative to the file), opened with `open_sequence`. Either way
  they are read one frame at a time as napari asks for them (`LazyFrames`). Without either, only
  the labels open, with a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LayerData = tuple[Any, dict[str, Any], str]
SUFFIXES = (".h5", ".hdf5")


class LazyFrames:
    """A (T, ...) read-only array-like that decodes a frame only when indexed (napari slices it as
    it would a dask array); the last frame read is kept."""

    def __init__(self, read: Callable[[int], np.ndarray], n: int, sample: np.ndarray, keep: Any = None) -> None:
        self._read = read
        self._keep = keep  # the open file or sequence the frames come from
        self.shape = (int(n), *sample.shape)
        self.dtype = sample.dtype
        self._last: tuple[int, np.ndarray] | None = (0, sample)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def frame(self, i: int) -> np.ndarray:
        if self._last is None or self._last[0] != i:
            self._last = (i, np.asarray(self._read(i), dtype=self.dtype))
        return self._last[1]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first = key[0] if key else slice(None)
        if first is Ellipsis:
            return self._stack(range(len(self)))[key]
        if isinstance(first, int | np.integer):
            i = int(first) + (len(self) if int(first) < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"frame {int(first)} out of range ({len(self)} frames)")
            return self.frame(i)[key[1:]]
        frames = np.arange(len(self))[first]
        return self._stack(np.atleast_1d(frames).tolist())[(slice(None), *key[1:])]

    def _stack(self, frames: Any) -> np.ndarray:
        frames = list(frames)
        if not frames:
            return np.empty((0, *self.shape[1:]), self.dtype)
        return np.stack([self.frame(int(i)) for i in frames])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._stack(range(len(self)))
        return out if dtype is None else out.astype(dtype)


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def is_label_export(path: str | os.PathLike) -> bool:
    """Whether `path` is an HDF5 file holding our label export (labels, class names, palette)."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES or not p.is_file():
        return False
    try:
        with h5py.File(p, "r") as f:
            return "labels" in f and "class_names" in f.attrs and "palette" in f.attrs
    except (OSError, ValueError):
        return False


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader hook: `read_label_export` for one of our exports, else None (napari asks others)."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    return read_label_export if is_label_export(path) else None


def label_colours(class_names: list[str], palette: np.ndarray, ignore_index: int) -> dict[int | None, list[float]]:
    """{class id: RGBA in 0..1} for a napari Labels colormap: 0 and `ignore_index` transparent (as is
    any id not in the scheme, the `None` entry)."""
    colours: dict[int | None, list[float]] = {None: [0.0, 0.0, 0.0, 0.0]}
    for c in range(len(class_names)):
        colours[c] = [*(float(v) / 255 for v in palette[c]), 0.0 if c == 0 else 1.0]
    colours[int(ignore_index)] = [0.0, 0.0, 0.0, 0.0]
    return colours


def _colour_kwarg(colours: dict[int | None, list[float]]) -> dict[str, Any]:
    """napari 0.5 took `colormap` (a dict becomes a DirectLabelColormap); earlier ones `color`."""
    try:
        major, minor = (int(p) for p in version("napari").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return {"colormap": colours}
    return {"colormap": colours} if (major, minor) >= (0, 5) else {"color": colours}


def _image_sources(f: h5py.File, path: Path, n: int) -> dict[str, LazyFrames]:
    """'eo' / 'ir' frame stacks: the file's copies, else the source sequence's frames."""
    out = {k: LazyFrames(lambda i, d=f[k]: d[i], n, f[k][0], keep=f) for k in ("eo", "ir")
           if k in f and len(f[k]) == n}
    if len(out) == 2 or not _text(f.attrs.get("source", "")):
        return out
    src = (path.parent / _text(f.attrs["source"])).resolve()
    try:
        from csknet_studio.core.data import open_sequence  # heavy: the readers (0.5 s)

        seq = open_sequence(src, prefetch=0)
    except Exception as exc:  # noqa: BLE001 (any reader failure: the labels still open)
        warnings.warn(f"{path}: the EO/IR images are not in the file and its source {src} cannot be opened "
                      f"({exc}); opening the labels only", stacklevel=2)
        return out
    if len(seq) != n:
        warnings.warn(f"{path}: source {src} has {len(seq)} frames but the labels {n}; opening the labels only",
                      stacklevel=2)
        seq.close()
        return out
    first = seq[0]
    for key in ("eo", "ir"):
        sample = getattr(first, key)
        if key not in out and sample is not None:
            out[key] = LazyFrames(lambda i, k=key: getattr(seq[i], k), n, np.asarray(sample), keep=seq)
    return out


def _limits(sample: np.ndarray) -> list[float]:
    if sample.dtype == np.uint8:
        return [0.0, 255.0]
    lo, hi = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    return [lo, hi if hi > lo else lo + 1.0]


def read_label_export(path: str | os.PathLike | list) -> list[LayerData]:
    """LayerData for EO (RGB image), IR (grey image, hidden while EO is shown) and the labels."""
    if isinstance(path, list | tuple):
        path = path[0]
    path = Path(path)
    f = h5py.File(path, "r")
    try:
        labels = np.asarray(f["labels"][()], np.uint8)
        a = f.attrs
        names = [_text(s) for s in a["class_names"]]
        palette = np.asarray(a["palette"], np.uint8).reshape(-1, 3)
        ignore = int(a.get("ignore_index", 255))
        meta = {"class_names": names, "palette": palette.tolist(), "ignore_index": ignore,
                "scheme": _text(a.get("scheme", "")), "source": _text(a.get("source", "")), "path": str(path),
                "frame_names": [_text(s) for s in f["frame_names"][()]] if "frame_names" in f else [],
                "frame_origin": [_text(s) for s in f["frame_origin"][()]] if "frame_origin" in f else []}
        images = _image_sources(f, path, len(labels))
    except BaseException:
        f.close()
        raise
    if all(img._keep is not f for img in images.values()):
        f.close()  # nothing reads from the file any more
    layers: list[LayerData] = []
    if "eo" in images:
        eo = images["eo"]
        layers.append((eo, {"name": "EO", "rgb": eo.ndim == 4, "metadata": meta,
                            "contrast_limits": _limits(eo.frame(0))}, "image"))
    if "ir" in images:
        ir = images["ir"]
        layers.append((ir, {"name": "IR", "colormap": "gray", "visible": "eo" not in images, "metadata": meta,
                            "contrast_limits": _limits(ir.frame(0))}, "image"))
    ids = [*range(len(names)), ignore]
    features = {"index": ids, "class": [*names, "unlabelled"]}
    layers.append((labels, {"name": f"labels ({meta['scheme'] or 'classes'})", "opacity": 0.5, "metadata": meta,
                            "features": features, **_colour_kwarg(label_colours(names, palette, ignore))},
                   "labels"))
    return layers
