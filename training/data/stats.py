"""``python -m training.data.stats NAME``: per-channel mean/std of a dataset's training split ([0, 1] units)."""

from __future__ import annotations

import argparse
import json

import torch


def image_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std ([0, 1] units, 4 decimals) over every pixel of uint8 (N, C, H, W) images
    (float64 accumulation)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (total_sq / n - mean**2).clamp_min(0).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def channel_stats(name: str, split: str | None = None, root: str | None = None) -> dict[str, list[float]]:
    """Mean and std per channel over every pixel of a registered dataset's split."""
    from training.data.registry import get_dataset_spec, load_split  # the package registers the datasets

    spec = get_dataset_spec(name)
    mean, std = image_stats(load_split(name, split or spec.pretrain_split, root=root).images)
    return {"mean": list(mean), "std": list(std)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--split", default=None)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    print(json.dumps(channel_stats(args.name, args.split, args.data_root)))
