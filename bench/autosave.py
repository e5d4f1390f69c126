"""Autosave cost per edit against the project's size: 100, 1,000 and 5,000 corrected frames, same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/autosave.py [--sizes 100,1000,5000] [--repeats 60] [--size 480 640]

For each size a project with that many corrected frames (480x640 street-like masks) is built, then
reopened with autosave on, and one brush stroke at a time is timed with its autosave (one journal
line holding the frame's mask, written and fsynced). The stroke alone is timed on a session without
a project and taken off. The plain baseline, in the same process, is one fsync'd append of the same
bytes (the edit's journal line) to a file of its own: the least a journalled, crash-safe autosave
can do. Also timed: what the previous autosave did per edit (mask PNG written to a temporary file,
fsynced, renamed, then an fsynced journal line), and one compaction (journalled masks to their
files, the manifest rewritten), which runs in the background every COMPACT_LINES journal lines.
The cases run interleaved round by round, with `--pause` seconds between cases (as a person pauses
between strokes). fsyncs are counted over every file; CPU time is the process's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes
from csknet_studio.core.classes import MFNET
from csknet_studio.core.project import COMPACT_LINES, ProjectData, ProjectStore, names_digest
from csknet_studio.core.project_journal import encode_records, frame_record
from csknet_studio.core.session import AnnotationSession


class _Frame:
    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape, self.bad, self.eo, self.ir, self.label = shape, False, None, None, None


class LazySequence:
    """Just enough of the Sequence protocol for a session: names and sizes, no pixels (5,000 frames
    of images would not fit in memory and play no part in saving)."""

    def __init__(self, source: Path | str, n: int, shape: tuple[int, int]) -> None:
        self.source, self.names, self.layout, self.scheme = source, [f"f{i:06d}" for i in range(n)], "bench", MFNET
        self.frame_shape = shape
        self._frame = _Frame(shape)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> _Frame:
        return self._frame


def street_mask(h: int, w: int, t: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), np.uint8)
    m[yy > h * 0.6] = 4
    m[((xx - (40 + 7 * t) % w) / 60) ** 2 + ((yy - h * 0.7) / 40) ** 2 <= 1] = 1
    m[((xx - (300 + 3 * t) % w) / 15) ** 2 + ((yy - h * 0.65) / 35) ** 2 <= 1] = 2
    return m


def build(root: Path, n: int, shape: tuple[int, int]) -> LazySequence:
    """A project of n corrected frames, written directly (one PNG copied n times, the manifest), not
    fsynced: only the edits are timed."""
    src = root / f"seq{n}"
    src.mkdir(parents=True)
    seq = LazySequence(src, n, shape)
    store = ProjectStore(src.with_name(src.name + ".csknet"))
    (store.root / "masks").mkdir(parents=True)
    png = ProjectStore.encode_mask(street_mask(*shape, 0))
    for i in range(n):
        (store.root / ProjectStore.mask_name(i)).write_bytes(png)
    store.write_manifest(ProjectData(source=src, layout="bench", num_frames=n, names_sha1=names_digest(seq.names),
                                     scheme=MFNET, corrected={i: ProjectStore.mask_name(i) for i in range(n)}), seq.names)
    return seq


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{os.cpu_count()} x {model}, {mem:.0f} GiB, load average {load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--pause", type=float, default=0.1, help="seconds between cases")
    args = ap.parse_args()
    shape = (args.size[0], args.size[1])
    sizes = [int(v) for v in args.sizes.split(",")]
    real_fsync, fsyncs = os.fsync, [0]

    def counted_fsync(fd: int) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    os.fsync = counted_fsync  # type: ignore[assignment]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        sessions = {}
        for n in sizes:
            t0 = time.perf_counter()
            sessions[n] = AnnotationSession(build(root, n, shape), undo_budget_bytes=32 << 20)
            print(f"built and opened {n} corrected frames in {time.perf_counter() - t0:.1f} s")
        steps: dict[int, int] = {}

        def stroke(s: AnnotationSession) -> None:
            """A short stroke on one of 50 frames; the class alternates on each visit, so it always
            changes pixels (an edit that changes nothing is not saved)."""
            k = steps[id(s)] = steps.get(id(s), 0) + 1
            x, y = 20 + (k * 37) % (shape[1] - 40), 20 + (k * 23) % (shape[0] - 40)
            s.paint_stroke(k % 50, [(x, y), (x + 9, y + 5)], 6 + (k // 50) % 2, 4)

        memory = AnnotationSession(LazySequence("<memory>", 100, shape), undo_budget_bytes=32 << 20)  # no project
        mask = street_mask(*shape, 3)
        line = encode_records([frame_record(1, "corrected", ProjectStore.encode_mask(mask))])
        base_fd = os.open(root / "baseline.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        prev = root / "previous"
        (prev / "masks").mkdir(parents=True)
        for i in range(max(sizes)):  # a folder as full as the biggest project's
            (prev / "masks" / f"{i:06d}.png").write_bytes(b"")

        def baseline() -> None:
            os.write(base_fd, line)
            os.fsync(base_fd)

        def previous() -> None:
            """The previous autosave: default-filtered PNG, atomic file (fsync), then an fsynced line."""
            ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            atomic_write_bytes(prev / "masks" / "000001.png", buf.tobytes())
            fd = os.open(prev / "journal.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, b'{"f":1,"o":"corrected"}\n')
                os.fsync(fd)
            finally:
                os.close(fd)

        cases = {"baseline: one fsync'd append of the line": (baseline, None),
                 "previous autosave (mask file + line, 2 fsyncs)": (previous, None),
                 "stroke alone (no project)": (lambda: stroke(memory), None)}
        for n, s in sessions.items():
            cases[f"{n}: stroke + autosave"] = (lambda s=s: stroke(s), None)
        wall: dict[str, list[float]] = {k: [] for k in cases}
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        syncs: dict[str, int] = dict.fromkeys(cases, 0)
        for r in range(args.warmup + args.repeats):
            for name, (fn, after) in cases.items():
                f0, c0, t0 = fsyncs[0], time.process_time(), time.perf_counter()
                fn()
                t1, c1 = time.perf_counter(), time.process_time()
                if after is not None:
                    after()  # the edit's fsync, outside the timed part
                time.sleep(args.pause)
                if r >= args.warmup:
                    wall[name].append(t1 - t0)
                    cpu[name].append(c1 - c0)
                    syncs[name] += fsyncs[0] - f0
        med = {k: statistics.median(v) * 1e3 for k, v in wall.items()}
        p90 = {k: float(np.percentile(v, 90)) * 1e3 for k, v in wall.items()}
        cmed = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
        base, alone = med["baseline: one fsync'd append of the line"], med["stroke alone (no project)"]
        print(f"{shape[0]}x{shape[1]} masks, journal line {len(line)} bytes, {args.repeats} rounds, median ms\n")
        print(f"{'case':48s} {'median':>8s} {'p90':>8s} {'cpu':>7s} {'fsyncs/call':>11s}")
        for k in cases:
            print(f"{k:48s} {med[k]:8.2f} {p90[k]:8.2f} {cmed[k]:7.2f} {syncs[k] / args.repeats:11.2f}")
        print(f"\nautosave = the case minus the stroke alone ({alone:.2f} ms); baseline {base:.2f} ms; "
              f"previous autosave {med['previous autosave (mask file + line, 2 fsyncs)']:.2f} ms")
        print(f"{'frames':>6s} {'autosave ms':>12s} {'p90 ms':>7s} {'/ base':>7s} {'cpu ms':>7s} "
              f"{'compaction ms':>14s} {'per edit':>9s}")
        for n, s in sessions.items():
            auto = med[f"{n}: stroke + autosave"] - alone
            c_auto = cmed[f"{n}: stroke + autosave"] - cmed["stroke alone (no project)"]
            t0 = time.perf_counter()
            s._io.compact_now({})  # noqa: SLF001 - what the background compaction does, timed here alone
            comp = (time.perf_counter() - t0) * 1e3
            print(f"{n:6d} {auto:12.2f} {p90[f'{n}: stroke + autosave'] - alone:7.2f} {auto / base:7.2f} "
                  f"{c_auto:7.2f} {comp:14.1f} {comp / COMPACT_LINES:9.2f}")
        os.close(base_fd)
        for s in sessions.values():
            s.close()
    os.fsync = real_fsync  # type: ignore[assignment]


if __name__ == "__main__":
    main()
