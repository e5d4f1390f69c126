"""Carry a frame's labels to its neighbours by dense optical flow (OpenCV's DIS).

For each step from frame s to the next frame t, DIS gives the backward flow t -> s (where each pixel
of t was in s) and the forward flow s -> t. A pixel of t takes the label found at its position in s
only where the two flows agree: |f_ts(x) + f_st(x + f_ts(x))| <= `max_error_px` (1 px by default),
and where the image matches there (the 5x5 mean of |I_t(x) - I_s(x + f_ts(x))| is at most
`max_intensity_diff` grey levels of the stretched 8-bit image: DIS smooths its flow across content that is new in t, so two smooth flows
can agree over a region neither of them matched). Pixels that fail (occluded, disoccluded, or where the flow is unreliable) and pixels carried as 255
take the model's prediction for t when there is one, else stay 255 (unlabelled). Each propagated
frame is the source of the next, so the labels travel N frames in one pass.

Which modality the flow is computed on: with `modality="auto"` the flow is computed on EO and on
IR and, per step, the one with the larger fraction of forward-backward-consistent pixels is used.
That picks IR at night or in fog (EO is dark and noisy, DIS finds no consistent texture) and EO by
day (finer texture than thermal), without a day/night classifier.

Pure numpy in and out; `progress(done, total)` and `cancel()` like the other core jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError
from csknet_studio.core.frames import FramePair

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
MODALITIES = ("auto", "eo", "ir")


@dataclass(frozen=True)
class PropagationConfig:
    """How labels are carried: the consistency threshold, the flow's modality and DIS preset."""

    max_error_px: float = 1.0  # forward-backward disagreement above this: the pixel is not carried
    max_intensity_diff: float = 20.0  # mean grey levels (0-255, shared stretch) the warp may miss by
    modality: str = "auto"  # "auto" (the more consistent of EO and IR per step), "eo" or "ir"
    preset: str = "medium"  # DIS preset: "ultrafast", "fast" or "medium"

    def __post_init__(self) -> None:
        if not self.max_error_px > 0:
            raise ValueError(f"max_error_px must be > 0, got {self.max_error_px}")
        if not self.max_intensity_diff > 0:
            raise ValueError(f"max_intensity_diff must be > 0, got {self.max_intensity_diff}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.preset not in _PRESETS:
            raise ValueError(f"preset must be one of {tuple(_PRESETS)}, got {self.preset!r}")


@dataclass(frozen=True)
class FlowStep:
    """The flow from a target frame back to its source, and where it passed the consistency check."""

    backward: np.ndarray  # (H, W, 2) float32: target pixel x was at x + backward[x] in the source
    consistent: np.ndarray  # (H, W) bool
    error: np.ndarray  # (H, W) float32 forward-backward disagreement in pixels
    modality: str

    @property
    def consistent_fraction(self) -> float:
        return float(self.consistent.mean())


@dataclass(frozen=True)
class PropagatedFrame:
    """One frame's propagated labels and how they were made."""

    index: int
    labels: np.ndarray  # (H, W) uint8
    carried: float  # fraction of pixels whose label came along the flow
    filled: float  # fraction filled from the model's prediction
    modality: str  # "eo" or "ir": the flow used for this step


def _gray(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a


def _gray_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both frames to uint8 with one shared 1-99 % stretch (the same mapping keeps brightness
    constancy, which the flow relies on; 16-bit IR and dark EO get the full 8-bit range)."""
    ga, gb = _gray(a), _gray(b)
    lo, hi = np.percentile(np.concatenate([ga[::4, ::4].ravel(), gb[::4, ::4].ravel()]), (1, 99))
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return tuple(np.clip((g - lo) * scale, 0, 255).astype(np.uint8) for g in (ga, gb))  # type: ignore[return-value]


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def flow_step(source: np.ndarray, target: np.ndarray, modality: str, config: PropagationConfig) -> FlowStep:
    """DIS flow target -> source and source -> target on one modality's images, with the check."""
    gs, gt = _gray_pair(source, target)
    dis = cv2.DISOpticalFlow_create(_PRESETS[config.preset])
    backward = dis.calc(gt, gs, None)  # gt(x) ~ gs(x + backward(x))
    forward = dis.calc(gs, gt, None)
    gx, gy = _grid(gt.shape)
    mx, my = gx + backward[..., 0], gy + backward[..., 1]
    back_again = cv2.remap(forward, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1e6)
    error = np.linalg.norm(backward + back_again, axis=-1)
    h, w = gt.shape
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    warped = cv2.remap(gs.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    miss = cv2.blur(np.abs(gt.astype(np.float32) - warped), (5, 5))  # local mean: one noisy pixel is not a miss
    ok = inside & (error <= config.max_error_px) & (miss <= config.max_intensity_diff)
    return FlowStep(backward, ok, error.astype(np.float32), modality)


def best_flow(source: FramePair, target: FramePair, config: PropagationConfig) -> FlowStep | None:
    """The flow of the modality with the most consistent pixels (or the configured one); None when
    the two frames share no usable modality."""
    names = ("eo", "ir") if config.modality == "auto" else (config.modality,)
    best: FlowStep | None = None
    for name in names:
        a, b = getattr(source, name), getattr(target, name)
        if a is None or b is None:
            continue
        step = flow_step(a, b, name, config)
        if best is None or step.consistent_fraction > best.consistent_fraction:
            best = step
    return best


def warp_labels(labels: np.ndarray, step: FlowStep) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the source seen from the target (nearest neighbour) and the pixels carried
    (consistent flow and a labelled source pixel)."""
    gx, gy = _grid(labels.shape)
    warped = cv2.remap(np.ascontiguousarray(labels, np.uint8), gx + step.backward[..., 0],
                       gy + step.backward[..., 1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=IGNORE_INDEX)
    carried = step.consistent & (warped != IGNORE_INDEX)
    return warped, carried


def propagation_targets(origins: Sequence[Origin], start: int, count: int, direction: int) -> list[int]:
    """The frames a propagation from `start` writes: up to `count` frames after it (direction +1)
    or before it (-1), stopping before the first corrected frame and at the ends of the sequence.

    Stopping (rather than skipping) at a corrected frame: that frame is newer, checked truth, and
    the frames beyond it are better served by propagating from it."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (forward) or -1 (backward), got {direction}")
    if not 0 <= start < len(origins):
        raise IndexError(f"frame {start} out of range (sequence has {len(origins)} frames)")
    out: list[int] = []
    i = start + direction
    while len(out) < count and 0 <= i < len(origins) and origins[i] is not Origin.CORRECTED:
        out.append(i)
        i += direction
    return out


def propagate_labels(
    frames: Sequence[FramePair] | Callable[[int], FramePair],
    start: int,
    labels: np.ndarray,
    targets: Sequence[int],
    predictions: Callable[[int], np.ndarray | None] | None = None,
    *,
    config: PropagationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[PropagatedFrame]:
    """Carry `labels` of frame `start` through `targets` in order, each step from the previous one.

    frames: indexable (a Sequence) or a callable, i -> FramePair. predictions: i -> (H, W) labels or
    None, used where the flow is not trusted. Stops early (returning the frames done) at an
    unreadable frame, a frame of another size, or one sharing no modality with the previous one.
    Raises CancelledError when cancel() returns True."""
    config = config or PropagationConfig()
    get = frames if callable(frames) else frames.__getitem__
    current = np.ascontiguousarray(labels, np.uint8)
    prev = get(start)
    out: list[PropagatedFrame] = []
    total = len(targets)
    for k, t in enumerate(targets):
        if cancel is not None and cancel():
            raise CancelledError(f"propagation from frame {start} cancelled after {k} of {total} frames")
        frame = get(t)
        if frame.bad or prev.bad or frame.shape != current.shape:
            break
        step = best_flow(prev, frame, config)
        if step is None:
            break
        warped, carried = warp_labels(current, step)
        result = np.where(carried, warped, IGNORE_INDEX).astype(np.uint8)
        pred = predictions(t) if predictions is not None else None
        filled = 0.0
        if pred is not None and pred.shape == result.shape:
            fill = ~carried
            result[fill] = np.asarray(pred)[fill]
            filled = float((fill & (result != IGNORE_INDEX)).mean())
        out.append(PropagatedFrame(int(t), result, float(carried.mean()), filled, step.modality))
        current, prev = result, frame
        if progress is not None:
            progress(k + 1, total)
    return out
