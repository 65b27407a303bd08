"""Fine-tuning protocols (STL-10 protocol of the paper) and the supervised upper bound.

Augmentation, batched on the device, follows the original's fine-tuning pipeline: horizontal flip
(p 0.5); with p 0.5 a random affine (rotation ±18°, scale 0.9–1.1, translation ±10 %, shear ±10°,
bilinear, zero fill); normalisation; with p 0.5 cutout (random erasing of one square whose area is
a fixed fraction of the image, the dataset spec's ``cutout_area``: 1/4 CIFAR-10, 1/9 STL-10, 1/16 CIFAR-100).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F

from training.data import get_dataset_spec, load_split, subset_indices
from training.evaluate.features import resize_images
from training.evaluate.protocols import FINETUNE_EPOCHS, EvalSpec, evaluation_side, protocol
from training.evaluate.source import FeatureSource
from training.method.step import autocast_context
from training.pretrain.augment import normalize

ROTATION_DEG, SCALE, TRANSLATE, SHEAR_DEG = 18.0, (0.9, 1.1), 0.1, 10.0


def affine_cutout(images: torch.Tensor, gen: torch.Generator, cutout_area: float) -> torch.Tensor:
    """Flip + random affine (p 0.5) + cutout (p 0.5, ``cutout_area`` of the area) of a normalised (N, C, H, W) batch."""
    n, _, h, w = images.shape
    dev = images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=gen, device=dev)

    apply = torch.rand(n, generator=gen, device=dev) < 0.5
    angle = torch.where(apply, uniform(-ROTATION_DEG, ROTATION_DEG), torch.zeros(n, device=dev)) * math.pi / 180
    shear = torch.where(apply, uniform(-SHEAR_DEG, SHEAR_DEG), torch.zeros(n, device=dev)) * math.pi / 180
    scale = torch.where(apply, uniform(*SCALE), torch.ones(n, device=dev))
    shift = torch.where(apply[:, None], torch.stack([uniform(-TRANSLATE, TRANSLATE), uniform(-TRANSLATE, TRANSLATE)],
                                                    1) * 2, torch.zeros(n, 2, device=dev))
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    # output -> input sampling matrix: inverse of (rotate, shear, scale), then mirror
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = cos / scale, (sin + torch.tan(shear) * cos) / scale
    c, d = -sin / scale, (cos - torch.tan(shear) * sin) / scale
    theta = torch.stack([torch.stack([a * flip, b, -shift[:, 0]], 1), torch.stack([c * flip, d, -shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    side = max(1, round(math.sqrt(cutout_area * h * w)))
    erase = torch.rand(n, generator=gen, device=dev) < 0.5
    top = torch.randint(0, max(1, h - side + 1), (n,), generator=gen, device=dev)
    left = torch.randint(0, max(1, w - side + 1), (n,), generator=gen, device=dev)
    ys = torch.arange(h, device=dev)[None, :, None]
    xs = torch.arange(w, device=dev)[None, None, :]
    inside = ((ys >= top[:, None, None]) & (ys < top[:, None, None] + side) & (xs >= left[:, None, None])
              & (xs < left[:, None, None] + side) & erase[:, None, None])
    return out * (~inside)[:, None].to(out.dtype)


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a seeded subset with ``fraction`` of every class's labelled images (at least one each)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in labels[labels >= 0].unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        n = max(1, round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.cat(picked).sort().values


RESIZE_CHUNK = 4096  # images resized at a time (float copies of a chunk, not of the split)


def _at_side(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, side: int | None,
             device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, labels, positions) to draw batches from: the split as it is when its images have the
    evaluation side, else the ``idx`` images resized once (in chunks, on ``device``, kept on the CPU) with their
    labels and positions 0..n-1."""
    if side is None or tuple(images.shape[-2:]) == (side, side):
        return images, labels, idx
    resized = torch.cat([resize_images(images[idx[s:s + RESIZE_CHUNK]].to(device), side).cpu()
                         for s in range(0, len(idx), RESIZE_CHUNK)]
                        or [images.new_empty((0, images.shape[1], side, side))])
    return resized, labels[idx], torch.arange(len(idx))


