"""Scrubbing benchmark: time to a display-ready EO/IR pair and memory, 1,000 vs 5,000 frames.

Writes synthetic paired folders (EO JPEG + 16-bit IR PNG, 240x320 by default) into a temp dir,
then measures, in one process, against a plain baseline (cv2.imread of both files, BGR->RGB, the
same fixed levels -> uint8, no cache):

- cold:   first visit of each frame, scrubbing forward as fast as possible (prefetch on / off)
- paced:  first visit at 30 fps playback (the prefetcher has time to read ahead)
- warm:   revisiting frames still in the LRU cache
- jumps:  random frames (cold)
- memory: tracemalloc peak over a full scrub, and the cache's own footprint

Usage: .venv/bin/python bench/scrub.py [--frames 1000 5000] [--size 240 320]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.data import apply_levels, open_sequence

VARIANTS = 64  # distinct encoded frames, written cyclically (keeps generation fast; decoding is real)


def synth_frames(h: int, w: int, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """Smooth street-like EO and 16-bit IR with warm blobs (compresses like real footage)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for k in range(VARIANTS):
        cx, cy = (k * 7) % w, h * 0.6 + 10 * np.sin(k / 5)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (h / 12) ** 2))
        sky = 200 - 120 * yy / h
        eo = np.stack([sky * 0.8 + 40 * blob, sky * 0.9, sky + 20 * np.sin(xx / 17)], axis=2)
        eo += rng.normal(0, 3, eo.shape)
        ir = 28000 + 1500 * yy / h + 6000 * blob + rng.normal(0, 40, (h, w))
        ok1, b_eo = cv2.imencode(".jpg", np.clip(eo, 0, 255).astype(np.uint8)[:, :, ::-1],
                                 [cv2.IMWRITE_JPEG_QUALITY, 90])
        ok2, b_ir = cv2.imencode(".png", np.clip(ir, 0, 65535).astype(np.uint16))
        assert ok1 and ok2
        out.append((b_eo.tobytes(), b_ir.tobytes()))
    return out


def write_sequence(root: Path, n: int, frames: list[tuple[bytes, bytes]], link_from: Path | None = None) -> Path:
    (root / "eo").mkdir(parents=True)
    (root / "ir").mkdir()
    for i in range(n):
        name = f"{i:06d}"
        if link_from is not None:
            os.link(link_from / "eo" / f"{name}.jpg", root / "eo" / f"{name}.jpg")
            os.link(link_from / "ir" / f"{name}.png", root / "ir" / f"{name}.png")
        else:
            e, r = frames[i % len(frames)]
            (root / "eo" / f"{name}.jpg").write_bytes(e)
            (root / "ir" / f"{name}.png").write_bytes(r)
    return root


