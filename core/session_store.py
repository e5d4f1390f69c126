"""ProjectIO: the disk side of an annotation session: the project lock, loading with repairs,
autosave and save, working on the session's LabelStore.

Opening takes the project's lock (core/project_lock.py) unless the session is read-only, so two
copies of the app never write one project. Loading repairs what it can and reports the rest in
`problems`: a missing, corrupt or wrongly sized mask costs its frame, not the project (the file is
moved to `damaged/`); a mask file the index does not know is adopted when valid; class ids outside
the scheme become 255 (unlabelled) when the mask is first read. A read-only session applies these
repairs in memory only and never writes a byte.

Autosave appends one journal line per edited frame, the frame's mask inside it, in one write and
one fsync (core/project_journal.py); the mask files and the manifest are written by compaction, in
a background thread as the journal grows and on `save()`, `close()` and open (see core/project.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.events import SessionEvents
from csknet_studio.core.project import (
    COMPACT_BYTES,
    COMPACT_LINES,
    JOURNAL,
    CheckpointRef,
    ProjectData,
    ProjectProblem,
    ProjectStore,
    names_digest,
    utc_now,
)
from csknet_studio.core.project_journal import frame_record
from csknet_studio.core.project_lock import LockHolder, ProjectLock, acquire, read_holder
from csknet_studio.core.session_labels import LabelStore
from csknet_studio.core.version import __version__

FrameFile = tuple[str | None, bytes | None]  # ("masks" | "propagated", PNG), or (None, None): neither
_ORIGIN_OF = {"masks": "corrected", "propagated": "propagated", None: None}


class _Compaction:
    """One background compaction: the masks journalled since the last one go to their files, then
    the manifest (saying up to which journal byte it holds) is written; the journal is emptied if
    nothing was appended meanwhile. It touches only files and the snapshot it was given."""

    def __init__(self, store: ProjectStore, data: ProjectData, names: list[str], files: dict[int, FrameFile],
                 mark: tuple[str | None, int]) -> None:
        self.files, self.error = files, None
        self.thread = threading.Thread(target=self._run, args=(store, data, names, mark), name="project-compaction",
                                       daemon=True)
        self.thread.start()

    def _run(self, store: ProjectStore, data: ProjectData, names: list[str], mark: tuple[str | None, int]) -> None:
        try:
            store.write_files(self.files)
            store.write_manifest(data, names, mark)
            store.journal.reset_if_unchanged(mark[1])
        except OSError as exc:  # nothing lost: the journal still holds it all; retried later
            self.error = exc


class ProjectIO:
    """The project folder of one LabelStore: its lock, what loading repaired, the journal and saves.

    `checkpoint` and `alignment` are the project's settings as the manifest stores them; `source` is
    the sequence's path (None: in memory). No `project_path`: nothing is ever written."""

    def __init__(self, labels: LabelStore, events: SessionEvents, project_path: Path | None,
                 source: Path | None, *, autosave: bool, read_only: bool) -> None:
        self.labels = labels
        self.events = events
        self.project_path = project_path
        self.source = source
        self.store = ProjectStore(project_path) if project_path is not None else None
        self.autosave = autosave
        self.read_only = read_only
        self.checkpoint: CheckpointRef | None = None
        self.alignment: dict[str, Any] | None = None
        self.last_save_error: ProjectError | None = None
        self.problems: list[ProjectProblem] = []  # what loading repaired or could not use, and how
        self.lock_taken_over: LockHolder | None = None  # a dead process's lock this session replaced
        self.removed_temps: list[Path] = []  # temporary files of a killed save, cleared on open
        self.meta_dirty = False  # settings changed since the last save
        self._dirty = False
        self._lock: ProjectLock | None = None
        self._journal_lines = 0  # lines appended since the last compaction
        self._journal_cut = 0  # journal size at the last compaction
        self._pending: dict[int, FrameFile] = {}  # journalled, not yet in mask files
        self._inline: dict[int, bytes] = {}  # masks read from the journal on open, not yet decoded
        self._compaction: _Compaction | None = None  # the background compaction running, if any
        labels.read_mask = self.read_mask

    # --- the lock -------------------------------------------------------------------------------------
    def take_lock(self, take_over: bool) -> None:
        """Lock the project folder; a folder we cannot write is not an error yet (the first save
        reports it, as it always did for a read-only folder)."""
        assert self.project_path is not None
        try:
            lock = acquire(self.project_path, take_over=take_over, since=utc_now(), app_version=__version__)
        except OSError:
            return
        self._set_lock(lock)

    def _set_lock(self, lock: ProjectLock) -> None:
        self._lock = lock
        assert self.store is not None
        if lock.taken_over is not None:
            self.lock_taken_over = lock.taken_over
            self.problems.append(ProjectProblem(None, "lock", f"held by {lock.taken_over.describe()}, which is "
                                                "no longer running", "taken over"))
        assert self.store is not None
        self.removed_temps = self.store.remove_stale_temps()

    def release_lock(self) -> None:
        """Let another copy of the app write the project (close() does this)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    @property
    def locked(self) -> bool:
        """True while this session holds the project's lock."""
        return self._lock is not None and self._lock.held

    def open_notes(self) -> list[str]:
        """One line per thing a command-line user should hear about the opened project: each repair,
        and that another copy of the app is writing it (a read-only reader sees its saved state)."""
        notes = [f"project {self.project_path}: {p}" for p in self.problems]
        if self.read_only and self.project_path is not None:
            holder = read_holder(self.project_path)
            if holder is not None and holder.pid != os.getpid() and holder.alive() is not False:
                notes.append(f"project {self.project_path} is open in another copy of CSKNet Studio "
                             f"({holder.describe()}): reading what it has saved so far")
        return notes

    # --- restoring, with repairs ------------------------------------------------------------------------
    def check_belongs(self, data: ProjectData, relink: bool) -> None:
        """ProjectError unless the project was made for this sequence (at this path, or `relink`)."""
        root = self.project_path
        if data.num_frames != self.labels.n or data.names_sha1 != names_digest(self.labels.names):
            raise ProjectError(
                f"project {root} belongs to another sequence: it was made for {data.num_frames} frames of "
                f"{data.source}, but {self.source} has {self.labels.n} frames with other names"
            )
        if data.source is not None and self.source is not None and data.source.resolve() != self.source.resolve():
            if not relink:
                raise ProjectError(
                    f"project {root} was made for sequence {data.source.resolve()}, not {self.source.resolve()}; "
                    "if the sequence was moved, open it with relink=True (CLI: --relink)"
                )
            self.meta_dirty = True

    def restore(self, data: ProjectData) -> None:
        """Take in the saved labels (read lazily) with the repairs above; the settings are the session's."""
        lab = self.labels
        self.problems.extend(data.problems)
        reported = len(self.problems)
        self._inline = dict(data.inline)
        found: dict[str, dict[int, str]] = {"corrected": {}, "propagated": {}}
        for kind, entries in (("corrected", data.corrected), ("propagated", data.propagated)):
            for i, rel in entries.items():
                if not 0 <= i < lab.n:
                    self.problems.append(ProjectProblem(i, rel, f"frame {i} is out of range (the sequence has "
                                                        f"{lab.n} frames)", "ignored"))
                elif (reason := self._mask_file_problem(i, rel)) is not None:
                    self._drop_file(i, rel, reason, f"dropped: the frame is no longer {kind}")
                else:
                    found[kind][i] = rel
        self._adopt_orphans(found, {*data.corrected.values(), *data.propagated.values()}, data.journal_frames)
        lab.corr_unread = dict(found["corrected"])
        lab.prop_unread = {i: rel for i, rel in found["propagated"].items() if i not in found["corrected"]}
        # what compaction must write: the journalled masks, and no file for frames the journal dropped
        self._inline = {i: b for i, b in self._inline.items() if i in lab.corr_unread or i in lab.prop_unread}
        for i in data.journal_frames:
            if i in self._inline:
                self._pending[i] = ("masks" if i in lab.corr_unread else "propagated", self._inline[i])
            elif i not in lab.corr_unread and i not in lab.prop_unread and 0 <= i < lab.n:
                self._pending[i] = (None, None)
        if self.locked and self.autosave and (data.journal_bytes or len(self.problems) > reported):
            with contextlib.suppress(OSError):  # fold journal and repairs into the manifest; else the next save
                self.compact_now({})

    def _adopt_orphans(self, found: dict[str, dict[int, str]], known: set[str], journalled: set[int]) -> None:
        """Mask files on disk the index does not name: an interrupted save, or another copy of the app
        that wrote without a lock. Valid corrections are taken in (a person's work is never thrown
        away); propagated ones are removed, since taking in part of an interrupted propagation would
        leave a state nobody made (propagate again). The file of a frame the journal states is no
        orphan but an earlier state of it, which the next compaction removes."""
        assert self.store is not None
        for i, rel in sorted(self.store.mask_files("masks").items()):
            if rel in known or i in found["corrected"] or i in journalled:
                continue
            if not 0 <= i < self.labels.n:
                self.problems.append(ProjectProblem(i, rel, "not in the project index, and the frame is out "
                                                    "of range", "left as it is"))
            elif (reason := self._mask_file_problem(i, rel)) is not None:
                self.problems.append(ProjectProblem(i, rel, f"not in the project index, and {reason}",
                                                    "left as it is"))
            else:
                found["corrected"][i] = rel
                self.problems.append(ProjectProblem(i, rel, "the mask was not in the project index (an "
                                                    "interrupted save, or another copy of the app)",
                                                    "adopted: the frame is corrected"))
        for i, rel in sorted(self.store.mask_files("propagated").items()):
            if rel in known or not self.locked or i in journalled:
                continue
            with contextlib.suppress(OSError):
                (self.store.root / rel).unlink()
                if i not in found["corrected"]:  # (under a correction it is simply out of date)
                    self.problems.append(ProjectProblem(i, rel, "propagated labels not in the project index "
                                                        "(an interrupted save)", "removed: propagate again"))

    def _mask_file_problem(self, i: int, rel: str) -> str | None:
        """What is wrong with frame i's mask (its file, or its journal line) judged from its header, or None."""
        assert self.store is not None
        where = f"the mask in {JOURNAL}" if i in self._inline else "the mask"
        try:
            h, w = self.store.mask_size(rel, self._inline.get(i))
        except ProjectError as exc:
            return str(exc) if i not in self._inline else f"{where}: {exc}"
        want = self.labels.expected_shape(i, (h, w))
        if want is not None and (h, w) != tuple(want):
            return f"{where} is {w}x{h} pixels but the frame is {want[1]}x{want[0]}"
        return None

    def _drop_file(self, i: int, rel: str, reason: str, action: str) -> ProjectProblem:
        """Record that frame i's mask is unusable; a writable session moves the file to damaged/."""
        assert self.store is not None
        self._inline.pop(i, None)
        if self.locked and "missing" not in reason and (moved := self.store.move_to_damaged(rel)):
            action += f" (the file is kept as {moved})"
        problem = ProjectProblem(i, rel, reason, action)
        self.problems.append(problem)
        return problem

    def read_mask(self, i: int, rel: str, kind: str) -> np.ndarray | None:
        """Decode frame i's mask; corrupt data drops the frame (reported), ids outside the scheme
        become 255 (reported). The repaired state is written by the next save."""
        assert self.store is not None
        try:
            mask = self.store.read_mask(rel, self._inline.pop(i, None))
        except ProjectError:
            problem = self._drop_file(i, rel, "the PNG data is corrupt", f"dropped: the frame is no longer {kind}")
            self.labels.dirty_frames.add(i)
            self._set_dirty(True)
            self.events.problems_found.emit([problem])
            self.events.origin_changed.emit(i)
            return None
        n = self.labels.scheme.num_classes
        bad = (mask >= n) & (mask != IGNORE_INDEX)
        if bad.any():
            ids = ", ".join(str(v) for v in np.unique(mask[bad])[:8])
            problem = ProjectProblem(i, rel, f"class ids {ids} are not in scheme {self.labels.scheme.name} (0..{n - 1} "
                                     "and 255)", f"{int(bad.sum())} pixels set to 255 (unlabelled)")
            mask[bad] = IGNORE_INDEX
            self.problems.append(problem)
            self.labels.dirty_frames.add(i)
            self._set_dirty(True)
            self.events.problems_found.emit([problem])
        return mask

    # --- saving -----------------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True while something is not yet written to the project."""
        return self._dirty

    def _set_dirty(self, value: bool) -> None:
        if value != self._dirty:
            self._dirty = value
            self.events.dirty_changed.emit(value)

    def changed(self) -> None:
        self._set_dirty(True)
        if self.store is None or not self.autosave or self.read_only:
            return
        try:
            self._write(compact=False)
        except ProjectError as err:
            self.events.save_failed.emit(err)

    def save(self) -> Path:
        """Write dirty masks, then the whole manifest (emptying the journal).

        On failure (e.g. disk full) raises ProjectError and keeps everything in memory, still dirty,
        so the next save writes it all."""
        return self._write(compact=True)

    def _writable_store(self) -> ProjectStore:
        if self.store is None or self.project_path is None:
            raise ProjectError("this session has no project path (the sequence has no source on disk)")
        if self.read_only:
            raise ProjectError(f"project {self.project_path} is open read-only: nothing is written "
                               "(save it elsewhere with Save as, or reopen it when the other copy is closed)")
        if not self.locked:
            try:
                self._set_lock(acquire(self.project_path, since=utc_now(), app_version=__version__))
            except OSError as exc:
                raise ProjectError(f"could not save project {self.project_path}: {exc.strerror or exc}. Nothing "
                                   "is lost: the corrections stay in memory and are written on the next edit "
                                   "or save") from exc
        return self.store

    def _write(self, compact: bool) -> Path:
        """One journal append holding the dirty frames' masks (or, when `compact`, a compaction)."""
        try:
            store = self._writable_store()
        except ProjectError as err:
            self.last_save_error = err
            self._set_dirty(True)
            raise
        try:
            if compact or not store.exists():
                self._settle()
            self.collect_compaction()
            frames = sorted(self.labels.dirty_frames)
            files = {i: self._frame_file(i) for i in frames}
            if compact or not store.exists():
                self.compact_now(files)
            else:
                records: list[dict] = [{"meta": store.header(self._project_data())}] if self.meta_dirty else []
                records += [frame_record(i, _ORIGIN_OF[folder], png) for i, (folder, png) in files.items()]
                if records:
                    size = store.append_journal(records)
                    self._journal_lines += len(records)
                    self._pending.update(files)
                    self._maybe_compact(store, size)
        except OSError as exc:
            err = ProjectError(
                f"could not save project {self.project_path}: {exc.strerror or exc}. Nothing is lost: "
                "the corrections stay in memory and are written on the next edit or save"
            )
            self.last_save_error = err
            self._set_dirty(True)
            raise err from exc
        self.labels.dirty_frames.clear()
        self.meta_dirty = False
        self.last_save_error = None
        self._set_dirty(False)
        self.events.saved.emit(self.project_path)
        assert self.project_path is not None
        return self.project_path

    def _frame_file(self, i: int) -> FrameFile:
        """What frame i's mask file should be now, encoded as the journal and the file hold it."""
        origin = self.labels.origin(i)
        if origin is Origin.CORRECTED:
            mask = self.labels.correction(i)
            if mask is not None:
                return "masks", ProjectStore.encode_mask(mask)
        elif origin is Origin.PROPAGATED and (packed := self.labels.propagated_pack(i)) is not None:
            return "propagated", ProjectStore.encode_mask(packed.unpack())
        return None, None

    def _maybe_compact(self, store: ProjectStore, size: int) -> None:
        """Start a background compaction once the journal has grown enough since the last one."""
        if self._compaction is not None or (self._journal_lines < COMPACT_LINES
                                            and size - self._journal_cut < COMPACT_BYTES):
            return
        files, self._pending = self._pending, {}
        self._compaction = _Compaction(store, self._project_data(), self.labels.names, files,
                                       (store.journal.journal_id, size))
        self._journal_lines, self._journal_cut = 0, size

    def collect_compaction(self, wait: bool = False) -> None:
        """Take in a finished background compaction; one that failed hands its files back."""
        c = self._compaction
        if c is None or (c.thread.is_alive() and not wait):
            return
        c.thread.join()
        self._compaction = None
        if self.store is not None and self.store.journal.size < self._journal_cut:
            self._journal_cut = 0  # it emptied the journal
        if c.error is not None:
            self._pending = {**c.files, **self._pending}

    def _settle(self) -> None:
        """Wait for the background compaction (before compacting, moving or closing)."""
        self.collect_compaction(wait=True)

    def compact_now(self, files: dict[int, FrameFile]) -> None:
        """Compaction in this thread: every journalled mask and `files` to their files, the manifest,
        then the journal emptied. OSError propagates with nothing lost (the journal still holds it)."""
        assert self.store is not None
        self._settle()
        pending = {**self._pending, **files}
        self.store.write_files(pending)
        self._write_manifest()
        self.store.journal.reset()
        self._pending, self._inline = {}, {}
        self._journal_cut = 0

    def _project_data(self) -> ProjectData:
        lab = self.labels
        corrected = {i: lab.corr_unread.get(i, ProjectStore.mask_name(i)) for i in lab.corrected_frames()}
        propagated = {i: lab.prop_unread.get(i, ProjectStore.propagated_name(i)) for i in lab.propagated_frames()}
        return ProjectData(
            source=self.source, layout=str(getattr(lab.sequence, "layout", "")), num_frames=lab.n,
            names_sha1=names_digest(lab.names), scheme=lab.scheme, checkpoint=self.checkpoint,
            alignment=self.alignment, corrected=corrected, propagated=propagated, app_version=__version__,
        )

    def _write_manifest(self) -> None:
        assert self.store is not None
        self.store.write_manifest(self._project_data(), self.labels.names)
        self._journal_lines = 0

    def save_as(self, project_path: str | os.PathLike) -> Path:
        """Move the project to a new folder (e.g. the sequence's own folder is read-only, or the
        project is open read-only) and save everything there; later autosaves go to the new place.
        The old project is left as it was."""
        self.labels.read_all()  # the masks that still live only in the old project
        new = Path(project_path)
        lock = acquire(new, since=utc_now(), app_version=__version__)  # ProjectLockedError if taken
        self._settle()
        if self.store is not None:
            self.store.journal.close()
        self.release_lock()
        self.project_path, self.store, self.read_only = new, ProjectStore(new), False
        self._set_lock(lock)
        self._journal_lines, self._journal_cut, self._pending, self._inline = 0, 0, {}, {}
        self.labels.dirty_frames |= set(self.labels.corr) | set(self.labels.prop)
        self.meta_dirty = True
        return self.save()

    def close(self) -> None:
        """Save what is unsaved (raises ProjectError if that fails) and release the lock, so
        another copy of the app may open the project."""
        try:
            self._settle()
            if self.store is not None and not self.read_only and (
                    self._dirty or self._pending or self.store.journal.size or self._journal_lines):
                self._write(compact=True)
        finally:
            with contextlib.suppress(OSError):
                if self.store is not None:
                    self.store.journal.close()
            self.release_lock()
