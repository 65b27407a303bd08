"""ResNets with BasicBlocks: CIFAR style (8/32/56) and ImageNet style (34).

One implementation serves both layouts; parameter names follow the original
repository (CIFAR) and torchvision (ResNet-34, without ``fc``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rr_zoo.models import register_architecture
from rr_zoo.models.base import Backbone, init_weights


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; 1x1 conv + BN shortcut when the shape changes."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.downsample = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@dataclass(frozen=True)
class ResNetLayout:
    """Shape of a ResNet.

    Attributes:
        depths: BasicBlocks per stage.
        widths: Channels per stage.
        stem: ``"cifar"`` (3x3 stride 1, no max-pool) or ``"imagenet"`` (7x7 stride 2 + max-pool).
    """

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    stem: str


class ResNet(Backbone):
    """ResNet backbone with timm's feature-extractor contract.

    Args:
        layout: Depths, widths and stem type.
        num_classes: 0 (default) for pooled features, else a linear head.
        in_chans: Input channels.
    """

    def __init__(self, layout: ResNetLayout, num_classes: int = 0, in_chans: int = 3) -> None:
        super().__init__()
        if layout.stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {layout.stem!r}; use 'cifar' or 'imagenet'")
        self.in_chans = in_chans
        stem_chs = layout.widths[0]
        imagenet = layout.stem == "imagenet"
        self.conv1 = nn.Conv2d(
            in_chans, stem_chs, 7 if imagenet else 3, stride=2 if imagenet else 1,
            padding=3 if imagenet else 1, bias=False,
        )
        self.bn1 = nn.BatchNorm2d(stem_chs)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet else nn.Identity()
        reduction = 4 if imagenet else 1
        self.min_input_size = 2 * reduction * 2 ** (len(layout.depths) - 1) if imagenet else 4
        self.feature_info = [dict(num_chs=stem_chs, reduction=2 if imagenet else 1, module="relu")]
        in_chs = stem_chs
        self.num_stages = len(layout.depths)
        for i, (depth, width) in enumerate(zip(layout.depths, layout.widths)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            blocks = [BasicBlock(in_chs if b == 0 else width, width, stride if b == 0 else 1)
                      for b in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=width, reduction=reduction, module=f"layer{i + 1}"))
            in_chs = width
        self.num_features = in_chs
        self._init_head(num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last stage's unpooled feature map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


CIFAR_WIDTHS = (16, 32, 64)
LAYOUTS: dict[str, ResNetLayout] = {
    "resnet8": ResNetLayout((1, 1, 1), CIFAR_WIDTHS, "cifar"),
    "resnet32": ResNetLayout((5, 5, 5), CIFAR_WIDTHS, "cifar"),
    "resnet56": ResNetLayout((9, 9, 9), CIFAR_WIDTHS, "cifar"),
    "resnet34": ResNetLayout((3, 4, 6, 3), (64, 128, 256, 512), "imagenet"),
}


def _register(name: str, layout: ResNetLayout) -> None:
    depth = 2 + 2 * sum(layout.depths)
    style = "CIFAR style" if layout.stem == "cifar" else "torchvision layout, no fc"

    def builder(**kwargs) -> ResNet:
        return ResNet(layout, **kwargs)

    builder.__name__ = name
    builder.__doc__ = f"Build ResNet-{depth} ({style})."
    register_architecture(name, num_features=layout.widths[-1],
                          description=f"ResNet-{depth} ({style})")(builder)


for _name, _layout in LAYOUTS.items():
    _register(_name, _layout)
