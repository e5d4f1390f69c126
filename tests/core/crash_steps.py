"""The kill-mid-autosave tests' two halves: a child script that applies numbered steps to an
autosaving session and prints each one it finished, and the parent's in-memory replay of the same
steps until it reaches the state the killed child's project restores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from csknet_studio.core.session import AnnotationSession
from tests.core.seqdata import make_sequence

REPO = Path(__file__).resolve().parents[2]


def autosaving_child(step_src: str, n_frames: int, size: tuple[int, int], setup: str = "") -> str:
    """Python source of the child: `setup`, then `step_src` (which defines `step(s, k)`), then
    steps 0, 1, 2, ... on a session of the sequence in argv[1], each printed once its save returned."""
    return f'''
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from csknet_studio.core.session import AnnotationSession
from tests.core.seqdata import make_sequence
{setup}
{step_src}
s = AnnotationSession(make_sequence(Path(sys.argv[1]), n={n_frames}, size={size}))
for k in range(100000):
    step(s, k)
    print(k, flush=True)  # printed only after the step's autosave returned
'''


def load_step(step_src: str, **names: object) -> Callable[[AnnotationSession, int], None]:
    """The `step` function `step_src` defines, for the parent's replay."""
    ns: dict = dict(names)
    exec(step_src, ns)
    return ns["step"]


def labels_state(s: AnnotationSession) -> list:
    """Every frame's origin and label bytes: what a restored project must match."""
    return [(s.origin(i), s.labels(i).tobytes()) for i in range(len(s))]


def assert_replay_reaches(got: list, step: Callable[[AnnotationSession, int], None], last: int,
                          n_frames: int, size: tuple[int, int], more: int) -> None:
    """Replay steps 0..`last` (all the child reported as saved), then up to `more` further ones
    (the child may have saved those before it died), until the state equals `got`."""
    replay = AnnotationSession(make_sequence(None, n=n_frames, size=size), autosave=False)
    for k in range(last + 1):
        step(replay, k)
    for k in range(last + 1, last + more):
        if got == labels_state(replay):
            return
        step(replay, k)
    raise AssertionError(f"restored project matches no state at or after step {last}")
