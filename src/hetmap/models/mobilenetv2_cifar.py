"""MobileNetV2 for 32x32 inputs (Sandler et al. 2018; CIFAR variant: stride 1 in the stem and
the first stages), with depthwise convolutions."""

from __future__ import annotations

from torch import Tensor, nn

# expansion t, output channels c, repeats n, first stride s (CIFAR strides)
CIFAR_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _round(c: float, divisor: int = 8) -> int:
    return max(divisor, int(c + divisor / 2) // divisor * divisor)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=False)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=False),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Cifar(nn.Module):
    def __init__(self, num_classes: int = 10, width_mult: float = 1.0, in_channels: int = 3,
                 settings: tuple[tuple[int, int, int, int], ...] = CIFAR_SETTINGS) -> None:
        super().__init__()
        inp = _round(32 * width_mult)
        last = _round(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_channels, inp, 3, 1, 1, bias=False), nn.BatchNorm2d(inp),
            nn.ReLU6(inplace=False))]
        for t, c, n, s in settings:
            out = _round(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(nn.Sequential(nn.Conv2d(inp, last, 1, bias=False),
                                      nn.BatchNorm2d(last), nn.ReLU6(inplace=False)))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mobilenetv2_cifar(num_classes: int = 10, width_mult: float = 1.0,
                      in_channels: int = 3) -> MobileNetV2Cifar:
    return MobileNetV2Cifar(num_classes, width_mult, in_channels)
