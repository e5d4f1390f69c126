"""CSKNet Studio checkpoints: one torch file carrying everything needed to use the weights.

Layout (a plain dict, readable with `torch.load(weights_only=True)`, so opening a file a user picked
never runs code from it):

    format            "csknet-studio-checkpoint"
    format_version    FORMAT_VERSION (int)
    app_version, created (ISO time, UTC)
    model_config      CSKNetConfig.to_dict() (architecture + input normalisation)
    scheme            ClassScheme.to_dict() (class names, palette, ignore index)
    metrics           dict (e.g. {"val": {"both": {"miou": ...}, ...}, "epoch": 3})
    train_config      dict (the TrainConfig that produced it), may be {}
    extra             dict (free-form, JSON-like)
    state_dict        {name: tensor}
    weights_hash      short sha256 of state_dict (verified on load: catches damaged tensor bytes)
    training_state    optional: optimizer / scheduler / epoch / RNG, for `train --resume`

A teacher file (`teacher.pt`, the EO network a run distils from) is the same container with its own
format tag, so it is never mistaken for a student checkpoint: `save_teacher` / `load_teacher`.

Every failure a user can cause raises a CheckpointError subclass naming the file and the problem.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from csknet_studio.core.atomic import atomic_path
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.distributed import unwrap
from csknet_studio.core.errors import (
    CheckpointError,
    CheckpointVersionError,
    ConfigError,
    CorruptCheckpointError,
    NotACheckpointError,
    WeightsMismatchError,
)
from csknet_studio.core.model import CSKNet, CSKNetConfig, create_teacher
from csknet_studio.core.state_dict import clean_state_dict, cpu_state_dict
from csknet_studio.core.version import __version__

FORMAT_NAME = "csknet-studio-checkpoint"
FORMAT_VERSION = 1
TEACHER_FORMAT = "csknet-studio-teacher"
_REQUIRED = ("model_config", "scheme", "state_dict")


def weights_hash(state_dict: Mapping[str, torch.Tensor], length: int = 16) -> str:
    """Short sha256 hex over names, dtypes, shapes and bytes: equal hashes mean equal weights."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        h.update(key.encode())
        if not isinstance(t, torch.Tensor):
            h.update(repr(t).encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]


_META_KEYS = ("format", "format_version", "model_config", "scheme", "metrics", "train_config", "extra")


def meta_hash(payload: Mapping[str, Any]) -> str:
    """sha256 over the descriptive fields (config, scheme, metrics, ...) and the weights hash, so a
    damaged byte in the metadata is caught as surely as one in the weights."""
    doc = {k: payload.get(k) for k in _META_KEYS}
    doc["weights_hash"] = payload.get("weights_hash")
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_state_dict_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *,
                            strict: bool = True, source: str = "state_dict") -> None:
    """load_state_dict with a WeightsMismatchError that lists missing / unexpected / misshapen keys."""
    state = clean_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): " + "; ".join(shapes[:5]))
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s): " + ", ".join(missing[:5]))
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected[:5]))
    if problems:
        raise WeightsMismatchError(f"{source} does not fit the model: " + " | ".join(problems))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=strict)


