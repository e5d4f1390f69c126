"""`csknet-studio train --config FILE.toml [--resume] [--device D]`.

Runs under torchrun unchanged (`torchrun --nproc_per_node=N -m csknet_studio train --config ...`):
every rank trains its shard, rank 0 alone prints progress and writes checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from csknet_studio.core.device_names import DEVICE_CHOICES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, metavar="FILE.toml",
                   help="training config (see configs/*.toml)")
    p.add_argument("--resume", action="store_true", help="continue from <output_dir>/last.pt")
    p.add_argument("--device", default=None, help=f"override the config's device ({', '.join(DEVICE_CHOICES)})")
    p.add_argument("--output-dir", type=Path, default=None, help="override the config's output_dir")
    p.add_argument("--epochs", type=int, default=None, help="override optim.epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from tqdm import tqdm

    from csknet_studio.core.distributed import env_world_size
    from csknet_studio.core.training import TrainConfig, train

    cfg = TrainConfig.from_toml(args.config)
    if args.output_dir is not None:
        cfg = dataclasses.replace(cfg, output_dir=str(args.output_dir.resolve()))
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=args.epochs))
    main_rank = int(os.environ.get("RANK", "0")) == 0
    quiet = args.quiet or not main_rank
    bars: dict[str, tqdm] = {}

    def progress(stage: str, step: int, total: int, info: dict) -> None:
        if quiet:
            return
        bar = bars.get(stage)
        if bar is None or bar.total != total or step < bar.n:
            if bar is not None:
                bar.close()
            desc = {"teacher": "teacher", "train": "train", "val": "validate"}[stage]
            bar = bars[stage] = tqdm(total=total, desc=desc, unit="step" if stage != "val" else "frame",
                                     leave=stage != "val", dynamic_ncols=True)
        bar.update(step - bar.n)
        post = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()}
        bar.set_postfix(post, refresh=False)

    def log(msg: str) -> None:
        if not main_rank:
            return
        if quiet:
            print(msg, file=sys.stderr)
        else:
            tqdm.write(msg, file=sys.stderr)

    if main_rank and env_world_size() > 1:
        log(f"distributed: {env_world_size()} processes")
    try:
        result = train(cfg, progress, resume=args.resume, device=args.device, log=log)
    finally:
        for bar in bars.values():
            bar.close()
    if main_rank:
        best = f"{100 * result.best_metric:.1f}" if result.best_metric == result.best_metric else "n/a"
        print(f"done: {result.epochs_done} epoch(s) this run; best {cfg.select_mode} mIoU {best} "
              f"(epoch {result.best_epoch}); checkpoints in {result.output_dir}")
    return 0
