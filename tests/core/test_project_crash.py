"""Killing the process mid-session (SIGKILL, no clean-up) loses no correction that was saved."""

from __future__ import annotations

import pytest

from csknet_studio.core.edits import Origin
from csknet_studio.core.session import AnnotationSession
from tests.core.crash_steps import assert_replay_reaches, autosaving_child, labels_state, load_step

N_FRAMES, SIZE = 6, (96, 128)

# The k-th edit, shared by the child (which autosaves) and the parent (which replays in memory).
EDIT_SRC = '''
def step(s, k):
    f, x, y = k % 6, (k * 37) % 120, (k * 23) % 90
    c = 1 + k % 8
    if k % 5 == 4:
        s.fill_polygon(f, [(x, y), (x + 9, y), (x, y + 7)], c)
    else:
        s.paint_stroke(f, [(x, y), (x + 6, y + 4), (x + 11, y + 2)], c, 1 + k % 3)
'''
step = load_step(EDIT_SRC)
CHILD = autosaving_child(EDIT_SRC, N_FRAMES, SIZE)


@pytest.mark.parametrize("kill_after", [15, 40])
def test_sigkill_mid_session_loses_no_saved_correction(tmp_path, kill_after, run_and_kill, make_sequence):
    seq_dir = tmp_path / "seq"
    last = run_and_kill(CHILD, seq_dir, kill_after, 0.003 * (kill_after % 7))  # inside a later step's save

    restored = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE))
    got = labels_state(restored)
    assert_replay_reaches(got, step, last, N_FRAMES, SIZE, more=1000)
    assert got[0][0] is Origin.CORRECTED
