"""Set-up shared by the headless sub-commands that load a checkpoint and read a sequence."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from csknet_studio.commands._alignment import alignment_kwargs
from csknet_studio.commands._topics import topic_kwargs


def tqdm_progress(bar: Any) -> Callable[[int, int], None]:
    """Adapt a tqdm bar to core's `progress(done, total)` callbacks."""

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


SCHEME_HINT = ("pass --scheme checkpoint if the data's labels really are the checkpoint's classes "
               "(or --scheme NAME to name the data's scheme)")


def add_scheme_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", default=None, metavar="NAME",
                   help="the class scheme of the data: 'checkpoint' (the checkpoint's), or mfnet, pst900, fmb; "
                        "default: the one detected from the layout. A checkpoint of another scheme is refused")


@dataclass
class Job:
    device: Any  # torch.device for this rank
    main_rank: bool  # rank 0 (or no torchrun): the only one that prints and writes
    loaded: Any  # LoadedCheckpoint
    sequence: Any  # Sequence


@contextlib.contextmanager
def checkpoint_job(args: argparse.Namespace, *, check_labels: bool = False) -> Iterator[Job]:
    """Device (+ process group under torchrun), checkpoint and sequence for eval / infer.

    The checkpoint's class scheme must be the data's (`--scheme` overrides what is detected);
    `check_labels` also checks the label ids against it even when `--scheme` is given (eval scores
    them)."""
    # the engine, imported here: see the package docstring
    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.core.classes import check_scheme_fits
    from csknet_studio.core.device import resolve_device
    from csknet_studio.core.distributed import init_from_env, rank_device, shutdown
    from csknet_studio.core.registration import open_aligned

    device = resolve_device(args.device)
    started = init_from_env(device)
    try:
        device = rank_device(device)
        loaded = load_checkpoint(args.checkpoint, map_location=device)
        kw = {"split": args.split} if args.split else {}
        # the EO/IR homography `align` or the GUI stored, unless --alignment says otherwise
        seq = open_aligned(args.sequence, **kw, **topic_kwargs(args), **alignment_kwargs(args))
        try:
            check_scheme_fits(loaded.scheme, seq, declared=args.scheme, check_labels=check_labels or args.scheme is None,
                              source=f"checkpoint {args.checkpoint}", hint=SCHEME_HINT)
            yield Job(device, int(os.environ.get("RANK", "0")) == 0, loaded, seq)
        finally:
            seq.close()
    finally:
        shutdown(started)
