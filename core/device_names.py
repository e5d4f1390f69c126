"""The names a device is given by (`--device`, configs), in a module of their own: the command
line's parsers list them without importing torch, so `csknet-studio CMD --help` answers at once."""

from __future__ import annotations

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
