"""The parent's half of the HDF5 export writer: the child process (core/export_process.py run as
a script) that writes the file, started ahead (`prestart`) or on demand, and the frames streamed to
it (`WriterProcess`). The parent deflates gzip chunks on threads, compresses every second lzf frame
in an HDF5 file in memory, and hands raw lzf frames over through shared memory slots."""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

from csknet_studio.core import export_process
from csknet_studio.core.export_process import IN_FLIGHT, recv_message, send_message

try:
    import fcntl
except ImportError:  # Windows: pipes keep their default size
    fcntl = None  # type: ignore[assignment]

_POLL_S = 0.05
# A frame of labels is 300 KB at 480x640 and a pipe holds 64 KB by default: each frame took five
# wake-ups of the child to cross. Linux lets a pipe grow to 1 MB (fs.pipe-max-size) unprivileged.
_F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20
# gzip labels are deflated in the parent, on threads (zlib releases the GIL), this many frames ahead
# of the one the child writes; the child stores the deflated chunk as it is.
DEFLATE_THREADS = 2
DEFLATE_AHEAD = 4
# lzf is a filter only HDF5 applies, and the child applying it to every frame was the export's
# bottleneck while the parent's core idled: the parent compresses every LZF_SHARE-th frame itself
# (HDF5 in memory, never on disk) and sends the stored chunk, as with gzip.
LZF_SHARE = 2


def signal_text(code: int) -> str:
    """"signal 11: Segmentation fault" for a child killed by signal 11."""
    try:
        name = signal.strsignal(code) or signal.Signals(code).name
    except ValueError:
        name = "unknown signal"
    return f"signal {code}: {name}"


class WriterFailed(Exception):
    """The child reported an error or died; `text` says which, for the parent's ExportError."""

    def __init__(self, text: str, crashed: bool) -> None:
        super().__init__(text)
        self.text = text
        self.crashed = crashed


class _Slots:
    """`IN_FLIGHT` frame-sized slots of memory the child maps too, so raw labels (lzf, which only
    HDF5 can apply) cross by one copy instead of through the pipe. An unnamed file (O_TMPFILE,
    in RAM under /dev/shm) inherited by descriptor: nothing is left behind whatever stops first.
    The file is made empty when the child starts (`new_file`) and sized once the frame size is known."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        fh.truncate(size * IN_FLIGHT)
        self.size, self.fd = size, fh.fileno()
        self._map = mmap.mmap(self.fd, size * IN_FLIGHT)

    @staticmethod
    def new_file() -> IO[bytes] | None:
        """None where descriptors cannot be passed (Windows) or no such file can be made: the
        labels then go through the pipe."""
        if os.name != "posix":
            return None
        try:
            return tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)  # noqa: SIM115 (closed by the child's owner)
        except OSError:
            return None

    def put(self, slot: int, labels: Any) -> Any:
        """Copy C-ordered uint8 `labels` into `slot` and return the slot number; anything of
        another size is returned as it is, for the pipe."""
        src = memoryview(labels)
        if not src.c_contiguous or src.nbytes != self.size:
            return labels
        with memoryview(self._map) as whole:
            whole[slot * self.size:(slot + 1) * self.size] = src.cast("B")
        return slot

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()


class _LzfChunks:
    """lzf chunks made in the parent: each frame written into a one-frame dataset of an HDF5 file
    held in memory (nothing on disk, so no disk error can reach HDF5 here) and read back as stored."""

    def __init__(self, h: int, w: int) -> None:
        self._file = h5py.File(f"lzf-{id(self)}.h5", "w", driver="core", backing_store=False)
        self._ds = self._file.create_dataset("labels", (1, h, w), np.uint8, chunks=(1, h, w), compression="lzf")

    def __call__(self, labels: Any) -> tuple[int, bytes]:
        self._ds[0] = labels
        return self._ds.id.read_direct_chunk((0, 0, 0))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()


class _Child:
    """A started writer process: its pipes, the thread reading its replies, and the file its lzf
    slots will live in. `ready` is set once it has imported numpy and h5py."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
        self.slot_file = _Slots.new_file()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     start_new_session=True,
                                     pass_fds=() if self.slot_file is None else (self.slot_file.fileno(),))
        self.replies: queue.Queue[tuple | None] = queue.Queue()
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name="export-writer-replies", daemon=True)
        self._reader.start()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if fcntl is not None:
                with contextlib.suppress(OSError):
                    fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr]

    def _read(self) -> None:
        try:
            while True:
                msg = recv_message(self.proc.stdout)  # type: ignore[arg-type]
                if msg == ("ready",):
                    self.ready.set()
                else:
                    self.replies.put(msg)
        except (EOFError, OSError, pickle.UnpicklingError, struct.error):
            self.replies.put(None)

    def usable(self) -> bool:
        """Still running, and started with the command an export would use now."""
        return self.proc.poll() is None and self.command == export_process.writer_command()

    def reap(self, timeout: float) -> int:
        """Wait up to `timeout` s for the child to exit, then kill it; its return code."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self) -> None:
        """End of input: the child removes any file it has open and exits; killed if it lingers."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        self.reap(5)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]
        if self.slot_file is not None:
            self.slot_file.close()


_spare: _Child | None = None
_spare_lock = threading.Lock()


