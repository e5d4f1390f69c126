"""Inference: numpy frames in, numpy `Prediction`s out; plus batch inference over a whole sequence.

`Predictor` is what the GUI's worker thread owns: it keeps the model on one device, swaps weights
after fine-tuning (`set_state_dict`, bumping `weights_version` so caches keyed on it invalidate), and
returns only owned numpy arrays, never tensors. `infer_sequence` is the CLI's batch path and runs
sharded under torchrun.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.device import autocast, resolve_device
from csknet_studio.core.errors import CancelledError, ExportError, ModelInputError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.modes import Mode


@dataclass
class Prediction:
    """One frame's result, numpy only (safe to hand across threads).

    labels (H,W) uint8 class ids; probs (K,H,W) float16 softmax; entropy (H,W) float32 in [0, 1]
    (divided by log K); gate_maps {stage: (h,w) float32 in [0,1]} (weight on EO, both-mode +
    introspect only); exchanged {site: {"ir->eo"|"eo->ir": int64 channel indices}} (introspect, both);
    features {name: (h,w) float32} channel-mean of requested feature maps; ms: model wall time.
    """

    labels: np.ndarray
    probs: np.ndarray
    entropy: np.ndarray
    mode: Mode
    weights_version: int
    ms: float
    gate_maps: dict[str, np.ndarray] = field(default_factory=dict)
    exchanged: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)


def _stack(arrs: Sequence[np.ndarray | None], what: str) -> np.ndarray | None:
    if any(a is None for a in arrs):
        raise ModelInputError(f"{what} image missing in a frame of the batch")
    shapes = {a.shape[:2] for a in arrs}  # type: ignore[union-attr]
    if len(shapes) != 1:
        raise ModelInputError(f"{what} images in one batch must share a size, got {sorted(shapes)}")
    return np.stack(arrs)  # type: ignore[arg-type]


class Predictor:
    """Runs one model on one device. Calls are serialised by a lock (one worker thread is the norm)."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu",
                 scheme: ClassScheme | None = None, *, num_threads: int | None = None,
                 amp: bool = True, weights_version: int = 0):
        if num_threads is not None and num_threads > 0:
            torch.set_num_threads(int(num_threads))
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()
        self.scheme = scheme
        self.amp = amp
        self.weights_version = int(weights_version)
        self._lock = threading.Lock()

    @property
    def num_classes(self) -> int:
        return int(self.model.config.num_classes)

    def set_state_dict(self, state: Mapping[str, torch.Tensor], version: int | None = None) -> int:
        """Load new weights (e.g. accepted fine-tuning); returns the new weights_version."""
        from csknet_studio.core.checkpoint import load_state_dict_checked

        with self._lock:
            load_state_dict_checked(self.model, state, source="new weights")
            self.model.eval()
            self.weights_version = self.weights_version + 1 if version is None else int(version)
            return self.weights_version

    def set_model(self, model: torch.nn.Module, scheme: ClassScheme | None = None,
                  version: int | None = None) -> int:
        """Swap the whole model (a different checkpoint, maybe another class scheme)."""
        with self._lock:
            self.model = model.to(self.device).eval()
            if scheme is not None:
                self.scheme = scheme
            self.weights_version = self.weights_version + 1 if version is None else int(version)
            return self.weights_version

    def predict(self, eo_np: np.ndarray | None, ir_np: np.ndarray | None, mode: Mode | str = Mode.BOTH,
                introspect: bool = False, features: Iterable[str] = ()) -> Prediction:
        """Segment one frame. The modality a mode does not use is ignored (it may be None)."""
        mode = Mode(mode)
        eo = None if eo_np is None else eo_np[None]
        ir = None if ir_np is None else ir_np[None]
        return self._run(eo, ir, mode, introspect, tuple(features))[0]

    def predict_batch(self, frames: Sequence[FramePair], mode: Mode | str = Mode.BOTH,
                      introspect: bool = False, features: Iterable[str] = ()) -> list[Prediction]:
        """Segment frames of one size in a single forward pass."""
        mode = Mode(mode)
        if not frames:
            return []
        eo = _stack([f.eo for f in frames], "EO") if mode.uses_eo else None
        ir = _stack([f.ir if f.ir is None or f.ir.ndim == 2 else f.ir[..., 0] for f in frames], "IR") \
            if mode.uses_ir else None
        return self._run(eo, ir, mode, introspect, tuple(features))

    @torch.no_grad()
    def predict_labels(self, frames: Sequence[FramePair], mode: Mode | str = Mode.BOTH) -> np.ndarray:
        """(B, H, W) uint8 class ids only: batch inference skips softmax, entropy and probabilities."""
        from csknet_studio.core.model.preprocess import to_tensors

        mode = Mode(mode)
        eo = _stack([f.eo for f in frames], "EO") if mode.uses_eo else None
        ir = _stack([f.ir if f.ir is None or f.ir.ndim == 2 else f.ir[..., 0] for f in frames], "IR") \
            if mode.uses_ir else None
        with self._lock:
            eo_t, ir_t = to_tensors(eo, ir, self.model.config.input_norm, self.device)
            with autocast(self.device, enabled=self.amp):
                logits = self.model(eo_t, ir_t).logits
            return logits.argmax(1).to(torch.uint8).cpu().numpy()

    @torch.no_grad()
    def _run(self, eo: np.ndarray | None, ir: np.ndarray | None, mode: Mode, introspect: bool,
             features: tuple[str, ...]) -> list[Prediction]:
        from csknet_studio.core.model.preprocess import to_tensors

        if mode.uses_eo and eo is None:
            raise ModelInputError(f"mode {mode.value!r} needs an EO image but none was given")
        if mode.uses_ir and ir is None:
            raise ModelInputError(f"mode {mode.value!r} needs an IR image but none was given")
        with self._lock:
            model, version = self.model, self.weights_version
            eo_t, ir_t = to_tensors(eo if mode.uses_eo else None, ir if mode.uses_ir else None,
                                    model.config.input_norm, self.device)
            t0 = time.perf_counter()
            with autocast(self.device, enabled=self.amp):
                out = model(eo_t, ir_t, introspect=introspect, features=features)
            logits = out.logits.float()
            probs = torch.softmax(logits, 1)
            k = probs.shape[1]
            ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
            if k > 1:
                ent = ent / math.log(k)
            labels = logits.argmax(1).to(torch.uint8)  # same ids as predict_labels (no softmax ties)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            ms = (time.perf_counter() - t0) * 1000.0 / probs.shape[0]
            labels_np = labels.cpu().numpy()
            probs_np = probs.to(torch.float16).cpu().numpy()
            ent_np = ent.clamp(0, 1).float().cpu().numpy()
            gates = {s: g.float().cpu().numpy() for s, g in out.gate_maps.items()}
            feats = {n: f.float().mean(1).cpu().numpy() if f.ndim == 4 else f.float().cpu().numpy()
                     for n, f in out.features.items()}
            exch = {s: {d: idx.cpu().numpy().astype(np.int64) for d, idx in dirs.items()}
                    for s, dirs in out.exchanged.items()}
        preds = []
        for b in range(labels_np.shape[0]):
            preds.append(Prediction(
                labels=labels_np[b].copy(),
                probs=probs_np[b].copy(),
                entropy=ent_np[b].copy(),
                mode=mode,
                weights_version=version,
                ms=ms,
                gate_maps={s: g[b].copy() for s, g in gates.items()},
                exchanged=exch,
                features={n: f[b].copy() for n, f in feats.items()},
            ))
        return preds


