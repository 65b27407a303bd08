"""``python -m training.data.stats NAME``: per-channel mean/std of a dataset's training split ([0, 1] units)."""

from __future__ import annotations

import argparse
import json

import torch

from training.data import get_dataset_spec, load_split


def channel_stats(name: str, split: str | None = None, root: str | None = None) -> dict[str, list[float]]:
    """Mean and std per channel over every pixel of the split (float64 accumulation)."""
    spec = get_dataset_spec(name)
    images = load_split(name, split or spec.pretrain_split, root=root).images
    total = torch.zeros(spec.channels, dtype=torch.float64)
    total_sq = torch.zeros(spec.channels, dtype=torch.float64)
    for start in range(0, images.shape[0], 4096):
        x = images[start:start + 4096].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (total_sq / n - mean**2).sqrt()
    return {"mean": [round(v, 4) for v in mean.tolist()], "std": [round(v, 4) for v in std.tolist()]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--split", default=None)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    print(json.dumps(channel_stats(args.name, args.split, args.data_root)))
