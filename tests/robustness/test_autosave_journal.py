"""The autosave journal: an edit costs one append with its mask inside and one fsync, whatever the
project's size; background compaction brings the mask files and the manifest up to date; appends
cut short are ignored whole; projects of format 2 still open."""

from __future__ import annotations

import errno
import json
import os

import cv2
import numpy as np
import pytest

from csknet_studio.core import project as project_mod
from csknet_studio.core import session_store
from csknet_studio.core.classes import MFNET
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.project import JOURNAL, MANIFEST, ProjectData, ProjectStore, names_digest
from csknet_studio.core.project_journal import Journal, encode_records, frame_record, read_journal
from csknet_studio.core.session import AnnotationSession

N_BIG = 400  # corrected frames in the "large" project


def _big_project(make_sequence, tmp_path, n=N_BIG):
    """A project of n corrected frames written directly (one mask copied n times, the manifest)."""
    seq = make_sequence(tmp_path / "seq", n=n)
    store = ProjectStore(tmp_path / "seq.csknet")
    (store.root / "masks").mkdir(parents=True)
    png = ProjectStore.encode_mask(np.full((48, 64), 3, np.uint8))
    for i in range(n):
        (store.root / ProjectStore.mask_name(i)).write_bytes(png)
    store.write_manifest(ProjectData(source=seq.source, layout="generic", num_frames=n, names_sha1=names_digest(seq.names),
                                     scheme=MFNET, corrected={i: ProjectStore.mask_name(i) for i in range(n)}), seq.names)
    return seq, store


def _snapshot(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != JOURNAL}


def test_an_edit_costs_one_fsync_and_writes_no_mask_file_in_a_large_project(tmp_path, monkeypatch,
                                                                            make_sequence):
    seq, store = _big_project(make_sequence, tmp_path)
    s = AnnotationSession(seq)
    s.paint_stroke(0, [(5, 5)], 1, 2)  # the journal opens
    before = _snapshot(store.root)
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    for k in range(12):
        s.paint_stroke(k * 31 % N_BIG, [(5 + k, 9), (20, 9 + k)], 1 + k % 2, 2)  # (every mask is all 3)
    assert len(calls) == 12  # one per edit, the journal's
    assert _snapshot(store.root) == before  # no mask file, no manifest, no temporary file
    lines = (store.root / JOURNAL).read_bytes().splitlines()
    assert len(lines) == 1 + 13 and all(b'"png":' in x for x in lines[1:])
    monkeypatch.undo()
    live = AnnotationSession(make_sequence(tmp_path / "seq", n=N_BIG), read_only=True)
    assert all((live.labels(i) == s.labels(i)).all() for i in range(0, N_BIG, 31))
    s.close()


def test_a_background_compaction_writes_the_masks_and_the_manifest(tmp_path, monkeypatch, make_sequence):
    monkeypatch.setattr(session_store, "COMPACT_LINES", 4)
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=6))
    s.paint_stroke(0, [(5, 5)], 1, 2)  # the first save writes the manifest
    for k in range(4):
        s.paint_stroke(1 + k, [(5, 5), (30, 20)], 2 + k, 3)  # the fourth line starts a compaction
    s._collect_compaction(wait=True)  # noqa: SLF001 - wait for the background thread
    manifest = json.loads((s.project_path / MANIFEST).read_text())
    assert sorted(e["index"] for e in manifest["frames"].values()) == [0, 1, 2, 3, 4]
    assert manifest["journal"]["offset"] > 0  # the lines before that byte are in the manifest
    for i in range(5):
        on_disk = cv2.imread(str(s.project_path / ProjectStore.mask_name(i)), cv2.IMREAD_UNCHANGED)
        assert (on_disk == s.labels(i)).all()
    assert (s.project_path / JOURNAL).stat().st_size == 0  # nothing came after it: emptied
    s.paint_stroke(5, [(9, 9)], 7, 2)
    s.undo()
    s.paint_stroke(2, [(40, 40)], 8, 2)
    s.release_lock()  # as if killed: manifest (with its mark) + journal
    r = AnnotationSession(make_sequence(tmp_path / "seq", n=6))
    assert not r.problems and r.origins() == [Origin.CORRECTED] * 5 + [Origin.EMPTY]
    assert all((r.labels(i) == s.labels(i)).all() for i in range(6))
    r.close()


