"""The Gated Spectral Unit after the decoders, as the paper's figure (d) draws it.

Three inputs, the EO decoder's features Fo, the IR decoder's Fi and their sum Fo + Fi; each goes
through a tanh branch and is weighted by a sigmoid gate computed from all of them, and the three
gated terms are summed (a three-input Gated Multimodal Unit):

    h = sum_k sigmoid(W_k [Fo, Fi, Fo + Fi]) * tanh(V_k x_k),   x = (Fo, Fi, Fo + Fi)

per pixel and channel. Fo + Fi is a linear function of [Fo, Fi], so the gates read [Fo, Fi] through
one 1x1 conv to 3C channels: the same family of functions at two thirds of the cost.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

GSU_INPUTS: tuple[str, str, str] = ("eo", "ir", "sum")


class GatedSpectralUnit(nn.Module):
    """(Fo, Fi) -> (h, gates): h (B,C,h,w) for the Fusion head, gates (B,3,C,h,w) in [0, 1], one
    per input in `GSU_INPUTS` order. The gate conv starts at zero (every gate 0.5), so at step 0 the
    fusion is an even sum of the three tanh branches."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.gate = nn.Conv2d(2 * channels, 3 * channels, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.value = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in GSU_INPUTS)

    def forward(self, eo: Tensor, ir: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = eo.shape
        gates = torch.sigmoid(self.gate(torch.cat([eo, ir], 1))).view(b, 3, c, h, w)
        inputs = (eo, ir, eo + ir)
        fused = sum(gates[:, k] * torch.tanh(v(x)) for k, (v, x) in enumerate(zip(self.value, inputs, strict=True)))
        return fused, gates
