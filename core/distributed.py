"""torch.distributed helpers so train / fine-tune / batch inference scale out under `torchrun`.

Run plainly, everything here is a no-op (rank 0 of 1). Under `torchrun --nproc_per_node=N` the
environment carries WORLD_SIZE/RANK/LOCAL_RANK; `init_from_env()` starts the process group (gloo on
CPU, NCCL on CUDA) and the callers shard data by rank, all-reduce metrics, and let rank 0 alone write.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device: torch.device) -> bool:
    """Start the process group when launched by torchrun with WORLD_SIZE > 1. Returns True if started here.

    Picks NCCL for CUDA devices (one GPU per local rank) and gloo otherwise.
    """
    if env_world_size() <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return True


def rank_device(device: torch.device) -> torch.device:
    """Under DDP on CUDA each local rank owns its own GPU."""
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", local_rank())
    return device


def shutdown(started: bool) -> None:
    if started and is_distributed():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[bool]:
    """`with process_group(dev) as distributed:` — started and torn down around a job."""
    started = init_from_env(device)
    try:
        yield is_distributed()
    finally:
        shutdown(started)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(x: np.ndarray | torch.Tensor | float) -> np.ndarray | torch.Tensor | float:
    """Sum across ranks; returns the same kind it was given (identity when not distributed)."""
    if not is_distributed():
        return x
    if isinstance(x, torch.Tensor):
        t = x.detach().to(_comm_device()).clone()
        dist.all_reduce(t)
        return t.to(x.device)
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x)).to(_comm_device())
        dist.all_reduce(t)
        return t.cpu().numpy()
    t = torch.tensor([float(x)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item())


def all_reduce_mean(x: float) -> float:
    _, world = rank_and_world()
    return float(all_reduce_sum(float(x))) / world


def broadcast_module_state(module: torch.nn.Module, src: int = 0) -> None:
    """Copy parameters and buffers (BatchNorm running stats) from rank `src` to every rank.

    DDP keeps parameters in step but BN running statistics drift per rank between its buffer
    broadcasts; syncing before validation or saving makes every rank hold the state rank 0 writes.
    """
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.device.type == "cpu" and dist.get_backend() == "nccl":
                continue
            dist.broadcast(t.data, src)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model
