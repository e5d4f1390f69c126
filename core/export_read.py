"""Label exports read back: an HDF5 file into memory (`read_labels_hdf5`), and the per-frame
origins any export records (`read_frame_origins`), which the app's and the command's final message
count. The layout is written by core/export.py, whose docstring describes it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.data.hdf5 import crop_frame
from csknet_studio.core.errors import CSKNetError, ExportError

FRAME_ORIGINS = ("corrected", "propagated", "predicted", "unlabelled")
FRAMES_JSON = "frames.json"


@dataclass(eq=False)
class LabelExport:
    """Everything `export_hdf5` wrote, loaded back into memory."""

    path: Path
    labels: np.ndarray
    corrected: np.ndarray
    frame_names: list[str]
    class_names: tuple[str, ...]
    palette: np.ndarray
    ignore_index: int
    scheme_name: str
    axes: str
    source: str
    checkpoint_hash: str
    mode: str
    app_version: str
    created: str
    probabilities: np.ndarray | None = None
    eo: np.ndarray | None = None
    ir: np.ndarray | None = None
    frame_origin: list[str] | None = None
    ir_celsius: np.ndarray | None = None
    frame_shapes: np.ndarray | None = None  # (T, 2) when frames differ in size; the arrays are padded

    def frame_labels(self, i: int) -> np.ndarray:
        """Frame i's labels at the frame's own size (the padding cropped off)."""
        return crop_frame(self.labels[i], self.frame_shapes, i)

    @property
    def scheme(self) -> ClassScheme:
        pal = tuple(tuple(int(v) for v in c) for c in self.palette)
        return ClassScheme(self.scheme_name, self.class_names, pal, self.ignore_index)  # type: ignore[arg-type]


def count_origins(origins: list[str]) -> dict[str, int]:
    """How many frames of each origin, in FRAME_ORIGINS order (all four keys present)."""
    return {k: sum(1 for o in origins if o == k) for k in FRAME_ORIGINS}


def read_frame_origins(path: str | os.PathLike) -> list[str]:
    """Each frame's origin as an export recorded it: an HDF5 file's `frame_origin`, a PNG or CVAT
    folder's frames.json, or a COCO file's `info.frame_origin` (in frame order)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            return list(json.loads(path.read_text(encoding="utf-8"))["info"]["frame_origin"].values())
        if path.is_dir():
            return list(json.loads((path / FRAMES_JSON).read_text(encoding="utf-8"))["frames"].values())
        with h5py.File(path, "r") as f:
            return [_text(v) for v in f["frame_origin"][()]]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ExportError(f"{path} records no frame origins: {exc}") from exc


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_labels_hdf5(path: str | os.PathLike) -> LabelExport:
    """Load an `export_hdf5` file back (all arrays in memory). ExportError if it is not one."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "labels" not in f or "frame_names" not in f:
                raise ExportError(f"{path} is not a CSKNet Studio label export (no 'labels' / 'frame_names')")
            a = f.attrs
            opt = {k: (f[k][()] if k in f else None) for k in ("probabilities", "eo", "ir", "ir_celsius")}
            origin = [_text(v) for v in f["frame_origin"][()]] if "frame_origin" in f else None
            return LabelExport(
                path=path,
                labels=f["labels"][()],
                corrected=f["corrected"][()].astype(bool),
                frame_names=[_text(s) for s in f["frame_names"][()]],
                class_names=tuple(_text(s) for s in a["class_names"]),
                palette=np.asarray(a["palette"], np.uint8),
                ignore_index=int(a["ignore_index"]),
                scheme_name=_text(a.get("scheme", "custom")),
                axes=_text(a["axes"]),
                source=_text(a["source"]),
                checkpoint_hash=_text(a["checkpoint_hash"]),
                mode=_text(a["mode"]),
                app_version=_text(a["app_version"]),
                created=_text(a["created"]),
                frame_origin=origin,
                frame_shapes=f["frame_shape"][()] if "frame_shape" in f else None,
                **opt,
            )
    except CSKNetError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ExportError(f"cannot read label export {path}: {exc}") from exc
