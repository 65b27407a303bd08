"""The weighted k-nearest-neighbour vote (Wu et al. 2018) that every kNN accuracy of the zoo uses."""

from __future__ import annotations

import torch


def knn_votes(similarity: torch.Tensor, labels: torch.Tensor, k: int, temperature: float,
              num_classes: int) -> torch.Tensor:
    """Class votes of each row's ``k`` most similar items, each weighted by ``exp(similarity / temperature)``.

    Args:
        similarity: (Q, N) cosine similarities of Q queries to N labelled items (``-inf`` leaves an item out).
        labels: (N,) int64 labels of the items.
        k: Neighbours that vote.
        temperature: Temperature of the weights.
        num_classes: Number of classes.

    Returns:
        (Q, num_classes) summed weights; ``argmax(1)`` is the prediction.
    """
    top, idx = similarity.topk(k, dim=1)
    votes = torch.zeros(similarity.shape[0], num_classes, dtype=top.dtype, device=top.device)
    return votes.scatter_add_(1, labels[idx], (top / temperature).exp())
