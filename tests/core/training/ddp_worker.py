"""Run by tests/core/training/test_ddp.py under `torchrun --nproc_per_node=2` (gloo, CPU).

Trains, fine-tunes and runs batch inference under DDP and writes, per rank, the hashes of the weights
it ends with, so the test can check that every rank holds identical weights.
argv: CONFIG.toml OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)


def main() -> None:
    cfg_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    import torch.distributed as dist

    from csknet_studio.core.batch_infer import infer_sequence
    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.distributed import init_from_env, rank_and_world, shutdown
    from csknet_studio.core.finetune import FinetuneConfig, finetune
    from csknet_studio.core.predictor import Predictor
    from csknet_studio.core.training import TrainConfig, train

    cfg = TrainConfig.from_toml(cfg_path)
    started = init_from_env(torch.device("cpu"))  # one process group for train, finetune and infer
    rank, world = rank_and_world()
    result = train(cfg)
    assert world == 2, world
    loaded = load_checkpoint(result.last_checkpoint)
    seq = open_sequence(cfg.resolve(cfg.data.path))
    samples = [seq[i] for i in range(3)]
    ft = finetune(loaded.model, samples, FinetuneConfig(steps=3, batch=2, crop=(32, 32), lr=1e-3, evaluate=False,
                                                        freeze_bn=False))
    judged = finetune(loaded.model, samples, FinetuneConfig(steps=4, batch=2, crop=(32, 32), lr=1e-3, eval_every=2))
    pred = Predictor(loaded.model, "cpu", loaded.scheme)
    inf = infer_sequence(pred, seq, "ir", out / "masks", batch=2)
    h5 = infer_sequence(pred, seq, "ir", out / "labels.h5", batch=2, fmt="hdf5")
    record = {
        "rank": rank,
        "train_hash": result.weights_hash,
        "saved_hash": loaded.weights_hash,
        "finetune_hash": ft.weights_hash,
        "finetune_losses": ft.losses,
        "judged": [judged.before, judged.after, judged.improved, judged.validation, judged.weights_hash,
                   judged.trained_weights_hash],
        "history": result.history,
        "infer_frames": inf.frames,
        "hdf5_frames": h5.frames,
        "hdf5_written": [str(p) for p in h5.written],
        "world_env": os.environ.get("WORLD_SIZE"),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    shutdown(started)


if __name__ == "__main__":
    main()
