"""The HDF5 writer behind `export_hdf5`, run in a child process.

HDF5 can take down the process it runs in: on a full disk HDF5 2.0 segfaults inside h5py. So the
file is written by a child (`python -m csknet_studio.core.export_process`); a crash there costs the
export and nothing else, and the parent reports it as an ExportError naming the signal. The parent
computes each frame's content, sends it down the child's stdin and reads the child's answers on its
stdout: one per frame written, which is the progress. The child runs in its own session, so a
Ctrl+C in the terminal reaches only the parent, which decides how to stop (cancel, clean up).

Messages are length-prefixed pickles between the two halves of this program, never read from
anywhere else. Parent to child: ("open", tmp, spec), ("frame", i, labels, probs, images),
("finish", corrected, origins, names, attrs). Child to parent: ("ok", i), ("done",), ("error", text).
The child imports only numpy and h5py, so it starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# Upper bound on the file format: HDF5 1.10 and later read the file. HDF5 2.0's "latest" writes a
# layout message version that 1.x readers reject ("bad version number for layout message").
LIBVER = ("earliest", "v110")
_HEADER = struct.Struct("<Q")
_POLL_S = 0.05


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
        if self.spec["compression"] == "gzip":  # deflated here and written raw: what the filter stores
            data = zlib.compress(self.np.ascontiguousarray(labels).tobytes(), int(self.spec["level"]))
            self.labels.id.write_direct_chunk((i, 0, 0), data)
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
        while True:
            msg = _recv(inp)
            if msg[0] == "open":
                writer = _Writer(msg[1], msg[2])
            elif msg[0] == "frame" and writer is not None:
                writer.frame(*msg[1:])
                _send(out, ("ok", msg[1]))
            elif msg[0] == "finish" and writer is not None:
                writer.finish(*msg[1:])
                writer = None
                _send(out, ("done",))
                return 0
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
    """The child's command line (tests substitute one that limits the child's file size)."""
    return [sys.executable, "-m", "csknet_studio.core.export_process"]


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


class WriterProcess:
    """The parent's handle on one child writing `tmp`; at most two frames are in flight.

    `frame` and `finish` wait for the child, checking `cancel()` every 50 ms; progress(done, n) is
    called as the child confirms frames. Raises WriterFailed, or whatever `on_cancel()` raises."""

    def __init__(self, tmp: Path, spec: dict[str, Any], progress: Callable[[int, int], None] | None,
                 cancel: Callable[[], bool] | None, on_cancel: Callable[[], None]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
        self._proc = subprocess.Popen(writer_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      start_new_session=True)
        self._replies: queue.Queue[tuple | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="export-writer-replies", daemon=True)
        self._reader.start()
        self._n = int(spec["n"])
        self._progress = progress
        self._cancel = cancel
        self._on_cancel = on_cancel
        self._confirmed = 0
        self._send(("open", str(tmp), spec))

    def _read(self) -> None:
        try:
            while True:
                self._replies.put(_recv(self._proc.stdout))  # type: ignore[arg-type]
        except (EOFError, OSError, pickle.UnpicklingError, struct.error):
            self._replies.put(None)

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
        self._wait(max(0, i - 1))
        self._send(("frame", i, labels, probs, images))

    def finish(self, corrected: Any, origins: list[str], names: list[str], attrs: dict[str, Any],
               origin_values: list[str]) -> None:
        self._send(("finish", corrected, origins, names, attrs, origin_values))
        self._wait(None)
        self._proc.wait(30)

    def close(self) -> None:
        """Stop the child if it still runs (a cancel or a failure); safe to call twice."""
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        try:
            self._proc.wait(5)  # it sees the end of its input, removes its file and exits
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(5)
        with contextlib.suppress(OSError):
            self._proc.stdout.close()  # type: ignore[union-attr]


if __name__ == "__main__":
    raise SystemExit(main())
