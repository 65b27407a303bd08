"""Shared timm-style model contract for all rr_zoo backbones."""

from __future__ import annotations

import math

import torch
from torch import nn

from rr_zoo.errors import InputShapeError


def init_weights(module: nn.Module) -> None:
    """Initialise like the original repository.

    Convolutions: N(0, sqrt(2 / (k*k*out_channels))); BatchNorm: weight 1, bias 0.
    Linear layers keep PyTorch's default init.

    Args:
        module: Module whose submodules are initialised in place.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Backbone(nn.Module):
    """Base class giving every backbone timm's feature-extractor contract.

    Subclasses build their layers, set ``num_features``, ``in_chans`` and
    ``feature_info`` and implement :meth:`forward_features` (unpooled map).
    This class adds global average pooling, the optional linear classifier
    ``fc`` (absent when ``num_classes == 0``), :meth:`forward_head`,
    :meth:`reset_classifier` and an input shape check.
    """

    num_features: int
    in_chans: int
    min_input_size: int = 1
    default_cfg: dict
    pretrained_cfg: dict

    def _init_head(self, num_classes: int) -> None:
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier.

        Args:
            num_classes: 0 for pooled features (no ``fc`` parameters), else the
                number of output classes of a new linear head.
            global_pool: Only ``"avg"`` (or None) is supported.
        """
        if global_pool not in (None, "avg"):
            raise ValueError(f"global_pool={global_pool!r} is not supported; use 'avg'")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        """Return the classifier module (``nn.Identity`` when there is none)."""
        return self.fc

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is (N, in_chans, H, W)."""
        if not isinstance(x, torch.Tensor):
            raise InputShapeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{type(self).__name__} expects input of shape (N, {self.in_chans}, H, W), "
                f"got {tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0) or convert "
                f"the image to {self.in_chans} channel(s); rr_zoo.get_transform(name) does both."
            )
        if min(x.shape[-2:]) < self.min_input_size:
            raise InputShapeError(
                f"{type(self).__name__} needs images of at least {self.min_input_size}x"
                f"{self.min_input_size} pixels, got {tuple(x.shape[-2:])}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Return the last stage's unpooled feature map (N, num_features, h, w)."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool a feature map and apply the classifier.

        Args:
            x: Output of :meth:`forward_features`.
            pre_logits: If True, return pooled features even when ``fc`` exists.

        Returns:
            (N, num_features) features, or (N, num_classes) logits.
        """
        x = torch.flatten(self.global_pool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (``num_classes == 0``) or logits for a batch of images."""
        self.check_input(x)
        return self.forward_head(self.forward_features(x))