def upsample_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map (for display grids that differ from the input)."""
    t = torch.from_numpy(labels.astype(np.int64))[None, None].float()
    return F.interpolate(t, size=size, mode="nearest")[0, 0].to(torch.uint8).numpy()


# --- batch inference over a sequence -------------------------------------------------------------


def write_label_png(path: Path, labels: np.ndarray, scheme: ClassScheme | None) -> None:
    """Indexed (palette) PNG whose pixel values are class ids (core/palette_png), written atomically."""
    from csknet_studio.core.palette_png import write_palette_png

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
        self._cache: dict[int, np.ndarray] = {}
        self.skipped: dict[int, str] = {}  # unreadable frames, written as 255

    def __len__(self) -> int:
        return len(self.sequence)

    def frame_shape(self, i: int) -> tuple[int, int]:
        return self.sequence[i].shape

    def origin(self, i: int):
        from csknet_studio.core.edits import Origin

        return Origin.PREDICTED

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


def infer_sequence(predictor: Predictor, sequence, mode: Mode | str, out: str | Path, *, batch: int = 4,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None,
                   fmt: str = "png", checkpoint_hash: str | None = None) -> InferResult:
    """Segment every frame of `sequence` in batches.

    fmt="png": `<out>/<frame name>.png` indexed label masks (pixel = class id, palette = colours) plus
    `<out>/classes.json`. Under torchrun each rank takes a strided shard and writes its own frames'
    files (names are disjoint, so no file is written twice); rank 0 writes classes.json.
    fmt="hdf5": `out` is one HDF5 file in core/export.py's layout, written by rank 0 alone.
    Bad (undecodable) frames are skipped (HDF5: left at 255) and listed in `InferResult.skipped`. Each file is written atomically; a
    cancel raises CancelledError and keeps the files already written.
    """
    from csknet_studio.core.atomic import atomic_write_text
    from csknet_studio.core.distributed import barrier, is_main, rank_and_world

    mode = Mode(mode)
    out = Path(out)
    t0 = time.perf_counter()
    if fmt not in ("png", "hdf5"):
        raise ExportError(f"unknown output format {fmt!r}; use 'png' or 'hdf5'")
    if fmt == "hdf5":
        written: list[Path] = []
        if is_main():
            from csknet_studio.core.export import export_hdf5

            view = PredictedLabels(predictor, sequence, mode, batch, checkpoint_hash)
            export_hdf5(view, out, mode=mode, checkpoint_hash=checkpoint_hash, progress=progress, cancel=cancel)
            written.append(out)
            skipped = [view.skipped[j] for j in sorted(view.skipped)]
        else:
            skipped = []
        barrier()
        return InferResult(frames=len(sequence), written=written, seconds=time.perf_counter() - t0, mode=mode,
                           skipped=skipped)

    rank, world = rank_and_world()
    mine = list(range(rank, len(sequence), world))
    names = list(getattr(sequence, "names", [])) or None
    written = []
    skipped_png: list[str] = []
    done = 0
    buf: list[tuple[int, FramePair]] = []

    def flush() -> None:
        nonlocal done
        if not buf:
            return
        labels = predictor.predict_labels([f for _, f in buf], mode)
        for (i, f), lab in zip(buf, labels, strict=True):
            name = (names[i] if names else f.name) or f"{i:06d}"
            path = out / f"{name.replace('/', '_').replace(chr(92), '_')}.png"
            write_label_png(path, lab, predictor.scheme)
            written.append(path)
        done += len(buf)
        buf.clear()
        if progress is not None:
            progress(done, len(mine))

    out.mkdir(parents=True, exist_ok=True)
    if is_main() and predictor.scheme is not None:
        import json

        atomic_write_text(out / "classes.json", json.dumps(predictor.scheme.to_dict(), indent=1) + "\n")
    for i in mine:
        if cancel is not None and cancel():
            raise CancelledError(f"inference cancelled after {done} frames; the {len(written)} masks written "
                                 f"to {out} are complete")
        f = sequence[i]
        if f.bad:
            skipped_png.append(_skip_note(i, f))
            done += 1
            continue
        if buf and buf[0][1].shape != f.shape:
            flush()
        buf.append((i, f))
        if len(buf) >= batch:
            flush()
    flush()
    barrier()
    return InferResult(frames=done, written=written, seconds=time.perf_counter() - t0, mode=mode,
                       skipped=skipped_png)
