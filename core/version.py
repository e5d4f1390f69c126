"""The installed version of CSKNet Studio, for files the engine writes (checkpoints, exports, locks).

pyproject.toml's `version` is the one source; this reads it from the installed metadata, so core/
never reaches up into the command-line package for it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("csknet-studio")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