def pct(ts: list[float]) -> tuple[float, float]:
    a = np.asarray(ts) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def baseline(root: Path, idx: list[int], levels: dict[str, tuple[float, float]]) -> list[float]:
    ts = []
    for i in idx:
        t0 = time.perf_counter()
        eo = cv2.imread(str(root / "eo" / f"{i:06d}.jpg"), cv2.IMREAD_UNCHANGED)
        ir = cv2.imread(str(root / "ir" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        eo = cv2.cvtColor(eo, cv2.COLOR_BGR2RGB)
        apply_levels(eo, levels["eo"])
        apply_levels(ir, levels["ir"])
        ts.append(time.perf_counter() - t0)
    return ts


def timed_scrub(seq, idx: list[int], pace: float | None = None) -> list[float]:
    ts = []
    next_t = time.perf_counter()
    for i in idx:
        if pace:
            next_t += pace
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        seq.display_pair(i)
        ts.append(time.perf_counter() - t0)
    return ts


def rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_one(root: Path, n: int, paced_frames: int, fps: float) -> dict:
    res: dict = {"n": n}
    t0 = time.perf_counter()
    seq = open_sequence(root)
    res["open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    levels = seq.display_levels()
    res["levels_s"] = time.perf_counter() - t0
    seq.close()

    fwd = list(range(n))
    res["baseline"] = pct(baseline(root, fwd, levels))

    with open_sequence(root, prefetch=0) as seq:  # decode cost of the reader alone
        seq.display_levels()
        res["cold_noprefetch"] = pct(timed_scrub(seq, fwd))
    with open_sequence(root) as seq:  # default: prefetch 4, 2 workers
        seq.display_levels()
        res["cold"] = pct(timed_scrub(seq, fwd))
        back = list(range(n - 1, n - 1 - 150, -1))  # scrub back over frames still cached
        res["warm"] = pct(timed_scrub(seq, back))
        res["cache_mib"] = seq.cache.nbytes / 2**20
        res["cache_frames"] = len(seq.cache)
    with open_sequence(root) as seq:
        seq.display_levels()
        start = n // 3
        res["paced"] = pct(timed_scrub(seq, list(range(start, start + paced_frames)), pace=1.0 / fps))
    jumps = np.random.default_rng(0).integers(0, n, 300).tolist()
    res["baseline_jumps"] = pct(baseline(root, jumps, levels))
    with open_sequence(root) as seq:
        seq.display_levels()
        res["jumps"] = pct(timed_scrub(seq, jumps))
    with open_sequence(root, prefetch=0) as seq:
        seq.display_levels()
        res["jumps_noprefetch"] = pct(timed_scrub(seq, jumps))

    # memory: a full forward scrub under tracemalloc (numpy buffers are traced), separate pass
    rss0 = rss_mib()
    tracemalloc.start()
    with open_sequence(root) as seq:
        seq.display_levels()
        for i in fwd:
            seq.display_pair(i)
        seq.wait_prefetch()
        res["rss_during_mib"] = rss_mib() - rss0
        _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    res["peak_mib"] = peak / 2**20
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"))
    ap.add_argument("--paced-frames", type=int, default=150)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the frames (temp dir by default)")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    tmp = Path(tempfile.mkdtemp(prefix="csknet-scrub-", dir=args.workdir))
    try:
        h, w = args.size
        t0 = time.perf_counter()
        frames = synth_frames(h, w)
        big = max(args.frames)
        src = write_sequence(tmp / f"seq{big}", big, frames)
        roots = {big: src}
        for n in sorted(set(args.frames) - {big}):
            roots[n] = write_sequence(tmp / f"seq{n}", n, frames, link_from=src)
        size_mb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) / 1e6
        print(f"# {platform.machine()} {os.cpu_count()} CPU(s), {platform.python_version()}, OpenCV {cv2.__version__}")
        print(f"# frames {h}x{w}: EO JPEG + IR 16-bit PNG; {big} pairs = {size_mb:.0f} MB on disk; "
              f"written in {time.perf_counter() - t0:.1f}s (OS page cache warm: 'cold' = not in our cache)")
        rows = [run_one(roots[n], n, args.paced_frames, args.fps) for n in sorted(args.frames)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    rows_spec = [
        ("baseline: cv2.imread both + BGR->RGB + levels, forward", "baseline"),
        ("reader cold, forward as fast as possible, no prefetch", "cold_noprefetch"),
        ("reader cold, forward as fast as possible, prefetch 4", "cold"),
        (f"reader cold, forward at {args.fps:g} fps (prefetch has time)", "paced"),
        ("reader warm (scrub back over cached frames)", "warm"),
        ("baseline: random jumps", "baseline_jumps"),
        ("reader random jumps, prefetch 4", "jumps"),
        ("reader random jumps, no prefetch", "jumps_noprefetch"),
    ]
    print("| time to a display-ready pair, p50 / p95 ms | " + " | ".join(f"{r['n']} frames" for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for label, key in rows_spec:
        print(f"| {label} | " + " | ".join(f"{r[key][0]:.2f} / {r[key][1]:.2f}" for r in rows) + " |")
    print("| ratio reader cold (prefetch) / baseline, p50 | "
          + " | ".join(f"{r['cold'][0] / r['baseline'][0]:.2f}x" for r in rows) + " |")
    print("| ratio reader paced / baseline, p50 | "
          + " | ".join(f"{r['paced'][0] / r['baseline'][0]:.2f}x" for r in rows) + " |")
    print("| open_sequence / display_levels (s) | "
          + " | ".join(f"{r['open_s']:.2f} / {r['levels_s']:.2f}" for r in rows) + " |")
    print("| peak traced memory over a full scrub (MiB) | " + " | ".join(f"{r['peak_mib']:.0f}" for r in rows) + " |")
    print("| RSS growth over a full scrub (MiB) | " + " | ".join(f"{r['rss_during_mib']:.0f}" for r in rows) + " |")
    print("| LRU cache at the end: MiB (frames) | "
          + " | ".join(f"{r['cache_mib']:.0f} ({r['cache_frames']})" for r in rows) + " |")
    if len(rows) > 1:
        print(f"\nmemory ratio {rows[-1]['n']} vs {rows[0]['n']} frames: peak traced "
              f"{rows[-1]['peak_mib'] / rows[0]['peak_mib']:.2f}x (target: flat, ~1.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
