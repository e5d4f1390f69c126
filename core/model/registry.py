"""Named model configs. `create_model(name, **overrides)` never mutates a registry entry."""

from __future__ import annotations

import copy
from dataclasses import fields, replace

from csknet_studio.core.errors import ConfigError
from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.model.csknet import CSKNet

MODEL_REGISTRY: dict[str, CSKNetConfig] = {
    # Tests: a few ms per 64x64 forward on one CPU core.
    "csknet-tiny": CSKNetConfig(
        backbone="resnet10", base_width=8, decoder_channels=16, skip_channels=8, aspp_rates=(2, 4)
    ),
    # Default: interactive on a laptop CPU at 480x640.
    "csknet-r18": CSKNetConfig(backbone="resnet18", output_stride=16, decoder_channels=128),
    # ResNet-18 at half width: the bundled default checkpoint (3.1 M params, 12 MB; trains on 2 CPU cores).
    "csknet-r18s": CSKNetConfig(backbone="resnet18", base_width=32, output_stride=16, decoder_channels=64,
                                skip_channels=32),
    "csknet-r34": CSKNetConfig(backbone="resnet34", output_stride=16, decoder_channels=128),
    "csknet-r50": CSKNetConfig(backbone="resnet50", output_stride=16, decoder_channels=256),
    "csknet-r101": CSKNetConfig(backbone="resnet101", output_stride=16, decoder_channels=256),
}
DEFAULT_MODEL = "csknet-r18"


def get_config(name: str, **overrides) -> CSKNetConfig:
    if name not in MODEL_REGISTRY:
        raise ConfigError(f"unknown model {name!r}; registered: {sorted(MODEL_REGISTRY)}")
    unknown = set(overrides) - {f.name for f in fields(CSKNetConfig)}
    if unknown:
        raise ConfigError(f"model {name!r}: unknown override(s) {sorted(unknown)}")
    cfg = copy.deepcopy(MODEL_REGISTRY[name])
    return replace(cfg, **overrides) if overrides else cfg


def create_model(name: str = DEFAULT_MODEL, **overrides) -> CSKNet:
    """Build a registered CSK-Net, e.g. `create_model("csknet-r18", num_classes=5)`."""
    return CSKNet(get_config(name, **overrides))
