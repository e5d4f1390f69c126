"""Numpy frames -> normalised model tensors.

The normalisation lives in `InputNorm`, which sits inside `CSKNetConfig`, so a checkpoint carries
the exact preprocessing its weights were trained with (a GUI loading the file cannot get it wrong).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from csknet_studio.core.dataclass_io import dataclass_from_mapping
from csknet_studio.core.errors import ConfigError, ModelInputError

_IR_SCALES = ("dtype", "percentile")


def _dtype_max(arr: np.ndarray) -> float:
    """Full-scale value of an integer image (uint8 -> 255, uint16 -> 65535); floats are taken as is."""
    if np.issubdtype(arr.dtype, np.integer):
        return float(np.iinfo(arr.dtype).max)
    return 1.0


@dataclass(frozen=True)
class InputNorm:
    """How raw EO/IR pixels become network inputs.

    EO: divided by its dtype's full scale (uint8 255, uint16 65535) to 0..1, then (x - mean) / std
    per RGB channel (defaults: ImageNet, the statistics of the pretrained stem).
    IR: scaled to ~0..1 by `ir_scale` then (x - ir_mean) / ir_std.
      * "dtype": divide by the dtype's full scale (uint8 255, uint16 65535; float kept as is);
      * a number: divide by it (e.g. 16383 for 14-bit radiometric data stored in uint16);
      * "percentile": per-frame 1st..99th percentile stretch to 0..1 — robust when cameras with
        different radiometric offsets are mixed, at the cost of absolute temperature meaning.
    """

    eo_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    eo_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    ir_scale: str | float = "dtype"
    ir_mean: float = 0.5
    ir_std: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "eo_mean", tuple(float(v) for v in self.eo_mean))
        object.__setattr__(self, "eo_std", tuple(float(v) for v in self.eo_std))
        if len(self.eo_mean) != 3 or len(self.eo_std) != 3:
            raise ConfigError("input_norm.eo_mean / eo_std need 3 values (R, G, B)")
        if min(self.eo_std) <= 0 or self.ir_std <= 0:
            raise ConfigError("input_norm: eo_std and ir_std must be > 0")
        if isinstance(self.ir_scale, str):
            if self.ir_scale not in _IR_SCALES:
                raise ConfigError(
                    f"input_norm.ir_scale must be a positive number or one of {_IR_SCALES}, got {self.ir_scale!r}"
                )
        elif not float(self.ir_scale) > 0:
            raise ConfigError(f"input_norm.ir_scale must be > 0, got {self.ir_scale!r}")
        else:
            object.__setattr__(self, "ir_scale", float(self.ir_scale))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["eo_mean"], d["eo_std"] = list(self.eo_mean), list(self.eo_std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputNorm:
        return dataclass_from_mapping(cls, d, "input_norm")


def _batched(arr: np.ndarray, item_ndim: int, what: str) -> np.ndarray:
    if arr.ndim == item_ndim:
        return arr[None]
    if arr.ndim == item_ndim + 1:
        return arr
    raise ModelInputError(f"{what}: expected {item_ndim} or {item_ndim + 1} dims, got shape {arr.shape}")


def _to_torch(arr: np.ndarray) -> torch.Tensor:
    """Zero-copy when possible; readers hand out read-only (cache-shared) frames, which torch
    refuses to alias without a warning, so those are copied (one cheap integer copy)."""
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def eo_to_tensor(eo: np.ndarray, norm: InputNorm, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H,W,3) or (B,H,W,3) RGB -> (B,3,H,W) float32, normalised."""
    eo = _batched(np.asarray(eo), 3, "EO image")
    if eo.shape[-1] != 3:
        raise ModelInputError(f"EO image: expected 3 RGB channels last, got shape {eo.shape}")
    t = _to_torch(eo).to(device)
    t = t.permute(0, 3, 1, 2).to(torch.float32) / _dtype_max(eo)
    mean = torch.tensor(norm.eo_mean, device=t.device).view(1, 3, 1, 1)
    std = torch.tensor(norm.eo_std, device=t.device).view(1, 3, 1, 1)
    return ((t - mean) / std).contiguous()


