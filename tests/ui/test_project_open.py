"""The window on a project another copy holds: it asks, then opens read-only (saving nothing) or
gives up; a project opened with repairs says what was repaired."""

from __future__ import annotations

import subprocess
import sys

import pytest

from csknet_studio.core.errors import ProjectLockedError
from csknet_studio.core.project_lock import LOCK_NAME, LockHolder, process_start_time
from csknet_studio.core.session import AnnotationSession


@pytest.fixture
def other_copy(tmp_path):
    """A live process named by the project's lock, as a second instance of the app would be."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    me = LockHolder.me()
    project = tmp_path / "seq.csknet"
    project.mkdir()
    (project / LOCK_NAME).write_text(LockHolder(sleeper.pid, me.host, me.boot_id,
                                                process_start_time(sleeper.pid)).to_text())
    yield sleeper
    sleeper.kill()
    sleeper.wait()


def _close_boxes(win):
    for box in list(win._error_boxes):
        box.close()


def test_a_held_project_opens_read_only_when_chosen(bare_window, tmp_path, other_copy, qtbot, make_sequence):
    win = bare_window
    asked = []
    win.ask_locked = lambda err: asked.append(err) or "read_only"
    seq = make_sequence(tmp_path / "seq", n=3)
    win.set_sequence(seq)
    assert len(asked) == 1 and str(other_copy.pid) in str(asked[0])
    assert win.session.read_only and "(read-only)" in win.windowTitle()
    # the status line leads with what matters, and reads whole on hover however narrow the window
    assert win.status.currentMessage().startswith("Read-only: corrections made here are not saved")
    assert win.status.toolTip() == win.status.currentMessage()
    win.session.paint_stroke(0, [(5, 5)], 1, 2)
    assert not (tmp_path / "seq.csknet" / "project.json").exists()  # nothing written
    _close_boxes(win)


def test_cancel_keeps_the_project_closed(bare_window, tmp_path, other_copy, make_sequence):
    win = bare_window
    win.ask_locked = lambda err: "cancel"
    with pytest.raises(ProjectLockedError):
        win.set_sequence(make_sequence(tmp_path / "seq", n=3))
    assert win.session is None


def test_retry_opens_once_the_other_copy_is_gone(bare_window, tmp_path, other_copy, make_sequence):
    win = bare_window

    def close_other(err):
        other_copy.kill()
        other_copy.wait()
        return "retry"

    win.ask_locked = close_other
    win.set_sequence(make_sequence(tmp_path / "seq", n=3))
    assert win.session.locked and not win.session.read_only
    assert win.session.lock_taken_over.pid == other_copy.pid


def test_repairs_are_reported_when_the_project_opens(bare_window, tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=3))
    s.paint_stroke(1, [(5, 5)], 1, 2)
    s.paint_stroke(2, [(5, 5)], 1, 2)
    s.close()
    (tmp_path / "seq.csknet" / "masks" / "000001.png").unlink()
    shown = []
    bare_window.error_shown.connect(shown.append)
    bare_window.set_sequence(make_sequence(tmp_path / "seq", n=3))
    assert bare_window.session.corrected_frames() == [2]
    assert len(shown) == 1 and "repairs" in shown[0] and "frame 1 (masks/000001.png)" in shown[0]
    _close_boxes(bare_window)
