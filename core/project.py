"""The project on disk: a `<sequence>.csknet/` folder beside the sequence.

    project.json       manifest: sequence source (relative), frame count + names digest, class
                       scheme, checkpoint (path + weights hash), alignment, corrected frames
    masks/000012.png   one lossless 8-bit PNG of class ids per corrected frame
    propagated/000013.png  the same for each frame whose labels were propagated and not yet
                       reviewed (origin "propagated" in the manifest: shown apart, never a correction)

Every file goes through core/atomic.py, masks before the manifest and stale masks deleted after it,
so a crash at any instant leaves a project whose manifest only names complete mask files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes, atomic_write_text
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.errors import ProjectError

PROJECT_SUFFIX = ".csknet"
MANIFEST = "project.json"
FORMAT = "csknet-studio-project"
FORMAT_VERSION = 1


def user_projects_dir() -> Path:
    """Where projects of read-only sequences live: `$XDG_DATA_HOME/csknet-studio/projects`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "csknet-studio" / "projects"


def _folder_is_writable(folder: Path) -> bool:
    """Write permission that also honours missing write bits (root ignores them in os.access):
    a dataset folder shipped read-only must not collect our files."""
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def default_project_path(source: str | os.PathLike) -> Path:
    """`data/seq` -> `data/seq.csknet`, `data/run.mp4` -> `data/run.mp4.csknet` (beside the sequence).

    When the sequence's folder is read-only (and holds no project yet), the project goes to
    `user_projects_dir()/<name>-<hash of the absolute path>.csknet`, so reopening finds it again.
    """
    from csknet_studio.core.user_dirs import in_user_cache, kept_project_path

    source = Path(source)
    beside = source.with_name(source.name + PROJECT_SUFFIX)
    if in_user_cache(source) and not beside.exists():  # a cleaner may empty the cache: keep work elsewhere
        return kept_project_path(source, PROJECT_SUFFIX)
    if beside.exists() or _folder_is_writable(beside.parent):
        return beside
    key = hashlib.sha1(str(source.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return user_projects_dir() / f"{source.name}-{key}{PROJECT_SUFFIX}"


def names_digest(names: list[str]) -> str:
    """A short fingerprint of the frame names: detects a project opened on another sequence."""
    h = hashlib.sha1()
    for n in names:
        h.update(n.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class CheckpointRef:
    """The weights a project's predictions came from: where they were and what they hashed to."""

    path: str
    weights_hash: str = ""


@dataclass
class ProjectData:
    """What project.json holds, with paths resolved against the project folder."""

    source: Path | None
    layout: str
    num_frames: int
    names_sha1: str
    scheme: ClassScheme
    checkpoint: CheckpointRef | None = None
    alignment: dict[str, Any] | None = None
    corrected: dict[int, str] = field(default_factory=dict)  # frame index -> mask file (relative)
    propagated: dict[int, str] = field(default_factory=dict)  # frame index -> propagated mask file
    frame_names: dict[int, str] = field(default_factory=dict)  # names of the corrected frames
    app_version: str = ""
    format_version: int = FORMAT_VERSION
    saved_at: str = ""


class ProjectStore:
    """Reads and writes one project folder; knows nothing about sessions or undo."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    @staticmethod
    def mask_name(index: int) -> str:
        return f"masks/{index:06d}.png"

    @staticmethod
    def propagated_name(index: int) -> str:
        return f"propagated/{index:06d}.png"

    # --- reading ----------------------------------------------------------------------------------
    def load(self) -> ProjectData:
        path = self.manifest_path
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProjectError(f"no project at {self.root} ({MANIFEST} is missing)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"project file {path} is unreadable: {exc}") from exc
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ProjectError(f"{path} is not a CSKNet Studio project (no format {FORMAT!r})")
        version = d.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ProjectError(
                f"{path} has project format version {version!r}; this version of CSKNet Studio reads "
                f"up to {FORMAT_VERSION}. Update the app to open it."
            )
        try:
            seq = d["sequence"]
            ck = d.get("checkpoint")
            corrected: dict[int, str] = {}
            propagated: dict[int, str] = {}
            names: dict[int, str] = {}
            for name, entry in d.get("frames", {}).items():
                if entry.get("origin") == "corrected":
                    corrected[int(entry["index"])] = str(entry["mask"])
                    names[int(entry["index"])] = str(name)
                elif entry.get("origin") == "propagated":
                    propagated[int(entry["index"])] = str(entry["mask"])
            return ProjectData(
                source=(self.root / seq["source"]) if seq.get("source") is not None else None,
                layout=str(seq.get("layout", "")),
                num_frames=int(seq["num_frames"]),
                names_sha1=str(seq["names_sha1"]),
                scheme=ClassScheme.from_dict(d["scheme"]),
                checkpoint=CheckpointRef(str(ck["path"]), str(ck.get("hash", ""))) if ck else None,
                alignment=d.get("alignment"),
                corrected=corrected,
                propagated=propagated,
                frame_names=names,
                app_version=str(d.get("app_version", "")),
                format_version=version,
                saved_at=str(d.get("saved_at", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProjectError(f"project file {path} is malformed: missing or bad key {exc}") from exc

    def read_mask(self, rel: str) -> np.ndarray:
        path = self.root / rel
        try:
            data = np.frombuffer(path.read_bytes(), np.uint8)
        except OSError as exc:
            raise ProjectError(f"mask file {path} of the project cannot be read: {exc}") from exc
        mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
            raise ProjectError(f"mask file {path} of the project is corrupt (not an 8-bit one-channel PNG)")
        return mask

    # --- writing (OSError propagates: the session turns it into a ProjectError and keeps its state) --
    def write_mask(self, index: int, mask: np.ndarray) -> str:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover - cv2 only fails on bad arrays
            raise ProjectError(f"could not encode the mask of frame {index} as PNG")
        rel = self.mask_name(index)
        atomic_write_bytes(self.root / rel, buf.tobytes())
        return rel

    def remove_mask(self, index: int) -> None:
        (self.root / self.mask_name(index)).unlink(missing_ok=True)

    def write_propagated(self, index: int, mask: np.ndarray) -> str:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover - cv2 only fails on bad arrays
            raise ProjectError(f"could not encode the propagated mask of frame {index} as PNG")
        rel = self.propagated_name(index)
        atomic_write_bytes(self.root / rel, buf.tobytes())
        return rel

    def remove_propagated(self, index: int) -> None:
        (self.root / self.propagated_name(index)).unlink(missing_ok=True)

    def write_manifest(self, data: ProjectData, all_names: list[str]) -> None:
        src = None
        if data.source is not None:
            src = os.path.relpath(Path(data.source).resolve(), self.root.resolve())
        ck = None
        if data.checkpoint is not None:
            ck = {"path": data.checkpoint.path, "hash": data.checkpoint.weights_hash}
        entries = [(i, "corrected", rel) for i, rel in data.corrected.items()]
        entries += [(i, "propagated", rel) for i, rel in data.propagated.items() if i not in data.corrected]
        frames = {all_names[i]: {"index": i, "origin": origin, "mask": rel} for i, origin, rel in sorted(entries)}
        d = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": data.app_version,
            "saved_at": utc_now(),
            "sequence": {
                "source": src,
                "layout": data.layout,
                "num_frames": data.num_frames,
                "names_sha1": data.names_sha1,
            },
            "scheme": data.scheme.to_dict(),
            "checkpoint": ck,
            "alignment": data.alignment,
            "frames": frames,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(d, indent=1, sort_keys=False) + "\n")
