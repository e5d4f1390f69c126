"""journal.jsonl: what changed in a project since its manifest was written.

An autosave is one `write()` of one or more JSON lines, each stating a frame's origin outright and
carrying its mask (an 8-bit PNG, base64) in the line itself. So an edit costs no mask file, no
rename and at most one fsync, whatever the project's size; the mask files and the manifest are
brought up to date by compaction (core/project.py), in the background or on save / close / open.

- kill -9 or a power cut: the line is written and fsynced before the edit's call returns, so an
  acknowledged edit is never lost (a torn last line, from a kill inside the write, is ignored).
- a full disk: a write or fsync that fails is cut back to where the journal was and raised.

File layout: a first line `{"journal": id}` names this incarnation of the file (a manifest written
by a background compaction says "lines before byte N of journal id are in me"; an emptied journal
gets a new id, so an old offset can never skip new lines). Then one record per line:
`{"f": frame, "o": "corrected" | "propagated" | null, "png": base64}` or `{"meta": {...}}`. Each
line of a multi-line append (a propagation, settings with a frame) carries `"b": [k, lines]`, so an
append cut short at a line boundary is ignored as a whole, like one cut inside a line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csknet_studio.core.atomic import file_mode

_HEAD_READ = 256  # bytes read to find the id line


def frame_record(frame: int, origin: str | None, png: bytes | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"f": int(frame), "o": origin}
    if png is not None:
        rec["png"] = base64.b64encode(png).decode("ascii")
    return rec


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """JSON lines; when there are several, each says its place in this append."""
    if len(records) > 1:
        records = [{**r, "b": [k, len(records)]} for k, r in enumerate(records, 1)]
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")


def record_png(rec: dict[str, Any]) -> bytes | None:
    """The mask bytes a frame record carries (None: a record of format 2, whose mask is a file)."""
    data = rec.get("png")
    if data is None:
        return None
    if not isinstance(data, str):
        raise ValueError("png is not a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"png is not valid base64 ({exc})") from None


@dataclass
class JournalLines:
    """The journal split into lines to replay: (line number, parsed record or the error)."""

    journal_id: str | None = None
    records: list[tuple[int, dict[str, Any] | Exception]] = field(default_factory=list)
    size: int = 0


def read_journal(raw: bytes, journal_id: str | None, offset: int) -> JournalLines:
    """Parse the journal. Lines before `offset` are skipped when the file is the incarnation
    `journal_id` the manifest names (the manifest already holds them); otherwise all are read,
    which changes nothing but time, since records state origins outright."""
    out = JournalLines(size=len(raw))
    lines = raw.split(b"\n")[:-1]  # the part after the last newline is torn or empty
    pos, first = 0, 0
    if lines:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            head = json.loads(lines[0])
            if isinstance(head, dict) and set(head) == {"journal"}:
                out.journal_id = str(head["journal"])
                pos, first = len(lines[0]) + 1, 1
    skip_to = offset if journal_id is not None and journal_id == out.journal_id and 0 < offset <= len(raw) else 0
    batch: list[tuple[int, dict[str, Any] | Exception]] = []
    want: tuple[int, int] | None = None  # (place, lines) the next line of an open append must have
    for n in range(first, len(lines)):
        line = lines[n]
        start, pos = pos, pos + len(line) + 1
        if start < skip_to:
            continue
        try:
            item: dict[str, Any] | Exception = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            item = exc
        mark = item.get("b") if isinstance(item, dict) else None
        if want is not None:
            if isinstance(item, Exception) or mark == list(want):  # a garbled line keeps its place
                batch.append((n + 1, item))
                want = (want[0] + 1, want[1])
                if want[0] > want[1]:
                    out.records += batch
                    batch, want = [], None
                continue
            batch, want = [], None  # that append was cut short (never acknowledged)
        if isinstance(mark, list) and len(mark) == 2 and mark[0] == 1 and isinstance(mark[1], int) and mark[1] > 1:
            batch, want = [(n + 1, item)], (2, mark[1])
        else:
            out.records.append((n + 1, item))
    # a batch still open at the end is an append a kill cut short at a line boundary: never acknowledged
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _cut_torn_tail(fd: int, size: int) -> int:
    """Drop a last line without its newline (an append a kill cut short), so the next append does
    not run on from it and become garbage itself. Returns the new size."""
    end = size
    while end > 0:
        start = max(0, end - (64 << 10))
        chunk = os.pread(fd, end - start, start)
        if end == size and chunk.endswith(b"\n"):
            return size
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            end = start + nl + 1
            break
        end = start
    os.ftruncate(fd, end)
    return end


class Journal:
    """The append side of journal.jsonl, for the one session that holds the project's lock.

    Each append is one write and one fsync in the caller's thread: an edit is on disk when its call
    returns. (A flusher thread behind the edit was tried: on a loaded machine, waking it cost the
    edit more than the fsync itself, since the two threads then wait on the scheduler for the GIL.)
    The lock lets a background compaction empty the journal between two appends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal_id: str | None = None
        self.fsyncs = 0  # fsyncs done (tests and the bench count them)
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._size = 0  # file size after our last append

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, file_mode())
            size = _cut_torn_tail(fd, os.fstat(fd).st_size)
            self.journal_id = None
            if size:
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    head = json.loads(os.pread(fd, _HEAD_READ, 0).split(b"\n", 1)[0])
                    if isinstance(head, dict) and set(head) == {"journal"}:
                        self.journal_id = str(head["journal"])
            self._fd, self._size = fd, size
        return self._fd

    def append(self, data: bytes) -> int:
        """Write `data` at the end in one write (a new file starts with its id line), then fsync;
        returns the journal's size after it. On failure (disk full, I/O error) the journal is cut
        back to where it was and the OSError raised."""
        with self._lock:
            fd = self._open()
            start = os.fstat(fd).st_size  # (not _size: another session of this process may have emptied it)
            if start == 0:
                self.journal_id = secrets.token_hex(8)
                data = json.dumps({"journal": self.journal_id}).encode("ascii") + b"\n" + data
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                if start == 0:
                    self.journal_id = None
                raise
            self.fsyncs += 1
            self._size = start + len(data)
            return self._size

    @property
    def size(self) -> int:
        return self._size

    def reset(self) -> None:
        """Empty the journal (the manifest now holds all it said); the next append names a new id."""
        with self._lock:
            if self._fd is None and not self.path.exists():
                return
            fd = self._open()
            os.ftruncate(fd, 0)
            os.fsync(fd)
            self._size = 0
            self.journal_id = None

    def reset_if_unchanged(self, size: int) -> bool:
        """Empty the journal if nothing was appended after byte `size` (a background compaction
        covered it all), so it does not grow through a long session. The emptying need not be
        durable: a journal whose id line is lost is replayed from its start, which is harmless."""
        with self._lock:
            if self._fd is None or self._size != size:
                return False
            os.ftruncate(self._fd, 0)
            self._size = 0
            self.journal_id = None
            return True

    def __del__(self) -> None:
        # unreachable, so nobody is inside a method: the file of a session dropped without close()
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Close the file (it reopens on a later append)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
