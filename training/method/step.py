"""The method: the relational model, its loss and one optimisation step.

A view-major batch of K·M augmented views (``training.pretrain.augment``) -> backbone -> pair
logits (``RelationHead.forward_views``, identical to ``make_pairs`` + head) -> focal loss -> Adam.
This is what pretraining runs each step, and what benchmarks and the dry-run estimate time.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
from torch import nn

from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead, focal_loss, relation_input_features

if TYPE_CHECKING:
    from training.pretrain.recipes import Recipe


class RelationalModel(nn.Module):
    """Backbone + relation head as one module (one DDP wrapper, one gradient reducer).

    ``forward(views, k, aggregation)`` returns pair logits and targets of a view-major batch.
    """

    def __init__(self, backbone: nn.Module, head: RelationHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views: torch.Tensor, k: int, aggregation: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.forward_views(self.backbone(views), k, aggregation)


def relation_loss(model: nn.Module, views: torch.Tensor, recipe: Recipe,
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and pair-accuracy counts of one view-major batch.

    Args:
        model: :class:`RelationalModel` (possibly DDP-wrapped).
        views: (K·M, C, H, W) view-major batch.
        recipe: Supplies K, aggregation and the loss constants.

    Returns:
        ``(loss, stats)`` with stats ``correct_pos``, ``correct_neg``, ``n_pos``, ``n_neg`` (tensors).
    """
    logits, targets = model(views, recipe.k, recipe.aggregation)
    if recipe.loss == "focal":
        loss = focal_loss(logits, targets, gamma=recipe.focal_gamma, alpha=recipe.focal_alpha)
    else:
        loss = focal_loss(logits, targets, gamma=0.0, alpha=None)
    with torch.no_grad():
        pred = (logits.detach().float() > 0).float()
        pos = targets > 0.5
        stats = {"correct_pos": (pred[pos] == 1).sum(), "correct_neg": (pred[~pos] == 0).sum(),
                 "n_pos": pos.sum(), "n_neg": (~pos).sum()}
    return loss, stats


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, views: torch.Tensor, recipe: Recipe,
               precision: str = "fp32", scaler: torch.amp.GradScaler | None = None,
               ) -> tuple[float, dict[str, torch.Tensor]]:
    """One optimisation step on a view-major batch; returns (loss value, accuracy counts).

    With gradient checkpointing on (``backbone.set_grad_checkpointing(True)``) the backward pass
    recomputes the backbone's forward, which would update its BatchNorm running statistics a
    second time; they are restored to their values after the (single) forward, so the step equals
    the plain one in loss, gradients and BatchNorm statistics.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast_context(str(views.device), precision):
        loss, stats = relation_loss(model, views, recipe)
    with keep_batchnorm_stats(recomputed_batchnorms(model)):
        (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item(), stats


def recomputed_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Training-mode BatchNorm layers inside modules with ``grad_checkpointing`` on (run twice per step)."""
    found: list[nn.modules.batchnorm._BatchNorm] = []
    for module in model.modules():
        if getattr(module, "grad_checkpointing", False):
            found += [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                      and m.training and m.track_running_stats and m not in found]
    return found


@contextlib.contextmanager
def keep_batchnorm_stats(layers: list[nn.modules.batchnorm._BatchNorm]):
    """Restore the running statistics of ``layers`` on exit (undoes the update of a recomputed forward)."""
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in layers]
    yield
    with torch.no_grad():
        for m, (mean, var, count) in zip(layers, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)


def build_model(recipe: Recipe, in_chans: int) -> RelationalModel:
    """Backbone (pooled features) + relation head, seeded by the recipe."""
    torch.manual_seed(recipe.seed)
    backbone = build_backbone(recipe.architecture, num_classes=0, in_chans=in_chans)
    head = RelationHead(relation_input_features(backbone.num_features, recipe.aggregation), recipe.relation_hidden)
    return RelationalModel(backbone, head)


def build_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    """Adam over backbone and head (the paper: lr 1e-3, no weight decay, no schedule)."""
    return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def autocast_context(device: str, precision: str):
    """Autocast for bf16/fp16, a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
