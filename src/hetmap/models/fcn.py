"""A small FCN / DeepLab-style segmentation net on a CIFAR ResNet backbone.

The backbone keeps full resolution in its first stage (CIFAR stem, stride 1), so a 1x1 skip
from that stage restores sharp boundaries while a dilated 3x3 head on the 1/4-resolution
last stage supplies context (FCN-8s skip + DeepLab atrous head, both in miniature)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from hetmap.models.resnet_cifar import ResNetCifar


class FCNResNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, depth: int = 8,
                 width: int = 16) -> None:
        super().__init__()
        r = ResNetCifar(depth, num_classes=1, in_channels=in_channels, width=width)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.layer1, self.layer2, self.layer3 = r.layer1, r.layer2, r.layer3
        deep = 4 * width
        self.head = nn.Sequential(
            nn.Conv2d(deep, deep, 3, 1, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(deep), nn.ReLU(inplace=False),
            nn.Conv2d(deep, num_classes, 1))
        self.skip = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.layer1(self.stem(x))
        deep = self.head(self.layer3(self.layer2(f1)))
        out = F.interpolate(deep, size=f1.shape[-2:], mode="bilinear", align_corners=False)
        out = out + self.skip(f1)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def fcn_resnet(num_classes: int = 11, in_channels: int = 1, depth: int = 8,
               width: int = 16) -> FCNResNet:
    return FCNResNet(num_classes, in_channels, depth, width)
