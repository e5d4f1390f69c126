"""The project on disk: a `<sequence>.csknet/` folder beside the sequence.

    project.json       manifest: sequence source (relative), frame count + names digest, class
                       scheme, checkpoint (path + weights hash), alignment, corrected frames
    journal.jsonl      what changed since the manifest was written, one JSON line per frame (or
                       settings) change with the frame's mask in it, appended by every autosave
                       (core/project_journal.py)
    masks/000012.png   one lossless 8-bit PNG of class ids per corrected frame
    propagated/000013.png  the same for each frame whose labels were propagated and not yet
                       reviewed (origin "propagated" in the manifest: shown apart, never a correction)
    lock               the process writing the project (core/project_lock.py)
    damaged/           mask files found unusable on load, moved aside rather than deleted

An autosave costs one journal append (the mask inside it) and at most one fsync, whatever the
project's size. Compaction writes the journalled masks to `masks/` and `propagated/` (each file
through core/atomic.py, fsynced), deletes the files of frames the journal dropped, then writes the
manifest: in the background when the journal has grown by COMPACT_LINES lines or COMPACT_BYTES
bytes (the manifest then says up to which byte of which journal it holds), and on save, close and
open (the journal is then emptied). Journal lines state a frame's origin and mask outright, so
replaying them over a manifest that already holds them changes nothing: a crash between any two
steps is harmless. A mask file of a frame the journal mentions is never taken for an orphan.
"""

from __future__ import annotations

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

from csknet_studio.core.atomic import atomic_write_bytes, atomic_write_text, remove_stale_temps
from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.project_journal import Journal, encode_records, read_journal, record_png
from csknet_studio.core.user_dirs import in_user_cache, kept_project_path

PROJECT_SUFFIX = ".csknet"
MANIFEST = "project.json"
FORMAT = "csknet-studio-project"
FORMAT_VERSION = 3  # 2: journal.jsonl; 3: masks inside journal lines. Versions 1 and 2 open unchanged
JOURNAL = "journal.jsonl"
DAMAGED = "damaged"
COMPACT_LINES = 500  # journal lines since the last compaction that start a background one
COMPACT_BYTES = 32 << 20  # the same in bytes (propagations append whole masks)
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
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


