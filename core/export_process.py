"""The HDF5 writer behind `export_hdf5`, run in a child process: this file run as a script, and
the messages between it and its parent (core/export_writer.py).

HDF5 can take down the process it runs in: on a full disk HDF5 2.0 segfaults inside h5py. So the
file is written by a child (this file run as a script, `writer_command`); a crash there costs the
export and nothing else, and the parent reports it as an ExportError naming the signal. The parent
computes each frame's content, sends it down the child's stdin and reads the child's answers on its
stdout: one per few frames written, which is the progress. The child runs in its own session, so a
Ctrl+C in the terminal reaches only the parent, which decides how to stop (cancel, clean up).

Messages are length-prefixed pickles between the two halves, never read from anywhere else. A frame's labels travel as gzip chunks the parent deflated ahead (on threads), or,
for lzf (a filter only HDF5 applies), every second frame as the chunk the parent's in-memory HDF5
file stored and the others as the number of a shared memory slot they were copied into.
Parent to child: ("open", tmp, spec), ("frame", i, labels, probs, images),
("finish", corrected, origins, names, attrs). Child to parent: ("ready",) once numpy and h5py are
imported, then ("ok", i), ("done",), ("error", text).

Starting a child costs 0.3-0.4 s (Python, numpy, h5py), as long as writing 200 frames, so the
parent starts one ahead (`export_writer.prestart`). This file imports only the standard library at
the top, so the child starts fast and waits warm.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import struct
import sys
from pathlib import Path
from typing import IO, Any

# Upper bound on the file format: HDF5 1.10 and later read the file. HDF5 2.0's "latest" writes a
# layout message version that 1.x readers reject ("bad version number for layout message").
LIBVER = ("earliest", "v110")
_HEADER = struct.Struct("<Q")
# Frames sent and not yet confirmed: enough that the parent keeps computing while the child starts
# (importing h5py) and while each confirmation crosses back; few enough to bound memory (a frame
# with EO, IR and probabilities is a few MB).
IN_FLIGHT = 8
# The child confirms every REPLY_EVERY-th frame (and the last): each reply wakes the parent, which
# cost the child about 1 ms a frame. Below IN_FLIGHT, so the parent never waits on a reply not sent.
REPLY_EVERY = IN_FLIGHT // 2


def send_message(fh: IO[bytes], msg: tuple) -> None:
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


def recv_message(fh: IO[bytes]) -> tuple:
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

        send_message(out, ("ready",))
        while True:
            msg = recv_message(inp)
            if msg[0] == "open":
                writer = _Writer(msg[1], msg[2])
            elif msg[0] == "frame" and writer is not None:
                writer.frame(*msg[1:])
                i = int(msg[1])
                if (i + 1) % REPLY_EVERY == 0 or i + 1 == writer.spec["n"]:
                    send_message(out, ("ok", i))
            elif msg[0] == "finish" and writer is not None:
                writer.finish(*msg[1:])
                writer = None
                send_message(out, ("done",))
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
            send_message(out, ("error", _error_text(exc)))
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


def writer_command() -> list[str]:
    """The child's command line (tests substitute one that limits the child's file size). This file
    run as a script, with -P so its folder does not shadow the standard library: the child needs
    numpy and h5py, not the package (whose import alone takes 70 ms)."""
    return [sys.executable, "-P", str(Path(__file__).resolve())]


if __name__ == "__main__":
    raise SystemExit(main())
