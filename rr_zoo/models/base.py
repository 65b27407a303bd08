"""Shared timm model contract for every rr_zoo backbone.

A backbone subclass builds its stem and stages, then calls :meth:`Backbone._finish_init`.
This class gives it what timm's own models have (and timm's ``tests/test_models.py``
checks): ``num_features`` / ``head_hidden_size``, a global pool of any
``SelectAdaptivePool2d`` type (``''`` for unpooled maps), classifier dropout
(``drop_rate``), ``reset_classifier(n, global_pool)``, ``forward_intermediates`` +
``prune_intermediate_layers`` (``features_only=True, feature_cls='getter'``),
``set_grad_checkpointing`` and ``device`` / ``dtype`` construction kwargs.

Input validation runs in eager mode, under ``torch.compile`` and ``torch.export``,
and inside ``torch.fx`` graphs (the check is registered with timm as a leaf
function, so it is recorded as one call and runs on real tensors); TorchScript
compiles the model without it (``torch.jit.is_scripting()``), since TorchScript
cannot raise the library's own exception types, and a model built with timm's
``scriptable=True`` leaves it out of FX graphs too (so they can be scripted).
"""

import math
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.layers import create_classifier, is_scriptable
from timm.models import checkpoint_seq, register_notrace_function
from timm.models._features import feature_take_indices
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


@register_notrace_function
@torch.jit.ignore
def check_input(x: Any, in_chans: int, min_size: int, model_name: str) -> torch.Tensor:
    """Return ``x`` if it is an (N, in_chans, H, W) tensor of at least ``min_size`` px, else raise.

    Raises :class:`InputShapeError` naming the expected shape and the fix.

    Registered with timm as a no-trace function: timm's FX feature extraction
    records it as a single call whose output feeds the network (so dead-code
    elimination keeps it), and a traced model still checks its input. Plain
    ``torch.fx.symbolic_trace`` passes a Proxy, which is let through.
    """
    if isinstance(x, torch.fx.Proxy):
        return x
    if not isinstance(x, torch.Tensor):
        raise InputShapeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise InputShapeError(
            f"{model_name} expects input of shape (N, {in_chans}, H, W), got {tuple(x.shape)}. Add a batch "
            f"dimension with x.unsqueeze(0) or convert the image to {in_chans} channel(s); "
            "rr_zoo.get_transform(name) does both."
        )
    if min(x.shape[-2:]) < min_size:
        raise InputShapeError(
            f"{model_name} needs images of at least {min_size}x{min_size} pixels, got {tuple(x.shape[-2:])}"
        )
    return x


def run_stage(stage: nn.Module, x: torch.Tensor, checkpoint: bool) -> torch.Tensor:
    """Run one stage, recomputing each of its blocks in backward when ``checkpoint`` (timm's ``checkpoint_seq``)."""
    if checkpoint and isinstance(stage, nn.Sequential):
        return checkpoint_seq(stage, x)
    if checkpoint:
        return torch.utils.checkpoint.checkpoint(stage, x, use_reentrant=False)
    return stage(x)


def set_batchnorm_args(module: nn.Module, momentum: float | None, eps: float | None) -> None:
    """Set ``momentum`` / ``eps`` of every BatchNorm layer (timm's ``bn_momentum`` / ``bn_eps`` kwargs)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if momentum is not None:
                m.momentum = momentum
            if eps is not None:
                m.eps = eps


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers: ``model.train()`` cannot change it.

    Unlike torchvision's (which timm's ``freeze_batch_norm_2d`` uses), it keeps
    ``nn.BatchNorm2d``'s state-dict keys (``num_batches_tracked`` included) and its
    output is bit-identical to an ``nn.BatchNorm2d`` in eval mode.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> "FrozenBatchNorm2d":
        """A frozen copy of ``bn`` (same device and dtype)."""
        frozen = cls(bn.num_features, bn.eps).to(device=bn.running_mean.device)
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            value = getattr(bn, name)
            if value is not None:
                setattr(frozen, name, value.detach().clone())
        return frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` (and SyncBatchNorm) in ``module`` by :class:`FrozenBatchNorm2d`.

    Returns:
        ``module`` (or its replacement when it is itself a BatchNorm layer).
    """
    if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
        return FrozenBatchNorm2d.from_batchnorm(module)
    for name, child in module.named_children():
        new = freeze_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module


