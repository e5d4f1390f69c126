"""Set-up shared by the headless sub-commands that load a checkpoint and read a sequence."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


def tqdm_progress(bar: Any) -> Callable[[int, int], None]:
    """Adapt a tqdm bar to core's `progress(done, total)` callbacks."""

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


@dataclass
class Job:
    device: Any  # torch.device for this rank
    main_rank: bool  # rank 0 (or no torchrun): the only one that prints and writes
    loaded: Any  # LoadedCheckpoint
    sequence: Any  # Sequence


@contextlib.contextmanager
def checkpoint_job(args: argparse.Namespace) -> Iterator[Job]:
    """Device (+ process group under torchrun), checkpoint and sequence for eval / infer."""
    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.device import resolve_device
    from csknet_studio.core.distributed import init_from_env, rank_device, shutdown

    device = resolve_device(args.device)
    started = init_from_env(device)
    try:
        device = rank_device(device)
        loaded = load_checkpoint(args.checkpoint, map_location=device)
        seq = open_sequence(args.sequence, split=args.split) if args.split else open_sequence(args.sequence)
        yield Job(device, int(os.environ.get("RANK", "0")) == 0, loaded, seq)
    finally:
        shutdown(started)
