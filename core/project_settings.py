"""Settings a project keeps in `settings.json` beside its manifest: the IR temperature scale.

They state how to read the sequence's files, not what was annotated, so the session never
writes them: saving, compaction and journal replay cannot drop one, and an app that does not
know the file opens the project as before. Written atomically, one small JSON object:

    {"ir_scale": "centikelvin"}      the text of `--ir-scale` / View ▸ IR temperature scale…
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from csknet_studio.core.atomic import atomic_write_text
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.project import default_project_path
from csknet_studio.core.radiometry import LinearScale, parse_ir_scale

SETTINGS = "settings.json"


def settings_path(project: str | os.PathLike) -> Path:
    return Path(project) / SETTINGS


def load_settings(project: str | os.PathLike) -> dict[str, Any]:
    """The settings of the project folder `project`; {} when it keeps none."""
    path = settings_path(project)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"project settings {path} are unreadable: {exc}") from None
    if not isinstance(d, dict):
        raise ProjectError(f"project settings {path} are not a JSON object")
    return d


def save_setting(project: str | os.PathLike, key: str, value: Any) -> None:
    """Set `key` (None removes it) in the project's settings, creating the folder if need be."""
    d = load_settings(project)
    if value is None:
        if key not in d:
            return
        d.pop(key)
    else:
        d[key] = value
    Path(project).mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings_path(project), json.dumps(d, indent=1) + "\n")


def store_ir_scale(project: str | os.PathLike, text: str | None) -> None:
    """Keep the IR scale the user gave (a unit or "GAIN,OFFSET"; checked first), or forget it (None
    or empty): the files' own metadata then speaks again."""
    text = (text or "").strip() or None
    if text is not None:
        parse_ir_scale(text)  # ValueError saying what is accepted
    save_setting(project, "ir_scale", text)


def project_of(source: Any, project_path: Any = None) -> Path | None:
    """The project folder of `source` (beside it) or `project_path`; None for in-memory sequences."""
    if project_path is not None:
        return Path(project_path)
    if source is None or isinstance(source, tuple | list) or str(source).startswith("<"):
        return None
    return default_project_path(source)


def stored_ir_scale_text(source: Any, project_path: Any = None) -> str | None:
    """The IR scale's text the project of `source` (or `project_path`) keeps, else None."""
    root = project_of(source, project_path)
    if root is None:
        return None
    v = load_settings(root).get("ir_scale")
    return str(v) if v else None


def stored_ir_scale(source: Any, project_path: Any = None) -> LinearScale | None:
    """The IR scale the project keeps, as a scale whose source says so; ProjectError on a bad one."""
    text = stored_ir_scale_text(source, project_path)
    if text is None:
        return None
    try:
        return parse_ir_scale(text, source="project")
    except ValueError as exc:
        raise ProjectError(f"project {project_of(source, project_path)}: bad IR scale in {SETTINGS}: {exc}") from None