def ir_to_tensor(ir: np.ndarray, norm: InputNorm, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H,W), (H,W,1), (B,H,W) or (B,H,W,1) single-channel IR -> (B,1,H,W) float32, normalised."""
    ir = np.asarray(ir)
    if ir.ndim >= 3 and ir.shape[-1] == 1:
        ir = ir[..., 0]
    ir = _batched(ir, 2, "IR image")
    t = _to_torch(ir).to(device).to(torch.float32)[:, None]
    if norm.ir_scale == "dtype":
        t = t / _dtype_max(ir)
    elif norm.ir_scale == "percentile":
        lo, hi = (torch.from_numpy(v).to(t.device) for v in _percentile_range(ir.reshape(ir.shape[0], -1)))
        t = _stretch(t, lo.view(-1, 1, 1, 1), hi.view(-1, 1, 1, 1))
    else:
        t = t / float(norm.ir_scale)
    return ((t - norm.ir_mean) / norm.ir_std).contiguous()


_PERCENTILES = np.array([0.01, 0.99], dtype=np.float32)


def _percentile_range(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B,) 1st and (B,) 99th percentiles of (B, N) IR values: the range "percentile" maps to 0..1.

    torch.quantile refuses inputs over 2**24 values (a 20 MP EO grid with IR resampled onto it), so
    this is its arithmetic redone on a numpy partition, which takes any size in O(N): float32 ranks
    q * (N - 1), the values at floor and ceil, then torch.lerp's two-sided formula. The bundled
    model was trained on torch.quantile's stretch, and the results are bit-identical to it."""
    flat = np.asarray(flat)
    n = flat.shape[1]
    ranks = _PERCENTILES * np.float32(n - 1)
    below = ranks.astype(np.int64)  # truncation, as torch does (ranks >= 0)
    above = np.ceil(ranks).astype(np.int64)
    weight = ranks - below.astype(np.float32)
    lo = np.empty(flat.shape[0], np.float32)
    hi = np.empty(flat.shape[0], np.float32)
    for b in range(flat.shape[0]):
        row = flat[b]
        if row.dtype.kind == "f" and np.isnan(row).any():  # torch.quantile's answer: NaN
            lo[b] = hi[b] = np.nan
            continue
        part = np.partition(row, np.unique(np.concatenate([below, above])))
        v_below = part[below].astype(np.float32)
        v_above = part[above].astype(np.float32)
        diff = v_above - v_below
        out = np.where(weight < 0.5, v_below + weight * diff, v_above - diff * (np.float32(1) - weight))
        lo[b], hi[b] = out[0], out[1]
    return lo, hi


def _stretch(t, lo, hi):
    return ((t - lo) / (hi - lo).clamp_min(1e-6)).clamp(0.0, 1.0)


def ir_percentile_range(ir: np.ndarray) -> tuple[float, float]:
    """(1st, 99th) percentile of one IR frame: the range `ir_scale="percentile"` stretches to 0..1."""
    lo, hi = _percentile_range(np.asarray(ir).reshape(1, -1))
    return float(lo[0]), float(hi[0])


def whole_frame_ir(ir: np.ndarray, norm: InputNorm,
                   ir_range: tuple[float, float] | None = None) -> tuple[np.ndarray, InputNorm]:
    """Apply the per-frame part of the IR normalisation before a crop; returns (ir, norm to finish with).

    Inference stretches a whole frame by its own 1..99 % range. A training crop stretched by *its*
    range shows the same wall brighter or darker depending on what else the crop holds, so the
    network would learn intensities it never meets at inference. With `ir_scale="percentile"` this returns the
    frame stretched to float32 0..1 by the whole frame's range (`ir_range`, if the caller cached
    it) and a norm with `ir_scale=1.0`; crops of it then reach the network as they would inside the
    whole frame. Other norms have no per-frame part: (ir, norm) come back unchanged.
    """
    if norm.ir_scale != "percentile":
        return ir, norm
    lo, hi = ir_range if ir_range is not None else ir_percentile_range(ir)
    t = _stretch(torch.from_numpy(np.asarray(ir, dtype=np.float32)), torch.tensor(lo), torch.tensor(hi))
    return t.numpy(), replace(norm, ir_scale=1.0)


def to_tensors(
    eo_np: np.ndarray | None,
    ir_np: np.ndarray | None,
    norm: InputNorm,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """FramePair-style arrays (single frame or batch) -> (eo (B,3,H,W) | None, ir (B,1,H,W) | None)."""
    eo_t = None if eo_np is None else eo_to_tensor(eo_np, norm, device)
    ir_t = None if ir_np is None else ir_to_tensor(ir_np, norm, device)
    if eo_t is not None and ir_t is not None and (
        eo_t.shape[0] != ir_t.shape[0] or eo_t.shape[-2:] != ir_t.shape[-2:]
    ):
        raise ModelInputError(
            f"EO batch {tuple(eo_t.shape)} and IR batch {tuple(ir_t.shape)} differ in batch size or H, W"
        )
    return eo_t, ir_t
