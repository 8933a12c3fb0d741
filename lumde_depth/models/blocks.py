"""Building blocks shared by the architectures (written by hand: there is no torchvision here).

- ResNet basic blocks and stages (He et al. 2016) for the LSPKD encoders;
- conv / transposed-conv + BatchNorm + ReLU units for the LSPKD decoder;
- the CDSPN "unified block" (optional bilinear x2 upsampling, depthwise kxk, pointwise 1x1);
- padding of inputs to a multiple of the network's total stride (and cropping back), so every
  model accepts any H x W.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1: the width multiplier applied to one layer."""
    return max(1, int(round(channels * width)))


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Dense kxk convolution (no bias: BatchNorm follows), BatchNorm, optional ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def deconv_bn_relu(cin: int, cout: int, stride: int = 2) -> nn.Sequential:
    """3x3 transposed convolution that multiplies H and W by ``stride`` exactly, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride, padding=1, output_padding=stride - 1, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm, identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def resnet_stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic blocks; the first one changes width and resolution."""
    return nn.Sequential(BasicBlock(cin, cout, stride), *(BasicBlock(cout, cout) for _ in range(blocks - 1)))


class UnifiedBlock(nn.Module):
    """CDSPN unified block (thesis fig. 3.2): [bilinear x2] -> depthwise kxk -> BN -> ReLU ->
    pointwise 1x1 -> BN -> ReLU, with an identity residual when the shape is unchanged.

    ``up=True`` makes it a decoder block (bilinear upsampling replaces the transposed convolution
    of PE-Net). ``head=True`` makes it an output layer: no BatchNorm/ReLU after the pointwise
    convolution (which then has a bias), so it can regress depth and confidence.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, up: bool = False,
                 head: bool = False) -> None:
        super().__init__()
        self.up = up
        self.depthwise = nn.Sequential(
            nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False),
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.pointwise: nn.Module = nn.Conv2d(cin, cout, 1, bias=True) if head else nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.residual = cin == cout and stride == 1 and not up and not head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        out = self.pointwise(self.depthwise(x))
        return out + x if self.residual else out


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "constant") -> torch.Tensor:
    """Pad the bottom/right of a B x C x H x W tensor so H and W are multiples of ``multiple``.

    ``mode="replicate"`` for images (no artificial edges), ``"constant"`` (zeros) for sparse depth
    (zero means "no measurement", so padding adds no fake points).
    """
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
