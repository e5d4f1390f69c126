"""Autosave cost per edit against the project's size: 100 and 5,000 corrected frames, same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/autosave.py [--sizes 100,5000] [--repeats 60] [--size 480 640]

For each size a project with that many corrected frames (480x640 street-like masks) is built, then
reopened with autosave on, and one brush stroke at a time is timed with its autosave (mask PNG written atomically, one journal line appended,
both fsynced). The autosave's share is the difference. The plain baseline, in the same process, is
the least any crash-safe autosave can do: encode the frame's mask as PNG, write it to a temporary
file, fsync, rename. The stroke alone is timed on a session without a project. Also printed: what the old autosave paid on top (the whole manifest rewritten
and fsynced per edit), and the journal's compaction (the same manifest write, once per 2,000 edits
and on save / close). The cases run interleaved round by round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes
from csknet_studio.core.classes import MFNET
from csknet_studio.core.project import JOURNAL_COMPACT_AT
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
    """A project of n corrected frames (fsync skipped while building: only the edits are timed)."""
    src = root / f"seq{n}"
    src.mkdir(parents=True)
    seq = LazySequence(src, n, shape)
    s = AnnotationSession(seq, autosave=False)
    base = street_mask(*shape, 0)
    for i in range(n):
        s._corr[i] = base.copy()  # noqa: SLF001 - bulk set-up; the timed part uses the public API
        s._dirty_frames.add(i)  # noqa: SLF001
    real_fsync = os.fsync
    os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        s.save()
    finally:
        os.fsync = real_fsync
    s.close()
    os.sync()
    return seq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,5000")
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    args = ap.parse_args()
    shape = (args.size[0], args.size[1])
    sizes = [int(v) for v in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        sessions = {}
        for n in sizes:
            t0 = time.perf_counter()
            seq = build(root, n, shape)
            sessions[n] = AnnotationSession(seq, undo_budget_bytes=32 << 20)
            print(f"built {n} corrected frames in {time.perf_counter() - t0:.1f} s")
        step = {"k": 0}

        def stroke(s: AnnotationSession) -> None:
            k = step["k"] = step["k"] + 1
            x, y = 20 + (k * 37) % (shape[1] - 40), 20 + (k * 23) % (shape[0] - 40)
            s.paint_stroke(k % 50, [(x, y), (x + 9, y + 5)], 1 + k % 8, 4)

        memory = AnnotationSession(LazySequence("<memory>", 100, shape), undo_budget_bytes=32 << 20)  # no project

        mask = street_mask(*shape, 3)
        target = root / "baseline" / "000001.png"
        target.parent.mkdir()

        def baseline() -> None:
            ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            atomic_write_bytes(target, buf.tobytes())

        cases = {"baseline: one mask, atomic + fsync": baseline, "stroke alone (no project)": lambda: stroke(memory)}
        for n, s in sessions.items():
            cases[f"{n}: stroke + autosave"] = lambda s=s: stroke(s)
            cases[f"{n}: old per-edit manifest rewrite"] = lambda s=s: s._write_manifest()  # noqa: SLF001
        for _ in range(args.warmup):
            for fn in cases.values():
                fn()
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        base = med["baseline: one mask, atomic + fsync"]
        print(f"{shape[0]}x{shape[1]} masks, {args.repeats} repeats, median ms; journal compacts every "
              f"{JOURNAL_COMPACT_AT} edits")
        print(f"{'case':44s} {'median ms':>10s} {'p90 ms':>8s}")
        for k, v in times.items():
            print(f"{k:44s} {med[k]:10.2f} {np.percentile(v, 90) * 1e3:8.2f}")
        print(f"\n{'corrected frames':>16s} {'autosave ms/edit':>17s} {'/ baseline':>10s} {'old extra ms':>13s}")
        for n in sizes:
            auto = med[f"{n}: stroke + autosave"] - med["stroke alone (no project)"]
            old = med[f"{n}: old per-edit manifest rewrite"]
            print(f"{n:16d} {auto:17.2f} {auto / base:10.2f} {old:13.2f}")
        for s in sessions.values():
            s.close()


if __name__ == "__main__":
    main()
