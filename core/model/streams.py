"""Modality-parallel building blocks (CEN's idea, generalised): streams travel as `list[Tensor]`
with a parallel tuple of modality keys; every conv is ONE module applied to each stream (shared
weights); every norm site holds one private BatchNorm per modality.

Parameter names follow torchvision (`layer2.0.conv1.weight`, private BN copies as
`layer2.0.bn1.eo.weight` / `.ir.weight`), so an ImageNet ResNet state_dict maps by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csknet_studio.core.model.config import CSKNetConfig
from csknet_studio.core.model.resnet import conv1x1, conv3x3, stage_plan

MODALITIES: tuple[str, str] = ("eo", "ir")


@dataclass
class Probe:
    """What one forward is asked to record. `None` instead of a Probe = nothing recorded (fast path)."""

    introspect: bool = False
    wanted: frozenset[str] = frozenset()
    exchanged: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    gate_maps: dict[str, Tensor] = field(default_factory=dict)
    features: dict[str, Tensor] = field(default_factory=dict)


def each(module: nn.Module, xs: list[Tensor]) -> list[Tensor]:
    """Apply one (shared-weight) module to every stream."""
    return [module(x) for x in xs]


def relu_each(xs: list[Tensor]) -> list[Tensor]:
    return [torch.relu(x) for x in xs]


class ModalBatchNorm(nn.BatchNorm2d):
    """A BatchNorm with a second set of running statistics for paired (EO + IR) forwards.

    After an exchange site a stream carries the other's channels when both run and its own when it
    runs alone, so its activations have two distributions; one set of running statistics averages
    them and fits neither mode at inference. The learned scale and shift stay one per modality, and
    a solo forward uses `running_mean`/`running_var` exactly as a plain BatchNorm does.

    solo_affine: a solo forward also has its own scale and shift (`solo_weight`, `solo_bias`). At an
    exchange site the L1 term drives half of the paired scales to 0, since those channels carry the
    other stream's features when both run; with one shared scale a stream running alone would have
    that half nearly silenced. The solo pair is never penalised and never decides an exchange.
    """

    def __init__(self, channels: int, solo_affine: bool = False):
        super().__init__(channels)
        self.register_buffer("paired_mean", torch.zeros(channels))
        self.register_buffer("paired_var", torch.ones(channels))
        self.solo_affine = solo_affine
        if solo_affine:
            self.solo_weight = nn.Parameter(torch.ones(channels))
            self.solo_bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, paired: bool = False) -> Tensor:
        if paired:
            return F.batch_norm(x, self.paired_mean, self.paired_var, self.weight, self.bias,
                                self.training, self.momentum, self.eps)
        if not self.solo_affine:
            return super().forward(x)
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.solo_weight, self.solo_bias,
                            self.training, self.momentum, self.eps)


PAIRED_BUFFERS = ("paired_mean", "paired_var")


class ParallelBN(nn.Module):
    """One private BatchNorm per modality; stream i goes through the BN of `mods[i]`.

    paired_stats: `ModalBatchNorm`s, whose running statistics follow whether both streams run
    (`paired`, by default: more than one stream in `xs`); solo_affine: theirs (see ModalBatchNorm)."""

    def __init__(self, channels: int, modalities: tuple[str, ...] = MODALITIES, paired_stats: bool = False,
                 solo_affine: bool = False):
        super().__init__()
        self.modalities = modalities
        self.paired_stats = paired_stats
        for m in modalities:
            self.add_module(m, ModalBatchNorm(channels, solo_affine) if paired_stats else nn.BatchNorm2d(channels))

    def forward(self, xs: list[Tensor], mods: tuple[str, ...], paired: bool | None = None) -> list[Tensor]:
        if not self.paired_stats:
            return [self._modules[m](x) for x, m in zip(xs, mods, strict=True)]
        p = len(xs) > 1 if paired is None else paired
        return [self._modules[m](x, p) for x, m in zip(xs, mods, strict=True)]


class ExchangeBN(ParallelBN):
    """Private BNs followed by CEN's channel exchange (only when more than one stream runs).

    For stream m, channels c with |gamma_m[c]| < threshold carry the other stream's BN output
    ('replace', CEN) or the mean of own and other ('mix'). The mask is hard; gradients reach the
    borrowed tensor, and the L1 term (see `exchange_gammas`) pushes designated gammas towards 0.
    """

    def __init__(self, channels: int, site: str, threshold: float, mode: str, direction: str = "both",
                 penalised_only: bool = False, paired_stats: bool = False, solo_affine: bool = False,
                 share: float = 0.5):
        super().__init__(channels, paired_stats=paired_stats, solo_affine=solo_affine)
        self.share = float(share)
        self.site = site
        self.threshold = float(threshold)
        self.mode = mode
        self.direction = direction
        self.penalised_only = penalised_only

    def penalised(self, modality: str) -> slice | None:
        """The channels of `modality` the L1 term drives towards 0: EO's first `share` of them, IR's
        last (CEN's halves at share 0.5), so the two streams never both give up the same channel;
        None when that stream never takes the other's channels (IR under one-way exchange)."""
        c = self._modules[modality].weight.numel()
        n = c // 2 if self.share == 0.5 else round(self.share * c)
        if modality == "ir":
            return None if self.direction == "ir->eo" else slice(c - n, c)
        return slice(0, n)

    def masks(self) -> dict[str, Tensor]:
        """Per modality, a bool (C,) mask of the channels it takes from the other stream
        (direction "ir->eo": IR never takes any; `penalised_only`: never outside `penalised`)."""
        out = {}
        for m in self.modalities:
            mask = self._modules[m].weight.detach().abs() < self.threshold
            part = self.penalised(m)
            if part is None:
                mask = torch.zeros_like(mask)
            elif self.penalised_only:
                keep = torch.zeros_like(mask)
                keep[part] = True
                mask = mask & keep
            out[m] = mask
        return out

    @torch.no_grad()
    def seed_solo_affine(self) -> None:
        """Start each solo scale and shift as the paired one of the same modality, so a warm start
        computes exactly what the checkpoint did. (Starting a borrowed channel from the other
        modality's scale instead was measured: IR only fell from 70.9 to 15.5 mIoU, since IR's own
        normalised features are not EO's.)"""
        for m in self.modalities:
            bn = self._modules[m]
            if getattr(bn, "solo_affine", False):
                bn.solo_weight.copy_(bn.weight)
                bn.solo_bias.copy_(bn.bias)

    def forward(self, xs: list[Tensor], mods: tuple[str, ...], probe: Probe | None = None) -> list[Tensor]:
        ys = super().forward(xs, mods)
        want = probe is not None and self.site in probe.wanted
        if want:
            for y, m in zip(ys, mods, strict=True):
                probe.features[f"{self.site}.before/{m}"] = y.detach()
        if len(ys) > 1:
            masks = self.masks()
            outs = []
            for i, (y, m) in enumerate(zip(ys, mods, strict=True)):
                others = [ys[j] for j in range(len(ys)) if j != i]
                other = others[0] if len(others) == 1 else torch.stack(others).mean(0)
                mask = masks[m]
                if bool(mask.any()):
                    sub = other if self.mode == "replace" else 0.5 * (y + other)
                    y = torch.where(mask.view(1, -1, 1, 1), sub, y)
                outs.append(y)
            if probe is not None and probe.introspect and len(ys) == 2:
                a, b = mods
                probe.exchanged[self.site] = {
                    f"{b}->{a}": masks[a].nonzero().flatten().cpu(),
                    f"{a}->{b}": masks[b].nonzero().flatten().cpu(),
                }
            ys = outs
        if want:
            for y, m in zip(ys, mods, strict=True):
                probe.features[f"{self.site}.after/{m}"] = y.detach()
        return ys


class SharedDownsample(nn.Module):
    """torchvision's `downsample` = Sequential(conv1x1, BN), here with a shared conv and private BNs."""

    def __init__(self, cin: int, cout: int, stride: int, paired_stats: bool = False):
        super().__init__()
        self.add_module("0", conv1x1(cin, cout, stride))
        self.add_module("1", ParallelBN(cout, paired_stats=paired_stats))

    def forward(self, xs: list[Tensor], mods: tuple[str, ...]) -> list[Tensor]:
        return self._modules["1"](each(self._modules["0"], xs), mods)


def _norm(channels: int, site: str | None, cfg: CSKNetConfig) -> ParallelBN:
    paired = cfg.bn_stats == "per_mode"
    if site is None:
        return ParallelBN(channels, paired_stats=paired)
    return ExchangeBN(channels, site, cfg.exchange_threshold, cfg.exchange_mode, cfg.exchange_direction,
                      cfg.exchange_penalised_only, paired, cfg.solo_affine, cfg.exchange_share)


def _call_norm(bn: ParallelBN, xs: list[Tensor], mods: tuple[str, ...], probe: Probe | None) -> list[Tensor]:
    if isinstance(bn, ExchangeBN):
        return bn(xs, mods, probe)
    return bn(xs, mods)


class TwoStreamBasicBlock(nn.Module):
    """ResNet BasicBlock; the exchange site (if any) is bn1 — the mid-block BN, so the residual path
    stays private, mirroring CEN's choice of the Bottleneck's mid (3x3) BN."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, dilation: int, down: bool, site: str | None, cfg: CSKNetConfig):
        super().__init__()
        self.conv1 = conv3x3(cin, width, stride, dilation)
        self.bn1 = _norm(width, site, cfg)
        self.conv2 = conv3x3(width, width, 1, dilation)
        self.bn2 = _norm(width, None, cfg)
        self.downsample = SharedDownsample(cin, width, stride, cfg.bn_stats == "per_mode") if down else None

    def forward(self, xs: list[Tensor], mods: tuple[str, ...], probe: Probe | None) -> list[Tensor]:
        idt = xs if self.downsample is None else self.downsample(xs, mods)
        ys = relu_each(_call_norm(self.bn1, each(self.conv1, xs), mods, probe))
        ys = self.bn2(each(self.conv2, ys), mods)
        return [torch.relu(y + i) for y, i in zip(ys, idt, strict=True)]


class TwoStreamBottleneck(nn.Module):
    """ResNet Bottleneck; the exchange site (if any) is bn2, after the 3x3 conv (CEN's place)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, dilation: int, down: bool, site: str | None, cfg: CSKNetConfig):
        super().__init__()
        self.conv1 = conv1x1(cin, width)
        self.bn1 = _norm(width, None, cfg)
        self.conv2 = conv3x3(width, width, stride, dilation)
        self.bn2 = _norm(width, site, cfg)
        self.conv3 = conv1x1(width, width * 4)
        self.bn3 = _norm(width * 4, None, cfg)
        self.downsample = SharedDownsample(cin, width * 4, stride, cfg.bn_stats == "per_mode") if down else None

    def forward(self, xs: list[Tensor], mods: tuple[str, ...], probe: Probe | None) -> list[Tensor]:
        idt = xs if self.downsample is None else self.downsample(xs, mods)
        ys = relu_each(self.bn1(each(self.conv1, xs), mods))
        ys = relu_each(_call_norm(self.bn2, each(self.conv2, ys), mods, probe))
        ys = self.bn3(each(self.conv3, ys), mods)
        return [torch.relu(y + i) for y, i in zip(ys, idt, strict=True)]


class GSU(nn.Module):
    """Gated Spectral Unit: z = sigmoid(conv1x1([F_eo; F_ir])), F = z*F_eo + (1-z)*F_ir, added back
    into the streams. The gate conv starts at zero (z = 0.5, an even blend) so a pretrained trunk is
    not disturbed at step 0."""

    def __init__(self, channels: int, inject: str = "both"):
        super().__init__()
        self.gate = nn.Conv2d(2 * channels, channels, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.inject = inject

    def forward(self, eo: Tensor, ir: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = torch.sigmoid(self.gate(torch.cat([eo, ir], 1)))
        fused = z * eo + (1 - z) * ir
        new_eo = eo + fused if self.inject in ("both", "eo") else eo
        new_ir = ir + fused if self.inject in ("both", "ir") else ir
        return new_eo, new_ir, z


class TwoStreamEncoder(nn.Module):
    """Shared-conv / private-BN ResNet over any subset of {eo, ir}.

    The IR stream (1 channel) meets the shared 3-channel stem through the stem kernel summed over its
    input channels — exactly what replicating IR to 3 channels would compute, at a third of the cost.
    """

    def __init__(self, cfg: CSKNetConfig):
        super().__init__()
        block = TwoStreamBasicBlock if cfg.block == "basic" else TwoStreamBottleneck
        self.conv1 = nn.Conv2d(3, cfg.base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = ParallelBN(cfg.base_width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.exchange_sites: list[str] = []
        plan = stage_plan(cfg.layers, cfg.base_width, block.expansion, cfg.dilate_stages)
        for s, blocks in enumerate(plan, start=1):
            mods = nn.ModuleList()
            for b, (cin, width, stride, dil, down) in enumerate(blocks):
                site = f"layer{s}.{b}" if s in cfg.exchange_stages else None
                if site is not None:
                    self.exchange_sites.append(site)
                mods.append(block(cin, width, stride, dil, down, site, cfg))
            self.add_module(f"layer{s}", mods)
        self.out_channels = cfg.stage_channels
        self.gsu = nn.ModuleDict({f"layer{s}": GSU(self.out_channels[s - 1], cfg.gsu_inject) for s in cfg.gsu_stages})

    def stem(self, x: Tensor) -> Tensor:
        w = self.conv1.weight
        if x.shape[1] == 1:
            w = w.sum(1, keepdim=True)
        return F.conv2d(x, w, None, 2, 3)

    def forward(self, xs: list[Tensor], mods: tuple[str, ...], probe: Probe | None = None,
                with_stem: bool = False) -> list[list[Tensor]] | tuple[list[Tensor], list[list[Tensor]]]:
        """Returns, per stream, the four stage outputs [layer1..layer4] (after GSU where it ran);
        with_stem: (per-stream stem outputs at stride 2, those stage outputs)."""
        stems = relu_each(self.bn1([self.stem(x) for x in xs], mods))
        ys = [self.maxpool(y) for y in stems]
        stages: list[list[Tensor]] = [[] for _ in xs]
        both = len(xs) == 2
        for s in range(1, 5):
            for blk in self._modules[f"layer{s}"]:
                ys = blk(ys, mods, probe)
            key = f"layer{s}"
            if both and key in self.gsu:
                eo, ir, z = self.gsu[key](ys[0], ys[1])
                ys = [eo, ir]
                if probe is not None and probe.introspect:
                    probe.gate_maps[key] = z.detach().mean(1)
            if probe is not None and key in probe.wanted:
                for y, m in zip(ys, mods, strict=True):
                    probe.features[f"{key}/{m}"] = y.detach()
            for i, y in enumerate(ys):
                stages[i].append(y)
        return (stems, stages) if with_stem else stages
