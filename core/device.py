"""Pick the compute device and the mixed-precision context for it.

`auto` prefers CUDA, then Apple MPS, then the CPU, so the same command line works on a laptop and a
GPU server. Asking for a device that is not there is a user error (ConfigError), not a crash deep in
torch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from csknet_studio.core.device_names import DEVICE_CHOICES
from csknet_studio.core.errors import ConfigError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Map "auto" | "cpu" | "cuda" | "cuda:N" | "mps" to an available torch.device.

    Raises ConfigError naming the device when it is unknown or not available on this machine.
    """
    if isinstance(name, torch.device):
        name = str(name)
    key = (name or "auto").strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = key.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise ConfigError(f"device {name!r} is unknown; choose one of {', '.join(DEVICE_CHOICES)}")
    try:
        dev = torch.device(key)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r} is not a valid device string: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if dev.type == "mps" and not _mps_available():
        raise ConfigError(f"device {name!r} requested but Apple MPS is not available on this machine")
    return dev


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX).

    Without it, bf16 autocast is emulated and a training step runs several times slower than fp32
    (docs/benchmarks.md), so `cpu_bf16 = "auto"` turns it on only here. Asked once per process:
    every training step's autocast reads it."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def cpu_bf16_enabled(cpu_bf16: bool | str) -> bool:
    """`optim.cpu_bf16` resolved: true, false, or "auto" (true when the CPU has native bf16)."""
    return cpu_has_native_bf16() if cpu_bf16 == "auto" else bool(cpu_bf16)


def cuda_amp_dtype(capability: tuple[int, int]) -> torch.dtype:
    """bfloat16 from compute capability 8.0 (Ampere) on, float16 with loss scaling below it. Not
    `torch.cuda.is_bf16_supported()`: it says yes on a T4 or V100 too, where bfloat16 is emulated
    and cuDNN has no bfloat16 convolutions."""
    return torch.bfloat16 if capability[0] >= 8 else torch.float16


def amp_dtype(device: torch.device, cpu_bf16: bool | str = False) -> torch.dtype | None:
    """The autocast dtype used on `device`, or None when we run in full precision.

    CUDA: bfloat16 on cards that compute it natively (no loss scaling), else float16 (`cuda_amp_dtype`);
    CPU: bfloat16 only when asked (it is slower than fp32 on many CPUs), or with "auto" when the
    CPU has native bf16; MPS: full precision.
    """
    if device.type == "cuda":
        return cuda_amp_dtype(torch.cuda.get_device_capability(device))
    if device.type == "cpu" and cpu_bf16_enabled(cpu_bf16):
        return torch.bfloat16
    return None


def precision_label(device: torch.device, amp: bool, cpu_bf16: bool | str = False) -> str:
    """What a run computes in, for its log: "float32", or the autocast dtype."""
    dtype = amp_dtype(device, cpu_bf16) if amp else None
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True, cpu_bf16: bool | str = False) -> Iterator[None]:
    """Mixed precision where it pays (CUDA; CPU bf16 on request); a no-op elsewhere."""
    dtype = amp_dtype(device, cpu_bf16) if enabled else None
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def needs_grad_scaler(device: torch.device, enabled: bool = True) -> bool:
    """float16 autocast needs loss scaling; bfloat16 and fp32 do not."""
    return enabled and amp_dtype(device) is torch.float16
