"""ResNets with BasicBlocks: CIFAR style (8/32/56) and ImageNet style (34).

One implementation serves both layouts; parameter names follow the original
repository (CIFAR) and torchvision (ResNet-34, without ``fc``).
"""

from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import DropBlock2d, DropPath
from torch import nn

from rr_zoo.models.base import Backbone
from rr_zoo.models.registry import register_architecture


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; 1x1 conv + BN shortcut when the shape changes.

    ``drop_path`` (stochastic depth) drops the residual branch per sample and
    ``drop_block`` follows each BatchNorm, as in timm's ResNet; both are identities
    by default and hold no weights, so the key layout is the original's.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, drop_path_rate: float = 0.0,
                 drop_block_rate: float = 0.0, block_size: int = 3, gamma_scale: float = 1.0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(out_chs, **dd)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(out_chs, **dd)
        self.drop_block = (DropBlock2d(drop_block_rate, block_size=block_size, gamma_scale=gamma_scale)
                           if drop_block_rate else nn.Identity())
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate else nn.Identity()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False, **dd), nn.BatchNorm2d(out_chs, **dd)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        out = self.relu(self.drop_block(self.bn1(self.conv1(x))))
        out = self.drop_block(self.bn2(self.conv2(out)))
        return self.relu(self.drop_path(out) + identity)


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
    """ResNet backbone with timm's model contract.

    Args:
        layout: Depths, widths and stem type.
        num_classes: 0 (default) for pooled features, else a linear head.
        in_chans: Input channels.
        global_pool: timm pool type (``'avg'``; ``''`` for unpooled maps).
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic depth, rising linearly over the blocks to this rate (timm's rule).
        drop_block_rate: DropBlock in the last two stages (block size 5 then 3, as timm's ResNet).
        bn_momentum: BatchNorm momentum (PyTorch convention); None keeps 0.1.
        bn_eps: BatchNorm epsilon; None keeps 1e-5.
        device: Device to create parameters on.
        dtype: Floating dtype of the parameters.
    """

    def __init__(
        self,
        layout: ResNetLayout,
        num_classes: int = 0,
        in_chans: int = 3,
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
        if layout.stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {layout.stem!r}; use 'cifar' or 'imagenet'")
        if len(layout.depths) > 4:
            raise ValueError(f"at most 4 stages are supported, got {len(layout.depths)}")
        dd = dict(device=device, dtype=dtype)
        self.in_chans = in_chans
        stem_chs = layout.widths[0]
        imagenet = layout.stem == "imagenet"
        self.conv1 = nn.Conv2d(
            in_chans, stem_chs, 7 if imagenet else 3, stride=2 if imagenet else 1,
            padding=3 if imagenet else 1, bias=False, **dd,
        )
        self.bn1 = nn.BatchNorm2d(stem_chs, **dd)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet else nn.Identity()
        reduction = 4 if imagenet else 1
        self.min_input_size = 2 * reduction * 2 ** (len(layout.depths) - 1) if imagenet else 4
        self.feature_info = [dict(num_chs=stem_chs, reduction=2 if imagenet else 1, module="relu")]
        total_blocks, block_idx = sum(layout.depths), 0
        n_stages = len(layout.depths)
        in_chs = stem_chs
        names: list[str] = []
        for i, (depth, width) in enumerate(zip(layout.depths, layout.widths)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            block_kw: dict = {}
            if drop_block_rate and i >= n_stages - 2:
                last = i == n_stages - 1
                block_kw = dict(drop_block_rate=drop_block_rate, block_size=3 if last else 5,
                                gamma_scale=1.0 if last else 0.25)
            blocks = []
            for b in range(depth):
                dpr = drop_path_rate * block_idx / max(total_blocks - 1, 1)
                blocks.append(BasicBlock(in_chs if b == 0 else width, width, stride if b == 0 else 1,
                                         drop_path_rate=dpr, **block_kw, **dd))
                block_idx += 1
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            names.append(f"layer{i + 1}")
            self.feature_info.append(dict(num_chs=width, reduction=reduction, module=f"layer{i + 1}"))
            in_chs = width
        for i in range(n_stages, 4):  # CIFAR layouts: stage 4 is empty (no weights), so forward stays scriptable
            self.add_module(f"layer{i + 1}", nn.Identity())
        self._set_stages(names)
        self._finish_init(num_classes, global_pool, drop_rate, bn_momentum, bn_eps, **dd)

    def forward_stem(self, x: torch.Tensor, tap: list[torch.Tensor] | None = None) -> torch.Tensor:
        """conv1 -> bn1 -> relu (the stem feature, appended to ``tap``) -> max-pool (ImageNet layout)."""
        x = self.relu(self.bn1(self.conv1(x)))
        if tap is not None:
            tap.append(x)
        return self.maxpool(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last stage's unpooled feature map."""
        x = self.forward_stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self._forward_stages_checkpointed(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


CIFAR_WIDTHS = (16, 32, 64)
LAYOUTS: dict = {
    "resnet8": ResNetLayout((1, 1, 1), CIFAR_WIDTHS, "cifar"),
    "resnet32": ResNetLayout((5, 5, 5), CIFAR_WIDTHS, "cifar"),
    "resnet56": ResNetLayout((9, 9, 9), CIFAR_WIDTHS, "cifar"),
    "resnet34": ResNetLayout((3, 4, 6, 3), (64, 128, 256, 512), "imagenet"),
}


def _register(name: str, layout: ResNetLayout) -> None:
    depth = 2 + 2 * sum(layout.depths)
    style = "CIFAR style" if layout.stem == "cifar" else "torchvision layout, no fc"

    def builder(**kwargs: Any) -> ResNet:
        return ResNet(layout, **kwargs)

    builder.__name__ = name
    builder.__doc__ = f"Build ResNet-{depth} ({style})."
    register_architecture(name, num_features=layout.widths[-1], description=f"ResNet-{depth} ({style})",
                          first_conv="conv1")(builder)


for _name, _layout in LAYOUTS.items():
    _register(_name, _layout)
