"""Conv-4: four conv blocks, 8-16-32-64 channels, 64-d features."""

from __future__ import annotations

import torch
from torch import nn

from rr_zoo.models import register_architecture
from rr_zoo.models.base import Backbone, init_weights


class ConvBlock(nn.Module):
    """Conv3x3 (no bias) -> BatchNorm -> ReLU -> pool. Keys: ``conv``, ``bn``."""

    def __init__(self, in_chs: int, out_chs: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class Conv4(Backbone):
    """The paper's shallow backbone.

    The original ends block 4 with AdaptiveAvgPool2d(1); here that pooling is
    :meth:`forward_head`'s global pool, so :meth:`forward_features` returns the
    unpooled map (same numbers, timm's contract).

    Args:
        num_classes: 0 (default) for pooled features, else a linear head.
        in_chans: Input channels (3 for RGB, 1 for grayscale datasets).
        widths: Channels of the four blocks.
    """

    min_input_size = 8

    def __init__(
        self, num_classes: int = 0, in_chans: int = 3, widths: tuple[int, ...] = (8, 16, 32, 64)
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        chs = (in_chans, *widths)
        for i in range(len(widths)):
            last = i == len(widths) - 1
            self.add_module(f"layer{i + 1}", ConvBlock(chs[i], chs[i + 1], pool=not last))
        self.num_features = widths[-1]
        self.feature_info = [
            dict(num_chs=w, reduction=2 ** (i + 1) if i < len(widths) - 1 else 2 ** (len(widths) - 1),
                 module=f"layer{i + 1}")
            for i, w in enumerate(widths)
        ]
        self._init_head(num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (N, 64, H/8, W/8) map of block 4 before global pooling."""
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


@register_architecture("conv4", num_features=64, description="Conv-4 (8-16-32-64 channels)")
def conv4(**kwargs) -> Conv4:
    """Build Conv-4."""
    return Conv4(**kwargs)
