"""`CSKNetConfig`: everything needed to rebuild a CSK-Net, JSON-able so checkpoints carry it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from csknet_studio.core.dataclass_io import dataclass_from_mapping
from csknet_studio.core.errors import ConfigError
from csknet_studio.core.model.preprocess import InputNorm

# name -> (block type, blocks per stage). torchvision's depths; "resnet10" is the one-block-per-stage
# toy used by the tiny test config.
BACKBONES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet10": ("basic", (1, 1, 1, 1)),
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}
EXCHANGE_MODES = ("replace", "mix")
EXCHANGE_DIRECTIONS = ("both", "ir->eo")
GSU_INJECT = ("both", "ir", "eo")
OUTPUT_STRIDES = (8, 16, 32)
# "gsu_heads": the paper's figure (docs/model.md): an EO and an IR decoder, three heads (EO, IR,
# Fusion) and the Gated Spectral Unit after the decoders feeding the Fusion head.
# "sum_heads": the same without the GSU: the Fusion head reads Fo + Fi (the ablation of the GSU).
# "logit_ensemble": one decoder for both streams, the GSU inside encoder stages (`gsu_stages`) and
# the fused output a softmax-weighted average of the two branch logits (the model before the figure
# was found; kept for the ablation and for older checkpoints).
FUSIONS = ("gsu_heads", "sum_heads", "logit_ensemble")
DECODER_SHARING = ("shared", "private")
BN_STATS = ("per_mode", "shared")
# What a checkpoint written before these switches existed was built with.
_LEGACY_DEFAULTS: dict[str, Any] = {"fusion": "logit_ensemble", "bn_stats": "shared", "exchange_penalised_only": False}


def _int_tuple(v: Any, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected a list of integers, got {v!r}") from exc


@dataclass(frozen=True)
class CSKNetConfig:
    """Architecture of a CSK-Net student (and, via `teacher.py`, of its EO teacher).

    fusion: "gsu_heads" (the paper's figure), "sum_heads" or "logit_ensemble" (see FUSIONS).
    decoder_sharing: with "gsu_heads" / "sum_heads", whether the EO and IR decoders share conv weights (each
        keeping private BatchNorms, like the encoder) or are two separate decoders.
    bn_stats: "per_mode" keeps each BatchNorm's running statistics twice, for a modality alone and
        for a paired (EO + IR) forward; the exchange makes the two differ, and one shared set fits
        neither (the learned scale and shift stay one per modality). "shared": one set.
    solo_affine: at exchange sites, a modality running alone has its own BN scale and shift besides
        the paired ones (which L1 drives to 0 on the channels it borrows when both run); needs
        bn_stats "per_mode". Solo inference costs the same.
    exchange_share: the share of each site's channels a modality may give up (EO its first ones, IR
        its last; 0.5 = CEN's halves). Alone, a stream runs with those channels' scales near 0,
        so a smaller share keeps more of it for IR-only and EO-only inference.
    exchange_stages: ResNet stages (1..4) whose blocks host an exchange site.
    exchange_penalised_only: only the channels the L1 term drives (EO's first half, IR's second
        half at each site) may be exchanged; the rest are the "no sparsity constraint" part of the
        figure and stay the modality's own whatever their gamma.
    gsu_stages: stages whose output goes through an in-encoder two-input GSU when both streams run
        (the "logit_ensemble" model's fusion).
    output_stride: 8/16/32; deeper stages are dilated instead of strided (DeepLab style).
    aspp_rates: ASPP dilations at output stride 16 (scaled for 8 / 32).
    """

    backbone: str = "resnet18"
    num_classes: int = 9
    base_width: int = 64
    output_stride: int = 16
    decoder_channels: int = 128
    skip_channels: int = 48
    # > 0: a second decoder skip from the stem (stride 2) with this many channels, refining the
    # stride-4 output before the classifier; thin classes (guardrail, bike, curbs) are a pixel or
    # two wide at 480x640 and cannot be placed from stride-4 features alone. 0 = DeepLabV3+ as is.
    fine_skip_channels: int = 0
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    fusion: str = "gsu_heads"
    decoder_sharing: str = "shared"
    bn_stats: str = "per_mode"
    solo_affine: bool = False
    exchange_penalised_only: bool = True
    exchange_share: float = 0.5
    exchange_stages: tuple[int, ...] = (2, 3, 4)
    exchange_threshold: float = 2e-2
    exchange_mode: str = "replace"
    # "ir->eo": one-way exchange, only EO channels take IR's (L1 on EO's half only); with
    # gsu_inject="eo" the IR stream then computes the same in both and IR-only mode, so its BN
    # running statistics fit IR-only inference (docs/model.md, "Default model").
    exchange_direction: str = "both"
    gsu_stages: tuple[int, ...] = ()
    gsu_inject: str = "both"
    input_norm: InputNorm = field(default_factory=InputNorm)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone: unknown {self.backbone!r}; choose from {sorted(BACKBONES)}")
        for name in ("aspp_rates", "exchange_stages", "gsu_stages"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name), name))
        if isinstance(self.input_norm, dict):
            object.__setattr__(self, "input_norm", InputNorm.from_dict(self.input_norm))
        elif not isinstance(self.input_norm, InputNorm):
            raise ConfigError(f"input_norm: expected InputNorm or dict, got {type(self.input_norm).__name__}")
        if int(self.num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")
        if int(self.base_width) < 1 or int(self.decoder_channels) < 1 or int(self.skip_channels) < 1:
            raise ConfigError("base_width, decoder_channels and skip_channels must be >= 1")
        if int(self.fine_skip_channels) < 0:
            raise ConfigError(f"fine_skip_channels must be >= 0, got {self.fine_skip_channels}")
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(f"output_stride must be one of {OUTPUT_STRIDES}, got {self.output_stride}")
        if any(r < 1 for r in self.aspp_rates):
            raise ConfigError(f"aspp_rates must be >= 1, got {self.aspp_rates}")
        for name in ("exchange_stages", "gsu_stages"):
            bad = [s for s in getattr(self, name) if s not in (1, 2, 3, 4)]
            if bad or len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ConfigError(f"{name}: stages are distinct values in 1..4, got {getattr(self, name)}")
        if not 0.0 <= float(self.exchange_threshold) < 1.0:
            raise ConfigError(f"exchange_threshold must be in [0, 1), got {self.exchange_threshold}")
        if self.exchange_mode not in EXCHANGE_MODES:
            raise ConfigError(f"exchange_mode must be one of {EXCHANGE_MODES}, got {self.exchange_mode!r}")
        if self.exchange_direction not in EXCHANGE_DIRECTIONS:
            raise ConfigError(f"exchange_direction must be one of {EXCHANGE_DIRECTIONS}, got {self.exchange_direction!r}")
        for name, allowed in (("fusion", FUSIONS), ("decoder_sharing", DECODER_SHARING), ("bn_stats", BN_STATS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.fusion == "logit_ensemble" and self.decoder_sharing != "shared":
            raise ConfigError("decoder_sharing = 'private' needs fusion = 'gsu_heads' (the ensemble has one decoder)")
        if not 0 < float(self.exchange_share) <= 0.5:
            raise ConfigError(f"exchange_share must be in (0, 0.5], got {self.exchange_share}")
        if self.solo_affine and self.bn_stats != "per_mode":
            raise ConfigError("solo_affine = true needs bn_stats = 'per_mode' (a solo forward's own statistics)")
        if self.gsu_inject not in GSU_INJECT:
            raise ConfigError(f"gsu_inject must be one of {GSU_INJECT}, got {self.gsu_inject!r}")

    # -- derived ---------------------------------------------------------------------------------
    @property
    def block(self) -> str:
        return BACKBONES[self.backbone][0]

    @property
    def layers(self) -> tuple[int, int, int, int]:
        return BACKBONES[self.backbone][1]

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        """Channels of layer1..layer4 outputs."""
        w, e = self.base_width, self.expansion
        return (w * e, 2 * w * e, 4 * w * e, 8 * w * e)

    @property
    def dilate_stages(self) -> tuple[bool, bool, bool]:
        """torchvision's replace_stride_with_dilation for layer2..layer4."""
        return {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}[self.output_stride]

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (lists, not tuples), stable keys."""
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, InputNorm):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CSKNetConfig:
        """From a checkpoint's JSON; keys it predates take the values that model was built with."""
        return dataclass_from_mapping(cls, {**_LEGACY_DEFAULTS, **d}, "model config")
