"""AnnotationSession: tools, undo/redo exactness, diff memory, events, autosave/restore, disk full."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csknet_studio.core import project as project_mod
from csknet_studio.core import project_journal
from csknet_studio.core.classes import MFNET, PST900
from csknet_studio.core.edits import EMPTY_RECT, Origin, Rect
from csknet_studio.core.errors import ProjectError
from csknet_studio.core.session import AnnotationSession


def state(s: AnnotationSession) -> list[tuple[str, bytes]]:
    return [(s.origin(i).value, s.labels(i).tobytes()) for i in range(len(s))]


def test_untouched_frames_are_empty_and_cost_nothing(make_sequence):
    s = AnnotationSession(make_sequence(None, n=4))
    assert s.project_path is None
    assert s.origins() == [Origin.EMPTY] * 4
    lab = s.labels(2)
    assert lab.shape == (48, 64) and (lab == 255).all() and not lab.flags.writeable
    assert s.labels(3) is lab  # one shared read-only mask per frame size, not one per frame
    assert s.corrected_frames() == [] and s.undo_nbytes == 0
    with pytest.raises(IndexError):
        s.labels(4)


def test_prediction_is_not_a_correction(make_sequence):
    seq = make_sequence(None, n=3)
    s = AnnotationSession(seq)
    seen = []
    s.events.origin_changed.connect(lambda f: seen.append(("origin", f)))
    s.events.labels_changed.connect(lambda f, r: seen.append(("labels", f, r)))
    s.set_prediction(1, seq[1].label)
    assert s.origin(1) is Origin.PREDICTED and (s.labels(1) == seq[1].label).all()
    assert ("origin", 1) in seen and ("labels", 1, Rect(0, 0, 48, 64)) in seen
    assert not s.can_undo and s.corrected_frames() == []
    with pytest.raises(ValueError, match="shape"):
        s.set_prediction(1, np.zeros((10, 10), np.uint8))


def test_tools_change_the_right_pixels_and_return_the_dirty_rect(make_sequence):
    seq = make_sequence(None, n=3)
    s = AnnotationSession(seq)
    r = s.paint_stroke(0, [(10, 20), (30, 20)], class_id=2, radius=3)
    lab = s.labels(0)
    assert r == Rect(17, 7, 24, 34)  # a round brush 2r+1 = 7 wide along y = 20, x in [10-3, 30+3]
    assert (lab[r.slices][3] == 2).all() and lab[20, 6] == 255 and lab[16, 20] == 255
    outside = np.ones(lab.shape, bool)
    outside[r.slices] = False
    assert (lab[outside] == 255).all()
    assert s.origin(0) is Origin.CORRECTED

    r = s.erase_stroke(0, [(20, 20)], radius=1)
    assert r == Rect(19, 19, 22, 22) and s.labels(0)[20, 20] == 255 and s.labels(0)[20, 18] == 2

    # flood fill is 4-connected: a diagonal neighbour of the region is a different region
    s.fill_polygon(1, [(0, 0), (9, 0), (9, 9), (0, 9)], 1)
    s.fill_polygon(1, [(10, 10), (19, 10), (19, 19), (10, 19)], 1)
    r = s.flood_fill(1, (2, 2), 4)
    assert r == Rect(0, 0, 10, 10)
    lab = s.labels(1)
    assert (lab[:10, :10] == 4).all() and (lab[10:20, 10:20] == 1).all() and lab[30, 30] == 255
    assert s.flood_fill(1, (2, 2), 4) == EMPTY_RECT  # nothing changes: no undo step

    s.set_prediction(2, seq[2].label)
    assert s.copy_from_previous(2) == Rect(0, 0, 48, 64)
    assert (s.labels(2) == s.labels(1)).all()
    r = s.accept_prediction(2)
    assert (s.labels(2) == seq[2].label).all() and s.origin(2) is Origin.CORRECTED and not r.empty
    with pytest.raises(ValueError, match="no previous"):
        s.copy_from_previous(0)
    with pytest.raises(ValueError, match="class id"):
        s.flood_fill(0, (0, 0), 42)


def test_accepting_a_prediction_marks_the_frame_corrected_and_undo_reverts(make_sequence):
    seq = make_sequence(None, n=2)
    s = AnnotationSession(seq)
    s.set_prediction(0, seq[0].label)
    assert s.accept_prediction(0) == EMPTY_RECT  # no pixel changes, but the origin does
    assert s.origin(0) is Origin.CORRECTED and s.can_undo
    s.undo()
    assert s.origin(0) is Origin.PREDICTED
    s.redo()
    assert s.origin(0) is Origin.CORRECTED
    with pytest.raises(ValueError, match="no prediction"):
        s.accept_prediction(1)


def test_a_live_stroke_is_one_undo_step_and_repaints_only_its_segments(make_sequence):
    s = AnnotationSession(make_sequence(None, n=1))
    rects = []
    s.events.labels_changed.connect(lambda f, r: rects.append(r))
    r0 = s.begin_stroke(0, 3, 2, (5, 5))
    r1 = s.extend_stroke((15, 5))
    r2 = s.extend_stroke((15, 25))
    assert rects == [r0, r1, r2] and all(r.area < 48 * 64 / 4 for r in rects)
    assert s.origin(0) is Origin.CORRECTED  # live: the view shows the frame as corrected already
    total = s.end_stroke()
    assert total == r0.union(r1).union(r2)
    s.undo()
    assert s.origin(0) is Origin.EMPTY and (s.labels(0) == 255).all() and not s.can_undo
    s.redo()
    assert (s.labels(0)[5, 5:16] == 3).all() and (s.labels(0)[5:26, 15] == 3).all()


def test_cancel_stroke_restores_the_pixels_without_an_undo_step(make_sequence):
    s = AnnotationSession(make_sequence(None, n=1))
    s.paint_stroke(0, [(10, 10)], 1, 4)
    before = s.labels(0).copy()
    s.begin_stroke(0, 2, 3, (12, 12))
    s.extend_stroke((30, 30))
    s.cancel_stroke()
    assert (s.labels(0) == before).all()
    s.undo()
    assert not s.can_undo and s.origin(0) is Origin.EMPTY


def test_small_stroke_diff_is_tiny_compared_with_a_frame(make_sequence):
    h, w = 480, 640
    s = AnnotationSession(make_sequence(None, n=2, size=(h, w)))
    s.set_prediction(1, np.zeros((h, w), np.uint8))
    s.paint_stroke(0, [(100, 100), (110, 104), (120, 110)], 2, radius=4)
    s.paint_stroke(0, [(300, 200), (310, 204)], 5, radius=6)
    assert 0 < s.undo_nbytes < 2000, s.undo_nbytes  # a frame is 307,200 bytes
    s.flood_fill(1, (0, 0), 1)  # a whole-frame edit still packs to a few kB (zlib)
    assert s.undo_nbytes < 0.05 * h * w


def test_history_is_trimmed_to_the_memory_budget_and_reports_it(make_sequence):
    s = AnnotationSession(make_sequence(None, n=1), undo_budget_bytes=3000)
    trimmed = []
    s.events.history_trimmed.connect(trimmed.append)
    for k in range(40):
        s.paint_stroke(0, [(3 + k, 3), (3 + k, 40)], 1 + k % 3, 1)
    assert trimmed and s.history_dropped == sum(trimmed) and s.undo_nbytes <= 3000
    undone = 0
    while s.undo():
        undone += 1
    assert undone == 40 - s.history_dropped
    assert s.origin(0) is Origin.CORRECTED  # the oldest strokes can no longer be undone


def _apply(s: AnnotationSession, kind: int, f: int, x0: int, y0: int, x1: int, y1: int, c: int) -> Rect:
    if kind == 0:
        return s.paint_stroke(f, [(x0, y0), (x1, y1)], c, radius=(x0 + y1) % 3)
    if kind == 1:
        return s.erase_stroke(f, [(x0, y0), (x1, y1)], 1)
    if kind == 2:
        return s.flood_fill(f, (x0, y0), c)
    if kind == 3:
        return s.fill_polygon(f, [(x0, y0), (x1, y0), (x1, y1), (x0, y1 + 1)], c)
    if kind == 4:
        return s.accept_prediction(1)
    return s.copy_from_previous(max(f, 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 2), st.integers(0, 19), st.integers(0, 15),
                          st.integers(0, 19), st.integers(0, 15), st.sampled_from([0, 1, 2, 255])),
                min_size=1, max_size=25))
def test_random_edit_undo_redo_sequences_restore_exact_masks(make_sequence, ops):
    seq = make_sequence(None, n=3, size=(16, 20), seed=1)
    s = AnnotationSession(seq)
    s.set_prediction(1, seq[1].label)
    snaps, pos = [state(s)], 0
    for kind, f, x0, y0, x1, y1, c in ops:
        if kind == 6:
            if s.undo() is not None:
                pos -= 1
        elif kind == 7:
            if s.redo() is not None:
                pos += 1
        else:
            r = _apply(s, kind, f, x0, y0, x1, y1, c)
            now = state(s)
            if now != snaps[pos]:  # a real step was recorded
                snaps[pos + 1 :] = [now]
                pos += 1
            else:
                assert r == EMPTY_RECT or kind == 4
        assert state(s) == snaps[pos]
    while s.undo() is not None:
        pos -= 1
        assert state(s) == snaps[pos]
    assert pos == 0
    while s.redo() is not None:
        pos += 1
        assert state(s) == snaps[pos]
    assert pos == len(snaps) - 1


def test_autosave_restores_corrections_and_drops_undone_ones(tmp_path, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=5)
    s = AnnotationSession(seq)
    saved = []
    s.events.saved.connect(saved.append)
    s.set_prediction(4, seq[4].label)
    s.paint_stroke(0, [(5, 5), (30, 30)], 2, 3)
    s.fill_polygon(2, [(0, 0), (20, 0), (0, 20)], 7)
    s.flood_fill(3, (1, 1), 1)
    s.undo()  # frame 3 is no longer corrected
    proj = tmp_path / "seq.csknet"
    assert saved and saved[-1] == proj and not s.dirty
    want = [Origin.CORRECTED, Origin.EMPTY, Origin.CORRECTED, Origin.EMPTY, Origin.EMPTY]
    live = AnnotationSession.open(make_sequence(tmp_path / "seq", n=5), read_only=True)  # manifest + journal
    assert live.origins() == want and all((live.labels(i) == s.labels(i)).all() for i in range(4))
    s.close()  # compaction: the journalled masks go to their files, frame 3's goes
    assert sorted(p.name for p in (proj / "masks").iterdir()) == ["000000.png", "000002.png"]
    manifest = json.loads((proj / "project.json").read_text())
    assert manifest["sequence"]["source"] == "../seq" and manifest["scheme"]["name"] == "mfnet"
    assert manifest["format_version"] == project_mod.FORMAT_VERSION

    s2 = AnnotationSession.open(make_sequence(tmp_path / "seq", n=5))
    assert s2.origins() == want
    for i in range(4):
        assert (s2.labels(i) == s.labels(i)).all()


def test_project_settings_round_trip(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=2))
    ck = tmp_path / "weights.pt"
    s.set_checkpoint(ck, "abc123")
    s.set_alignment({"dx": 2.0, "dy": -1.0, "scale": 1.01})
    s2 = AnnotationSession(make_sequence(tmp_path / "seq", n=2))
    assert s2.checkpoint.weights_hash == "abc123" and s2.checkpoint.path == str(ck.resolve())
    assert s2.alignment == {"dx": 2.0, "dy": -1.0, "scale": 1.01}


def test_a_project_of_another_sequence_is_refused(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "a", n=3))
    s.paint_stroke(0, [(5, 5)], 1, 2)
    with pytest.raises(ProjectError, match="another sequence"):
        AnnotationSession(make_sequence(tmp_path / "b", n=4), tmp_path / "a.csknet")
    with pytest.raises(ProjectError, match="relink"):  # same frames, other place: moved?
        AnnotationSession(make_sequence(tmp_path / "b", n=3), tmp_path / "a.csknet")
    moved = AnnotationSession(make_sequence(tmp_path / "b", n=3), tmp_path / "a.csknet", relink=True)
    assert moved.origin(0) is Origin.CORRECTED


@pytest.mark.parametrize("content, match", [
    ("{not json", "unreadable"),
    ('{"format": "something-else"}', "not a CSKNet Studio project"),
    ('{"format": "csknet-studio-project", "format_version": 99}', "version 99"),
    ('{"format": "csknet-studio-project", "format_version": 1}', "malformed"),
])
def test_bad_project_files_raise_project_error(tmp_path, content, match, make_sequence):
    (tmp_path / "seq.csknet").mkdir()
    (tmp_path / "seq.csknet" / "project.json").write_text(content)
    with pytest.raises(ProjectError, match=match):
        AnnotationSession(make_sequence(tmp_path / "seq", n=2))


def test_full_disk_keeps_everything_in_memory_and_saves_later(tmp_path, monkeypatch, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=3)
    s = AnnotationSession(seq)
    s.paint_stroke(0, [(5, 5)], 1, 2)  # the first save writes the manifest
    s.paint_stroke(0, [(9, 9)], 1, 2)  # later ones append to the journal
    on_disk = (tmp_path / "seq.csknet" / "project.json").read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_mod, "atomic_write_bytes", full)
    monkeypatch.setattr(project_mod, "atomic_write_text", full)
    monkeypatch.setattr(project_journal, "_write_all", full)
    journal = (tmp_path / "seq.csknet" / "journal.jsonl").read_bytes()
    failures, dirty = [], []
    s.events.save_failed.connect(failures.append)
    s.events.dirty_changed.connect(dirty.append)
    s.paint_stroke(1, [(20, 20)], 2, 3)  # the edit itself succeeds
    assert s.labels(1)[20, 20] == 2 and s.origin(1) is Origin.CORRECTED
    assert len(failures) == 1 and isinstance(failures[0], ProjectError)
    assert "No space left" in str(failures[0]) and "Nothing is lost" in str(failures[0])
    assert s.dirty and dirty == [True] and s.last_save_error is failures[0]
    with pytest.raises(ProjectError, match="No space left"):
        s.save()
    assert (tmp_path / "seq.csknet" / "project.json").read_bytes() == on_disk  # old project intact
    assert (tmp_path / "seq.csknet" / "journal.jsonl").read_bytes() == journal
    assert not list((tmp_path / "seq.csknet").rglob(".*tmp"))

    monkeypatch.undo()  # space again: the next edit writes frame 1 as well
    s.paint_stroke(2, [(30, 30)], 3, 1)
    assert not s.dirty and dirty == [True, False]
    s2 = AnnotationSession(make_sequence(tmp_path / "seq", n=3))
    assert s2.corrected_frames() == [0, 1, 2] and s2.labels(1)[20, 20] == 2


def test_scheme_switch_refuses_to_drop_labels_unless_forced(tmp_path, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=2, scheme=MFNET)
    s = AnnotationSession(seq)
    s.paint_stroke(0, [(5, 5)], 7, 2)  # color_cone: PST900 has only 5 classes
    s.paint_stroke(1, [(5, 5)], 2, 2)
    s.set_prediction(1, np.full((48, 64), 8, np.uint8))
    with pytest.raises(ProjectError, match="frame_0000"):
        s.set_scheme(PST900)
    assert s.scheme == MFNET and s.labels(0)[5, 5] == 7
    s.set_scheme(PST900, force=True)
    assert s.labels(0)[5, 5] == 255 and s.labels(1)[5, 5] == 2
    assert s.prediction(1) is None and not s.can_undo  # old predictions and diffs are of the old ids
    s2 = AnnotationSession(make_sequence(tmp_path / "seq", n=2, scheme=MFNET))
    assert s2.scheme == PST900 and s2.labels(0)[5, 5] == 255


def test_save_as_moves_the_project(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=3))
    s.paint_stroke(0, [(5, 5)], 1, 2)
    s2 = AnnotationSession(make_sequence(tmp_path / "seq", n=3))  # frame 0 still only on disk
    s2.paint_stroke(2, [(9, 9)], 3, 2)
    assert s2.save_as(tmp_path / "elsewhere" / "p.csknet") == tmp_path / "elsewhere" / "p.csknet"
    s3 = AnnotationSession(make_sequence(tmp_path / "seq", n=3), tmp_path / "elsewhere" / "p.csknet")
    assert s3.corrected_frames() == [0, 2] and s3.labels(0)[5, 5] == 1 and s3.labels(2)[9, 9] == 3


def test_session_on_real_frames_of_varying_size(rgbt_real, tmp_path):
    from csknet_studio.core.data import open_sequence

    seq = open_sequence(rgbt_real / "roadscene")  # the project goes to tmp: never write beside shared data
    try:
        s = AnnotationSession(seq, tmp_path / "rs.csknet")
        h, w = s.frame_shape(1)
        s.flood_fill(1, (w // 2, h // 2), 2)
        s.paint_stroke(3, [(10, 10), (60, 40)], 1, 5)
        assert (s.labels(1) == 2).all() and s.labels(3).shape == seq[3].shape
        r = AnnotationSession(seq, tmp_path / "rs.csknet")
        assert r.corrected_frames() == [1, 3] and (r.labels(3) == s.labels(3)).all()
    finally:
        seq.close()
    assert not (rgbt_real / "roadscene.csknet").exists()


def test_project_of_a_read_only_sequence_goes_to_the_user_data_dir(tmp_path, monkeypatch):
    """A dataset folder without write bits never collects our files; reopening finds the project."""
    from csknet_studio.core.project import default_project_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    ro = tmp_path / "ro"
    (ro / "seq").mkdir(parents=True)
    writable = tmp_path / "rw" / "seq"
    writable.mkdir(parents=True)
    assert default_project_path(writable) == tmp_path / "rw" / "seq.csknet"
    ro.chmod(0o555)
    try:
        p = default_project_path(ro / "seq")
        assert p.parent == tmp_path / "xdg" / "csknet-studio" / "projects"
        assert p.name.startswith("seq-") and p.suffix == ".csknet"
        assert default_project_path(ro / "seq") == p  # stable: the same sequence finds its project
    finally:
        ro.chmod(0o755)
