"""Demo generator benchmark: seconds to write the bundled demo, against a plain baseline.

Baseline (same process, same frames): the PNG writing alone, i.e. plain `cv2.imwrite` of the
already-rendered EO / IR / label arrays, one thread, default PNG settings. The ratio says what the
procedural rendering costs on top of merely saving the files.

Also writes the README contact sheet (EO | IR | ground truth for a day, a night and a fog frame)
with --sheet.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/demo.py [--frames 120] [--size 480x640]
       [--sheet docs/demo_sheet.png]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.classes import MFNET
from csknet_studio.core.demo import demo_conditions, generate_demo, render_demo_frame


def contact_sheet(
    path: Path, seed: int = 0, size: tuple[int, int] = (480, 640), scale: float = 0.375
) -> None:
    conds = demo_conditions(seed, 120)
    rows = []
    frames = [
        render_demo_frame(seed, conds.index(c) + k, size, 120)
        for c, k in (("day", 6), ("night", 11), ("fog", 8))
    ]
    irs = np.concatenate([fp.ir.ravel() for fp, _ in frames]).astype(np.float64)
    lo, hi = np.percentile(irs, [1, 99])  # fixed levels for the whole sheet, as the app does
    for fp, cond in frames:
        ir8 = np.clip((fp.ir - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
        ir_rgb = cv2.applyColorMap(ir8, cv2.COLORMAP_INFERNO)[..., ::-1]
        row = np.hstack([fp.eo, ir_rgb, MFNET.colorize(fp.label)])
        row = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for k, text in enumerate((f"EO ({cond})", "IR (uint16 cK)", "ground truth (MFNet)")):
            x = int(k * size[1] * scale) + 6
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)
            cv2.rectangle(row, (x - 3, 3), (x + tw + 3, 8 + th), (0, 0, 0), -1)
            cv2.putText(
                row, text, (x, 5 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA
            )
        rows.append(row)
    sheet = np.vstack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    path.write_bytes(buf.tobytes())
    print(f"contact sheet: {path} ({len(buf) // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--size", default="480x640")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", type=Path, default=None)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="csknet-bench-demo-"))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        generate_demo(tmp / "demo", args.frames, (h, w), args.seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0

        frames = [render_demo_frame(args.seed, i, (h, w), args.frames)[0] for i in range(args.frames)]
        base = tmp / "plain"
        for sub in ("eo", "ir", "labels"):
            (base / sub).mkdir(parents=True)
        t0 = time.perf_counter()
        for fp in frames:
            cv2.imwrite(str(base / "eo" / f"{fp.name}.png"), cv2.cvtColor(fp.eo, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(base / "ir" / f"{fp.name}.png"), fp.ir)
            cv2.imwrite(str(base / "labels" / f"{fp.name}.png"), fp.label)
        plain = time.perf_counter() - t0
        mb = sum(f.stat().st_size for f in (tmp / "demo").rglob("*") if f.is_file()) / 2**20
        print(
            f"generate_demo: {args.frames} frames {h}x{w}: {wall:.2f} s wall ({cpu:.2f} s CPU in this "
            f"process), {args.frames / wall:.1f} frames/s, {mb:.0f} MB"
        )
        print(f"baseline (plain cv2.imwrite of the same arrays): {plain:.2f} s")
        print(f"ratio generate / plain write: {wall / plain:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.sheet is not None:
        contact_sheet(args.sheet, args.seed)


if __name__ == "__main__":
    main()
