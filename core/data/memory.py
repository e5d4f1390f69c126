"""`ArraySequence`: the Sequence protocol over arrays already in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.errors import CorruptImageError, EmptySequenceError, FrameCountMismatchError

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import to_grey, to_label, to_rgb


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
        self.set_ir_scale(ir_scale)  # a LinearScale / PlanckScale when the IR arrays are radiometric
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
