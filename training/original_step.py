"""A re-implementation of the original repository's training step: the offline stand-in of the benchmark.

Purpose (why it is kept): ``python -m training benchmark`` without ``--original-repo`` compares our step with
this one in one process, for a quick check where the original repository cannot be cloned (no network) or
does not run (its code expects an old torchvision / CUDA). Numbers from it are labelled "re-implementation"
and are never reported as the original's: every speed claim in benchmarks/README.md comes from
``benchmark --original-repo PATH`` (``training/bench/original.py``), which runs the original's own code.

What the original does per step (method.md and its code's structure): every image is a PIL
image; the dataset applies the torchvision transform K times per image (one PIL pipeline per
view); views are stacked view-major; the backbone runs in fp32; pairs are built by a Python
loop over view pairs with ``torch.cat``/``torch.roll``; then relation head, focal loss, Adam.
"""

from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms

from rr_zoo.relation import focal_loss


def original_transform(size: int, mean, std) -> transforms.Compose:
    """The paper's per-view torchvision pipeline on PIL images."""
    return transforms.Compose([
        transforms.RandomResizedCrop(size=size, scale=(0.08, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def to_pil(images_uint8: torch.Tensor) -> list[Image.Image]:
    """uint8 (M, C, H, W) -> PIL images (what the original's dataset holds)."""
    arr = images_uint8.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in arr]


def original_views(pil_images: list[Image.Image], k: int, transform) -> torch.Tensor:
    """K PIL-pipeline views of every image, stacked view-major as the original does."""
    per_image = [[transform(img) for _ in range(k)] for img in pil_images]
    return torch.cat([torch.stack([views[v] for views in per_image]) for v in range(k)])


def original_pairs(features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs by a Python loop over view pairs (cat aggregation), as in the original."""
    m = features.shape[0] // k
    pairs, targets, shift = [], [], 1
    for i in range(0, m * k, m):
        for j in range(i + m, m * k, m):
            pairs.append(torch.cat([features[i:i + m], features[j:j + m]], 1))
            pairs.append(torch.cat([features[i:i + m], torch.roll(features[j:j + m], shifts=shift, dims=0)], 1))
            targets.append(torch.ones(m))
            targets.append(torch.zeros(m))
            shift = shift + 1 if shift + 1 < m else 1
    return torch.cat(pairs), torch.cat(targets)


def original_step(backbone, head, optimizer, pil_images, k: int, transform) -> float:
    """One original-style step in fp32; returns the loss."""
    views = original_views(pil_images, k, transform)
    optimizer.zero_grad()
    pairs, targets = original_pairs(backbone(views), k)
    loss = focal_loss(head(pairs), targets, gamma=2.0, alpha=0.5)
    loss.backward()
    optimizer.step()
    return loss.item()