def finetune_model(backbone: FeatureSource, spec: EvalSpec, train_idx: torch.Tensor | None = None,
                   epochs: int | None = None) -> dict[str, Any]:
    """Fine-tune the whole network with a linear head; returns test accuracy (%)."""
    request = backbone.data_request()
    ds = get_dataset_spec(spec.dataset, request)
    train = load_split(spec.dataset, spec.train_split, root=spec.data_root, request=request)
    test = load_split(spec.dataset, spec.test_split, root=spec.data_root, request=request)
    labels = train.labels
    idx = train_idx if train_idx is not None else (labels >= 0).nonzero().squeeze(1)
    if spec.max_train:
        idx = idx[subset_indices(len(idx), spec.max_train)]
    test_idx = subset_indices(test.images.shape[0], spec.max_test)
    torch.manual_seed(spec.seed)
    model = copy.deepcopy(backbone.model).to(spec.device)
    for p in model.parameters():
        p.requires_grad_(True)
    model.reset_classifier(ds.num_classes)
    model.train()
    head_params = list(model.fc.parameters())
    head_ids = {id(p) for p in head_params}
    opt = torch.optim.Adam([
        {"params": [p for p in model.parameters() if id(p) not in head_ids], "lr": spec.lr},
        {"params": head_params, "lr": spec.head_lr},
    ], weight_decay=spec.weight_decay)
    gen = torch.Generator(device=spec.device).manual_seed(spec.seed)
    shuffle = torch.Generator().manual_seed(spec.seed)
    epochs = epochs or spec.epochs or FINETUNE_EPOCHS
    cutout = ds.cutout_area
    side = evaluation_side(backbone, spec)
    layout = torch.channels_last if spec.precision == "bf16" else torch.contiguous_format  # fp32: reference path
    model.to(memory_format=layout)

    train_images, train_labels, pool = _at_side(train.images, labels, idx, side, spec.device)
    test_images, test_labels, test_pool = _at_side(test.images, test.labels, test_idx, side, spec.device)

    def batch_of(images: torch.Tensor) -> torch.Tensor:
        x = normalize(images.to(spec.device), backbone.mean, backbone.std)
        return x.contiguous(memory_format=layout)

    for _ in range(epochs):
        perm = pool[torch.randperm(len(pool), generator=shuffle)]
        for start in range(0, len(perm), spec.batch_size):
            b = perm[start:start + spec.batch_size]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            x = affine_cutout(batch_of(train_images[b]), gen, cutout).contiguous(memory_format=layout)
            with autocast_context(spec.device, spec.precision):
                loss = F.cross_entropy(model(x).float(), train_labels[b].to(spec.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test_pool), 512):
            chunk = test_pool[start:start + 512]
            with autocast_context(spec.device, spec.precision):
                logits = model(batch_of(test_images[chunk]))
            correct += (logits.argmax(1).cpu() == test_labels[chunk]).sum().item()
    model.to(memory_format=torch.contiguous_format)  # the returned model in the default layout
    return {"value": 100.0 * correct / len(test_idx), "epochs": epochs, "n_train": len(idx), "n_test": len(test_idx),
            "model": model}


@protocol("finetune", epochs=FINETUNE_EPOCHS)
def finetune(backbone: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Whole network, backbone lr 1e-3, head lr 1e-4, weight decay 1e-5, affine + cutout, 20 epochs."""
    result = finetune_model(backbone, spec)
    result.pop("model")
    return result


@protocol("semisup", epochs=FINETUNE_EPOCHS)
def semisup(backbone: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Fine-tuning with 1, 10, 25, 50 and 100 % of the labels (balanced, seeded subsets)."""
    labels = load_split(spec.dataset, spec.train_split, root=spec.data_root, request=backbone.data_request()).labels
    per_fraction = {}
    for fraction in spec.label_fractions:
        idx = balanced_subset(labels, fraction, spec.seed)
        r = finetune_model(backbone, spec, train_idx=idx)
        per_fraction[f"{100 * fraction:g}%"] = {"value": r["value"], "n_train": r["n_train"]}
    return {"value": per_fraction[f"{100 * spec.label_fractions[-1]:g}%"]["value"], "fractions": per_fraction}
