"""Test-time mirroring: the softmax of a frame averaged with that of its left-right mirror.

Street scenes have no preferred left or right, and the model was trained with horizontal flips, so
its two answers differ only by where it is unsure; their mean is a little better in every mode
(docs/model.md, "Test-time mirroring") at twice the forward cost. Off by default, as in the app's
live view, where it doubles the wait for each frame; nnU-Net mirrors by default for the same gain.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Forward = Callable[[torch.Tensor | None, torch.Tensor | None], torch.Tensor]


def _mirror(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.flip(-1)


def mirrored_mean_probs(forward: Forward, eo: torch.Tensor | None, ir: torch.Tensor | None,
                        logits: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) float32: softmax(`logits`, the frame's own) averaged with the softmax of
    `forward` on the mirrored inputs, mirrored back. `forward(eo, ir)` returns logits."""
    mirrored = forward(_mirror(eo), _mirror(ir)).float().flip(-1)
    return (torch.softmax(logits.float(), 1) + torch.softmax(mirrored, 1)) / 2
