"""One channel of an exchange site, before and after the exchange, for the internals panel.

`Prediction.features` holds channel means (cheap to cache for every frame); looking at a single
exchanged channel needs the full (C, h, w) maps of one site, so this runs one extra forward pass
with `features=(site,)` and keeps only the channel asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.model.preprocess import to_tensors


@dataclass(frozen=True)
class ChannelMaps:
    site: str  # exchange site, e.g. "layer2.0"
    stream: str  # "eo" | "ir": the stream whose channel is shown
    channel: int
    before: np.ndarray  # (h, w) float32
    after: np.ndarray  # (h, w) float32
    exchanged: bool  # whether this channel was replaced at this site on this frame


def stream_of(direction: str) -> str:
    """"ir->eo" replaces EO channels with IR's, so the receiving stream is "eo"."""
    try:
        src, dst = direction.split("->")
    except ValueError:
        raise ModelInputError(f"direction must look like 'ir->eo', got {direction!r}") from None
    if {src, dst} != {"eo", "ir"}:
        raise ModelInputError(f"direction must be 'ir->eo' or 'eo->ir', got {direction!r}")
    return dst


@torch.no_grad()
def channel_maps(model: torch.nn.Module, eo: np.ndarray, ir: np.ndarray, site: str, direction: str,
                 channel: int) -> ChannelMaps:
    """Feature map of `channel` in the receiving stream of `direction` at `site`, both streams fed."""
    sites = list(getattr(model, "exchange_sites", []))
    if site not in sites:
        raise ModelInputError(f"unknown exchange site {site!r}; known: {sites}")
    stream = stream_of(direction)
    device = next(model.parameters()).device
    eo_t, ir_t = to_tensors(eo[None], ir[None], model.config.input_norm, device)
    out = model(eo_t, ir_t, introspect=True, features=(site,))
    before = out.features[f"{site}.before/{stream}"]
    if not 0 <= channel < before.shape[1]:
        raise ModelInputError(f"{site} has {before.shape[1]} channels; channel {channel} does not exist")
    after = out.features[f"{site}.after/{stream}"]
    idx = out.exchanged.get(site, {}).get(direction)
    was = bool(idx is not None and (idx == channel).any())
    return ChannelMaps(site, stream, int(channel), before[0, channel].float().cpu().numpy().copy(),
                       after[0, channel].float().cpu().numpy().copy(), was)
