"""Wall-time estimates for ``pretrain --dry-run``: measured here, and derived for one GPU."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.recipes import Recipe, RunOptions

# Training-split sizes (images) used when the dataset is not on disk here.
KNOWN_SPLIT_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "cifar100_20": 50_000, "stl10": 105_000,
                     "tinyimagenet": 100_000, "slimagenet64": 160_000, "fashionmnist": 60_000,
                     "cifar10_4k": 4_000, "cifar10_jpeg": 50_000}
# Sustained dense bf16 throughput assumed for one H100-class GPU on these small convnets
# (about 15% of its 990 TFLOP/s peak); an assumption, not a measurement.
GPU_ASSUMED_TFLOPS = 150.0


def _split_size(recipe: Recipe, opts: RunOptions) -> tuple[int, str]:
    from training.data import load_split

    try:
        return int(load_split(recipe.dataset, recipe.split, root=opts.data_root).images.shape[0]), "on disk"
    except FileNotFoundError:
        return KNOWN_SPLIT_SIZES.get(recipe.dataset, 50_000), "published size (dataset not on disk here)"


def estimate_wall_time(recipe: Recipe, opts: RunOptions, timed_steps: int = 2) -> dict[str, Any]:
    """Time a few real training steps here and extrapolate to the full recipe.

    Args:
        recipe: The recipe to estimate.
        opts: Run options (precision, threads).
        timed_steps: Steps to time after one warm-up step.

    Returns:
        Dict with images, steps, measured seconds/step, CPU hours, FLOPs/step and a GPU-hours estimate.
    """
    from training.data import get_dataset_spec
    from training.pretrain import augment_config, build_model, build_optimizer, make_views, train_step

    spec = get_dataset_spec(recipe.dataset)
    n_images, size_source = _split_size(recipe, opts)
    steps = (n_images // recipe.batch_size) * recipe.epochs
    model = build_model(recipe, spec.channels)
    opt = build_optimizer(recipe, model.parameters())
    images = torch.randint(0, 256, (recipe.batch_size, spec.channels, spec.image_size, spec.image_size),
                           dtype=torch.uint8)
    cfg = augment_config(recipe)
    gen = torch.Generator().manual_seed(0)
    precision = opts.precision if opts.precision != "fp16" else "fp32"
    with FlopCounterMode(display=False) as counter:
        train_step(model, opt, make_views(images, recipe.k, cfg, generator=gen), recipe, "fp32")
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    for _ in range(timed_steps):
        train_step(model, opt, make_views(images, recipe.k, cfg, generator=gen), recipe, precision)
    per_step = (time.perf_counter() - t0) / timed_steps
    return {
        "images": n_images, "images_source": size_source, "steps": steps,
        "cpu_seconds_per_step_measured": round(per_step, 3),
        "cpu_hours": round(per_step * steps / 3600, 1),
        "cpu_threads": torch.get_num_threads(), "precision": precision,
        "flops_per_step": flops,
        "gpu_hours_estimate": float(f"{flops * steps / (GPU_ASSUMED_TFLOPS * 1e12) / 3600:.3g}"),
        "gpu_assumption": f"{GPU_ASSUMED_TFLOPS:.0f} TFLOP/s sustained on one H100-class GPU (assumed, not measured)",
    }
