"""`csknet-studio demo --out DIR [--frames N] [--size HxW] [--seed S]`: write the procedural demo."""

from __future__ import annotations

import argparse
import sys

from csknet_studio.core.errors import ConfigError


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must look like 480x640 (height x width), got {text!r}"
        ) from None
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write (absent, empty, or an earlier demo)")
    parser.add_argument("--frames", type=int, default=120, help="number of frames (default 120)")
    parser.add_argument("--size", type=_size, default=(480, 640), help="HxW (default 480x640)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from csknet_studio.core.demo import demo_conditions, generate_demo

    if args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:  # created on the first frame, so a refused --out prints no empty bar
            from tqdm import tqdm

            bar = tqdm(total=total, unit="frame", desc="demo", file=sys.stderr)
        bar.n = done
        bar.refresh()

    try:
        out = generate_demo(args.out, n_frames=args.frames, size=args.size, seed=args.seed, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    conds = demo_conditions(args.seed, args.frames)
    counts = ", ".join(f"{c} {conds.count(c)}" for c in ("day", "night", "fog"))
    h, w = args.size
    print(f"wrote {args.frames} frames ({h}x{w}; {counts}) to {out}")
    return 0
