"""`csknet-studio finetune SEQUENCE --checkpoint W.pt --out W2.pt`: fine-tune on the user's corrections.

The corrections come from the project beside the sequence (`<SEQUENCE>.csknet/`, or --project), or
with `--from-labels 0-5,40` from the sequence's own ground-truth masks for those frames (a partly
labelled data set). Part of them is held out (whole frames, or regions inside the frames when only
1-3 are corrected) and the before/after figures are measured there. `--out` is written only when
the held-out figure improved, unless --force. Exit status: 0 written, 1 no gain (nothing written),
2 bad input (one line on stderr).

Runs under torchrun unchanged (`torchrun --nproc_per_node=N -m csknet_studio finetune ...`): every
rank trains on its own crops, DDP averages the gradients, rank 0 alone prints and writes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

from csknet_studio.commands._alignment import alignment_kwargs, reapply_given_alignment
from csknet_studio.commands._topics import topic_kwargs
from csknet_studio.core.device_names import DEVICE_CHOICES
from csknet_studio.core.errors import ConfigError, ProjectError, SequenceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    # the engine, for its defaults: see the package docstring
    from csknet_studio.core.finetune import FinetuneConfig

    d = FinetuneConfig()
    p.add_argument("sequence", type=Path, help="the sequence (folder, video pair or HDF5 file)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--project", type=Path, default=None,
                     help="project folder holding the corrections (default: <SEQUENCE>.csknet)")
    src.add_argument("--from-labels", default=None, metavar="FRAMES",
                     help="train on the sequence's ground-truth masks of these frames instead, e.g. 0-5,40")
    p.add_argument("--checkpoint", type=Path, required=True, help="the weights to start from (.pt)")
    p.add_argument("--out", type=Path, required=True, help="where to write the fine-tuned checkpoint")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps at most (default {d.steps})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr:g})")
    p.add_argument("--modes", default=",".join(d.modes), help="modes to train and score: both, ir, eo")
    p.add_argument("--train-encoder", action="store_true",
                   help="train the encoder too (default: decoders and heads only)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"share of the corrections held out to judge the result (default {d.val_fraction:g})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for the split, the crops and the flips")
    p.add_argument("--force", action="store_true",
                   help="write --out even without a held-out gain (the best weights training reached)")
    p.add_argument("--json", action="store_true", help="end stdout with one JSON line of the figures")
    p.add_argument("--device", default="auto", help=", ".join(DEVICE_CHOICES))
    p.add_argument("--relink", action="store_true", help="accept a project whose sequence was moved")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_frames(text: str, n_frames: int) -> list[int]:
    """'0-5,40' -> [0, 1, 2, 3, 4, 5, 40]: inclusive ranges and single frames, in range."""
    frames: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ConfigError(f"--from-labels: bad frame list {text!r} (use frame numbers and ranges, "
                              "e.g. 0-5,40)") from None
        if a < 0 or b < a:
            raise ConfigError(f"--from-labels: bad range {part!r} in {text!r} (use FIRST-LAST with FIRST <= LAST)")
        if b >= n_frames:
            raise ConfigError(f"--from-labels: frame {b} is out of range (the sequence has {n_frames} frames, "
                              f"0-{n_frames - 1})")
        frames.update(range(a, b + 1))
    if not frames:
        raise ConfigError(f"--from-labels: no frame in {text!r}")
    return sorted(frames)


def _frame(seq, i: int):
    fp = seq[i]
    if fp.bad:
        raise SequenceError(f"frame {i} ({fp.name}) is unreadable: {fp.error}")
    return fp


def _corrections(args: argparse.Namespace, seq, scheme) -> tuple[list[int], list[tuple], str]:
    """(frame indices, (eo, ir, mask) samples, where they came from)."""
    # the engine, imported here: see the package docstring
    import numpy as np

    if args.from_labels is not None:
        frames = parse_frames(args.from_labels, len(seq))
        samples = []
        for i in frames:
            fp = _frame(seq, i)
            if fp.label is None:
                raise SequenceError(f"frame {i} ({fp.name}) of {args.sequence} has no ground-truth label file")
            samples.append((fp.eo, fp.ir, np.asarray(fp.label)))
        return frames, samples, f"ground-truth labels of {len(frames)} frame(s)"
    # the engine, imported here: see the package docstring
    from csknet_studio.core.session import AnnotationSession

    session = AnnotationSession(seq, args.project, autosave=False, relink=args.relink, read_only=True)
    reapply_given_alignment(args, seq)
    for note in session.open_notes():  # repairs, or another copy writing the project
        print(f"warning: {note}", file=sys.stderr)
    frames = session.corrected_frames()
    if not frames:
        raise ProjectError(f"no corrections in {session.project_path}: correct some frames in the GUI first, "
                           "or train on ground truth with --from-labels FRAMES")
    if session.scheme.class_names != scheme.class_names:
        raise ProjectError(f"checkpoint {args.checkpoint} predicts scheme {scheme.name!r} but the project "
                           f"uses {session.scheme.name!r}")
    samples = []
    for i in frames:
        fp = _frame(seq, i)
        samples.append((fp.eo, fp.ir, np.array(session.labels(i), dtype=np.uint8)))
    return frames, samples, f"{len(frames)} corrected frame(s) in {session.project_path}"


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from tqdm import tqdm

    from csknet_studio.commands.eval import parse_modes
    from csknet_studio.core.checkpoint import load_checkpoint, save_checkpoint
    from csknet_studio.core.device import resolve_device
    from csknet_studio.core.distributed import barrier, init_from_env, rank_device, shutdown
    from csknet_studio.core.finetune import FinetuneConfig, finetune
    from csknet_studio.core.registration import open_aligned

    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if not args.checkpoint.is_file():
        raise ConfigError(f"--checkpoint {args.checkpoint} does not exist")
    cfg = FinetuneConfig(steps=args.steps, lr=args.lr, modes=tuple(m.value for m in parse_modes(args.modes)),
                         freeze_encoder=not args.train_encoder, val_fraction=args.val_fraction, seed=args.seed)
    device = resolve_device(args.device)
    started = init_from_env(device)
    try:
        device = rank_device(device)
        main_rank = int(os.environ.get("RANK", "0")) == 0
        loaded = load_checkpoint(args.checkpoint, map_location=device)
        seq = open_aligned(args.sequence, project_path=getattr(args, "project", None), **topic_kwargs(args),
                           **alignment_kwargs(args))
        try:
            frames, samples, source = _corrections(args, seq, loaded.scheme)
        finally:
            seq.close()
        bar = tqdm(total=cfg.steps, unit="step", desc="finetune", disable=args.quiet or not main_rank,
                   file=sys.stderr, dynamic_ncols=True)

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

        try:
            result = finetune(loaded.model, samples, cfg, progress=progress,
                              ignore_index=loaded.scheme.ignore_index)
        finally:
            bar.close()
        write = result.improved or args.force
        if write and main_rank:
            model = copy.deepcopy(loaded.model).cpu()
            model.load_state_dict(result.state_dict if result.improved else result.trained_state_dict)
            held = result.held_out.to_dict(frames)
            save_checkpoint(args.out, model, scheme=loaded.scheme,
                            metrics={"finetune": {"before": result.before, "after": result.after,
                                                  "improved": result.improved, "held_out": held,
                                                  "modes": list(cfg.modes)}},
                            train_config={"finetune": {"steps": cfg.steps, "lr": cfg.lr, "frames": frames,
                                                       "freeze_encoder": cfg.freeze_encoder}},
                            extra={"source": "csknet-studio finetune", "base_checkpoint": str(args.checkpoint),
                                   "base_weights_hash": loaded.weights_hash})
        barrier()
        if main_rank:
            _report(args, result, frames, source, write)
        return 0 if write else 1
    finally:
        shutdown(started)


def _report(args: argparse.Namespace, result, frames: list[int], source: str, written: bool) -> None:
    stop = f", stopped early at step {result.steps_done}" if result.stopped_early else ""
    print(f"trained on {source}: {result.steps_done} step(s) in {result.seconds:.1f} s{stop}")
    print(f"held out: {result.held_out.describe(frames)}")
    print(f"held-out mIoU: before {100 * result.before:.1f} % / after {100 * result.after:.1f} %"
          f" (best at step {result.best_step})")
    if written:
        note = "" if result.improved else " (no held-out gain; written because of --force)"
        print(f"wrote {args.out}{note}")
    else:
        print(f"No gain on held-out corrections: {args.out} not written (the starting weights are better on "
              "corrections they did not train on); --force writes the trained weights anyway")
    if args.json:
        print(json.dumps({
            "before": round(100 * result.before, 3), "after": round(100 * result.after, 3),
            "held_out": result.held_out.to_dict(frames), "improved": bool(result.improved),
            "written": str(args.out) if written else None, "frames": frames,
            "steps_done": result.steps_done, "best_step": result.best_step,
            "weights_hash": result.weights_hash if result.improved else result.trained_weights_hash,
        }))