def test_a_failed_background_compaction_loses_nothing_and_is_retried(tmp_path, monkeypatch, make_sequence):
    monkeypatch.setattr(session_store, "COMPACT_LINES", 2)
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=5))
    s.paint_stroke(0, [(5, 5)], 1, 2)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_mod, "atomic_write_bytes", full)
    s.paint_stroke(1, [(5, 5)], 2, 2)
    s.paint_stroke(2, [(5, 5)], 3, 2)  # starts a compaction, which fails writing frame 1's mask
    s._collect_compaction(wait=True)  # noqa: SLF001
    assert not s.dirty and not (s.project_path / ProjectStore.mask_name(1)).exists()
    assert AnnotationSession(make_sequence(tmp_path / "seq", n=5), read_only=True).corrected_frames() == [0, 1, 2]
    with pytest.raises(ProjectError, match="No space left"):
        s.close()  # the close's compaction fails too: the lock is still freed, the journal kept
    monkeypatch.undo()
    r = AnnotationSession(make_sequence(tmp_path / "seq", n=5))  # folds the journal now there is space
    assert r.corrected_frames() == [0, 1, 2] and not r.problems
    assert all((r.labels(i) == s.labels(i)).all() for i in range(5))
    assert (r.project_path / JOURNAL).stat().st_size == 0 and (r.project_path / ProjectStore.mask_name(2)).is_file()
    r.close()


def test_an_append_cut_short_at_a_line_boundary_is_ignored_whole(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=6))
    s.paint_stroke(0, [(5, 5)], 1, 2)
    s.paint_stroke(5, [(5, 5)], 1, 2)
    journal = s.project_path / JOURNAL
    complete = journal.stat().st_size
    s.apply_propagation({i: np.full((48, 64), 2, np.uint8) for i in (1, 2, 3)})  # one append, three lines
    s.release_lock()
    raw = journal.read_bytes()
    cut = raw.index(b"\n", complete) + 1  # keep the first line of the three
    journal.write_bytes(raw[:cut])
    r = AnnotationSession(make_sequence(tmp_path / "seq", n=6), read_only=True)
    assert r.propagated_frames() == [] and r.corrected_frames() == [0, 5] and not r.problems
    journal.write_bytes(raw)  # the whole append: all three frames
    assert AnnotationSession(make_sequence(tmp_path / "seq", n=6), read_only=True).propagated_frames() == [1, 2, 3]


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / JOURNAL
    line = encode_records([frame_record(1, None, None)])
    path.write_bytes(b'{"journal": "abc"}\n' + line + b'{"f": 2, "o": "corr')  # killed inside a write
    j = Journal(path)
    j.append(encode_records([frame_record(3, None, None)]))
    j.close()
    parsed = read_journal(path.read_bytes(), None, 0)
    assert parsed.journal_id == "abc" and [r["f"] for _, r in parsed.records] == [1, 3]


def test_a_project_of_format_2_opens_and_is_rewritten_as_format_3(tmp_path, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=4)
    root = tmp_path / "seq.csknet"
    (root / "masks").mkdir(parents=True)
    for i in (0, 2):
        cv2.imwrite(str(root / ProjectStore.mask_name(i)), np.full((48, 64), 1 + i, np.uint8))
    manifest = {"format": "csknet-studio-project", "format_version": 2, "app_version": "0.1",
                "sequence": {"source": "../seq", "layout": "generic", "num_frames": 4, "names_sha1": names_digest(seq.names)},
                "scheme": MFNET.to_dict(), "checkpoint": None, "alignment": None,
                "frames": {seq.names[0]: {"index": 0, "origin": "corrected", "mask": "masks/000000.png"}}}
    (root / MANIFEST).write_text(json.dumps(manifest))
    (root / JOURNAL).write_text('{"f": 2, "o": "corrected"}\n')  # a format 2 line: the mask is a file
    s = AnnotationSession(seq)
    assert s.corrected_frames() == [0, 2] and (s.labels(2) == 3).all() and not s.problems
    s.close()
    assert json.loads((root / MANIFEST).read_text())["format_version"] == project_mod.FORMAT_VERSION
