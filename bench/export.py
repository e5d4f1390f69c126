"""Export throughput: `export_hdf5` from a session vs plain h5py writing the same layout, same run.

    .venv/bin/python bench/export.py [--frames 200] [--size 480 640] [--repeats 3]

The session holds half its frames as corrections and half as (zlib-packed) predictions, as after a
labelling session; the baseline writes the same masks, already in memory, with `ds[i] = mask` into
a (T, H, W) uint8 dataset with one-frame chunks and the same compression, plus `corrected` and
`frame_names`. Prints frames/s, MB/s of label data and the ratio (target >= 0.8x), for the export
as the app and the `export` command run it (the writer process started ahead, while the dialog is
open or the session opens) and cold (the 0.3-0.4 s writer start inside the timing).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from csknet_studio.core.classes import MFNET
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.export import export_hdf5
from csknet_studio.core.export_writer import prestart
from csknet_studio.core.session import AnnotationSession


def scene_masks(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    """Street-like masks: road band, curb line, moving cars and people (compress like real labels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    objs = [(rng.integers(0, w), rng.integers(h // 2, h), rng.integers(20, 90), rng.integers(15, 60),
             int(rng.choice([1, 2, 3, 7])), rng.integers(-4, 5)) for _ in range(12)]
    masks = []
    for t in range(n):
        m = np.zeros((h, w), np.uint8)
        m[(yy > h * 0.62 + 6 * np.sin(xx / 50.0)) & (yy < h * 0.62 + 6 * np.sin(xx / 50.0) + 4)] = 4
        for cx, cy, rw, rh, c, vx in objs:
            x = (cx + vx * t) % w
            m[((xx - x) / rw) ** 2 + ((yy - cy) / rh) ** 2 <= 1] = c
        masks.append(m)
    return masks


def plain_h5py(path: Path, masks: list[np.ndarray], names: list[str], corrected: np.ndarray, **opts) -> None:
    n, (h, w) = len(masks), masks[0].shape
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset("labels", (n, h, w), np.uint8, chunks=(1, h, w), **opts)
        for i, m in enumerate(masks):
            ds[i] = m
        f.create_dataset("corrected", data=corrected)
        f.create_dataset("frame_names", data=names, dtype=h5py.string_dtype("utf-8"))
        f.attrs["class_names"] = np.array(MFNET.class_names, dtype=h5py.string_dtype("utf-8"))
        f.attrs["palette"] = MFNET.palette_array()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, (h, w) = args.frames, args.size
    masks = scene_masks(n, h, w)
    names = [f"{i:06d}" for i in range(n)]
    ir = np.broadcast_to(np.zeros((h, w), np.uint8), (n, h, w))  # the imagery is not exported here
    session = AnnotationSession(ArraySequence(None, ir, names=names, scheme=MFNET), autosave=False)
    for i, m in enumerate(masks):
        session.set_prediction(i, m)
        if i % 2 == 0:
            session.accept_prediction(i)
    corrected = np.arange(n) % 2 == 0
    mb = n * h * w / 1e6
    print(f"# {n} frames {h}x{w} ({mb:.0f} MB of labels), {platform.machine()}, "
          f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, best of {args.repeats}\n")
    print("| compression | writer | export_hdf5 frames/s | MB/s | plain h5py frames/s | MB/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for comp, opts in (("gzip", {"compression": "gzip", "compression_opts": 4}), ("lzf", {"compression": "lzf"})):
            ours: dict[str, list[float]] = {"started ahead": [], "cold": []}
            base = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                plain_h5py(Path(tmp) / "plain.h5", masks, names, corrected, **opts)
                base.append(time.perf_counter() - t0)
                for how, times in ours.items():
                    if how == "started ahead":
                        prestart(wait=True)  # as the export dialog does when it opens
                    t0 = time.perf_counter()
                    export_hdf5(session, Path(tmp) / "ours.h5", compression=comp, compression_level=4)
                    times.append(time.perf_counter() - t0)
            with h5py.File(Path(tmp) / "ours.h5") as a, h5py.File(Path(tmp) / "plain.h5") as b:
                assert np.array_equal(a["labels"][()], b["labels"][()]), "outputs differ"
            tb = min(base)
            for how, times in ours.items():
                to = min(times)
                print(f"| {comp} | {how} | {n / to:.0f} | {mb / to:.0f} | {n / tb:.0f} | {mb / tb:.0f} | {tb / to:.2f}x |")

if __name__ == "__main__":
    main()
