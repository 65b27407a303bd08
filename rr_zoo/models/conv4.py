"""Conv-4: four conv blocks, 8-16-32-64 channels, 64-d features."""

from typing import Any

import torch
from timm.layers import DropBlock2d
from torch import nn

from rr_zoo.models.base import Backbone
from rr_zoo.models.registry import register_architecture


class ConvBlock(nn.Module):
    """Conv3x3 (no bias) -> BatchNorm -> [DropBlock] -> ReLU -> pool. Keys: ``conv``, ``bn``."""

    def __init__(self, in_chs: int, out_chs: int, pool: bool, drop_block: nn.Module | None = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False, **dd)
        self.bn = nn.BatchNorm2d(out_chs, **dd)
        self.drop_block = drop_block if drop_block is not None else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.drop_block(self.bn(self.conv(x)))))


class Conv4(Backbone):
    """The paper's shallow backbone.

    The original ends block 4 with AdaptiveAvgPool2d(1); here that pooling is
    :meth:`forward_head`'s global pool, so :meth:`forward_features` returns the
    unpooled map (same numbers, timm's contract).

    Args:
        num_classes: 0 (default) for pooled features, else a linear head.
        in_chans: Input channels (3 for RGB, 1 for grayscale datasets).
        widths: Channels of the four blocks.
        global_pool: timm pool type (``'avg'``; ``''`` for unpooled maps).
        drop_rate: Dropout before the classifier.
        drop_path_rate: Must be 0: Conv-4 has no residual branches to drop.
        drop_block_rate: DropBlock in blocks 3 and 4 (as timm's ResNet does in its last two stages).
        bn_momentum: BatchNorm momentum (PyTorch convention); None keeps 0.1.
        bn_eps: BatchNorm epsilon; None keeps 1e-5.
        device: Device to create parameters on.
        dtype: Floating dtype of the parameters.
    """

    def __init__(
        self,
        num_classes: int = 0,
        in_chans: int = 3,
        widths: tuple = (8, 16, 32, 64),
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_block_rate: float = 0.0,
        bn_momentum: float | None = None,
        bn_eps: float | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if drop_path_rate:
            raise ValueError(
                f"drop_path_rate={drop_path_rate}: Conv-4 has no residual blocks, so stochastic depth does not "
                "apply; use drop_rate (classifier dropout) or drop_block_rate instead")
        dd = dict(device=device, dtype=dtype)
        self.in_chans = in_chans
        self.min_input_size = 8
        chs = (in_chans, *widths)
        names: list[str] = []
        self.feature_info = []
        n = len(widths)
        for i in range(n):
            last = i == n - 1
            drop_block = None
            if drop_block_rate and i >= n - 2:
                drop_block = DropBlock2d(drop_block_rate, block_size=5 if i == n - 2 else 3,
                                         gamma_scale=0.25 if i == n - 2 else 1.0)
            self.add_module(f"layer{i + 1}", ConvBlock(chs[i], chs[i + 1], pool=not last, drop_block=drop_block, **dd))
            names.append(f"layer{i + 1}")
            self.feature_info.append(dict(num_chs=widths[i], reduction=2 ** min(i + 1, n - 1), module=f"layer{i + 1}"))
        self._set_stages(names)
        self._finish_init(num_classes, global_pool, drop_rate, bn_momentum, bn_eps, **dd)

    def forward_stem(self, x: torch.Tensor, tap: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Conv-4 has no stem: block 1 is the first stage."""
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (N, 64, H/8, W/8) map of block 4 before global pooling."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self._forward_stages_checkpointed(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


@register_architecture("conv4", num_features=64, description="Conv-4 (8-16-32-64 channels)", first_conv="layer1.conv")
def conv4(**kwargs: Any) -> Conv4:
    """Build Conv-4."""
    return Conv4(**kwargs)
