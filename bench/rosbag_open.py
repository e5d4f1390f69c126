"""Recording benchmark: open a 10,000-frames-per-topic recording, then scrub it.

Writes, once per storage (ROS 1 bag, ROS 2 sqlite3, ROS 2 MCAP) into a temp dir, an EO camera
(rgb8) and an IR camera (mono16), both 10,000 frames, then measures in the same process:

- open:  `open_sequence(bag)` (topic listing, the index pass over both topics, pairing, the first
         frame) against a plain baseline: one `rosbags` pass over the same messages, bytes only
- scrub: time to fetch a frame pair (`seq[i]`, prefetch off, nothing cached) going forward over
         every frame and at random frames, p50 / p99, against a plain baseline in the same
         process: deserialising and decoding the same two messages' bytes, already in memory,
         for the same frames (and, as before, the mean of one sequential decoding pass)
- memory: tracemalloc peak over the open and a full forward scrub

Usage: .venv/bin/python bench/rosbag_open.py [--frames 10000] [--size 48 64] [--storage ros1 sqlite3 mcap]
       [--jumps 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csknet_studio.core.data import open_sequence  # noqa: E402
from csknet_studio.core.data.ros_messages import image_from_message  # noqa: E402
from tests.core.bagdata import Camera, write_recording  # noqa: E402

TOPICS = ("/eo/image", "/ir/image")


def baseline_pass(path: Path, decode: bool) -> float:
    """One sequential rosbags pass over both topics: bytes only, or deserialised and decoded."""
    t0 = time.perf_counter()
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic in TOPICS]
        for conn, _t, raw in reader.messages(connections=conns):
            if decode:
                image_from_message(reader.deserialize(raw, conn.msgtype), conn.msgtype)
    return time.perf_counter() - t0


def baseline_fetch(path: Path, orders: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """ms per frame pair of decoding the EO and IR messages' bytes directly: every message read into
    memory first, then, for each frame of each order, both deserialised and turned into arrays."""
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic in TOPICS]
        raw: dict[str, list[tuple[bytes, str]]] = {t: [] for t in TOPICS}
        for conn, _t, data in reader.messages(connections=conns):
            raw[conn.topic].append((bytes(data), conn.msgtype))
        out = {}
        for name, order in orders.items():
            ms = np.empty(len(order))
            for j, i in enumerate(order):
                t0 = time.perf_counter()
                for topic in TOPICS:
                    data, msgtype = raw[topic][i]
                    image_from_message(reader.deserialize(data, msgtype), msgtype)
                ms[j] = (time.perf_counter() - t0) * 1e3
            out[name] = ms
    return out


def reader_fetch(path: Path, order: list[int]) -> np.ndarray:
    """ms per `seq[i]` over `order`, prefetch and the frame cache off (every fetch decodes)."""
    seq = open_sequence(path, prefetch=0, cache_frames=0)
    ms = np.empty(len(order))
    for j, i in enumerate(order):
        t0 = time.perf_counter()
        seq[i]
        ms[j] = (time.perf_counter() - t0) * 1e3
    seq.close()
    return ms


def peak_memory(path: Path) -> tuple[float, float]:
    """(tracemalloc peak MB over the open and a forward scrub with the default cache, cache MB):
    a pass of its own, since tracing slows every allocation down."""
    tracemalloc.start()
    seq = open_sequence(path, prefetch=0)
    for i in range(len(seq)):
        seq[i]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cache_mb = seq.cache.nbytes / 2**20
    seq.close()
    return peak / 2**20, cache_mb


def bench(path: Path, n: int, jumps: int) -> dict[str, Any]:
    base_open = baseline_pass(path, decode=False)
    t0 = time.perf_counter()
    seq = open_sequence(path, prefetch=0)
    t_open = time.perf_counter() - t0
    assert len(seq) == n, (len(seq), n)
    seq.close()
    orders = {"forward": list(range(n)),
              "random": np.random.default_rng(0).integers(0, n, jumps).tolist()}
    reader = {name: reader_fetch(path, order) for name, order in orders.items()}
    base = baseline_fetch(path, orders)
    peak_mb, cache_mb = peak_memory(path)
    return {"open_s": t_open, "baseline_open_s": base_open, "reader": reader, "baseline": base,
            "sequential_ms": baseline_pass(path, decode=True) / n * 1e3, "peak_mb": peak_mb, "cache_mb": cache_mb}


def p50_p99(ms: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(ms, [50, 99])
    return float(lo), float(hi)


def report(storage: str, size_mb: float, t_write: float, r: dict[str, Any]) -> str:
    lines = [f"{storage:8s} ({size_mb:.0f} MB, written in {t_write:.1f} s): open {r['open_s']:.2f} s "
             f"(bytes-only pass {r['baseline_open_s']:.2f} s, ratio {r['open_s'] / r['baseline_open_s']:.2f}); "
             f"sequential decode pass {r['sequential_ms']:.3f} ms/frame; peak {r['peak_mb']:.0f} MB traced, "
             f"cache {r['cache_mb']:.0f} MB"]
    for name in ("forward", "random"):
        (a50, a99), (b50, b99) = p50_p99(r["reader"][name]), p50_p99(r["baseline"][name])
        lines.append(f"  {name:7s} fetch p50 {a50:.3f} ms p99 {a99:.3f} ms | direct decode p50 {b50:.3f} ms "
                     f"p99 {b99:.3f} ms | ratio p50 {a50 / b50:.1f} p99 {a99 / b99:.1f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000, help="frames per topic")
    ap.add_argument("--size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    ap.add_argument("--storage", nargs="+", default=["ros1", "sqlite3", "mcap"])
    ap.add_argument("--jumps", type=int, default=1000, help="random frames fetched")
    args = ap.parse_args()
    h, w = args.size
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, python {platform.python_version()}, "
          f"rosbags {version('rosbags')}")
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
            print(report(storage, size / 2**20, t_write, bench(path, args.frames, args.jumps)), flush=True)


if __name__ == "__main__":
    main()
