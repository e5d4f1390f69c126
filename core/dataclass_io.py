"""Dataclasses from plain mappings (JSON, TOML tables, checkpoint metadata), strictly.

One rule everywhere: an unknown key or a bad value is a ConfigError that names where it came
from, never a silent default or a bare TypeError.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from csknet_studio.core.errors import ConfigError

T = TypeVar("T")

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}


@functools.lru_cache(maxsize=64)
def _hints(cls: type) -> dict[str, Any]:
    """Field annotations resolved once per class ({} when a name cannot be resolved: no check then)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation we cannot evaluate is simply not checked
        return {}


def _describe(tp: Any) -> str:
    """What a config author should write for an annotation, in words."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if not args:
            return "a list"
        item = _describe(args[0]).removeprefix("a ").removeprefix("an ")
        return f"a list of {item}s" if args[-1] is Ellipsis else f"a list of {len(args)} {item}s"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _fits(value: Any, tp: Any) -> bool:
    """True when `value` (plain JSON / TOML data) is acceptable for annotation `tp`.

    An int stands for a float, a list for a tuple; bool never stands for a number; floats must be
    finite (an inf learning rate trains nothing but NaNs).
    """
    if tp is Any or tp is object:
        return True
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp))
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(tp)
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args, strict=True))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return isinstance(value, Mapping)
    if dataclasses.is_dataclass(tp):
        return isinstance(value, (tp, Mapping))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    return True  # a type this checker does not know: __post_init__ decides


def check_field_types(cls: type, d: Mapping[str, Any], what: str, key_prefix: str = "") -> None:
    """Raise ConfigError naming the key, the type it needs and the value given, for the first
    value of `d` that does not fit `cls`'s field annotation."""
    hints = _hints(cls)
    for key, value in d.items():
        tp = hints.get(key)
        if tp is None or _fits(value, tp):
            continue
        shown = f"{type(value).__name__} {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            need = f"{_describe(tp)} (finite)"
        else:
            need = _describe(tp)
        raise ConfigError(f"{what}: {key_prefix}{key} must be {need}, got {shown}")


def dataclass_from_mapping(cls: type[T], d: Any, what: str, key_prefix: str = "") -> T:
    """`cls(**d)` after checking `d` is a mapping with only `cls`'s field names, each value of
    its field's annotated type.

    `what` names the source in messages ("model config", "[optim]"); `key_prefix` is put before
    each key so a TOML user sees the full dotted name (`optim.learning_rate`).
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{what}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(key_prefix + str(k) for k in unknown)}; "
                          f"allowed: {', '.join(sorted(names))}")
    check_field_types(cls, d, what, key_prefix)
    try:
        return cls(**d)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