class Backbone(nn.Module):
    """Base class giving every backbone timm's model contract.

    Subclasses set ``in_chans``, ``min_input_size`` and ``feature_info`` (one
    record per stage, ``module`` naming the stage attribute), register their stages
    with :meth:`_set_stages`, implement :meth:`forward_stem`, and call
    :meth:`_finish_init` last.
    """

    __jit_unused_properties__ = ["head_hidden_size"]

    # ------------------------------------------------------------------ construction
    def _set_stages(self, names: list[str]) -> None:
        # stage attribute names in order; feature_info[i]['module'] is the tap of stage i
        self._stage_names = list(names)

    def _finish_init(self, num_classes: int, global_pool: str, drop_rate: float, bn_momentum: float | None,
                     bn_eps: float | None, device: Any = None, dtype: Any = None) -> None:
        """Last step of a subclass's ``__init__``: the head, the original init, timm's BatchNorm kwargs."""
        self._init_head(num_classes, global_pool, drop_rate, device=device, dtype=dtype)
        init_weights(self)
        set_batchnorm_args(self, bn_momentum, bn_eps)

    def _forward_stages_checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        """Every stage in order, each block recomputed in backward (``set_grad_checkpointing``)."""
        for name in self._stage_names:
            x = run_stage(getattr(self, name), x, checkpoint=True)
        return x

    def _init_head(self, num_classes: int, global_pool: str, drop_rate: float,
                   device: Any = None, dtype: Any = None) -> None:
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.num_features = self.feature_info[-1]["num_chs"]
        self.drop_rate = float(drop_rate)
        self.grad_checkpointing = False
        # built for TorchScript (timm's scriptable=True): no Python-side input check in any traced graph
        self.validate_input = not is_scriptable()
        self.num_classes = num_classes
        self.global_pool, self.fc = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, device=device, dtype=dtype)

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits features (``num_features`` times the pool's multiplier)."""
        return self.num_features * self.global_pool.feat_mult()

    # ------------------------------------------------------------------ classifier
    def get_classifier(self) -> nn.Module:
        """Return the classifier module (``nn.Identity`` when there is none)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (and optionally the global pool).

        Args:
            num_classes: 0 for pre-logits features (no ``fc`` parameters), else the
                number of classes of a new linear head.
            global_pool: Any ``timm.layers.SelectAdaptivePool2d`` type (``'avg'``,
                ``'max'``, ``'avgmax'``, ``'catavgmax'``, ...) or ``''`` for unpooled
                maps; None keeps the current pool.
        """
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        ref = next(iter(self.parameters()), None)
        if ref is None:
            ref = next(iter(self.buffers()))
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        self.num_classes = num_classes
        self.global_pool, self.fc = create_classifier(
            self.num_features, num_classes, pool_type=pool_type, device=ref.device,
            dtype=ref.dtype if ref.is_floating_point() else None)
        self.global_pool.train(self.training)
        self.fc.train(self.training)

    # ------------------------------------------------------------------ timm hooks
    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (saves memory, same gradients)."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-wise lr decay: the stem, then one group per stage."""
        first = self._stage_names[0]
        stem = [n for n, _ in self.named_children() if n not in self._stage_names and n not in ("global_pool", "fc")]
        blocks = [(rf"^{name}" + ("" if coarse else r"\.(\d+)"), (i,)) for i, name in enumerate(self._stage_names)]
        if not stem:  # first stage doubles as the stem
            return dict(stem=rf"^{first}\.", blocks=blocks[1:])
        return dict(stem=r"^(?:" + "|".join(stem) + r")\.", blocks=blocks)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x``, or raise :class:`InputShapeError` unless it is (N, in_chans, H, W) and large enough."""
        return check_input(x, self.in_chans, self.min_input_size, type(self).__name__)

    # ------------------------------------------------------------------ forward
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Layers before the first stage (identity for Conv-4)."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last stage's unpooled feature map (N, num_features, h, w)."""
        raise NotImplementedError  # pragma: no cover

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool a feature map, apply classifier dropout and the classifier.

        Args:
            x: Output of :meth:`forward_features`.
            pre_logits: If True, return pooled features even when ``fc`` exists.

        Returns:
            (N, head_hidden_size) features, (N, num_classes) logits, or the map
            unchanged when the global pool is ``''``.
        """
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (``num_classes == 0``) or logits for a batch of images."""
        if not torch.jit.is_scripting() and self.validate_input:
            x = check_input(x, self.in_chans, self.min_input_size, type(self).__name__)
        return self.forward_head(self.forward_features(x))

    # ------------------------------------------------------------------ intermediates
    @torch.jit.ignore
    def _stem_is_tap(self) -> bool:
        return self.feature_info[0]["module"] not in self._stage_names

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward pass returning the feature maps of chosen stages (timm's API).

        Args:
            x: Input images (N, in_chans, H, W).
            indices: Stages to return (indices into ``feature_info``): the last n if
                int, all if None.
            norm: Accepted for timm compatibility (these backbones have no final norm).
            stop_early: Stop after the last requested stage.
            output_fmt: Only ``'NCHW'``.
            intermediates_only: Return only the list of intermediates.

        Returns:
            ``(final feature map, intermediates)`` or just the intermediates.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt={output_fmt!r} is not supported; use 'NCHW'")
        x = check_input(x, self.in_chans, self.min_input_size, type(self).__name__)
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        intermediates = []
        stem_tap = self._stem_is_tap()
        x = self.forward_stem(x, tap=intermediates if (stem_tap and 0 in take_indices) else None)
        offset = 1 if stem_tap else 0
        stages = self._stage_names
        if stop_early:
            stages = stages[:max(max_index + 1 - offset, 0)]
        for i, name in enumerate(stages):
            x = run_stage(getattr(self, name), x, checkpoint=self.grad_checkpointing)
            if i + offset in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    @torch.jit.ignore
    def prune_intermediate_layers(
        self,
        indices: int | list[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages after the last requested one (timm's API).

        Args:
            indices: Stages that must stay reachable (as in :meth:`forward_intermediates`).
            prune_norm: Accepted for timm compatibility (no final norm here).
            prune_head: Also remove the classifier and the global pool.

        Returns:
            The absolute indices to pass to :meth:`forward_intermediates`.
        """
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        offset = 1 if self._stem_is_tap() else 0
        for name in self._stage_names[max(max_index + 1 - offset, 0):]:
            setattr(self, name, nn.Identity())
        if offset and max_index == 0 and hasattr(self, "maxpool"):  # features end at the stem tap
            self.maxpool = nn.Identity()
        old_features, self.num_features = self.num_features, self.feature_info[max_index]["num_chs"]
        if prune_head:
            self.reset_classifier(0, "")
        elif self.num_features != old_features:  # the classifier no longer fits the tap's width
            self.reset_classifier(self.num_classes)
        return take_indices
