"""What an exporter reads: the labels of a sequence, frame by frame, and where each came from.

Three things provide it: the `AnnotationSession` itself, the GUI's view of it that the export
thread reads through calls answered on the GUI thread (`ui/export_worker.py`), and `PredictedLabels`, the model's labels computed batch by
batch (`core/batch_infer.py`). Every writer in core/export.py and core/export_formats.py takes a
`LabelSource`, so a new writer serves all three and a new source serves every writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.edits import Origin


@runtime_checkable
class LabelSource(Protocol):
    names: list[str]
    scheme: ClassScheme
    source: Any  # the sequence's path, or None for one held in memory
    sequence: Any  # the frames (EO / IR) the labels belong to
    checkpoint: Any  # CheckpointRef of the weights behind the predictions, or None

    def __len__(self) -> int: ...

    def labels(self, i: int) -> np.ndarray:
        """Frame i's (H, W) uint8 class ids as the user keeps them (255: unlabelled)."""

    def prediction(self, i: int) -> np.ndarray | None:
        """The model's labels for frame i, or None."""

    def origin(self, i: int) -> Origin: ...

    def frame_shape(self, i: int) -> tuple[int, int]: ...

    def corrected_frames(self) -> list[int]: ...


PredictFn = Callable[[int], np.ndarray | None]
"""Labels for a frame that has none (an exporter asks only for those), e.g. a forward pass."""

__all__ = ["LabelSource", "PredictFn"]
