"""The HDF5 writer behind `export_hdf5`, run in a child process.

HDF5 can take down the process it runs in: on a full disk HDF5 2.0 segfaults inside h5py. So the
file is written by a child (this file run as a script, `writer_command`); a crash there costs the
export and nothing else, and the parent reports it as an ExportError naming the signal. The parent
computes each frame's content, sends it down the child's stdin and reads the child's answers on its
stdout: one per few frames written, which is the progress. The child runs in its own session, so a
Ctrl+C in the terminal reaches only the parent, which decides how to stop (cancel, clean up).

Messages are length-prefixed pickles between the two halves of this program, never read from
anywhere else. A frame's labels travel as gzip chunks the parent deflated ahead (on threads), or,
for lzf (a filter only HDF5 applies), every second frame as the chunk the parent's in-memory HDF5
file stored and the others as the number of a shared memory slot they were copied into.
Parent to child: ("open", tmp, spec), ("frame", i, labels, probs, images),
("finish", corrected, origins, names, attrs). Child to parent: ("ready",) once numpy and h5py are
imported, then ("ok", i), ("done",), ("error", text).

Starting a child costs 0.3-0.4 s (Python, numpy, h5py), as long as writing 200 frames. `prestart()`
starts one ahead, when the export dialog opens or the export command begins, and the next export
takes it over warm.
"""

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

try:
    import fcntl
except ImportError:  # Windows: pipes keep their default size
    fcntl = None  # type: ignore[assignment]

# Upper bound on the file format: HDF5 1.10 and later read the file. HDF5 2.0's "latest" writes a
# layout message version that 1.x readers reject ("bad version number for layout message").
LIBVER = ("earliest", "v110")
_HEADER = struct.Struct("<Q")
_POLL_S = 0.05
# A frame of labels is 300 KB at 480x640 and a pipe holds 64 KB by default: each frame took five
# wake-ups of the child to cross. Linux lets a pipe grow to 1 MB (fs.pipe-max-size) unprivileged.
_F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20
# gzip labels are deflated in the parent, on threads (zlib releases the GIL), this many frames ahead
# of the one the child writes; the child stores the deflated chunk as it is.
DEFLATE_THREADS = 2
DEFLATE_AHEAD = 4
# Frames sent and not yet confirmed: enough that the parent keeps computing while the child starts
# (importing h5py) and while each confirmation crosses back; few enough to bound memory (a frame
# with EO, IR and probabilities is a few MB).
IN_FLIGHT = 8
# The child confirms every REPLY_EVERY-th frame (and the last): each reply wakes the parent, which
# cost the child about 1 ms a frame. Below IN_FLIGHT, so the parent never waits on a reply not sent.
REPLY_EVERY = IN_FLIGHT // 2
# lzf is a filter only HDF5 applies, and the child applying it to every frame was the export's
# bottleneck while the parent's core idled: the parent compresses every LZF_SHARE-th frame itself
# (HDF5 in memory, never on disk) and sends the stored chunk, as with gzip.
LZF_SHARE = 2


def _send(fh: IO[bytes], msg: tuple) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_HEADER.pack(len(data)))
    fh.write(data)
    fh.flush()


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = fh.read(n - len(buf))
        if not chunk:
            raise EOFError("pipe closed")
        buf += chunk
    return bytes(buf)


def _recv(fh: IO[bytes]) -> tuple:
    (size,) = _HEADER.unpack(_read_exact(fh, _HEADER.size))
    return pickle.loads(_read_exact(fh, size))


