"""Plain single-stream segmentation network (ResNet + DeepLabV3+-lite, ordinary BatchNorm).

It is the EO teacher's body, the baseline of bench/model_forward.py, and what a CSK-Net reduces to
for one modality: `extract_single_stream(model, "ir")` copies the shared convs and the IR BN set into
this plain network — the deployable IR-only model, and the reference the missing-modality tests
compare `CSKNet(eo=None, ir=x)` against.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.model.decoder import PlainDecoder, scaled_rates
from csknet_studio.core.model.resnet import ResNet
from csknet_studio.core.model.streams import PAIRED_BUFFERS


class SingleStreamOutput(NamedTuple):
    logits: Tensor  # (B,K,H,W)
    stage_features: list[Tensor]  # layer1..layer4


class SingleStreamSegNet(nn.Module):
    def __init__(self, config: CSKNetConfig, in_channels: int = 3):
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        self.encoder = ResNet(config.block, config.layers, config.base_width, in_channels, config.dilate_stages)
        ch = self.encoder.out_channels
        self.decoder = PlainDecoder(
            ch[0], ch[3], config.num_classes, config.decoder_channels, config.skip_channels,
            scaled_rates(config.aspp_rates, config.output_stride), config.base_width, config.fine_skip_channels,
        )

    def forward(self, x: Tensor) -> SingleStreamOutput:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ModelInputError(f"expected (B,{self.in_channels},H,W), got {tuple(x.shape)}")
        stem, feats = self.encoder(x, with_stem=True)  # the decoder uses the stem with a fine skip
        logits = F.interpolate(self.decoder(feats[0], feats[3], stem), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)
        return SingleStreamOutput(logits, feats)


def _plain_key(two_stream_key: str, modality: str) -> str | None:
    """Map a CSKNet key to the plain network's key for `modality`, None when it has no counterpart
    (the other modality's BNs, decoder and head, the fusion, paired-mode BN statistics)."""
    parts = two_stream_key.split(".")
    if "gsu" in parts[:2] or parts[0] == "fusion_alpha" or parts[-1] in PAIRED_BUFFERS:
        return None
    if parts[0] == "heads":  # heads.<eo|ir|fusion>.<leaf>: the modality's head is the plain classifier
        return f"decoder.classifier.{parts[-1]}" if parts[1] == modality else None
    if parts[0] == "decoders":  # decoders.<modality>.<...>: a decoder of the modality's own
        if parts[1] != modality:
            return None
        parts = ["decoder", *parts[2:]]
    if len(parts) >= 2 and parts[-2] in ("eo", "ir"):
        if parts[-2] != modality:
            return None
        return ".".join(parts[:-2] + parts[-1:])
    return ".".join(parts)


@torch.no_grad()
def extract_single_stream(model: nn.Module, modality: str) -> SingleStreamSegNet:
    """The plain network that `model` runs when only `modality` is fed (weights copied, not shared).

    For IR the 3-channel stem kernel is summed over input channels into a 1-channel stem — the same
    arithmetic the two-stream encoder applies to the IR stream.
    """
    if modality not in ("eo", "ir"):
        raise ModelInputError(f"modality must be 'eo' or 'ir', got {modality!r}")
    net = SingleStreamSegNet(model.config, in_channels=3 if modality == "eo" else 1)
    src = model.state_dict()
    dst = {}
    for k, v in src.items():
        pk = _plain_key(k, modality)
        if pk is None:
            continue
        if pk == "encoder.conv1.weight" and modality == "ir":
            v = v.sum(1, keepdim=True)
        dst[pk] = v.clone()
    net.load_state_dict(dst, strict=True)
    net.train(model.training)
    return net.to(next(model.parameters()).device)
