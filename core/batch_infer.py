"""Batch inference over a whole sequence: indexed PNG masks or one HDF5 label file.

The CLI's `infer` path (and the export of predicted frames) runs here, sharded by rank under torchrun.
It sits above both the predictor and the exporter: `PredictedLabels` is the session-shaped view of a
model's labels that core/export.py writes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from csknet_studio.core.atomic import atomic_write_text
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.distributed import barrier, is_main, rank_and_world
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError, ExportError
from csknet_studio.core.export import export_hdf5
from csknet_studio.core.frames import FramePair
from csknet_studio.core.modes import Mode
from csknet_studio.core.palette_png import write_palette_png
from csknet_studio.core.predictor import Predictor


def write_label_png(path: Path, labels: np.ndarray, scheme: ClassScheme | None) -> None:
    """Indexed (palette) PNG whose pixel values are class ids (core/palette_png), written atomically."""
    palette = scheme.palette_array() if scheme is not None else np.zeros((1, 3), np.uint8)
    write_palette_png(path, np.ascontiguousarray(labels.astype(np.uint8)), palette)


@dataclass
class InferResult:
    frames: int  # frames this rank segmented (bad frames are counted as done, not segmented)
    written: list[Path]
    seconds: float
    mode: Mode
    # "frame i (name): why" for each unreadable frame that got no mask (HDF5: left at 255), so the
    # caller can name them instead of a mask count that silently falls short
    skipped: list[str] = field(default_factory=list)


def _skip_note(i: int, f: FramePair) -> str:
    return f"frame {i} ({f.name}): {f.error or 'unreadable'}"


class PredictedLabels:
    """The read-only, session-shaped view core/export.py writes: labels come from the model, batch by
    batch, as the exporter asks for them (memory stays at one batch)."""

    def __init__(self, predictor: Predictor, sequence, mode: Mode, batch: int = 4,
                 checkpoint_hash: str | None = None):
        self.predictor = predictor
        self.sequence = sequence
        self.mode = mode
        self.batch = max(1, int(batch))
        self.scheme = predictor.scheme
        if self.scheme is None:
            raise ExportError("HDF5 output needs the checkpoint's class scheme")
        self.names = list(getattr(sequence, "names", [])) or [sequence[i].name for i in range(len(sequence))]
        self.source = getattr(sequence, "source", None)
        self.checkpoint_hash = checkpoint_hash
        self.checkpoint = None  # the hash above names the weights; there is no project record
        self._cache: dict[int, np.ndarray] = {}
        self.skipped: dict[int, str] = {}  # unreadable frames, written as 255

    def __len__(self) -> int:
        return len(self.sequence)

    def frame_shape(self, i: int) -> tuple[int, int]:
        return self.sequence[i].shape

    def origin(self, i: int) -> Origin:
        return Origin.PREDICTED

    def prediction(self, i: int) -> np.ndarray:
        return self.labels(i)

    def corrected_frames(self) -> list[int]:
        return []  # nobody corrected anything: every frame is the model's

    def labels(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache.clear()
            chunk: list[tuple[int, FramePair]] = []
            for j in range(i, min(len(self.sequence), i + self.batch)):
                f = self.sequence[j]
                if f.bad:
                    self._cache[j] = np.full(f.shape, 255, np.uint8)
                    self.skipped[j] = _skip_note(j, f)
                    if j == i:
                        break
                    continue
                if chunk and chunk[0][1].shape != f.shape:
                    break
                chunk.append((j, f))
            if chunk:
                labels = self.predictor.predict_labels([f for _, f in chunk], self.mode)
                for (j, _), lab in zip(chunk, labels, strict=True):
                    self._cache[j] = lab
        return self._cache[i]


def _segment_shard(predictor: Predictor, sequence, mode: Mode, indices: list[int], batch: int,
                   write: Callable[[int, FramePair, np.ndarray], None],
                   progress: Callable[[int, int], None] | None, cancel: Callable[[], bool] | None,
                   cancelled: Callable[[int], str]) -> tuple[int, list[str]]:
    """Segment `indices` of `sequence` in batches of one frame size, handing each frame's labels to
    `write`; returns (frames done, notes of the unreadable frames skipped)."""
    skipped: list[str] = []
    done = 0
    buf: list[tuple[int, FramePair]] = []

    def flush() -> None:
        nonlocal done
        if not buf:
            return
        labels = predictor.predict_labels([f for _, f in buf], mode)
        for (i, f), lab in zip(buf, labels, strict=True):
            write(i, f, lab)
        done += len(buf)
        buf.clear()
        if progress is not None:
            progress(done, len(indices))

    for i in indices:
        if cancel is not None and cancel():
            raise CancelledError(cancelled(done))
        f = sequence[i]
        if f.bad:
            skipped.append(_skip_note(i, f))
            done += 1
            continue
        if buf and buf[0][1].shape != f.shape:
            flush()
        buf.append((i, f))
        if len(buf) >= batch:
            flush()
    flush()
    return done, skipped


class _ShardLabels(PredictedLabels):
    """Rank 0's view of the labels every rank saved under `folder` (one .npy per frame index): an
    HDF5 file under torchrun is segmented by all ranks and written by one."""

    def __init__(self, predictor: Predictor, sequence, mode: Mode, folder: Path, checkpoint_hash: str | None):
        super().__init__(predictor, sequence, mode, 1, checkpoint_hash)
        self.folder = folder

    def labels(self, i: int) -> np.ndarray:
        path = self.folder / f"{i:08d}.npy"
        if path.is_file():
            return np.load(path)
        return np.full(self.frame_shape(i), 255, np.uint8)  # unreadable: the rank that met it names it


def _infer_hdf5_sharded(predictor: Predictor, sequence, mode: Mode, out: Path, mine: list[int], rank: int,
                        batch: int, progress, cancel,
                        checkpoint_hash: str | None) -> tuple[int, list[Path], list[str]]:
    """Every rank segments its strided shard (`mine`) into a folder beside `out`; rank 0 then writes
    the one HDF5 file from it and removes the folder. No rank waits on a single rank's whole sequence."""
    folder = out.parent / f".{out.name}.shards"
    folder.mkdir(parents=True, exist_ok=True)

    def write(i: int, _f: FramePair, lab: np.ndarray) -> None:
        tmp = folder / f"{i:08d}.{rank}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(lab, np.uint8))
        tmp.replace(folder / f"{i:08d}.npy")

    done, skipped = _segment_shard(predictor, sequence, mode, mine, batch, write, progress, cancel,
                                   lambda n: f"inference cancelled after {n} frames; {out} was not written")
    barrier()
    written: list[Path] = []
    if is_main():
        try:
            export_hdf5(_ShardLabels(predictor, sequence, mode, folder, checkpoint_hash), out, mode=mode,
                        checkpoint_hash=checkpoint_hash)
            written.append(out)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    barrier()
    return done, written, skipped


