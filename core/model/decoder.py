"""DeepLabV3+-lite decoder: ASPP (1x1 + depthwise-separable dilated 3x3s + image pooling) on the
last stage, a 1x1-reduced skip from layer1, one separable 3x3 fuse conv, a 1x1 classifier; with
`fine` > 0 a second, stride-2 skip from the stem and another separable fuse conv (at half the
channels) before the classifier, for classes only a pixel or two wide.

Separable convs keep the head cheap at 480x640 on a CPU (the full DeepLabV3+ head with dense 3x3s
would cost more than a ResNet-18 trunk). The pooling branch has no BN so batch-1 fine-tuning works.
Two versions with identical parameter names: `PlainDecoder` (single tensor, ordinary BN; teacher
and baseline) and `TwoStreamDecoder` (shared convs, private BN per modality).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csknet_studio.core.model.streams import MODALITIES, ParallelBN, each


class SepConv(nn.Module):
    """Depthwise 3x3 (optionally dilated) then pointwise 1x1; no norm inside (the caller adds it)."""

    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


def scaled_rates(rates: tuple[int, ...], output_stride: int) -> tuple[int, ...]:
    """ASPP rates are given for output stride 16; at OS 8 they double, at OS 32 they halve."""
    return tuple(max(1, round(r * 16 / output_stride)) for r in rates)


class _DecoderLayers(nn.Module):
    """The conv layers both decoders share (names and shapes)."""

    def __init__(self, low_ch: int, high_ch: int, num_classes: int, channels: int, skip: int, rates: tuple[int, ...],
                 stem_ch: int = 0, fine: int = 0):
        super().__init__()
        self.aspp = nn.ModuleList([nn.Conv2d(high_ch, channels, 1, bias=False)])
        self.aspp.extend(SepConv(high_ch, channels, r) for r in rates)
        self.aspp_pool = nn.Conv2d(high_ch, channels, 1)
        self.project = nn.Conv2d(channels * (len(rates) + 2), channels, 1, bias=False)
        self.skip = nn.Conv2d(low_ch, skip, 1, bias=False)
        self.fuse = SepConv(channels + skip, channels)
        self.fine = fine
        self.fine_channels = max(1, channels // 2) if fine else channels
        if fine:
            self.fine_skip = nn.Conv2d(stem_ch, fine, 1, bias=False)
            self.fine_fuse = SepConv(channels + fine, self.fine_channels)
        self.classifier = nn.Conv2d(self.fine_channels, num_classes, 1)


class PlainDecoder(_DecoderLayers):
    def __init__(self, low_ch: int, high_ch: int, num_classes: int, channels: int, skip: int, rates: tuple[int, ...],
                 stem_ch: int = 0, fine: int = 0):
        super().__init__(low_ch, high_ch, num_classes, channels, skip, rates, stem_ch, fine)
        self.aspp_bn = nn.ModuleList(nn.BatchNorm2d(channels) for _ in self.aspp)
        self.project_bn = nn.BatchNorm2d(channels)
        self.skip_bn = nn.BatchNorm2d(skip)
        self.fuse_bn = nn.BatchNorm2d(channels)
        if fine:
            self.fine_skip_bn = nn.BatchNorm2d(fine)
            self.fine_fuse_bn = nn.BatchNorm2d(self.fine_channels)

    def forward(self, low: Tensor, high: Tensor, stem: Tensor | None = None) -> Tensor:
        """Logits at the resolution of `low` (1/4 of the input), or of `stem` (1/2) with the fine skip."""
        branches = [torch.relu(bn(conv(high))) for conv, bn in zip(self.aspp, self.aspp_bn, strict=True)]
        pooled = torch.relu(self.aspp_pool(F.adaptive_avg_pool2d(high, 1)))
        branches.append(pooled.expand(-1, -1, high.shape[-2], high.shape[-1]))
        x = torch.relu(self.project_bn(self.project(torch.cat(branches, 1))))
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        s = torch.relu(self.skip_bn(self.skip(low)))
        x = torch.relu(self.fuse_bn(self.fuse(torch.cat([x, s], 1))))
        if self.fine:
            x = F.interpolate(x, size=stem.shape[-2:], mode="bilinear", align_corners=False)
            f = torch.relu(self.fine_skip_bn(self.fine_skip(stem)))
            x = torch.relu(self.fine_fuse_bn(self.fine_fuse(torch.cat([x, f], 1))))
        return self.classifier(x)


class TwoStreamDecoder(_DecoderLayers):
    """Same layers, applied to each stream with shared weights; BN private per modality.

    modalities: the streams it serves (one, for a decoder of its own); paired_stats: BN running
    statistics kept apart for paired forwards (`ModalBatchNorm`); classifier: False for a decoder
    that hands its features to separate heads (`forward` then returns features, not logits).
    """

    def __init__(self, low_ch: int, high_ch: int, num_classes: int, channels: int, skip: int, rates: tuple[int, ...],
                 stem_ch: int = 0, fine: int = 0, *, modalities: tuple[str, ...] = MODALITIES,
                 paired_stats: bool = False, classifier: bool = True):
        super().__init__(low_ch, high_ch, num_classes, channels, skip, rates, stem_ch, fine)
        if not classifier:
            del self.classifier
        self.has_classifier = classifier

        def pbn(c: int) -> ParallelBN:
            return ParallelBN(c, modalities, paired_stats)

        self.aspp_bn = nn.ModuleList(pbn(channels) for _ in self.aspp)
        self.project_bn = pbn(channels)
        self.skip_bn = pbn(skip)
        self.fuse_bn = pbn(channels)
        if fine:
            self.fine_skip_bn = pbn(fine)
            self.fine_fuse_bn = pbn(self.fine_channels)

    def forward(self, lows: list[Tensor], highs: list[Tensor], mods: tuple[str, ...],
                stems: list[Tensor] | None = None, paired: bool | None = None) -> list[Tensor]:
        """Per stream, logits (or features without a classifier) at the stride of `lows` (or `stems`)."""

        def norm(bn: ParallelBN, ys: list[Tensor]) -> list[Tensor]:
            return [torch.relu(y) for y in bn(ys, mods, paired)]

        branches = [norm(bn, each(conv, highs)) for conv, bn in zip(self.aspp, self.aspp_bn, strict=True)]
        pooled = [torch.relu(self.aspp_pool(F.adaptive_avg_pool2d(h, 1))).expand(-1, -1, *h.shape[-2:]) for h in highs]
        cats = [torch.cat([b[i] for b in branches] + [pooled[i]], 1) for i in range(len(highs))]
        xs = norm(self.project_bn, each(self.project, cats))
        xs = [F.interpolate(x, size=lo.shape[-2:], mode="bilinear", align_corners=False) for x, lo in zip(xs, lows, strict=True)]
        ss = norm(self.skip_bn, each(self.skip, lows))
        xs = [torch.cat([x, s], 1) for x, s in zip(xs, ss, strict=True)]
        xs = norm(self.fuse_bn, each(self.fuse, xs))
        if self.fine:
            xs = [F.interpolate(x, size=st.shape[-2:], mode="bilinear", align_corners=False)
                  for x, st in zip(xs, stems, strict=True)]
            fs = norm(self.fine_skip_bn, each(self.fine_skip, stems))
            xs = [torch.cat([x, f], 1) for x, f in zip(xs, fs, strict=True)]
            xs = norm(self.fine_fuse_bn, each(self.fine_fuse, xs))
        return each(self.classifier, xs) if self.has_classifier else xs
