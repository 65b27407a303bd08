"""Feature extraction and k-NN classification shared by online monitoring and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rr_zoo.neighbours import knn_votes
from training.evaluate.protocols import EVAL_PRECISIONS
from training.method.step import autocast_context
from training.pretrain.augment import normalize

BATCH_PIXELS = 128 * 32 * 32  # pixels per CPU extraction batch (32 images at 64x64): large batches leave the
# CPU caches (benchmarks/README.md, python -m benchmarks.eval_precision --batch-sizes 512)


def default_batch_size(side: int, device: str | torch.device = "cpu") -> int:
    """Images per extraction batch: :data:`BATCH_PIXELS` worth on a CPU (at least 8), 512 on an accelerator."""
    return max(8, BATCH_PIXELS // (side * side)) if torch.device(device).type == "cpu" else 512


def resize_images(images: torch.Tensor, side: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) images resized to ``side`` x ``side`` (bilinear, antialiased), as uint8.

    ``side`` None or equal to the images' side returns them unchanged.
    """
    if side is None or tuple(images.shape[-2:]) == (side, side):
        return images
    x = F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _channels_last(model: nn.Module) -> bool:
    """Whether the model's 4-D weights are in channels-last layout."""
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int | None = None,
                     device: str | torch.device = "cpu", precision: str = "fp32",
                     image_size: int | None = None) -> torch.Tensor:
    """Pooled features of uint8 images, in eval mode, no augmentation.

    fp32 is the reference path (default memory layout, the features every published fp32 metric was
    computed from); bf16 runs autocast in channels-last layout, the fast path of oneDNN and cuDNN.

    Args:
        model: Backbone returning (N, d) features.
        images: uint8 (N, C, H, W).
        mean: Per-channel normalisation mean ([0, 1] units).
        std: Per-channel normalisation std.
        batch_size: Images per forward pass (default: :func:`default_batch_size`).
        device: Where to run the model.
        precision: ``fp32``, or ``bf16`` (faster where the hardware has bf16 units, see
            benchmarks/README.md; features differ from fp32 by ~1e-2).
        image_size: Side the images are resized to first (bilinear, antialiased); None keeps their size.

    Returns:
        float32 (N, d) features on the CPU.
    """
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    batch_size = batch_size or default_batch_size(image_size or int(images.shape[-1]), device)
    was_training = model.training
    layout = torch.channels_last if _channels_last(model) else torch.contiguous_format
    fed = torch.channels_last if precision == "bf16" else torch.contiguous_format
    model.eval()
    out = []
    try:
        model.to(memory_format=fed)
        for start in range(0, images.shape[0], batch_size):
            batch = resize_images(images[start:start + batch_size].to(device), image_size)
            x = normalize(batch, mean, std).contiguous(memory_format=fed)
            with autocast_context(str(device), precision):
                out.append(model(x).float().cpu())
    finally:
        model.to(memory_format=layout)  # as it came: a training run's backbone stays channels-last
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, query_features: torch.Tensor,
                k: int = 20, temperature: float = 0.07, num_classes: int | None = None,
                chunk: int = 1024) -> torch.Tensor:
    """Weighted cosine k-NN (Wu et al. 2018): class votes weighted by exp(cos / temperature).

    Args:
        train_features: (N, d) bank features.
        train_labels: (N,) int64 labels.
        query_features: (Q, d) query features.
        k: Neighbours.
        temperature: Softmax temperature of the vote weights.
        num_classes: Number of classes (default: max label + 1).
        chunk: Queries per similarity block (bounds memory).

    Returns:
        (Q,) predicted labels.
    """
    if k < 1 or k > train_features.shape[0]:
        raise ValueError(f"k must be in [1, {train_features.shape[0]}], got {k}")
    num_classes = num_classes or int(train_labels.max()) + 1
    bank = F.normalize(train_features.float(), dim=1)
    preds = []
    for start in range(0, query_features.shape[0], chunk):
        q = F.normalize(query_features[start:start + chunk].float(), dim=1)
        preds.append(knn_votes(q @ bank.t(), train_labels, k, temperature, num_classes).argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy (%) of :func:`knn_predict`."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, num_classes)
    return 100.0 * (pred == test_labels).float().mean().item()