def infer_sequence(predictor: Predictor, sequence, mode: Mode | str, out: str | Path, *, batch: int = 4,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None,
                   fmt: str = "png", checkpoint_hash: str | None = None) -> InferResult:
    """Segment every frame of `sequence` in batches.

    fmt="png": `<out>/<frame name>.png` indexed label masks (pixel = class id, palette = colours) plus
    `<out>/classes.json`. Under torchrun each rank takes a strided shard and writes its own frames'
    files (names are disjoint, so no file is written twice); rank 0 writes classes.json.
    fmt="hdf5": `out` is one HDF5 file in core/export.py's layout. Alone, labels go straight into it
    a batch at a time; under torchrun every rank segments its shard into a folder beside `out` and
    rank 0 writes the file from that. Bad (undecodable) frames are skipped (HDF5: left at 255) and
    listed in `InferResult.skipped` (under torchrun, by the rank that met them). Each file is written
    atomically; a cancel raises CancelledError and keeps the files already written.
    """
    mode = Mode(mode)
    out = Path(out)
    t0 = time.perf_counter()
    if fmt not in ("png", "hdf5"):
        raise ExportError(f"unknown output format {fmt!r}; use 'png' or 'hdf5'")
    rank, world = rank_and_world()
    mine = list(range(rank, len(sequence), world))  # this rank's strided shard
    if fmt == "hdf5" and world > 1:
        done, written, skipped = _infer_hdf5_sharded(predictor, sequence, mode, out, mine, rank, max(1, batch),
                                                     progress, cancel, checkpoint_hash)
        return InferResult(frames=done, written=written, seconds=time.perf_counter() - t0, mode=mode,
                           skipped=skipped)
    if fmt == "hdf5":
        view = PredictedLabels(predictor, sequence, mode, batch, checkpoint_hash)
        export_hdf5(view, out, mode=mode, checkpoint_hash=checkpoint_hash, progress=progress, cancel=cancel)
        return InferResult(frames=len(sequence), written=[out], seconds=time.perf_counter() - t0, mode=mode,
                           skipped=[view.skipped[j] for j in sorted(view.skipped)])

    names = list(getattr(sequence, "names", [])) or None
    written = []

    def write(i: int, f: FramePair, lab: np.ndarray) -> None:
        name = (names[i] if names else f.name) or f"{i:06d}"
        path = out / f"{name.replace('/', '_').replace(chr(92), '_')}.png"
        write_label_png(path, lab, predictor.scheme)
        written.append(path)

    out.mkdir(parents=True, exist_ok=True)
    if is_main() and predictor.scheme is not None:
        atomic_write_text(out / "classes.json", json.dumps(predictor.scheme.to_dict(), indent=1) + "\n")
    done, skipped = _segment_shard(predictor, sequence, mode, mine, max(1, batch), write, progress, cancel,
                                   lambda n: f"inference cancelled after {n} frames; the {len(written)} masks "
                                             f"written to {out} are complete")
    barrier()
    return InferResult(frames=done, written=written, seconds=time.perf_counter() - t0, mode=mode, skipped=skipped)