# --- the child -------------------------------------------------------------------------------------
class _Writer:
    """One open HDF5 file in the child; datasets of optional content are made at their first frame."""

    def __init__(self, tmp: str, spec: dict[str, Any]) -> None:
        # the child's alone: the parent's half of this module stays standard-library only
        import h5py  # child only
        import numpy as np  # child only

        self.h5py, self.np = h5py, np
        self.tmp = tmp
        self.spec = spec
        self.f = h5py.File(tmp, "w", libver=LIBVER)
        n, h, w = spec["n"], spec["h"], spec["w"]
        self.opts: dict[str, Any] = {"compression": spec["compression"]}
        if spec["compression"] == "gzip":
            self.opts["compression_opts"] = int(spec["level"])
        self.labels = self.f.create_dataset("labels", (n, h, w), np.uint8, chunks=(1, h, w), **self.opts)
        for k, v in spec["label_attrs"].items():
            self.labels.attrs[k] = v
        for dim, key in zip(self.labels.dims, "tyx", strict=True):
            dim.label = key
        self.f["exported_data"] = h5py.SoftLink("/labels")
        self.extra: dict[str, Any] = {}
        slots = spec.get("slots")
        self.slots = None if slots is None else mmap.mmap(slots["fd"], slots["bytes"] * slots["n"])
        self.slot_bytes = 0 if slots is None else slots["bytes"]

    def _dataset(self, name: str, sample: Any, attrs: dict[str, str] | None = None) -> Any:
        if name not in self.extra:
            ds = self.f.create_dataset(name, (self.spec["n"], *sample.shape), sample.dtype,
                                       chunks=(1, *sample.shape), **self.opts)
            for k, v in {**self.spec.get("dataset_attrs", {}).get(name, {}), **(attrs or {})}.items():
                ds.attrs[k] = v
            self.extra[name] = ds
        return self.extra[name]

    def frame(self, i: int, labels: Any, probs: Any, images: dict[str, Any]) -> None:
        if probs is not None:
            self._dataset("probabilities", probs, {"axes": "tcyx"})[i] = probs
        if isinstance(labels, bytes):  # deflated by the parent: exactly what HDF5's gzip filter stores
            self.labels.id.write_direct_chunk((i, 0, 0), labels)
        elif isinstance(labels, tuple):  # (filter mask, chunk) HDF5 stored in the parent's memory file
            self.labels.id.write_direct_chunk((i, 0, 0), labels[1], labels[0])
        elif isinstance(labels, int):  # in shared slot `labels`, which the parent reuses once i is confirmed
            h, w = self.spec["h"], self.spec["w"]
            self.labels[i] = self.np.frombuffer(self.slots, self.np.uint8, h * w,
                                                labels * self.slot_bytes).reshape(h, w)
        else:
            self.labels[i] = labels
        for key, img in images.items():
            self._dataset(key, img)[i] = img

    def finish(self, corrected: Any, origins: list[str], names: list[str], attrs: dict[str, Any],
               origin_values: list[str]) -> None:
        text = self.h5py.string_dtype("utf-8")
        self.f.create_dataset("corrected", data=corrected)
        self.f.create_dataset("frame_origin", data=origins, dtype=text)
        self.f["frame_origin"].attrs["values"] = self.np.array(origin_values, dtype=text)
        self.f.create_dataset("frame_names", data=names, dtype=text)
        for k, v in self.spec.get("frame_arrays", {}).items():
            self.f.create_dataset(k, data=v)
        for k, v in attrs.items():
            self.f.attrs[k] = self.np.array(v, dtype=text) if isinstance(v, list) else v
        self.f.close()
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def main() -> int:
    """Child entry: write what stdin says, answer on stdout; stray library output goes to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    writer: _Writer | None = None
    try:
        import h5py  # noqa: F401 (child only: imported before "ready", so a prestarted child waits warm)
        import numpy  # noqa: F401

        _send(out, ("ready",))
        while True:
            msg = _recv(inp)
            if msg[0] == "open":
                writer = _Writer(msg[1], msg[2])
            elif msg[0] == "frame" and writer is not None:
                writer.frame(*msg[1:])
                i = int(msg[1])
                if (i + 1) % REPLY_EVERY == 0 or i + 1 == writer.spec["n"]:
                    _send(out, ("ok", i))
            elif msg[0] == "finish" and writer is not None:
                writer.finish(*msg[1:])
                writer = None
                _send(out, ("done",))
                sys.stderr.flush()
                os._exit(0)  # the file is closed and synced: skip tearing down numpy and h5py (50 ms)
            else:
                raise ValueError(f"unexpected message {msg[0]!r}")
    except EOFError:  # the parent cancelled or is gone: leave nothing behind
        if writer is not None:
            writer.abandon()
        return 0
    except Exception as exc:  # reported to the parent, which owns the message the user sees
        if writer is not None:
            writer.abandon()
        with contextlib.suppress(OSError):
            _send(out, ("error", _error_text(exc)))
        return 1


def _error_text(exc: Exception) -> str:
    """One readable line: HDF5's OSErrors carry the whole C error stack (addresses, offsets)."""
    if isinstance(exc, OSError):
        text = str(exc)
        if exc.errno:
            detail = text if len(text) <= 160 else text[:157] + "..."
            return f"{os.strerror(exc.errno)} ({detail})"
        return text
    return f"{type(exc).__name__}: {exc}"


# --- the parent ------------------------------------------------------------------------------------
def writer_command() -> list[str]:
    """The child's command line (tests substitute one that limits the child's file size). This file
    run as a script, with -P so its folder does not shadow the standard library: the child needs
    numpy and h5py, not the package (whose import alone takes 70 ms)."""
    return [sys.executable, "-P", str(Path(__file__).resolve())]


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
        self._fh, self.size, self.fd = fh, size, fh.fileno()
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
        import h5py  # parent's lzf share only: the rest of the parent's half needs the standard library alone
        import numpy as np

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
                msg = _recv(self.proc.stdout)  # type: ignore[arg-type]
                if msg == ("ready",):
                    self.ready.set()
                else:
                    self.replies.put(msg)
        except (EOFError, OSError, pickle.UnpicklingError, struct.error):
            self.replies.put(None)

    def usable(self) -> bool:
        """Still running, and started with the command an export would use now."""
        return self.proc.poll() is None and self.command == writer_command()

    def close(self) -> None:
        """End of input: the child removes any file it has open and exits; killed if it lingers."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
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
            old, _spare = _spare, _Child(writer_command())
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
    return _Child(writer_command())


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
        self._proc = self._child.proc
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
            _send(self._proc.stdin, msg)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def _died(self) -> WriterFailed:
        """The child is gone: say how (the signal that killed it, or its exit status)."""
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        rc = self._proc.returncode
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


if __name__ == "__main__":
    raise SystemExit(main())
