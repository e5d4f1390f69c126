"""`csknet-studio infer SEQUENCE --checkpoint CKPT --mode both|ir|eo --out DIR [--batch N] [--mirror]`.

Writes one indexed label PNG per frame (pixel = class id) into DIR, or one HDF5 file with
`--format hdf5`. Under torchrun each rank segments its own shard of frames. Each unreadable frame
is named on stderr; unless --skip-bad, they make the exit status 2 (the other masks are written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from csknet_studio.commands._common import add_scheme_argument, checkpoint_job, tqdm_progress
from csknet_studio.core.device_names import DEVICE_CHOICES
from csknet_studio.core.errors import SequenceError
from csknet_studio.core.modes import ALL_MODES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", type=Path, help="the sequence (folder, video pair or HDF5 file)")
    p.add_argument("--checkpoint", type=Path, required=True, help="a CSKNet Studio checkpoint (.pt)")
    p.add_argument("--mode", choices=[m.value for m in ALL_MODES], default="both",
                   help="modalities the model sees")
    p.add_argument("--out", type=Path, required=True, help="output folder (PNG) or file (HDF5)")
    p.add_argument("--format", choices=["png", "hdf5"], default=None,
                   help="default: hdf5 when --out ends in .h5/.hdf5, else png")
    p.add_argument("--batch", type=int, default=4, help="frames per forward pass")
    p.add_argument("--split", default=None, help="split list / folder name for layouts that have one")
    p.add_argument("--device", default="auto", help=", ".join(DEVICE_CHOICES))
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--mirror", action="store_true",
                   help="average each frame's softmax with its left-right mirror's (twice the time)")
    p.add_argument("--skip-bad", action="store_true",
                   help="frames that cannot be read get no mask (HDF5: 255) and the exit status stays 0; "
                        "without it they are named and the exit status is 2")
    add_scheme_argument(p)


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from tqdm import tqdm

    from csknet_studio.core.batch_infer import infer_sequence
    from csknet_studio.core.predictor import Predictor

    fmt = args.format or ("hdf5" if args.out.suffix.lower() in (".h5", ".hdf5") else "png")
    with checkpoint_job(args) as job:
        predictor = Predictor(job.loaded.model, job.device, job.loaded.scheme, num_threads=args.threads,
                              mirror=args.mirror)
        bar = tqdm(total=len(job.sequence), unit="frame", desc=f"infer ({args.mode})",
                   disable=args.quiet or not job.main_rank)
        try:
            result = infer_sequence(predictor, job.sequence, args.mode, args.out, batch=max(1, args.batch),
                                    progress=tqdm_progress(bar), fmt=fmt,
                                    checkpoint_hash=job.loaded.weights_hash)
        finally:
            bar.close()
        if job.main_rank:
            fps = result.frames / result.seconds if result.seconds > 0 else float("nan")
            print(f"{result.frames} frame(s) on this rank in {result.seconds:.1f} s ({fps:.1f} frames/s); "
                  f"labels in {args.out}")
    for note in result.skipped:
        print(f"csknet-studio infer: skipped unreadable {note}", file=sys.stderr)
    if result.skipped and not args.skip_bad:
        raise SequenceError(f"{len(result.skipped)} unreadable frame(s) of {args.sequence} got no mask "
                            f"(named above); fix them, or pass --skip-bad to accept the gaps")
    return 0
