"""Killing the process mid-session (SIGKILL, no clean-up) loses no correction that was saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from csknet_studio.core.edits import Origin
from csknet_studio.core.session import AnnotationSession

REPO = Path(__file__).resolve().parents[2]
N_FRAMES, SIZE = 6, (96, 128)

# The k-th edit, shared by the child (which autosaves) and the parent (which replays in memory).
EDIT_SRC = '''
def apply_edit(s, k):
    f, x, y = k % 6, (k * 37) % 120, (k * 23) % 90
    c = 1 + k % 8
    if k % 5 == 4:
        s.fill_polygon(f, [(x, y), (x + 9, y), (x, y + 7)], c)
    else:
        s.paint_stroke(f, [(x, y), (x + 6, y + 4), (x + 11, y + 2)], c, 1 + k % 3)
'''
ns: dict = {}
exec(EDIT_SRC, ns)
apply_edit = ns["apply_edit"]

CHILD = f'''
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from csknet_studio.core.session import AnnotationSession
from tests.core.seqdata import make_sequence
{EDIT_SRC}
s = AnnotationSession(make_sequence(Path(sys.argv[1]), n={N_FRAMES}, size={SIZE}))
for k in range(100000):
    apply_edit(s, k)
    print(k, flush=True)  # printed only after the edit's autosave returned
'''


@pytest.mark.parametrize("kill_after", [15, 40])
def test_sigkill_mid_session_loses_no_saved_correction(tmp_path, kill_after, run_and_kill, make_sequence):
    seq_dir = tmp_path / "seq"
    last = run_and_kill(CHILD, seq_dir, kill_after, 0.003 * (kill_after % 7))  # inside a later step's save

    restored = AnnotationSession(make_sequence(seq_dir, n=N_FRAMES, size=SIZE))
    got = [(restored.origin(i), restored.labels(i).tobytes()) for i in range(N_FRAMES)]
    replay = AnnotationSession(make_sequence(None, n=N_FRAMES, size=SIZE), autosave=False)
    for k in range(last + 1):  # every edit the child reported as done (and saved)
        apply_edit(replay, k)
    for k in range(last + 1, last + 1000):  # the child may have saved a few more before it died
        want = [(replay.origin(i), replay.labels(i).tobytes()) for i in range(N_FRAMES)]
        if got == want:
            break
        apply_edit(replay, k)
    else:
        raise AssertionError(f"restored project matches no state at or after edit {last}")
    assert got[0][0] is Origin.CORRECTED
