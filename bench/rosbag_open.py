"""Recording benchmark: open a 10,000-frames-per-topic recording, then scrub it.

Writes, once per storage (ROS 1 bag, ROS 2 sqlite3, ROS 2 MCAP) into a temp dir, an EO camera
(rgb8) and an IR camera (mono16), both 10,000 frames, then measures in the same process:

- open:  `open_sequence(bag)` (topic listing, the index pass over both topics, pairing, the first
         frame) against a plain baseline: one `rosbags` pass over the same messages, bytes only
- scrub: seconds per frame scrubbing forward (cold, prefetch off) and at random frames, against
         the baseline of deserialising and decoding the same messages in one sequential pass
- memory: tracemalloc peak over the open and a full forward scrub

Usage: .venv/bin/python bench/rosbag_open.py [--frames 10000] [--size 48 64] [--storage ros1 sqlite3 mcap]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csknet_studio.core.data import open_sequence  # noqa: E402
from csknet_studio.core.data.rosbag import image_from_message  # noqa: E402
from tests.core.bagdata import Camera, write_recording  # noqa: E402


def baseline_pass(path: Path, decode: bool) -> float:
    """One sequential rosbags pass over both topics: bytes only, or deserialised and decoded."""
    from rosbags.highlevel import AnyReader

    t0 = time.perf_counter()
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic in ("/eo/image", "/ir/image")]
        for conn, _t, raw in reader.messages(connections=conns):
            if decode:
                image_from_message(reader.deserialize(raw, conn.msgtype), conn.msgtype)
    return time.perf_counter() - t0


def bench(path: Path, n: int, storage: str, jumps: int) -> dict[str, float]:
    base_open = baseline_pass(path, decode=False)
    t0 = time.perf_counter()
    seq = open_sequence(path, prefetch=0)
    t_open = time.perf_counter() - t0
    assert len(seq) == n, (len(seq), n)
    t0 = time.perf_counter()
    for i in range(len(seq)):
        seq[i]
    t_fwd = (time.perf_counter() - t0) / len(seq)
    seq.close()
    tracemalloc.start()  # a pass of its own: tracing slows every allocation down
    seq = open_sequence(path, prefetch=0)
    for i in range(len(seq)):
        seq[i]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cache_mb = seq.cache.nbytes / 2**20
    seq.close()
    seq = open_sequence(path, prefetch=0, cache_frames=0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(seq), jumps)
    t0 = time.perf_counter()
    for i in idx.tolist():
        seq[i]
    t_jump = (time.perf_counter() - t0) / jumps
    seq.close()
    base_decode = baseline_pass(path, decode=True) / n
    return {"open_s": t_open, "baseline_open_s": base_open, "fwd_ms": t_fwd * 1e3, "jump_ms": t_jump * 1e3,
            "baseline_ms": base_decode * 1e3, "peak_mb": peak / 2**20, "cache_mb": cache_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000, help="frames per topic")
    ap.add_argument("--size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    ap.add_argument("--storage", nargs="+", default=["ros1", "sqlite3", "mcap"])
    ap.add_argument("--jumps", type=int, default=500)
    args = ap.parse_args()
    h, w = args.size
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{args.frames} frames per topic, EO rgb8 {w}x{h}, IR mono16 {w}x{h}, both 30 Hz")
    with tempfile.TemporaryDirectory() as tmp:
        for storage in args.storage:
            path = Path(tmp) / ("rec.bag" if storage == "ros1" else f"rec_{storage}")
            cams = [Camera("/eo/image", 30.0, "rgb8", (h, w)),
                    Camera("/ir/image", 30.0, "mono16", (h, w), offset_ns=2_000_000)]
            t0 = time.perf_counter()
            write_recording(path, cams, seconds=args.frames / 30.0, storage=storage)
            t_write = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir()))
            r = bench(path, args.frames, storage, args.jumps)
            print(f"{storage:8s} ({size / 2**20:.0f} MB, written in {t_write:.1f} s): "
                  f"open {r['open_s']:.2f} s (bytes-only pass {r['baseline_open_s']:.2f} s, "
                  f"ratio {r['open_s'] / r['baseline_open_s']:.2f}); "
                  f"scrub forward {r['fwd_ms']:.2f} ms/frame, random {r['jump_ms']:.2f} ms/frame "
                  f"(sequential decode baseline {r['baseline_ms']:.2f} ms/frame, ratios "
                  f"{r['fwd_ms'] / r['baseline_ms']:.2f} / {r['jump_ms'] / r['baseline_ms']:.2f}); "
                  f"peak {r['peak_mb']:.0f} MB traced, cache {r['cache_mb']:.0f} MB")


if __name__ == "__main__":
    main()