def png_size(head: bytes) -> tuple[int, int]:
    """(H, W) of a PNG of class ids from its first 33 bytes; ProjectError saying what is wrong."""
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ProjectError("the file is not a PNG (truncated or overwritten)")
    w, h, depth, colour = struct.unpack(">IIBB", head[16:26])
    if depth != 8 or colour != 0:
        raise ProjectError(f"the PNG is not 8-bit one-channel class ids (bit depth {depth}, colour type {colour})")
    return h, w


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
    journal_bytes: int = 0  # its size (a journal a manifest fully holds still wants emptying)
    inline: dict[int, bytes] = field(default_factory=dict)  # frame -> PNG its last journal line carries
    journal_frames: set[int] = field(default_factory=set)  # frames the replayed journal lines state
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
        self.journal = Journal(self.root / JOURNAL)  # opened on the first append (lock holders only)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

    def exists(self) -> bool:
        """Whether a manifest is there (anything by its name: a folder in its place is reported by
        load(), not taken for a new project)."""
        return os.path.lexists(self.manifest_path)

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
            inline: dict[int, bytes] = {}
            mentioned: set[int] = set()
            lines, size, problems = self._replay_journal(d, frames, inline, mentioned)
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
                journal_bytes=size,
                inline={i: b for i, b in inline.items() if i in frames},
                journal_frames=mentioned,
                problems=problems,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProjectError(f"project file {path} is malformed: missing or bad key {exc}") from exc

    def _replay_journal(self, d: dict[str, Any], frames: dict[int, tuple[str, str]], inline: dict[int, bytes],
                        mentioned: set[int]) -> tuple[int, int, list[ProjectProblem]]:
        """Apply journal.jsonl to the manifest dict `d` and `frames`, in order, collecting the masks
        the lines carry in `inline` and the frames they state in `mentioned`. Returns (lines
        replayed, journal size, problems). A torn last line or a cut-short append is ignored (it
        was never acknowledged); lines the manifest already holds are skipped."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return 0, 0, []
        except OSError as exc:
            return 0, 0, [ProjectProblem(None, JOURNAL, f"unreadable ({exc.strerror or exc})", "its changes are lost")]
        mark = d.get("journal")
        jid, offset = (str(mark.get("id")), int(mark.get("offset", 0))) if isinstance(mark, dict) else (None, 0)
        parsed = read_journal(raw, jid, offset)
        problems: list[ProjectProblem] = []
        for n, rec in parsed.records:
            try:
                if isinstance(rec, Exception):
                    raise rec
                if "meta" in rec:
                    meta = rec["meta"]
                    for key in ("sequence", "scheme", "checkpoint", "alignment"):
                        if key in meta:
                            d[key] = meta[key]
                    continue
                i, origin = int(rec["f"]), rec["o"]
                png = record_png(rec) if origin is not None else None
                if origin == "corrected":
                    frames[i] = ("corrected", self.mask_name(i))
                elif origin == "propagated":
                    frames[i] = ("propagated", self.propagated_name(i))
                elif origin is None:
                    frames.pop(i, None)
                else:
                    raise ValueError(f"unknown origin {origin!r}")
                mentioned.add(i)
                if png is not None:
                    inline[i] = png
                else:
                    inline.pop(i, None)
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
                problems.append(ProjectProblem(None, f"{JOURNAL} line {n}", f"unreadable ({exc})", "skipped"))
        return len(parsed.records), parsed.size, problems

    def read_mask(self, rel: str, data: bytes | None = None) -> np.ndarray:
        """Decode the mask file `rel`, or `data` (its journalled bytes) when given."""
        path = self.root / rel
        where = f"mask file {path}" if data is None else f"the mask of {path} in {self.journal_path}"
        if data is None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ProjectError(f"mask file {path} of the project cannot be read: {exc}") from exc
        buf = np.frombuffer(data, np.uint8)
        mask = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
        if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
            raise ProjectError(f"{where} of the project is corrupt (not an 8-bit one-channel PNG)")
        return mask

    def mask_size(self, rel: str, data: bytes | None = None) -> tuple[int, int]:
        """(H, W) from the PNG header alone (33 bytes, no decoding) of file `rel` or of `data`, so
        opening a project of thousands of masks checks them all at once. Raises ProjectError
        saying what is wrong."""
        if data is not None:
            return png_size(data[:33])
        path = self.root / rel
        try:
            with open(path, "rb") as fh:
                head = fh.read(33)
        except FileNotFoundError:
            raise ProjectError("the file is missing") from None
        except OSError as exc:
            raise ProjectError(f"the file cannot be read ({exc.strerror or exc})") from exc
        return png_size(head)

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
    @staticmethod
    def encode_mask(mask: np.ndarray) -> bytes:
        """Lossless 8-bit grey PNG. No row filters: class-id masks gain nothing from them, and
        choosing one per row (OpenCV's default) costs 4x the compression itself."""
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, np.uint8), _PNG_PARAMS)
        if not ok:  # pragma: no cover - cv2 only fails on bad arrays
            raise ProjectError(f"could not encode a {mask.shape} mask as PNG")
        return buf.tobytes()

    def write_mask(self, index: int, mask: np.ndarray) -> str:
        rel = self.mask_name(index)
        atomic_write_bytes(self.root / rel, self.encode_mask(mask))
        return rel

    def write_files(self, files: dict[int, tuple[str | None, bytes | None]]) -> None:
        """Bring the mask files of `files` (frame -> ("masks" | "propagated", PNG) or (None, None)
        for a frame with neither) in line: the one file written atomically, the other removed."""
        for i, (folder, png) in sorted(files.items()):
            for kind, rel in (("masks", self.mask_name(i)), ("propagated", self.propagated_name(i))):
                if kind == folder and png is not None:
                    atomic_write_bytes(self.root / rel, png)
                else:
                    (self.root / rel).unlink(missing_ok=True)

    def append_journal(self, records: list[dict[str, Any]]) -> int:
        """One journal append, fsynced (core/project_journal.py); returns the journal's size after it."""
        return self.journal.append(encode_records(records))

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

    def write_manifest(self, data: ProjectData, all_names: list[str], journal_mark: tuple[str, int] | None = None) -> None:
        """Write the whole manifest atomically. `journal_mark` (journal id, byte offset) says the
        journal's lines before that byte are in it (a background compaction); None: all are, and the
        caller empties the journal next."""
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
        if journal_mark is not None:
            d["journal"] = {"id": journal_mark[0], "offset": journal_mark[1]}
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(d, indent=1, sort_keys=False) + "\n")
