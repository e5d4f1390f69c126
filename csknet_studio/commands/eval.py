"""`csknet-studio eval --checkpoint CKPT SEQUENCE [--modes both,ir,eo]`: per-class IoU per mode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from csknet_studio.commands._common import add_scheme_argument, checkpoint_job, tqdm_progress
from csknet_studio.core.atomic import atomic_write_text
from csknet_studio.core.device_names import DEVICE_CHOICES
from csknet_studio.core.errors import ConfigError, SequenceError
from csknet_studio.core.modes import Mode


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", type=Path, help="a labelled sequence (any supported layout)")
    p.add_argument("--checkpoint", type=Path, required=True, help="a CSKNet Studio checkpoint (.pt)")
    p.add_argument("--modes", default="both,ir,eo", help="comma-separated modes: both, ir, eo (default: all)")
    p.add_argument("--split", default=None, help="split list / folder name (e.g. test) for layouts that have one")
    p.add_argument("--batch", type=int, default=4, help="frames per forward pass")
    p.add_argument("--device", default="auto", help=", ".join(DEVICE_CHOICES))
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--mirror", action="store_true",
                   help="average each frame's softmax with its left-right mirror's (twice the time)")
    add_scheme_argument(p)


def parse_modes(text: str):
    modes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            modes.append(Mode(part))
        except ValueError:
            raise ConfigError(f"--modes: unknown mode {part!r}; use both, ir, eo") from None
    if not modes:
        raise ConfigError("--modes: give at least one of both, ir, eo")
    return modes


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from tqdm import tqdm

    from csknet_studio.core.evaluate import evaluate, format_table

    modes = parse_modes(args.modes)
    with checkpoint_job(args, check_labels=True) as job:
        loaded, seq = job.loaded, job.sequence
        if not getattr(seq, "has_labels", True):
            raise SequenceError(f"{args.sequence} has no ground-truth labels to evaluate against")
        bar = tqdm(total=len(seq) * len(modes), unit="frame", desc="eval", disable=args.quiet or not job.main_rank)
        try:
            results = evaluate(loaded.model, seq, modes, device=job.device, batch=args.batch,
                               num_classes=loaded.scheme.num_classes, ignore_index=loaded.scheme.ignore_index,
                               progress=tqdm_progress(bar), mirror=args.mirror)
        finally:
            bar.close()
        if job.main_rank:
            if all(r.pixels == 0 for r in results.values()):
                raise SequenceError(f"{args.sequence}: no labelled pixel in any frame")
            print(f"checkpoint {args.checkpoint} ({loaded.weights_hash}), {args.sequence}: "
                  f"{len(seq)} frames, scheme {loaded.scheme.name}")
            print(format_table(results, loaded.scheme.class_names))
            if args.json is not None:
                data = {m.value: r.to_dict(loaded.scheme.class_names) for m, r in results.items()}
                atomic_write_text(args.json, json.dumps(data, indent=2))
    return 0
