"""One writer per project: a second copy of the app is refused or opens read-only; a dead copy's
lock is taken over. The other copy is a real process, as with two instances of the app."""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import ProjectError, ProjectLockedError
from csknet_studio.core.project_lock import LOCK_NAME, LockHolder, process_start_time
from csknet_studio.core.session import AnnotationSession

REPO = Path(__file__).resolve().parents[2]

HOLDER = f'''
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from csknet_studio.core.session import AnnotationSession
from tests.core.seqdata import make_sequence
s = AnnotationSession(make_sequence(Path(sys.argv[1]), n=4))
s.paint_stroke(0, [(5, 5), (20, 9)], 2, 3)
print("ready", flush=True)
sys.stdin.readline()  # hold the project until told to go
s.paint_stroke(1, [(30, 30)], 3, 2)
s.close()
print("closed", flush=True)
'''


def _spawn_holder(seq_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(seq_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    return proc


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_second_copy_is_refused_and_may_open_read_only(tmp_path, make_sequence):
    seq_dir = tmp_path / "seq"
    proc = _spawn_holder(seq_dir)
    try:
        with pytest.raises(ProjectLockedError, match=f"process {proc.pid} on ") as info:
            AnnotationSession(make_sequence(seq_dir, n=4))
        assert info.value.checkable and info.value.holder.pid == proc.pid

        ro = AnnotationSession(make_sequence(seq_dir, n=4), read_only=True)
        project = ro.project_path
        before = _files(project)
        assert ro.read_only and not ro.locked and ro.origin(0) is Origin.CORRECTED
        ro.paint_stroke(2, [(10, 10)], 5, 3)  # edits stay in memory: nothing is written
        assert ro.dirty
        with pytest.raises(ProjectError, match="read-only"):
            ro.save()
        ro.close()
        assert _files(project) == before

        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
    finally:
        proc.kill()
        proc.wait(10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
    s = AnnotationSession(make_sequence(seq_dir, n=4))  # the other copy closed: the lock is free
    assert s.corrected_frames() == [0, 1] and s.lock_taken_over is None and not s.problems
    s.close()


def test_the_lock_of_a_killed_copy_is_taken_over(tmp_path, make_sequence):
    seq_dir = tmp_path / "seq"
    proc = _spawn_holder(seq_dir)
    proc.kill()  # SIGKILL: no clean-up, the lock file stays behind
    proc.wait(10)
    for f in (proc.stdin, proc.stdout, proc.stderr):
        f.close()
    assert json.loads((tmp_path / "seq.csknet" / LOCK_NAME).read_text())["pid"] == proc.pid
    s = AnnotationSession(make_sequence(seq_dir, n=4))
    assert s.locked and s.lock_taken_over is not None and s.lock_taken_over.pid == proc.pid
    assert any(p.action == "taken over" for p in s.problems)
    assert s.corrected_frames() == [0]
    assert json.loads((s.project_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    s.close()
    assert not (s.project_path / LOCK_NAME).exists()


def _write_lock(project: Path, holder: LockHolder) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / LOCK_NAME).write_text(holder.to_text())


def test_a_lock_naming_a_dead_or_reused_pid_is_taken_over(tmp_path, make_sequence):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = LockHolder.me()
    for holder in (LockHolder(dead.pid, me.host, me.boot_id, None),  # gone
                   LockHolder(os.getppid(), me.host, me.boot_id, 1),  # alive, but started at another time
                   LockHolder(os.getppid(), me.host, "another-boot", process_start_time(os.getppid()))):
        _write_lock(tmp_path / "seq.csknet", holder)
        s = AnnotationSession(make_sequence(tmp_path / "seq", n=2))
        assert s.lock_taken_over == holder
        s.close()


def test_a_live_process_named_by_the_lock_is_respected_without_flock(tmp_path, make_sequence):
    """On a filesystem without flock the pid + start time check alone keeps a live copy's lock."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = LockHolder.me()
        _write_lock(tmp_path / "seq.csknet", LockHolder(sleeper.pid, me.host, me.boot_id,
                                                        process_start_time(sleeper.pid)))
        with pytest.raises(ProjectLockedError, match=str(sleeper.pid)):
            AnnotationSession(make_sequence(tmp_path / "seq", n=2))
        with pytest.raises(ProjectLockedError):  # a live copy on this machine cannot be forced out
            AnnotationSession(make_sequence(tmp_path / "seq", n=2), take_over_lock=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=2))  # it is gone now
    assert s.lock_taken_over is not None
    s.close()


def test_a_lock_from_another_machine_is_taken_over_only_when_asked(tmp_path, make_sequence):
    other = LockHolder(12345, "elsewhere." + socket.gethostname(), "b", 7, "2025-01-01T00:00:00Z")
    _write_lock(tmp_path / "seq.csknet", other)
    with pytest.raises(ProjectLockedError, match="another machine") as info:
        AnnotationSession(make_sequence(tmp_path / "seq", n=2))
    assert not info.value.checkable
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=2), take_over_lock=True)
    assert s.lock_taken_over == other
    s.close()


def test_sessions_of_one_process_share_the_lock_and_closing_frees_it(tmp_path, make_sequence):
    a = AnnotationSession(make_sequence(tmp_path / "seq", n=2))
    b = AnnotationSession(make_sequence(tmp_path / "seq", n=2))
    lock = tmp_path / "seq.csknet" / LOCK_NAME
    assert a.locked and b.locked and lock.is_file()
    a.close()
    assert lock.is_file()  # b still holds it
    b.close()
    assert not lock.exists() and not (tmp_path / "seq.csknet").exists()  # nothing was ever saved


def test_a_dropped_session_freed_by_the_collector_inside_acquire_does_not_hang(tmp_path, monkeypatch,
                                                                               make_sequence):
    """A session dropped without close() releases its lock from a finalizer, which the garbage
    collector may run while this thread is inside acquire() of another project."""
    dropped = AnnotationSession(make_sequence(tmp_path / "a", n=2))
    dropped.myself = dropped  # a cycle: only the collector frees it
    del dropped
    real = LockHolder.me.__func__
    monkeypatch.setattr(LockHolder, "me", classmethod(lambda cls, *a, **k: (gc.collect(), real(cls, *a, **k))[1]))
    opened = []
    t = threading.Thread(target=lambda: opened.append(AnnotationSession(make_sequence(tmp_path / "b", n=2))),
                         daemon=True)
    t.start()
    t.join(60)
    assert opened, "opening a project hung: the dropped session's lock release deadlocked inside acquire()"
    assert not (tmp_path / "a.csknet" / LOCK_NAME).exists()  # and the dropped one's lock is gone
    opened[0].close()
