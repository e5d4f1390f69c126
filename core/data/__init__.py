"""Readers for paired EO/IR sequences (lazy, cached, prefetched).

`open_sequence(path)` detects the layout (see `LAYOUTS`) and returns a `Sequence`: `len()`,
`names`, `seq[i] -> FramePair` (read-only arrays, IR on the EO grid), `layout`, `source`, `scheme`,
`has_labels`, `bad_frames`, `display_levels()`, `close()`. `ArraySequence` is the same protocol over
arrays in memory; `open_pair` makes a one-frame sequence from two image files.
"""

from __future__ import annotations

from .alignment import Alignment, align_ir
from .base import BaseSequence, SequenceInfo
from .cache import DEFAULT_CACHE_BYTES, FrameCache
from .detect import LAYOUTS, modality_of, open_sequence
from .folders import FileSequence, FrameFiles, open_pair
from .hdf5 import HDF5Sequence
from .levels import apply_levels
from .memory import ArraySequence
from .video import VideoPairSequence

# The protocol every consumer (session, worker, export, fine-tuning) types against.
Sequence = BaseSequence

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "LAYOUTS",
    "Alignment",
    "ArraySequence",
    "BaseSequence",
    "FileSequence",
    "FrameCache",
    "FrameFiles",
    "HDF5Sequence",
    "Sequence",
    "SequenceInfo",
    "VideoPairSequence",
    "align_ir",
    "apply_levels",
    "modality_of",
    "open_pair",
    "open_sequence",
]
