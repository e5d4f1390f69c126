"""Segmentation metrics (confusion matrix, per-class IoU, mIoU, pixel accuracy) for each Mode.

IoU follows the RTFNet/MFNet convention: every class in the scheme counts (MFNet's `unlabeled`
included); only the ignore index (255) is left out. A class that appears neither in the ground
truth nor in the prediction has an undefined IoU (NaN) and is left out of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from csknet_studio.core.device import autocast, resolve_device
from csknet_studio.core.distributed import all_reduce_sum, rank_and_world
from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.mirroring import mirrored_mean_probs
from csknet_studio.core.model.preprocess import to_tensors
from csknet_studio.core.model.single import SingleStreamSegNet
from csknet_studio.core.modes import ALL_MODES, Mode

ProgressFn = Callable[[int, int], None]


def confusion_matrix(pred, target, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """(K, K) int64 counts, rows = ground truth, columns = prediction. Accepts numpy or torch.

    Pixels whose target is `ignore_index` (or outside [0, K)) are skipped; predictions outside
    [0, K) are counted in no column (they can only lower recall).
    """
    if isinstance(pred, torch.Tensor):
        pred = pred.detach().cpu().numpy()
    if isinstance(target, torch.Tensor):
        target = target.detach().cpu().numpy()
    pred = np.asarray(pred).reshape(-1).astype(np.int64, copy=False)
    target = np.asarray(target).reshape(-1).astype(np.int64, copy=False)
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.size} pixels but target has {target.size}")
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    keep &= (pred >= 0) & (pred < num_classes)
    idx = target[keep] * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrix_torch(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                           ignore_index: int = 255) -> torch.Tensor:
    """Same as `confusion_matrix` but stays on the tensor's device (cheap inside training loops)."""
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes) & (pred >= 0) & (pred < num_classes)
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """(K,) float64 IoU; NaN where the class is absent from both ground truth and prediction."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1e-12), np.nan)


@dataclass(frozen=True)
class SegMetrics:
    """Metrics of one mode over a data set; `confusion` keeps the raw counts so results can be merged."""

    confusion: np.ndarray  # (K, K) int64

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    @property
    def iou(self) -> np.ndarray:
        return iou_per_class(self.confusion)

    @property
    def miou(self) -> float:
        iou = self.iou
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def pixels(self) -> int:
        return int(self.confusion.sum())

    def merged(self, other: SegMetrics) -> SegMetrics:
        return SegMetrics(self.confusion + other.confusion)

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict:
        """JSON-friendly (NaN -> None) summary, stored in checkpoints."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]

        def _f(x: float) -> float | None:
            return None if not math.isfinite(x) else round(float(x), 6)

        return {
            "miou": _f(self.miou),
            "pixel_accuracy": _f(self.pixel_accuracy),
            "iou": {n: _f(v) for n, v in zip(names, self.iou, strict=False)},
            "pixels": self.pixels,
        }


