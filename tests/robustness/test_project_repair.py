"""Opening a damaged project repairs what it can and reports the rest: a bad mask costs its frame,
not the project; orphan masks are adopted; litter of killed saves is cleared; modes follow umask."""

from __future__ import annotations

import json
import os
import stat

import cv2
import numpy as np
import pytest

from csknet_studio.core import atomic
from csknet_studio.core.edits import Origin
from csknet_studio.core.project import JOURNAL, MANIFEST
from csknet_studio.core.session import AnnotationSession


def _project(make_sequence, tmp_path, frames=(0, 1, 2, 3), n=6):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=n))
    for i in frames:
        s.paint_stroke(i, [(5 + i, 5), (30, 20)], 1 + i, 3)
    want = {i: s.labels(i).copy() for i in frames}
    s.close()
    return s.project_path, want


def _reopen(make_sequence, tmp_path, n=6, **kw):
    return AnnotationSession(make_sequence(tmp_path / "seq", n=n), **kw)


def test_a_deleted_mask_costs_one_frame_and_the_rest_opens_with_a_report(tmp_path, make_sequence):
    project, want = _project(make_sequence, tmp_path)
    (project / "masks" / "000002.png").unlink()
    s = _reopen(make_sequence, tmp_path)
    assert s.corrected_frames() == [0, 1, 3]
    assert [(p.frame, p.file) for p in s.problems] == [(2, "masks/000002.png")]
    assert "missing" in str(s.problems[0]) and "no longer corrected" in str(s.problems[0])
    for i in (0, 1, 3):
        assert (s.labels(i) == want[i]).all()
    s.close()
    assert not _reopen(make_sequence, tmp_path).problems  # the repair was saved: the next open is clean


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_size", "colour"])
def test_a_corrupt_mask_costs_one_frame(tmp_path, damage, make_sequence):
    project, want = _project(make_sequence, tmp_path)
    path = project / "masks" / "000001.png"
    if damage == "garbage":
        path.write_bytes(b"not a png at all")
    elif damage == "truncated":  # a valid header, then the data stops
        path.write_bytes(path.read_bytes()[:60])
    elif damage == "wrong_size":
        cv2.imwrite(str(path), np.zeros((20, 30), np.uint8))
    else:
        cv2.imwrite(str(path), np.zeros((48, 64, 3), np.uint8))
    found = []
    s = _reopen(make_sequence, tmp_path)
    s.events.problems_found.connect(found.extend)
    s.labels(1)  # a truncated file passes the header check and fails when decoded
    assert s.corrected_frames() == [0, 2, 3] and s.origin(1) is not Origin.CORRECTED
    assert [p.frame for p in s.problems] == [1]
    assert damage != "truncated" or found == s.problems
    if damage == "wrong_size":
        assert "30x20 pixels but the frame is 64x48" in s.problems[0].reason
    assert "damaged/masks_000001.png" in s.problems[0].action  # kept for a person, not deleted
    assert (project / "damaged" / "masks_000001.png").is_file()
    s.close()
    s2 = _reopen(make_sequence, tmp_path)
    assert s2.corrected_frames() == [0, 2, 3] and not s2.problems


def test_ids_outside_the_scheme_become_unlabelled(tmp_path, make_sequence):
    project, _ = _project(make_sequence, tmp_path)
    m = cv2.imread(str(project / "masks" / "000000.png"), cv2.IMREAD_UNCHANGED)
    m[:4, :4] = 40  # MFNet has 9 classes
    cv2.imwrite(str(project / "masks" / "000000.png"), m)
    s = _reopen(make_sequence, tmp_path)
    lab = s.labels(0)
    assert (lab[:4, :4] == 255).all() and s.origin(0) is Origin.CORRECTED
    assert "class ids 40" in s.problems[0].reason and "16 pixels set to 255" in s.problems[0].action
    s.close()
    assert (_reopen(make_sequence, tmp_path).labels(0)[:4, :4] == 255).all()


def test_orphan_masks_are_adopted_when_valid_and_reported_when_not(tmp_path, make_sequence):
    project, _ = _project(make_sequence, tmp_path, frames=(0,))
    orphan = np.full((48, 64), 3, np.uint8)
    cv2.imwrite(str(project / "masks" / "000004.png"), orphan)  # e.g. left by a copy that wrote unlocked
    cv2.imwrite(str(project / "masks" / "000005.png"), np.zeros((10, 10), np.uint8))
    s = _reopen(make_sequence, tmp_path)
    assert s.corrected_frames() == [0, 4] and (s.labels(4) == 3).all()
    kinds = {p.frame: p.action for p in s.problems}
    assert kinds[4].startswith("adopted") and kinds[5] == "left as it is"
    s.close()
    manifest = json.loads((project / MANIFEST).read_text())
    assert [e["index"] for e in manifest["frames"].values()] == [0, 4]


