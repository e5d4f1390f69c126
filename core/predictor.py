"""Inference on single frames: numpy frames in, numpy `Prediction`s out.

`Predictor` is what the GUI's worker thread owns: it keeps the model on one device, swaps weights
after fine-tuning (`set_state_dict`, bumping `weights_version` so caches keyed on it invalidate), and
returns only owned numpy arrays, never tensors. Batch inference over a whole sequence, with its
mask files, is core/batch_infer.py, one layer up.

Weights are copied into the model in place, so a forward pass that overlaps a swap mixes two sets
of weights. Every reader and writer of a model therefore holds its `model_lock`: each `Predictor`
of that model does, and so does any other forward over it (`Predictor.locked()`, `channel_maps`).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from csknet_studio.core.checkpoint import load_state_dict_checked
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.device import autocast, resolve_device
from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.introspect import ChannelMaps, channel_maps
from csknet_studio.core.mirroring import mirrored_mean_probs
from csknet_studio.core.model.preprocess import to_tensors
from csknet_studio.core.modes import Mode


@dataclass
class Prediction:
    """One frame's result, numpy only (safe to hand across threads).

    labels (H,W) uint8 class ids; probs (K,H,W) float16 softmax; entropy (H,W) float32 in [0, 1]
    (divided by log K); gate_maps {stage: (h,w) float32 in [0,1]} (the GSU's gates, e.g.
    "eo" / "ir" / "sum" stages; the logit ensemble's are its weight on EO; both-mode + introspect only); exchanged {site: {"ir->eo"|"eo->ir": int64 channel indices}} (introspect, both);
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


_model_locks: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_model_locks_guard = threading.Lock()


def model_lock(model: torch.nn.Module) -> threading.RLock:
    """The one lock of `model`, shared by every `Predictor` of it and by any forward run beside them.

    Re-entrant, so a holder may call `predict` inside its block. Kept as long as the model lives."""
    with _model_locks_guard:
        lock = _model_locks.get(model)
        if lock is None:
            lock = _model_locks[model] = threading.RLock()
        return lock


def _stack(arrs: Sequence[np.ndarray | None], what: str) -> np.ndarray | None:
    if any(a is None for a in arrs):
        raise ModelInputError(f"{what} image missing in a frame of the batch")
    shapes = {a.shape[:2] for a in arrs}  # type: ignore[union-attr]
    if len(shapes) != 1:
        raise ModelInputError(f"{what} images in one batch must share a size, got {sorted(shapes)}")
    return np.stack(arrs)  # type: ignore[arg-type]


def _stack_inputs(frames: Sequence[FramePair], mode: Mode) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The batch's EO and IR arrays for `mode` (a stream the mode leaves out is not even stacked)."""
    eo = _stack([f.eo for f in frames], "EO") if mode.uses_eo else None
    ir = _stack([f.ir if f.ir is None or f.ir.ndim == 2 else f.ir[..., 0] for f in frames], "IR") \
        if mode.uses_ir else None
    return eo, ir


def _mirrored(model: torch.nn.Module, eo: torch.Tensor | None, ir: torch.Tensor | None,
              logits: torch.Tensor) -> torch.Tensor:
    """The mean softmax of the frame (its `logits`) and of its mirror through `model`."""
    return mirrored_mean_probs(lambda e, i: model(e, i).logits, eo, ir, logits)


class Predictor:
    """Runs one model on one device. Forward passes and weight swaps hold the model's lock
    (`model_lock`), so other threads running the same model never see half-loaded weights."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu",
                 scheme: ClassScheme | None = None, *, num_threads: int | None = None,
                 amp: bool = True, weights_version: int = 0, mirror: bool = False):
        if num_threads is not None and num_threads > 0:
            torch.set_num_threads(int(num_threads))
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self._lock = model_lock(model)
        with self._lock:  # moving it to the device rewrites its parameters
            self.model = model.to(self.device).eval()
        self.scheme = scheme
        self.amp = amp
        self.mirror = bool(mirror)  # default for every call: average with the mirrored frame (core/mirroring.py)
        self.weights_version = int(weights_version)

    @property
    def num_classes(self) -> int:
        return int(self.model.config.num_classes)

    @contextlib.contextmanager
    def locked(self) -> Iterator[torch.nn.Module]:
        """Hold the model's lock for the block and yield the model: its weights cannot change (nor
        the model be swapped) until the block ends. For read-only forwards beside `predict`."""
        while True:
            lock = self._lock
            lock.acquire()
            if lock is self._lock:
                break
            lock.release()  # the model was swapped while we waited: take the new one's lock
        try:
            yield self.model
        finally:
            lock.release()

    def set_state_dict(self, state: Mapping[str, torch.Tensor], version: int | None = None) -> int:
        """Load new weights (e.g. accepted fine-tuning); returns the new weights_version."""
        with self.locked() as model:
            load_state_dict_checked(model, state, source="new weights")
            model.eval()
            self.weights_version = self.weights_version + 1 if version is None else int(version)
            return self.weights_version

    def set_model(self, model: torch.nn.Module, scheme: ClassScheme | None = None,
                  version: int | None = None) -> int:
        """Swap the whole model (a different checkpoint, maybe another class scheme)."""
        with model_lock(model):  # the new model's own users wait while it moves to the device
            model = model.to(self.device).eval()
        with self.locked():
            self.model, self._lock = model, model_lock(model)
            if scheme is not None:
                self.scheme = scheme
            self.weights_version = self.weights_version + 1 if version is None else int(version)
            return self.weights_version

    def channel_maps(self, eo: np.ndarray, ir: np.ndarray, site: str, direction: str,
                     channel: int) -> ChannelMaps:
        """One exchange-site channel before and after the exchange (`core.introspect.channel_maps`),
        computed with one set of weights."""
        with self.locked() as model:
            return channel_maps(model, eo, ir, site, direction, channel)

    def predict(self, eo_np: np.ndarray | None, ir_np: np.ndarray | None, mode: Mode | str = Mode.BOTH,
                introspect: bool = False, features: Iterable[str] = (), mirror: bool | None = None) -> Prediction:
        """Segment one frame. The modality a mode does not use is ignored (it may be None).
        `mirror` (default: the predictor's) averages with the mirrored frame; the gate maps,
        exchanged channels and features stay those of the frame itself."""
        mode = Mode(mode)
        eo = None if eo_np is None else eo_np[None]
        ir = None if ir_np is None else ir_np[None]
        return self._run(eo, ir, mode, introspect, tuple(features), mirror)[0]

    def predict_batch(self, frames: Sequence[FramePair], mode: Mode | str = Mode.BOTH,
                      introspect: bool = False, features: Iterable[str] = (),
                      mirror: bool | None = None) -> list[Prediction]:
        """Segment frames of one size in a single forward pass (two with mirroring)."""
        mode = Mode(mode)
        if not frames:
            return []
        eo, ir = _stack_inputs(frames, mode)
        return self._run(eo, ir, mode, introspect, tuple(features), mirror)

    @torch.no_grad()
    def predict_labels(self, frames: Sequence[FramePair], mode: Mode | str = Mode.BOTH,
                       mirror: bool | None = None) -> np.ndarray:
        """(B, H, W) uint8 class ids only: batch inference skips softmax, entropy and probabilities
        (but for the mirrored mean, which needs the softmax)."""
        mode = Mode(mode)
        eo, ir = _stack_inputs(frames, mode)
        with self.locked() as model:
            eo_t, ir_t = to_tensors(eo, ir, model.config.input_norm, self.device)
            with autocast(self.device, enabled=self.amp):
                scores = model(eo_t, ir_t).logits
                if self.mirror if mirror is None else mirror:
                    scores = _mirrored(model, eo_t, ir_t, scores)
            return scores.argmax(1).to(torch.uint8).cpu().numpy()

    @torch.no_grad()
    def _run(self, eo: np.ndarray | None, ir: np.ndarray | None, mode: Mode, introspect: bool,
             features: tuple[str, ...], mirror: bool | None = None) -> list[Prediction]:
        mirror = self.mirror if mirror is None else bool(mirror)
        if mode.uses_eo and eo is None:
            raise ModelInputError(f"mode {mode.value!r} needs an EO image but none was given")
        if mode.uses_ir and ir is None:
            raise ModelInputError(f"mode {mode.value!r} needs an IR image but none was given")
        with self.locked() as model:
            version = self.weights_version
            eo_t, ir_t = to_tensors(eo if mode.uses_eo else None, ir if mode.uses_ir else None,
                                    model.config.input_norm, self.device)
            t0 = time.perf_counter()
            with autocast(self.device, enabled=self.amp):
                out = model(eo_t, ir_t, introspect=introspect, features=features)
            logits = out.logits.float()
            if mirror:
                with autocast(self.device, enabled=self.amp):
                    probs = _mirrored(model, eo_t, ir_t, logits)
                labels = probs.argmax(1).to(torch.uint8)  # as predict_labels ranks the same mean
            else:
                probs = torch.softmax(logits, 1)
                labels = logits.argmax(1).to(torch.uint8)  # same ids as predict_labels (no softmax ties)
            k = probs.shape[1]
            ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
            if k > 1:
                ent = ent / math.log(k)
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
