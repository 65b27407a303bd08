"""Fine-tuning protocols (STL-10 protocol of the paper) and the supervised upper bound.

Augmentation is batched on the device: random translation (affine, up to 1/8 of
the side), horizontal flip and cutout (one square of half the side set to zero
after normalisation), as in the paper's "affine + cutout".
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from training.augment import normalize
from training.data import get_dataset_spec, load_split

from training.evaluate.protocols import EvalSpec, protocol
from training.evaluate.source import Backbone

TRANSLATE = 0.125   # max shift, fraction of the side
CUTOUT = 0.5        # cutout square side, fraction of the image side


def affine_cutout(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random translation + horizontal flip + cutout of a normalised (N, C, H, W) batch."""
    n, _, h, w = images.shape
    dev = images.device
    shift = (torch.rand(n, 2, generator=gen, device=dev) * 2 - 1) * 2 * TRANSLATE
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = flip
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    side_h, side_w = max(1, int(h * CUTOUT)), max(1, int(w * CUTOUT))
    cy = torch.randint(0, h, (n,), generator=gen, device=dev)
    cx = torch.randint(0, w, (n,), generator=gen, device=dev)
    ys = torch.arange(h, device=dev)[None, :, None]
    xs = torch.arange(w, device=dev)[None, None, :]
    inside = ((ys - cy[:, None, None]).abs() <= side_h // 2) & ((xs - cx[:, None, None]).abs() <= side_w // 2)
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


def finetune_model(backbone: Backbone, spec: EvalSpec, train_idx: torch.Tensor | None = None,
                   epochs: int | None = None) -> dict[str, Any]:
    """Fine-tune the whole network with a linear head; returns test accuracy (%)."""
    ds = get_dataset_spec(spec.dataset)
    train = load_split(spec.dataset, spec.train_split, root=spec.data_root)
    test = load_split(spec.dataset, spec.test_split, root=spec.data_root)
    labels = train.labels
    idx = train_idx if train_idx is not None else (labels >= 0).nonzero().squeeze(1)
    if spec.max_train:
        idx = idx[: spec.max_train]
    test_n = test.images.shape[0] if spec.max_test is None else min(spec.max_test, test.images.shape[0])
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
    epochs = epochs or spec.epochs or 20
    for _ in range(epochs):
        perm = idx[torch.randperm(len(idx), generator=shuffle)]
        for start in range(0, len(perm), spec.batch_size):
            b = perm[start:start + spec.batch_size]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            x = normalize(train.images[b].to(spec.device), backbone.mean, backbone.std)
            loss = F.cross_entropy(model(affine_cutout(x, gen)), labels[b].to(spec.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, test_n, 512):
            x = normalize(test.images[start:min(start + 512, test_n)].to(spec.device), backbone.mean, backbone.std)
            correct += (model(x).argmax(1).cpu() == test.labels[start:min(start + 512, test_n)]).sum().item()
    return {"value": 100.0 * correct / test_n, "epochs": epochs, "n_train": len(idx), "n_test": test_n,
            "model": model}


@protocol("finetune")
def finetune(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Whole network, backbone lr 1e-3, head lr 1e-4, weight decay 1e-5, affine + cutout, 20 epochs."""
    result = finetune_model(backbone, spec)
    result.pop("model")
    return result


@protocol("semisup")
def semisup(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Fine-tuning with 1, 10, 25, 50 and 100 % of the labels (balanced, seeded subsets)."""
    labels = load_split(spec.dataset, spec.train_split, root=spec.data_root).labels
    per_fraction = {}
    for fraction in spec.label_fractions:
        idx = balanced_subset(labels, fraction, spec.seed)
        r = finetune_model(backbone, spec, train_idx=idx)
        per_fraction[f"{100 * fraction:g}%"] = {"value": r["value"], "n_train": r["n_train"]}
    return {"value": per_fraction[f"{100 * spec.label_fractions[-1]:g}%"]["value"], "fractions": per_fraction}
