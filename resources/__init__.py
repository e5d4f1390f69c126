"""Bundled resources: icons, palettes, the default checkpoint."""

from __future__ import annotations

from importlib import resources as _res
from pathlib import Path


def resource_path(name: str) -> Path:
    """Path of a bundled resource file (works for editable and regular installs)."""
    return Path(str(_res.files(__name__).joinpath(name)))