def _jsonable(obj: Any) -> Any:
    """Keep only types torch's weights_only unpickler accepts (dict/list/str/int/float/bool/None)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def save_checkpoint(path: str | Path, model: torch.nn.Module, *, scheme: ClassScheme,
                    metrics: Mapping | None = None, train_config: Mapping | None = None,
                    extra: Mapping | None = None, training_state: Mapping | None = None) -> str:
    """Write a checkpoint atomically (old file intact on any failure). Returns its weights hash."""
    inner = unwrap(model)
    state = cpu_state_dict(inner)
    digest = weights_hash(state)
    payload: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model_config": _jsonable(inner.config.to_dict()),
        "scheme": scheme.to_dict(),
        "metrics": _jsonable(dict(metrics or {})),
        "train_config": _jsonable(dict(train_config or {})),
        "extra": _jsonable(dict(extra or {})),
        "state_dict": state,
        "weights_hash": digest,
    }
    payload["meta_hash"] = meta_hash(payload)
    if training_state is not None:
        payload["training_state"] = dict(training_state)
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)
    return digest


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    expected_format: str = FORMAT_NAME) -> dict[str, Any]:
    """Load and validate the raw payload (no model is built). Raises CheckpointError subclasses."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; give the .pt file inside it "
                              "(a training run writes best.pt and last.pt)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise CorruptCheckpointError(f"checkpoint {path} is empty (0 bytes)")
    is_zip = head.startswith(b"PK")
    is_pickle = head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise NotACheckpointError(
            f"{path} is not a torch checkpoint file (it starts with bytes {head!r}, not a zip archive)"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise NotACheckpointError(
                f"{path} holds Python objects other than tensors and plain data; it is not a CSKNet "
                "Studio checkpoint and is not loaded (loading it could run code)"
            ) from None
        raise CorruptCheckpointError(f"checkpoint {path} is damaged: {exc}") from None
    except Exception as exc:  # a damaged archive can fail in many ways inside torch / pickle
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if is_zip:
            raise CorruptCheckpointError(
                f"checkpoint {path} is truncated or damaged and cannot be read ({msg})"
            ) from None
        raise NotACheckpointError(f"{path} is not a readable torch checkpoint ({msg})") from None
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise NotACheckpointError(
                f"{path} holds a bare state_dict, not a CSKNet Studio checkpoint "
                "(no model config or class names); train or convert it with csknet-studio first"
            )
        found = payload.get("format") if isinstance(payload, dict) else None
        what = f"a {found!r} file" if isinstance(found, str) else f"no {expected_format!r} format tag"
        raise NotACheckpointError(f"{path} is not a {expected_format} file ({what})")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointVersionError(
            f"checkpoint {path} has format version {version!r}; this program reads version {FORMAT_VERSION}"
        )
    for key in _REQUIRED if expected_format == FORMAT_NAME else ("model_config", "state_dict"):
        if key not in payload:
            raise CorruptCheckpointError(f"checkpoint {path} lacks the required field {key!r}")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptCheckpointError(f"checkpoint {path} is damaged: its state_dict is not a mapping of tensors")
    stored = payload.get("weights_hash")
    if stored is not None and weights_hash(payload["state_dict"]) != stored:
        raise CorruptCheckpointError(
            f"checkpoint {path} is damaged: its weights do not match the stored hash {stored}"
        )
    if "meta_hash" in payload and meta_hash(payload) != payload["meta_hash"]:
        raise CorruptCheckpointError(
            f"checkpoint {path} is damaged: its configuration / class names do not match the stored hash"
        )
    return payload


@dataclass
class LoadedCheckpoint:
    """A rebuilt model (eval mode, on `map_location`) plus what was stored with it."""

    model: torch.nn.Module
    scheme: ClassScheme
    metrics: dict
    config: dict  # the training config that produced the weights ({} when unknown)
    meta: dict  # format, format_version, app_version, created, model_config, extra, path
    weights_hash: str
    training_state: dict | None = field(default=None, repr=False)


def build_model_from_config(model_config: Mapping, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild the architecture from a stored CSKNetConfig dict."""
    try:
        return CSKNet(CSKNetConfig.from_dict(dict(model_config)))
    except (ConfigError, TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointVersionError(f"{source}: its model config cannot be used by this version ({exc})") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    strict: bool = True) -> LoadedCheckpoint:
    """Read, validate and rebuild. The model comes back in eval mode on `map_location`."""
    payload = read_checkpoint(path, map_location="cpu")
    try:
        scheme = ClassScheme.from_dict(payload["scheme"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CorruptCheckpointError(f"checkpoint {path}: its class scheme is invalid ({exc})") from None
    model = build_model_from_config(payload["model_config"], source=f"checkpoint {path}")
    if model.config.num_classes != scheme.num_classes:
        raise CheckpointError(
            f"checkpoint {path}: model predicts {model.config.num_classes} classes but the scheme "
            f"{scheme.name!r} has {scheme.num_classes}"
        )
    load_state_dict_checked(model, payload["state_dict"], strict=strict, source=f"checkpoint {path}")
    model.to(map_location).eval()
    meta = {
        "format": payload["format"],
        "format_version": payload["format_version"],
        "app_version": payload.get("app_version"),
        "created": payload.get("created"),
        "model_config": payload["model_config"],
        "extra": payload.get("extra", {}),
        "path": str(path),
    }
    return LoadedCheckpoint(
        model=model,
        scheme=scheme,
        metrics=payload.get("metrics", {}),
        config=payload.get("train_config", {}),
        meta=meta,
        weights_hash=payload.get("weights_hash") or weights_hash(payload["state_dict"]),
        training_state=payload.get("training_state"),
    )


def save_teacher(path: Path, teacher: torch.nn.Module) -> None:
    """A teacher file: same container as a checkpoint but its own format tag (never loaded as a student)."""
    state = cpu_state_dict(teacher)
    payload = {"format": TEACHER_FORMAT, "format_version": 1,
               "model_config": teacher.config.to_dict(), "state_dict": state, "weights_hash": weights_hash(state)}
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)


def load_teacher(path: Path, map_location="cpu") -> torch.nn.Module:
    """Rebuild a teacher written by `save_teacher`, on `map_location`."""
    payload = read_checkpoint(path, map_location="cpu", expected_format=TEACHER_FORMAT)
    teacher = create_teacher(CSKNetConfig.from_dict(payload["model_config"]))
    load_state_dict_checked(teacher, payload["state_dict"], source=f"teacher {path}")
    return teacher.to(map_location)