def test_a_read_only_session_repairs_in_memory_only(tmp_path, make_sequence):
    project, _ = _project(make_sequence, tmp_path)
    (project / "masks" / "000002.png").write_bytes(b"junk")
    (project / "masks" / ".000003.png.abcd1234.tmp").write_bytes(b"half")
    files = sorted(p.name for p in project.rglob("*"))
    s = _reopen(make_sequence, tmp_path, read_only=True)
    assert s.corrected_frames() == [0, 1, 3] and [p.frame for p in s.problems] == [2]
    s.close()
    assert sorted(p.name for p in project.rglob("*")) == files


def test_temporary_files_of_a_killed_save_are_removed_on_open(tmp_path, make_sequence):
    project, _ = _project(make_sequence, tmp_path)
    litter = [project / "masks" / ".000001.png.k3j_x9qa.tmp", project / f".{MANIFEST}.zz81mmq0.tmp",
              project / "propagated" / ".000005.png.00000000.tmp"]
    keep = [project / "masks" / "notes.txt", project / "masks" / ".hidden"]
    for p in litter + keep:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    s = _reopen(make_sequence, tmp_path)
    assert sorted(s.removed_temps) == sorted(litter)
    assert not any(p.exists() for p in litter) and all(p.exists() for p in keep)
    s.close()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask, make_sequence):
    old = os.umask(umask)
    try:
        assert atomic.current_umask() == umask
        s = AnnotationSession(make_sequence(tmp_path / "seq", n=3))
        s.paint_stroke(0, [(5, 5)], 1, 2)
        s.paint_stroke(1, [(5, 5)], 2, 2)  # the second edit goes to the journal
        files = [s.project_path / MANIFEST, s.project_path / JOURNAL, s.project_path / "masks" / "000000.png",
                 s.project_path / "lock"]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        s.close()
    finally:
        os.umask(old)
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)


def test_an_autosave_appends_to_the_journal_and_leaves_the_manifest_alone(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=5))
    s.paint_stroke(0, [(5, 5)], 1, 2)  # the first save writes the manifest
    manifest = (s.project_path / MANIFEST).read_bytes()
    s.paint_stroke(1, [(9, 9)], 2, 2)
    s.fill_polygon(2, [(0, 0), (20, 0), (0, 20)], 3)
    s.undo()
    assert (s.project_path / MANIFEST).read_bytes() == manifest
    head, *lines = [json.loads(x) for x in (s.project_path / JOURNAL).read_text().splitlines()]
    assert list(head) == ["journal"]
    assert [(x["f"], x["o"]) for x in lines] == [(1, "corrected"), (2, "corrected"), (2, None)]
    assert "png" in lines[0] and "png" in lines[1] and "png" not in lines[2]  # the masks ride in the lines
    assert sorted(p.name for p in (s.project_path / "masks").iterdir()) == ["000000.png"]  # no file per edit
    assert _reopen(make_sequence, tmp_path, n=5, read_only=True).corrected_frames() == [0, 1]
    s.close()  # folds the journal into the manifest
    assert (s.project_path / JOURNAL).read_bytes() == b""
    assert [e["index"] for e in json.loads((s.project_path / MANIFEST).read_text())["frames"].values()] == [0, 1]


def test_a_torn_or_garbled_journal_line_is_skipped(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=5))
    s.paint_stroke(0, [(5, 5)], 1, 2)
    s.paint_stroke(1, [(9, 9)], 2, 2)
    journal = s.project_path / JOURNAL
    s.release_lock()  # as if killed: the journal is not folded in
    with open(journal, "ab") as fh:
        fh.write(b'{"f": 3, "o": "corrected"}\n{oops}\n{"f": 4, "o": "corr')  # torn last append
    r = _reopen(make_sequence, tmp_path, n=5)
    # frame 3's line names a mask that is not there: dropped and reported; the garbled line too
    assert r.corrected_frames() == [0, 1]
    assert sorted(str(p.file) for p in r.problems) == [f"{JOURNAL} line 4", "masks/000003.png"]
    r.close()