def prestart(wait: bool = False) -> None:
    """Start a writer for the next export now, so its start-up overlaps the user choosing a path
    or the session opening; `wait`: return once it is ready. A no-op while a spare is running."""
    global _spare
    with _spare_lock:
        if _spare is None or not _spare.usable():
            old, _spare = _spare, _Child(export_process.writer_command())
            if old is not None:
                old.close()
        child = _spare
    if wait:
        child.ready.wait(30)


def _take_child() -> _Child:
    """The prestarted child if it is still usable, else a new one."""
    global _spare
    with _spare_lock:
        child, _spare = _spare, None
    if child is not None and child.usable():
        return child
    if child is not None:
        child.close()
    return _Child(export_process.writer_command())


@atexit.register
def stop_spare() -> None:
    """Stop the writer `prestart` started if no export took it (its owner closes, the app exits)."""
    global _spare
    with _spare_lock:
        child, _spare = _spare, None
    if child is not None:
        child.close()


class WriterProcess:
    """The parent's handle on one child writing `tmp`; at most `IN_FLIGHT` frames are in the pipe.

    `frame` and `finish` wait for the child, checking `cancel()` every 50 ms; progress(done, n) is
    called as the child confirms frames. Raises WriterFailed, or whatever `on_cancel()` raises."""

    def __init__(self, tmp: Path, spec: dict[str, Any], progress: Callable[[int, int], None] | None,
                 cancel: Callable[[], bool] | None, on_cancel: Callable[[], None]) -> None:
        self._child = _take_child()
        self._replies = self._child.replies
        self._level = int(spec["level"]) if spec["compression"] == "gzip" else None
        self._slots: _Slots | None = None
        if self._level is None and self._child.slot_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._slots = _Slots(self._child.slot_file, int(spec["h"]) * int(spec["w"]))
        if self._slots is not None:
            spec = {**spec, "slots": {"fd": self._slots.fd, "bytes": self._slots.size, "n": IN_FLIGHT}}
        self._lzf = _LzfChunks(int(spec["h"]), int(spec["w"])) if self._level is None else None
        self._n = int(spec["n"])
        self._progress = progress
        self._cancel = cancel
        self._on_cancel = on_cancel
        self._confirmed = 0
        self._deflate = ThreadPoolExecutor(DEFLATE_THREADS, thread_name_prefix="export-deflate") \
            if self._level is not None else None
        self._ahead: deque[tuple[int, Future, Any, dict[str, Any]]] = deque()
        self._send(("open", str(tmp), spec))

    def _send(self, msg: tuple) -> None:
        try:
            send_message(self._child.proc.stdin, msg)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def _died(self) -> WriterFailed:
        """The child is gone: say how (the signal that killed it, or its exit status)."""
        rc = self._child.reap(10)
        if rc is not None and rc < 0:
            return WriterFailed(f"the export process crashed ({signal_text(-rc)})", crashed=True)
        return WriterFailed(f"the export process stopped unexpectedly (exit status {rc})", crashed=True)

    def _wait(self, confirmed: int | None) -> None:
        """Block until the child confirmed `confirmed` frames; None: until it closed the file."""
        while confirmed is None or self._confirmed < confirmed:
            if self._cancel is not None and self._cancel():
                self._on_cancel()
            try:
                msg = self._replies.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if msg is None:
                raise self._died()
            if msg[0] == "ok":
                self._confirmed = int(msg[1]) + 1
                if self._progress is not None:
                    self._progress(self._confirmed, self._n)
            elif msg[0] == "done":
                return
            elif msg[0] == "error":
                raise WriterFailed(str(msg[1]), crashed=False)

    def frame(self, i: int, labels: Any, probs: Any, images: dict[str, Any]) -> None:
        """Hand frame i over; with gzip its labels are deflated ahead while earlier frames go out."""
        if self._deflate is None:
            if self._lzf is not None and i % LZF_SHARE == LZF_SHARE - 1:
                labels = self._lzf(labels)
            self._send_frame(i, labels, probs, images)
            return
        data = labels.tobytes()  # a C-order copy: the caller may reuse its array
        self._ahead.append((i, self._deflate.submit(zlib.compress, data, self._level), probs, images))
        while len(self._ahead) > DEFLATE_AHEAD or (self._ahead and self._ahead[0][1].done()):
            self._send_oldest()

    def _send_oldest(self) -> None:
        i, fut, probs, images = self._ahead.popleft()
        self._send_frame(i, fut.result(), probs, images)

    def _send_frame(self, i: int, labels: Any, probs: Any, images: dict[str, Any]) -> None:
        self._wait(max(0, i + 1 - IN_FLIGHT))  # frame i - IN_FLIGHT is written: its slot is free
        if self._slots is not None and not isinstance(labels, bytes | tuple):
            labels = self._slots.put(i % IN_FLIGHT, labels)
        self._send(("frame", i, labels, probs, images))

    def finish(self, corrected: Any, origins: list[str], names: list[str], attrs: dict[str, Any],
               origin_values: list[str]) -> None:
        while self._ahead:
            self._send_oldest()
        self._send(("finish", corrected, origins, names, attrs, origin_values))
        self._wait(None)

    def close(self) -> None:
        """Stop the child if it still runs (a cancel or a failure); safe to call twice."""
        if self._deflate is not None:
            self._deflate.shutdown(wait=True, cancel_futures=True)
        self._ahead.clear()
        if self._slots is not None:
            self._slots.close()
        if self._lzf is not None:
            self._lzf.close()
        self._child.close()
