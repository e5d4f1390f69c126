"""CSK-Net student: two-stream encoder -> EO and IR decoders -> EO, IR and Fusion heads (the GSU
over both decoders feeds the Fusion head); or, for the ablation, the older shared-decoder ensemble."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csknet_studio.core.errors import ModelInputError
from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.model.decoder import TwoStreamDecoder, scaled_rates
from csknet_studio.core.model.fusion import GSU_INPUTS, GatedSpectralUnit
from csknet_studio.core.model.streams import MODALITIES, ExchangeBN, Probe, TwoStreamEncoder
from csknet_studio.core.modes import Mode

HEADS: tuple[str, str, str] = ("eo", "ir", "fusion")


@dataclass
class CSKNetOutput:
    """One forward's results. Introspection fields stay empty unless asked for.

    logits: (B,K,H,W) prediction of the mode that ran (both -> the Fusion head, or the ensemble).
    branch_logits: {"eo": ..., "ir": ...} the EO / IR heads for the streams that ran (full resolution).
    gate_maps: introspect + both. "gsu_heads": {"eo", "ir", "sum"}: (B,h,w) in [0,1], the
        channel-mean sigmoid gate on each GSU input (Fo, Fi, Fo + Fi) at decoder resolution: how
        much of each the fusion took, per pixel. "logit_ensemble": {"layer3": ...} the in-encoder
        GSU's gate (weight on EO).
    exchanged: {"layer2.0": {"ir->eo": idx, "eo->ir": idx}}: "ir->eo" lists the EO channels that were
        replaced by IR's; introspect + both.
    features: requested maps, detached: "<site>.before/<mod>", "<site>.after/<mod>" for exchange sites
        (e.g. "layer2.0"), "<stage>/<mod>" for stage outputs ("layer1".."layer4", after GSU).
    stage_features: {"eo": [layer1..layer4], "ir": [...]}, not detached (for distillation losses).
    gates: "gsu_heads" + both: the GSU's gates (B,3,C,h,w), not detached (for the gate loss).
    """

    logits: Tensor
    branch_logits: dict[str, Tensor]
    mode: Mode
    gate_maps: dict[str, Tensor] = field(default_factory=dict)
    exchanged: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    features: dict[str, Tensor] = field(default_factory=dict)
    stage_features: dict[str, list[Tensor]] = field(default_factory=dict)
    gates: Tensor | None = None


class CSKNet(nn.Module):
    """Feed `eo`, `ir` or both; a missing modality costs nothing (no exchange, GSU or second stream).

    With `fusion = "gsu_heads"` (the paper's figure): encoder -> an EO and an IR decoder -> EO and
    IR heads, and the Gated Spectral Unit over the two decoders' features -> the Fusion head. One
    modality alone runs the encoder, its decoder and its head: a single-stream DeepLab network.
    `fusion = "sum_heads"` drops the GSU: the Fusion head reads Fo + Fi.
    With `fusion = "logit_ensemble"`: one decoder for both streams and the fused output a
    softmax(alpha)-weighted sum of the detached branch logits (CEN's ensemble; trains alpha only).
    """

    def __init__(self, config: CSKNetConfig):
        super().__init__()
        self.config = config
        self.encoder = TwoStreamEncoder(config)
        ch = self.encoder.out_channels
        args = (ch[0], ch[3], config.num_classes, config.decoder_channels, config.skip_channels,
                scaled_rates(config.aspp_rates, config.output_stride), config.base_width, config.fine_skip_channels)
        if config.fusion == "logit_ensemble":
            self.decoder = TwoStreamDecoder(*args)
            self.fusion_alpha = nn.Parameter(torch.ones(2))
            return
        paired = config.bn_stats == "per_mode"
        if config.decoder_sharing == "shared":
            self.decoder = TwoStreamDecoder(*args, paired_stats=paired, classifier=False)
            feat = self.decoder.fine_channels
        else:
            self.decoders = nn.ModuleDict({
                m: TwoStreamDecoder(*args, modalities=(m,), paired_stats=paired, classifier=False) for m in MODALITIES
            })
            feat = self.decoders["eo"].fine_channels
        self.heads = nn.ModuleDict({k: nn.Conv2d(feat, config.num_classes, 1) for k in HEADS})
        if config.fusion == "gsu_heads":
            self.gsu = GatedSpectralUnit(feat)

    def replace_classifiers(self, num_classes: int) -> None:
        """New, freshly initialised classifiers for `num_classes` (every head; encoder, decoders and
        GSU kept): fine-tuning to a new class scheme."""
        self.config = replace(self.config, num_classes=int(num_classes))
        if self.config.fusion == "logit_ensemble":
            old = self.decoder.classifier
            self.decoder.classifier = nn.Conv2d(old.in_channels, num_classes, 1).to(old.weight.device)
            return
        for k, old in list(self.heads.items()):
            self.heads[k] = nn.Conv2d(old.in_channels, num_classes, 1).to(old.weight.device)

    def _decode(self, stages: list[list[Tensor]], stems: list[Tensor], mods: tuple[str, ...]) -> list[Tensor]:
        lows, highs = [s[0] for s in stages], [s[3] for s in stages]
        if hasattr(self, "decoder"):
            return self.decoder(lows, highs, mods, stems)
        paired = len(mods) > 1
        return [self.decoders[m]([lo], [hi], (m,), [st], paired)[0]
                for m, lo, hi, st in zip(mods, lows, highs, stems, strict=True)]

    @property
    def exchange_sites(self) -> list[str]:
        return list(self.encoder.exchange_sites)

    def feature_names(self) -> list[str]:
        """Names accepted by `forward(features=...)`."""
        return [f"layer{s}" for s in range(1, 5)] + self.exchange_sites

    def exchange_gammas(self) -> list[tuple[Tensor, slice]]:
        """(gamma, channels) pairs the L1 sparsity term drives: at each exchange site EO's first
        `exchange_share` of the channels and IR's last (CEN's halves at 0.5), so the two streams
        never both give up the same channel."""
        out: list[tuple[Tensor, slice]] = []
        for m in self.encoder.modules():
            if isinstance(m, ExchangeBN):
                for mod in MODALITIES:
                    part = m.penalised(mod)  # None: one-way exchange, IR keeps all its channels
                    if part is not None:
                        out.append((m._modules[mod].weight, part))
        return out

    def _check(self, eo: Tensor | None, ir: Tensor | None) -> Mode:
        if eo is None and ir is None:
            raise ModelInputError("CSKNet.forward: both eo and ir are None; feed at least one modality")
        if eo is not None and (eo.ndim != 4 or eo.shape[1] != 3):
            raise ModelInputError(f"CSKNet.forward: eo must be (B,3,H,W), got {tuple(eo.shape)}")
        if ir is not None and (ir.ndim != 4 or ir.shape[1] != 1):
            raise ModelInputError(f"CSKNet.forward: ir must be (B,1,H,W), got {tuple(ir.shape)}")
        if eo is not None and ir is not None:
            if eo.shape[0] != ir.shape[0] or eo.shape[-2:] != ir.shape[-2:]:
                raise ModelInputError(
                    f"CSKNet.forward: eo {tuple(eo.shape)} and ir {tuple(ir.shape)} differ in batch or H, W"
                )
            return Mode.BOTH
        return Mode.EO if ir is None else Mode.IR

    def forward(
        self,
        eo: Tensor | None = None,
        ir: Tensor | None = None,
        introspect: bool = False,
        features: Iterable[str] = (),
    ) -> CSKNetOutput:
        mode = self._check(eo, ir)
        wanted = frozenset(features)
        if wanted:
            unknown = wanted - set(self.feature_names())
            if unknown:
                raise ModelInputError(f"unknown feature name(s) {sorted(unknown)}; known: {self.feature_names()}")
        probe = Probe(introspect=introspect, wanted=wanted) if (introspect or wanted) else None
        xs = [t for t in (eo, ir) if t is not None]
        mods = tuple(m for m, t in (("eo", eo), ("ir", ir)) if t is not None)
        stems, stages = self.encoder(xs, mods, probe, with_stem=True)  # the decoder uses stems with a fine skip
        size = xs[0].shape[-2:]

        def full(lg: Tensor) -> Tensor:
            return F.interpolate(lg, size=size, mode="bilinear", align_corners=False)

        gsu_gates = None
        if self.config.fusion == "logit_ensemble":
            logits_q = self.decoder([s[0] for s in stages], [s[3] for s in stages], mods, stems)
            branch = {m: full(lg) for m, lg in zip(mods, logits_q, strict=True)}
            if mode is Mode.BOTH:
                w = torch.softmax(self.fusion_alpha, 0)
                logits = w[0] * branch["eo"].detach() + w[1] * branch["ir"].detach()
            else:
                logits = branch[mods[0]]
        else:
            feats = self._decode(stages, stems, mods)
            branch = {m: full(self.heads[m](f)) for m, f in zip(mods, feats, strict=True)}
            if mode is Mode.BOTH and self.config.fusion == "sum_heads":
                logits = full(self.heads["fusion"](feats[0] + feats[1]))
            elif mode is Mode.BOTH:
                fused, gates = self.gsu(feats[0], feats[1])
                gsu_gates = gates
                logits = full(self.heads["fusion"](fused))
                if probe is not None and probe.introspect:
                    for k, name in enumerate(GSU_INPUTS):
                        probe.gate_maps[name] = gates[:, k].detach().mean(1)
            else:
                logits = branch[mods[0]]
        out = CSKNetOutput(
            logits=logits,
            branch_logits=branch,
            mode=mode,
            stage_features=dict(zip(mods, stages, strict=True)),
            gates=gsu_gates,
        )
        if probe is not None:
            out.gate_maps, out.exchanged, out.features = probe.gate_maps, probe.exchanged, probe.features
        return out
