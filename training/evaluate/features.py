"""Feature extraction and k-NN classification shared by online monitoring and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rr_zoo.neighbours import knn_votes
from training.pretrain.augment import normalize


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 512,
                     device: str | torch.device = "cpu") -> torch.Tensor:
    """Pooled features of uint8 images, in eval mode, no augmentation.

    Args:
        model: Backbone returning (N, d) features.
        images: uint8 (N, C, H, W).
        mean: Per-channel normalisation mean ([0, 1] units).
        std: Per-channel normalisation std.
        batch_size: Images per forward pass.
        device: Where to run the model.

    Returns:
        float32 (N, d) features on the CPU.
    """
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size].to(device)
        out.append(model(normalize(batch, mean, std)).float().cpu())
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
