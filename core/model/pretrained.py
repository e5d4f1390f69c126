"""ImageNet ResNet weights from a torchvision-format state_dict FILE (no torchvision, no download).

torchvision keys (`conv1.weight`, `layer2.0.bn1.running_mean`, `layer1.0.downsample.1.weight`, ...)
map by name onto the encoder; in the two-stream encoder each BN key fills BOTH private copies
(`...bn1.eo.*` and `...bn1.ir.*`), as CEN expands its checkpoints. `fc.*` (the ImageNet
classifier) is ignored. Any other missing / unexpected key or shape mismatch raises
`WeightsMismatchError` listing them, and the model is left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from csknet_studio.core.errors import CheckpointError, WeightsMismatchError
from csknet_studio.core.model.streams import PAIRED_BUFFERS
from csknet_studio.core.state_dict import clean_state_dict

_IGNORED_PREFIXES = ("fc.",)
_LIST_MAX = 12


@dataclass(frozen=True)
class PretrainedReport:
    source: str
    loaded: int  # encoder tensors written
    ignored: tuple[str, ...]  # source keys deliberately skipped (fc.*)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Load a state_dict file safely (`weights_only=True`: a picked file never runs code)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a weights file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        text = str(exc)
        if "weights_only" in text or "weights only" in text.lower():  # torch's advice would be to run its code
            raise CheckpointError(f"{path}: holds Python objects other than tensors, so it is not loaded "
                                  "(loading it could run code); save a plain state_dict of tensors") from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise CheckpointError(f"{path}: not a readable torch state_dict ({type(exc).__name__}: {first})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a mapping of parameter names to tensors")
    return clean_state_dict(obj)


def _fmt(title: str, items: list[str]) -> str:
    more = f" ... (+{len(items) - _LIST_MAX} more)" if len(items) > _LIST_MAX else ""
    return f"{title} ({len(items)}): {', '.join(items[:_LIST_MAX])}{more}"


def load_imagenet_weights(model: nn.Module, source: str | Path | dict[str, Tensor]) -> PretrainedReport:
    """Copy a torchvision ResNet state_dict into `model.encoder` (CSKNet, SingleStreamSegNet or teacher).

    A 1-channel plain encoder (the IR-only network) gets the stem kernel summed over RGB. GSU and
    decoder weights are not part of an ImageNet ResNet and keep their initialisation.
    """
    name = str(source) if not isinstance(source, dict) else "<state_dict>"
    src = clean_state_dict(dict(source)) if isinstance(source, dict) else read_state_dict(source)
    encoder = model.encoder
    target = {k: v for k, v in encoder.state_dict().items() if not k.startswith("gsu.")}
    new: dict[str, Tensor] = {}
    unexpected, mismatched, ignored = [], [], []
    seen_bad: set[str] = set()
    for k, v in src.items():
        if k.startswith(_IGNORED_PREFIXES):
            ignored.append(k)
            continue
        head, _, leaf = k.rpartition(".")
        dests = [k] if k in target else [d for d in (f"{head}.eo.{leaf}", f"{head}.ir.{leaf}") if d in target]
        if not dests:
            unexpected.append(k)
            continue
        for d in dests:
            val = v
            if d == "conv1.weight" and target[d].shape[1] == 1 and v.ndim == 4 and v.shape[1] == 3:
                val = v.sum(1, keepdim=True)
            if tuple(val.shape) != tuple(target[d].shape):
                seen_bad.add(d)
            else:
                new[d] = val
        if any(d in seen_bad for d in dests):
            mismatched.append(f"{k} {tuple(v.shape)} vs model {tuple(target[dests[0]].shape)}")
    # Paired-mode BN statistics start as the solo ones (an ImageNet ResNet has one set).
    for k in target:
        head, _, leaf = k.rpartition(".")
        if leaf in PAIRED_BUFFERS and f"{head}.running_{leaf.split('_')[1]}" in new:
            new[k] = new[f"{head}.running_{leaf.split('_')[1]}"]
    # Old torchvision files lack num_batches_tracked; it is a counter, not a weight.
    missing = [k for k in target if k not in new and k not in seen_bad and not k.endswith("num_batches_tracked")]
    if missing or unexpected or mismatched:
        parts = [f"{name}: weights do not fit the {type(model).__name__} encoder"]
        if missing:
            parts.append(_fmt("missing", missing))
        if unexpected:
            parts.append(_fmt("unexpected", unexpected))
        if mismatched:
            parts.append(_fmt("shape mismatch", mismatched))
        raise WeightsMismatchError("; ".join(parts))
    with torch.no_grad():
        for k, v in new.items():
            target[k].copy_(v.to(dtype=target[k].dtype))
    return PretrainedReport(name, len(new), tuple(ignored))
