"""DDP: two CPU processes (gloo) under torchrun train, fine-tune and infer; every rank ends with the
same weights, and those are the weights rank 0 wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.ddp
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_two_ranks_end_with_identical_weights(tmp_path: Path, write_generic_dataset, make_frames,
                                              tiny_config_toml):
    data = write_generic_dataset(tmp_path / "data", make_frames(10, size=64, seed=0))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(tiny_config_toml(data, tmp_path / "run", epochs=2) + "\n[teacher]\nepochs = 1\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(WORKER), str(cfg), str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_env"] == r1["world_env"] == "2"
    # training: DDP kept both replicas identical, and rank 0 saved exactly those weights
    assert r0["train_hash"] == r1["train_hash"] == r0["saved_hash"] == r1["saved_hash"]
    assert r0["history"] == r1["history"], "validation metrics are all-reduced, so every rank reports the same"
    assert {"both", "ir", "eo"} <= set(r0["history"][-1]["val"])
    # fine-tuning under DDP: same weights on both ranks, losses averaged across ranks
    assert r0["finetune_hash"] == r1["finetune_hash"] and r0["finetune_losses"] == r1["finetune_losses"]
    # judged on held-out corrections: every rank sees the same figures and keeps the same weights
    assert r0["judged"] == r1["judged"]
    # batch inference: each rank segments its own half, all masks written once
    assert r0["infer_frames"] + r1["infer_frames"] == 10
    assert len(list((tmp_path / "masks").glob("f*.png"))) == 10
    # one HDF5 file: both ranks segment their halves, rank 0 writes it, and it holds the PNGs' labels
    assert r0["hdf5_frames"] + r1["hdf5_frames"] == 10
    assert r0["hdf5_written"] == [str(tmp_path / "labels.h5")] and r1["hdf5_written"] == []
    assert not (tmp_path / ".labels.h5.shards").exists()
    from csknet_studio.core.export_read import read_labels_hdf5
    from csknet_studio.core.palette_png import decode_png_indices

    back = read_labels_hdf5(tmp_path / "labels.h5")
    assert len(back.labels) == 10
    for i, name in enumerate(back.frame_names):
        png, _ = decode_png_indices((tmp_path / "masks" / f"{name}.png").read_bytes())
        np.testing.assert_array_equal(back.labels[i], png)
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "teacher.pt").is_file()
