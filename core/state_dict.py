"""State-dict keys as the model names them, whatever wrapper saved them.

A leaf module, so both the checkpoint format and the ImageNet-weights loader in core/model/ can use
it without core/model/ importing the engine above it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

# DDP / DataParallel (`module.`) and torch.compile (`_orig_mod.`) wrappers prefix every key
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DDP (`module.`) and torch.compile (`_orig_mod.`) prefixes, however nested."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key
        changed = True
        while changed:
            changed = False
            for p in WRAPPER_PREFIXES:
                if k.startswith(p):
                    k = k[len(p):]
                    changed = True
        out[k] = value
    return out


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of `module`'s state with clean keys: what a file stores, safe from the
    optimiser's later in-place updates."""
    return {k: v.detach().cpu().clone() for k, v in clean_state_dict(module.state_dict()).items()}
