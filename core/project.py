"""The project on disk: a `<sequence>.csknet/` folder beside the sequence.

    project.json       manifest: sequence source (relative), frame count + names digest, class
                       scheme, checkpoint (path + weights hash), alignment, corrected frames
    journal.jsonl      what changed since the manifest was written, one JSON line per frame (or
                       settings) change, appended and fsynced by every autosave
    masks/000012.png   one lossless 8-bit PNG of class ids per corrected frame
    propagated/000013.png  the same for each frame whose labels were propagated and not yet
                       reviewed (origin "propagated" in the manifest: shown apart, never a correction)
    lock               the process writing the project (core/project_lock.py)
    damaged/           mask files found unusable on load, moved aside rather than deleted

An autosave costs one mask file and one short journal line, whatever the project's size; the
manifest is rewritten (and the journal emptied) only on an explicit save, on close, on open, and
when the journal grows long. Journal lines state a frame's origin outright, so replaying them over
a manifest that already holds them changes nothing: a crash between the two steps is harmless.

Every mask goes through core/atomic.py. A new mask is written before the line that names it; a
mask is deleted before the line that drops it. A crash at any instant thus leaves either a mask the
index does not know yet (an orphan, adopted on load) or an index entry whose mask is gone (dropped
on load, reported), never a wrong one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes, atomic_write_text, file_mode, remove_stale_temps
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.errors import ProjectError

PROJECT_SUFFIX = ".csknet"
MANIFEST = "project.json"
FORMAT = "csknet-studio-project"
FORMAT_VERSION = 2  # 2: journal.jsonl; version 1 projects open unchanged
JOURNAL = "journal.jsonl"
DAMAGED = "damaged"
JOURNAL_COMPACT_AT = 2000  # lines; past this an autosave rewrites the manifest (replay stays fast)
_MASK_FILE = re.compile(r"^(\d{6})\.png$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    journal_lines: int = 0  # lines replayed from journal.jsonl
    problems: list[ProjectProblem] = field(default_factory=list)  # journal lines that could not be read


@dataclass(frozen=True)
class ProjectProblem:
    """Something wrong found in a project and what was done about it, for the open report."""

    frame: int | None
    file: str
    reason: str
    action: str

    def __str__(self) -> str:
        where = f"frame {self.frame} ({self.file})" if self.frame is not None else self.file
        return f"{where}: {self.reason}; {self.action}"


class ProjectStore:
    """Reads and writes one project folder; knows nothing about sessions or undo."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

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
        """The manifest with the journal replayed over it."""
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
            frames: dict[int, tuple[str, str]] = {}  # index -> (origin, mask file)
            names: dict[int, str] = {}
            for name, entry in d.get("frames", {}).items():
                if entry.get("origin") in ("corrected", "propagated"):
                    frames[int(entry["index"])] = (str(entry["origin"]), str(entry["mask"]))
                    names[int(entry["index"])] = str(name)
            lines, problems = self._replay_journal(d, frames)
            seq = d["sequence"]
            ck = d.get("checkpoint")
            return ProjectData(
                source=(self.root / seq["source"]) if seq.get("source") is not None else None,
                layout=str(seq.get("layout", "")),
                num_frames=int(seq["num_frames"]),
                names_sha1=str(seq["names_sha1"]),
                scheme=ClassScheme.from_dict(d["scheme"]),
                checkpoint=CheckpointRef(str(ck["path"]), str(ck.get("hash", ""))) if ck else None,
                alignment=d.get("alignment"),
                corrected={i: rel for i, (o, rel) in frames.items() if o == "corrected"},
                propagated={i: rel for i, (o, rel) in frames.items() if o == "propagated"},
                frame_names={i: n for i, n in names.items() if frames.get(i, ("",))[0] == "corrected"},
                app_version=str(d.get("app_version", "")),
                format_version=version,
                saved_at=str(d.get("saved_at", "")),
                journal_lines=lines,
                problems=problems,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProjectError(f"project file {path} is malformed: missing or bad key {exc}") from exc

    def _replay_journal(self, d: dict[str, Any], frames: dict[int, tuple[str, str]]) -> tuple[int, list[ProjectProblem]]:
        """Apply journal.jsonl to the manifest dict `d` and `frames`, in order. A last line without its
        newline is an append a kill cut short (never acknowledged): it is ignored."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return 0, []
        except OSError as exc:
            return 0, [ProjectProblem(None, JOURNAL, f"unreadable ({exc.strerror or exc})", "its changes are lost")]
        problems: list[ProjectProblem] = []
        lines = raw.split(b"\n")[:-1]  # the part after the last newline is torn or empty
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                if "meta" in rec:
                    meta = rec["meta"]
                    for key in ("sequence", "scheme", "checkpoint", "alignment"):
                        if key in meta:
                            d[key] = meta[key]
                    continue
                i, origin = int(rec["f"]), rec["o"]
                if origin == "corrected":
                    frames[i] = ("corrected", self.mask_name(i))
                elif origin == "propagated":
                    frames[i] = ("propagated", self.propagated_name(i))
                elif origin is None:
                    frames.pop(i, None)
                else:
                    raise ValueError(f"unknown origin {origin!r}")
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
                problems.append(ProjectProblem(None, f"{JOURNAL} line {n}", f"unreadable ({exc})", "skipped"))
        return len(lines), problems

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

    def mask_size(self, rel: str) -> tuple[int, int]:
        """(H, W) from the PNG header alone (33 bytes, no decoding), so opening a project of thousands
        of masks checks them all at once. Raises ProjectError saying what is wrong."""
        path = self.root / rel
        try:
            with open(path, "rb") as fh:
                head = fh.read(33)
        except FileNotFoundError:
            raise ProjectError("the file is missing") from None
        except OSError as exc:
            raise ProjectError(f"the file cannot be read ({exc.strerror or exc})") from exc
        if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
            raise ProjectError("the file is not a PNG (truncated or overwritten)")
        w, h, depth, colour = struct.unpack(">IIBB", head[16:26])
        if depth != 8 or colour != 0:
            raise ProjectError(f"the PNG is not 8-bit one-channel class ids (bit depth {depth}, colour type {colour})")
        return h, w

    def mask_files(self, folder: str) -> dict[int, str]:
        """Frame index -> relative path of every `NNNNNN.png` in `masks` or `propagated`."""
        try:
            names = os.listdir(self.root / folder)
        except OSError:
            return {}
        return {int(m.group(1)): f"{folder}/{n}" for n in names if (m := _MASK_FILE.match(n))}

    def journal_size(self) -> int:
        try:
            return self.journal_path.stat().st_size
        except OSError:
            return 0

    # --- writing (OSError propagates: the session turns it into a ProjectError and keeps its state) --
    def _write_png(self, rel: str, mask: np.ndarray, what: str) -> str:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover - cv2 only fails on bad arrays
            raise ProjectError(f"could not encode the {what} as PNG")
        atomic_write_bytes(self.root / rel, buf.tobytes())
        return rel

    def write_mask(self, index: int, mask: np.ndarray) -> str:
        return self._write_png(self.mask_name(index), mask, f"mask of frame {index}")

    def remove_mask(self, index: int) -> None:
        (self.root / self.mask_name(index)).unlink(missing_ok=True)

    def write_propagated(self, index: int, mask: np.ndarray) -> str:
        return self._write_png(self.propagated_name(index), mask, f"propagated mask of frame {index}")

    def remove_propagated(self, index: int) -> None:
        (self.root / self.propagated_name(index)).unlink(missing_ok=True)

    def move_to_damaged(self, rel: str) -> str | None:
        """Move an unusable file to `damaged/` (kept for a person to look at); returns where it went."""
        src = self.root / rel
        dst = self.root / DAMAGED / rel.replace("/", "_")
        try:
            dst.parent.mkdir(exist_ok=True)
            os.replace(src, dst)
        except OSError:
            return None
        return f"{DAMAGED}/{dst.name}"

    def remove_stale_temps(self) -> list[Path]:
        """Delete temporary files a killed autosave left (call only while holding the lock)."""
        removed: list[Path] = []
        for sub in (self.root, self.root / "masks", self.root / "propagated"):
            removed += remove_stale_temps(sub)
        return removed

    def append_journal(self, records: list[dict[str, Any]]) -> int:
        """Append records as JSON lines and fsync: one write, so a kill leaves at most a torn last
        line (ignored on load). On failure (disk full) the journal is cut back to where it was.
        Returns the number of lines written."""
        if not records:
            return 0
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        return len(records)

    def reset_journal(self) -> None:
        """Empty the journal once the manifest holds all it said."""
        if self.journal_path.exists():
            with open(self.journal_path, "r+b") as fh:
                fh.truncate(0)
                os.fsync(fh.fileno())

    def header(self, data: ProjectData) -> dict[str, Any]:
        """The manifest's settings part (also what a journal "meta" line carries)."""
        src = None
        if data.source is not None:
            src = os.path.relpath(Path(data.source).resolve(), self.root.resolve())
        ck = None
        if data.checkpoint is not None:
            ck = {"path": data.checkpoint.path, "hash": data.checkpoint.weights_hash}
        return {
            "sequence": {
                "source": src,
                "layout": data.layout,
                "num_frames": data.num_frames,
                "names_sha1": data.names_sha1,
            },
            "scheme": data.scheme.to_dict(),
            "checkpoint": ck,
            "alignment": data.alignment,
        }

    def write_manifest(self, data: ProjectData, all_names: list[str]) -> None:
        """Write the whole manifest atomically, then empty the journal it now includes."""
        entries = [(i, "corrected", rel) for i, rel in data.corrected.items()]
        entries += [(i, "propagated", rel) for i, rel in data.propagated.items() if i not in data.corrected]
        frames = {all_names[i]: {"index": i, "origin": origin, "mask": rel} for i, origin, rel in sorted(entries)}
        d = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": data.app_version,
            "saved_at": utc_now(),
            **self.header(data),
            "frames": frames,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(d, indent=1, sort_keys=False) + "\n")
        self.reset_journal()
