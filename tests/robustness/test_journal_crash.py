"""kill -9 in the middle of autosaving (the journal append, an undo, a propagation, a background
compaction writing mask files and the manifest) loses no acknowledged edit, and the next open folds
the journal into the manifest."""

from __future__ import annotations

import pytest

from csknet_studio.core.project import JOURNAL
from csknet_studio.core.session import AnnotationSession
from tests.core.crash_steps import assert_replay_reaches, autosaving_child, labels_state, load_step

N_FRAMES, SIZE = 8, (96, 128)

# The k-th step, shared by the child (which autosaves) and the parent (which replays in memory).
# Every fourth step is an undo, so first corrections are undone and their mask files removed.
STEP_SRC = '''
def step(s, k):
    if k % 4 == 3:
        s.undo()
        return
    f, x, y = (k * 3) % 8, (k * 37) % 120, (k * 23) % 90
    s.paint_stroke(f, [(x, y), (x + 6, y + 4), (x + 11, y + 2)], 1 + k % 8, 1 + k % 3)
'''
step = load_step(STEP_SRC)
CHILD = autosaving_child(STEP_SRC, N_FRAMES, SIZE)


@pytest.mark.parametrize("kill_after", [9, 26, 61])
def test_sigkill_during_journalled_autosave_loses_no_acknowledged_edit(tmp_path, kill_after, run_and_kill,
                                                                       make_sequence):
    seq_dir = tmp_path / "seq"
    last = run_and_kill(CHILD, seq_dir, kill_after, 0.002 * (kill_after % 5))  # inside a later step's save

    project = tmp_path / "seq.csknet"
    assert (project / JOURNAL).stat().st_size > 0  # the child never compacted: replay is exercised
    restored = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE))
    got = labels_state(restored)
    # the only reports a kill may cause: a mask deleted by an undo whose journal line was not written
    assert all("missing" in p.reason or p.action.startswith("adopted") or p.action == "taken over"
               for p in restored.problems), restored.problems
    assert (project / JOURNAL).stat().st_size == 0  # folded into the manifest on open
    assert not list(project.rglob("*.tmp"))
    assert_replay_reaches(got, step, last, N_FRAMES, SIZE, more=50)
    restored.close()
    again = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE), read_only=True)
    assert labels_state(again) == got and not again.problems


# Compaction every 3 journal lines, so the kill often lands inside one (mask files being written or
# the manifest); every seventh step propagates labels to two frames (one append of two lines).
STEP_COMPACT_SRC = STEP_SRC.replace("def step(s, k):", """def step(s, k):
    import numpy as np
    if k % 7 == 5:
        f = (k * 5) % 7
        s.apply_propagation({f: np.full(SIZE, 1 + k % 5, np.uint8), f + 1: np.full(SIZE, 2, np.uint8)})
        return""")
step_compact = load_step(STEP_COMPACT_SRC, SIZE=SIZE)
CHILD_COMPACT = autosaving_child(STEP_COMPACT_SRC, N_FRAMES, SIZE, setup=f"""from csknet_studio.core import session_store
SIZE = {SIZE}
session_store.COMPACT_LINES = 3""")


@pytest.mark.parametrize("kill_after", [12, 45])
def test_sigkill_during_background_compaction_loses_no_acknowledged_edit(tmp_path, kill_after, run_and_kill,
                                                                         make_sequence):
    seq_dir = tmp_path / "seq"
    last = run_and_kill(CHILD_COMPACT, seq_dir, kill_after, 0.003 * (kill_after % 4))
    project = tmp_path / "seq.csknet"
    restored = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE))
    got = labels_state(restored)
    assert all("missing" in p.reason or p.action.startswith(("adopted", "removed")) or p.action == "taken over"
               for p in restored.problems), restored.problems
    assert not list(project.rglob("*.tmp"))
    assert_replay_reaches(got, step_compact, last, N_FRAMES, SIZE, more=50)
    restored.close()
    again = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE), read_only=True)
    assert labels_state(again) == got and not again.problems
