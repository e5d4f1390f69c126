"""Per-user folders: the cache, which a cleaner may empty, and the data folder, which it must not.

The rendered demo images can be rebuilt at any time, so they live in the cache. The corrections a
user makes on them, and the files exported from them, are work: a sequence that lies in the cache
keeps its project and its default export paths in the data folder instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR = "csknet-studio"


def user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/csknet-studio` (`~/.cache/...`; the platform's cache folder elsewhere)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        elif sys.platform == "darwin":
            base = str(Path.home() / "Library" / "Caches")
        else:
            base = str(Path.home() / ".cache")
    return Path(base) / APP_DIR


def user_data_dir() -> Path:
    """`$XDG_DATA_HOME/csknet-studio` (`~/.local/share/csknet-studio`), where projects of
    read-only sequences already live."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_DIR


def in_user_cache(path: str | os.PathLike) -> bool:
    """True when `path` lies inside our cache folder (the default demo does)."""
    try:
        Path(path).expanduser().resolve().relative_to(user_cache_dir().resolve())
    except ValueError:
        return False
    return True


def kept_project_path(source: str | os.PathLike, suffix: str = ".csknet") -> Path:
    """Where the project of a cached sequence goes: `<data>/projects/<name>.csknet`."""
    return user_data_dir() / "projects" / f"{Path(source).name}{suffix}"


def kept_export_dir() -> Path:
    """Where exports of a cached sequence go by default: `<data>/exports`."""
    return user_data_dir() / "exports"