def eval_mode(model: torch.nn.Module) -> Callable[[], None]:
    """Put `model` in eval mode; returns what puts every module's own train/eval flag back.
    A plain `model.train(was)` would wake the BatchNorms that fine-tuning keeps in eval mode
    (`freeze_bn`, a frozen encoder), and their statistics would drift on a few crops."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()

    def restore() -> None:
        for m, training in flags:
            m.training = training

    return restore


def _iter_frames(data, indices: Sequence[int] | None) -> Iterable[FramePair]:
    if indices is None:
        indices = range(len(data))
    for i in indices:
        yield data[i]


@torch.no_grad()
def predict_labels(model: torch.nn.Module, frames: Sequence[FramePair], mode: Mode,
                   device: torch.device, amp: bool = True, mirror: bool = False) -> torch.Tensor:
    """(B, H, W) argmax labels for frames of one size, through the model's own input norm
    (with `mirror`, of the softmax averaged with the mirrored frame's: core/mirroring.py)."""
    norm = model.config.input_norm
    eos, irs = [], []
    for f in frames:
        eo_t, ir_t = to_tensors(f.eo if mode.uses_eo else None, f.ir if mode.uses_ir else None, norm, device)
        eos.append(eo_t)
        irs.append(ir_t)
    eo = torch.cat(eos) if mode.uses_eo else None
    ir = torch.cat(irs) if mode.uses_ir else None
    single = isinstance(model, SingleStreamSegNet)  # a plain network (the EO teacher) reads one modality
    if single and (eo if model.in_channels == 3 else ir) is None:
        raise ModelInputError(f"a single-stream {'EO' if model.in_channels == 3 else 'IR'} network "
                              f"cannot run in mode {mode.value}")

    def forward(e: torch.Tensor | None, i: torch.Tensor | None) -> torch.Tensor:
        return model(e if model.in_channels == 3 else i).logits if single else model(e, i).logits

    with autocast(device, enabled=amp):
        scores = forward(eo, ir)
        if mirror:
            scores = mirrored_mean_probs(forward, eo, ir, scores)
    return scores.argmax(1)


def _batches(frames: Iterable[FramePair], batch: int) -> Iterable[list[FramePair]]:
    """Consecutive frames of equal size, at most `batch` at a time."""
    buf: list[FramePair] = []
    for f in frames:
        if buf and (len(buf) >= batch or buf[0].shape != f.shape):
            yield buf
            buf = []
        buf.append(f)
    if buf:
        yield buf


def evaluate(model: torch.nn.Module, data, modes: Iterable[Mode | str] = ALL_MODES, *,
             device: torch.device | str = "cpu", batch: int = 4, num_classes: int | None = None,
             ignore_index: int = 255, indices: Sequence[int] | None = None,
             progress: ProgressFn | None = None, amp: bool = True, mirror: bool = False) -> dict[Mode, SegMetrics]:
    """Run `model` over the labelled frames of `data` (a Sequence / list of FramePair) per mode
    (`mirror`: test-time mirroring, core/mirroring.py).

    Under torch.distributed every rank scores a strided shard and the confusion matrices are
    summed across ranks, so every rank returns the same, complete result.
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    modes = [Mode(m) for m in modes]
    k = int(num_classes or model.config.num_classes)
    rank, world = rank_and_world()
    idx = list(range(len(data))) if indices is None else list(indices)
    idx = idx[rank::world]
    restore = eval_mode(model)
    confs = {m: np.zeros((k, k), dtype=np.int64) for m in modes}
    total = len(idx) * len(modes)
    done = 0
    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and n:
            progress(done, total)

    try:
        for mode in modes:
            skipped = [0]

            def labelled(frames: Iterable[FramePair], skipped=skipped) -> Iterable[FramePair]:
                for f in frames:
                    if f.label is not None and not f.bad:
                        yield f
                    else:
                        skipped[0] += 1

            for chunk in _batches(labelled(_iter_frames(data, idx)), max(1, batch)):
                pred = predict_labels(model, chunk, mode, device, amp=amp, mirror=mirror).cpu().numpy()
                for p, f in zip(pred, chunk, strict=True):
                    confs[mode] += confusion_matrix(p, f.label, k, ignore_index)
                tick(len(chunk) + skipped[0])
                skipped[0] = 0
            tick(skipped[0])  # unlabelled frames at the end still count as done
    finally:
        restore()
    if world > 1:
        for m in modes:
            confs[m] = all_reduce_sum(confs[m])
    return {m: SegMetrics(confs[m]) for m in modes}


def format_table(results: dict[Mode, SegMetrics], class_names: Sequence[str]) -> str:
    """Per-class IoU (%) table, one column per mode, with mIoU and pixel accuracy rows."""
    modes = list(results)
    name_w = max([len("pixel accuracy"), *(len(n) for n in class_names)])
    col_w = max(9, *(len(m.label) for m in modes))

    def cell(v: float) -> str:
        return f"{100 * v:.1f}".rjust(col_w) if math.isfinite(v) else "-".rjust(col_w)

    lines = ["class".ljust(name_w) + "".join("  " + m.label.rjust(col_w) for m in modes)]
    lines.append("-" * len(lines[0]))
    ious = {m: results[m].iou for m in modes}
    for i, name in enumerate(class_names):
        lines.append(name.ljust(name_w) + "".join("  " + cell(ious[m][i]) for m in modes))
    lines.append("-" * len(lines[0]))
    lines.append("mIoU".ljust(name_w) + "".join("  " + cell(results[m].miou) for m in modes))
    lines.append("pixel accuracy".ljust(name_w) + "".join("  " + cell(results[m].pixel_accuracy) for m in modes))
    return "\n".join(lines)
