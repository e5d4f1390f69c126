"""Plain single-stream ResNet with torchvision's parameter names (no torchvision needed).

Used by the EO teacher, by the single-stream network extracted from a CSK-Net, and as the
baseline of bench/model_forward.py. The two-stream encoder in `streams.py` uses the same names, so
one ImageNet state_dict fits both.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(cin, width, stride, dilation)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, 1, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * 4)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + idt)


def stage_plan(
    layers: tuple[int, ...], base_width: int, expansion: int, dilate: tuple[bool, bool, bool]
) -> list[list[tuple[int, int, int, int, bool]]]:
    """Per stage, per block: (in_ch, width, stride, dilation, has_downsample), torchvision's rules.

    Shared by the plain and the two-stream encoders so their shapes and names cannot drift apart.
    """
    plan: list[list[tuple[int, int, int, int, bool]]] = []
    cin, dilation = base_width, 1
    for i, n in enumerate(layers):
        width = base_width * 2**i
        stride = 1 if i == 0 else 2
        prev_dilation = dilation
        if i > 0 and dilate[i - 1]:
            dilation *= stride
            stride = 1
        blocks = []
        down = stride != 1 or cin != width * expansion
        blocks.append((cin, width, stride, prev_dilation, down))
        cin = width * expansion
        blocks += [(cin, width, 1, dilation, False) for _ in range(n - 1)]
        plan.append(blocks)
    return plan


class ResNet(nn.Module):
    """ResNet trunk returning the four stage outputs (no avgpool / fc)."""

    def __init__(
        self,
        block: str = "basic",
        layers: tuple[int, ...] = (2, 2, 2, 2),
        base_width: int = 64,
        in_channels: int = 3,
        dilate: tuple[bool, bool, bool] = (False, False, False),
    ):
        super().__init__()
        cls = BasicBlock if block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(in_channels, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for i, blocks in enumerate(stage_plan(layers, base_width, cls.expansion, dilate)):
            mods = []
            for cin, width, stride, dil, down in blocks:
                ds = None
                if down:
                    ds = nn.Sequential(conv1x1(cin, width * cls.expansion, stride), nn.BatchNorm2d(width * cls.expansion))
                mods.append(cls(cin, width, stride, dil, ds))
            self.add_module(f"layer{i + 1}", nn.Sequential(*mods))
        self.out_channels = tuple(base_width * 2**i * cls.expansion for i in range(4))

    def forward(self, x: Tensor, with_stem: bool = False) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """[layer1..layer4]; with_stem: (stem output at stride 2, [layer1..layer4])."""
        stem = torch.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(stem)
        feats = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        return (stem, feats) if with_stem else feats
