"""One writer per project: a `lock` file in the project folder names the process that holds it.

Two copies of the app writing one project lose corrections silently (each rewrites the index from
its own memory), so a writable session takes this lock first and a second copy is refused, or opens
read-only. The lock is stale-safe:
- on this machine an exclusive flock on the file is held for the session's life; the kernel drops it
  when the process dies, however it dies, so a free flock means nobody holds the lock;
- the file also records pid, host, boot id and the process start time. Without flock (another OS),
  or when flock is free but the file names a process, that process is checked with os.kill(pid, 0)
  and /proc/<pid>/stat: dead, or a reused pid, means the lock is taken over;
- a holder on another host cannot be checked; only an explicit take-over replaces its lock.

Sessions of one process share the lock (counted): the process is the unit that writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from csknet_studio.core.atomic import file_mode
from csknet_studio.core.errors import ProjectLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux / macOS
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "lock"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after the last ")"
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project lock, as its file records it."""

    pid: int
    host: str
    boot_id: str = ""
    start: int | None = None
    since: str = ""
    app_version: str = ""

    @classmethod
    def me(cls, since: str = "", app_version: str = "") -> LockHolder:
        pid = os.getpid()
        return cls(pid, socket.gethostname(), _boot_id(), process_start_time(pid), since, app_version)

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        """The holder a lock file names; None when the file is empty or torn (a killed writer)."""
        try:
            d = json.loads(text)
            start = d.get("start")
            return cls(int(d["pid"]), str(d["host"]), str(d.get("boot_id", "")),
                       None if start is None else int(start), str(d.get("since", "")), str(d.get("app_version", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def to_text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """True / False on this host; None when it runs elsewhere and cannot be checked."""
        if not self.on_this_host:
            return None
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return False  # the machine rebooted since
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, another user's
        now = process_start_time(self.pid)
        return not (self.start is not None and now is not None and now != self.start)  # reused pid: dead

    def describe(self) -> str:
        since = f", since {self.since}" if self.since else ""
        return f"process {self.pid} on {self.host}{since}"


def read_holder(root: str | os.PathLike) -> LockHolder | None:
    """The holder named by the lock file of project folder `root`, if any (alive or not)."""
    try:
        return LockHolder.parse((Path(root) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


class ProjectLock:
    """A held lock (see the module doc). Get one with `acquire`; `release` when the session closes."""

    def __init__(self, path: Path, fd: int, key: str, taken_over: LockHolder | None) -> None:
        self.path, self._fd, self._key = path, fd, key
        self.taken_over = taken_over  # the dead (or forced-out) holder this lock replaced, if any
        self._count = 1

    def release(self) -> None:
        """Drop one reference; the last one deletes the lock file (and the project folder if that
        is all it held). Safe to call more than once."""
        with _registry_lock:
            if self._count <= 0:
                return
            self._count -= 1
            if self._count:
                return
            _held.pop(self._key, None)
            with contextlib.suppress(OSError):
                if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                    os.unlink(self.path)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            with contextlib.suppress(OSError):
                os.rmdir(self.path.parent)  # only succeeds when empty: a project never saved

    @property
    def held(self) -> bool:
        return self._count > 0


_held: dict[str, ProjectLock] = {}
# re-entrant: a session dropped without close() releases its lock from a weakref finalizer, which the
# garbage collector may run inside acquire() or release() of this very thread
_registry_lock = threading.RLock()


def _locked_error(root: Path, holder: LockHolder | None, checkable: bool) -> ProjectLockedError:
    who = holder.describe() if holder is not None else "another process"
    if checkable:
        hint = "close it, or open the project read-only"
    else:
        hint = ("it runs on another machine, so whether it is still running cannot be checked: open the "
                "project read-only, or take the lock over if that copy is gone (CLI: --take-over-lock)")
    return ProjectLockedError(f"project {root} is open in another copy of CSKNet Studio ({who}); {hint}",
                              holder, checkable)


def acquire(root: str | os.PathLike, *, take_over: bool = False, since: str = "",
            app_version: str = "") -> ProjectLock:
    """Lock project folder `root` (created if needed) for this process.

    Raises ProjectLockedError when a live process holds it; `take_over` only overrides a holder that
    cannot be checked (another host). OSError when the folder cannot be written."""
    root = Path(root)
    path = root / LOCK_NAME
    root.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _registry_lock:
        mine = _held.get(key)
        if mine is not None:
            mine._count += 1
            return mine
        for _ in range(8):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise _locked_error(root, _read_fd(fd), True) from None
                try:
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # released and deleted between our open and our flock: try again
                    os.close(fd)
                    continue
                holder = _read_fd(fd)
                taken = None
                if holder is not None and (holder.pid != os.getpid() or not holder.on_this_host):
                    alive = holder.alive()
                    if alive or (alive is None and not take_over):
                        raise _locked_error(root, holder, alive is not None)
                    taken = holder
                me = LockHolder.me(since, app_version).to_text().encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, me, 0)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            lock = ProjectLock(path, fd, key, taken)
            _held[key] = lock
            return lock
    raise OSError(f"could not create the lock file {path}: it keeps disappearing")


def _read_fd(fd: int) -> LockHolder | None:
    try:
        return LockHolder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except OSError:
        return None
