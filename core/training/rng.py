"""Global RNG state: seeding a run, and saving / restoring every generator for an exact `--resume`.

States are plain data and tensors, so a checkpoint that carries them still loads with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from csknet_studio.core.distributed import is_distributed, rank_and_world


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Global RNG states as plain data + tensors (loadable with weights_only=True)."""
    st = np.random.get_state()
    out = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": {"keys": torch.from_numpy(st[1].astype(np.int64)), "pos": int(st[2]),
                  "has_gauss": int(st[3]), "cached": float(st[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(st: Mapping[str, Any]) -> None:
    random.setstate((3, tuple(int(v) for v in st["python"]), st.get("python_pos")))
    npst = st["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), int(npst["pos"]),
                         int(npst["has_gauss"]), float(npst["cached"])))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        # one state per GPU the saving run saw; a resume may see fewer (4-GPU torchrun resumed on one)
        for index, state in enumerate(list(st["cuda"])[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)


def gather_rng() -> list[dict]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    mine = rng_state()
    if not is_distributed():
        return [mine]
    _, world = rank_and_world()
    out: list = [None] * world
    dist.all_gather_object(out, mine)
    return out


def restore_rank_rng(saved: Any, rank: int) -> None:
    """Restore this rank's stream from a saved `gather_rng()` list (or a single state from a run
    saved before states were kept per rank); a rank the saved run did not have takes rank 0's."""
    if isinstance(saved, list):
        set_rng_state(saved[rank] if rank < len(saved) else saved[0])
    else:
        set_rng_state(saved)
