"""Dataclasses from plain mappings (JSON, TOML tables, checkpoint metadata), strictly.

One rule everywhere: an unknown key or a bad value is a ConfigError that names where it came
from, never a silent default or a bare TypeError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from csknet_studio.core.errors import ConfigError

T = TypeVar("T")


def dataclass_from_mapping(cls: type[T], d: Any, what: str, key_prefix: str = "") -> T:
    """`cls(**d)` after checking `d` is a mapping with only `cls`'s field names.

    `what` names the source in messages ("model config", "[optim]"); `key_prefix` is put before
    each unknown key so a TOML user sees the full dotted name (`optim.learning_rate`).
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{what}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(key_prefix + str(k) for k in unknown)}; "
                          f"allowed: {', '.join(sorted(names))}")
    try:
        return cls(**d)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
