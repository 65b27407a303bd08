"""``pretrain --dry-run``: the FLOPs it derives from two tiny counts equal a full count of the real step."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from training.estimate import count_step_flops, step_flops
from training.pretrain import build_model, relation_loss
from training.recipes import recipe_for_entry


def _full_count(recipe, size: int = 32) -> int:
    """FlopCounterMode over one real forward + backward of the step at the recipe's own M and K."""
    model = build_model(recipe, 3)
    views = torch.randn(recipe.batch_size * recipe.k, 3, size, size, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        loss, _ = relation_loss(model, views, recipe)
        loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("entry,aggregation,m,k", [
    ("rr_conv4_cifar10", "cat", 6, 5), ("rr_resnet8_cifar10", "cat", 4, 6), ("rr_conv4_cifar10", "max", 5, 4),
])
def test_scaled_flops_equal_a_full_count(entry, aggregation, m, k):
    recipe = recipe_for_entry(entry, batch_size=m, k=k, aggregation=aggregation)
    assert step_flops(recipe, 3, 32).at(m, k) == _full_count(recipe)


def test_meta_count_equals_a_count_on_real_tensors():
    recipe = recipe_for_entry("rr_resnet8_cifar10", batch_size=2, k=3)
    try:
        on_meta = count_step_flops(recipe, 2, 3, 3, 32)
    except (RuntimeError, NotImplementedError) as exc:
        pytest.skip(f"the step does not run on meta tensors ({exc}); step_flops counts on the CPU instead")
    assert on_meta == count_step_flops(recipe, 2, 3, 3, 32, device="cpu")


def test_grad_checkpointing_counts_the_recomputed_forward():
    recipe = recipe_for_entry("rr_resnet8_cifar10")
    plain, ckpt = step_flops(recipe, 3, 32), step_flops(recipe, 3, 32, grad_checkpointing=True)
    assert ckpt.per_pair == plain.per_pair and plain.per_view < ckpt.per_view < 1.5 * plain.per_view
