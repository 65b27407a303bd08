"""Nearest-neighbour protocols on frozen, cached features: weighted kNN accuracy and retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.data import dataset_label
from training.evaluate.feature_cache import labelled_features
from training.evaluate.features import knn_accuracy
from training.evaluate.figures import retrieval_grid
from training.evaluate.protocols import EvalSpec, protocol
from training.evaluate.source import FeatureSource


@protocol("knn")
def knn(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Weighted cosine k-NN (k=20, temperature 0.07) on the same cached features."""
    train_x, train_y = labelled_features(source, spec, spec.train_split)
    test_x, test_y = labelled_features(source, spec, spec.test_split)
    acc = knn_accuracy(train_x, train_y, test_x, test_y, k=spec.knn_k, temperature=spec.knn_temperature)
    return {"value": acc, "k": spec.knn_k, "temperature": spec.knn_temperature,
            "metric_name": f"weighted cosine {spec.knn_k}-NN accuracy (temperature {spec.knn_temperature})"}


def average_precision(relevant: torch.Tensor) -> torch.Tensor:
    """AP of each row of a (Q, N) boolean relevance matrix ranked left to right."""
    hits = relevant.float().cumsum(1)
    ranks = torch.arange(1, relevant.shape[1] + 1, dtype=torch.float32)
    precision = hits / ranks
    n_rel = relevant.sum(1).clamp(min=1)
    return (precision * relevant).sum(1) / n_rel


@protocol("retrieval")
def retrieval(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Cosine nearest neighbours of test queries among training images: top-k accuracy and mAP."""
    train_x, train_y = labelled_features(source, spec, spec.train_split)
    test_x, test_y = labelled_features(source, spec, spec.test_split)
    bank = F.normalize(train_x, dim=1)
    queries = F.normalize(test_x, dim=1)
    k = spec.retrieval_k
    topk_hits, aps, first_neighbours = [], [], []
    for start in range(0, queries.shape[0], 256):
        sim = queries[start:start + 256] @ bank.t()
        order = sim.argsort(dim=1, descending=True)
        relevant = train_y[order] == test_y[start:start + 256, None]
        topk_hits.append(relevant[:, :k].float().mean(1))
        aps.append(average_precision(relevant))
        first_neighbours.append(order[:, :k])
    neighbours = torch.cat(first_neighbours)
    png = retrieval_grid(source, spec, neighbours, Path(spec.out) / f"retrieval_{dataset_label(spec.dataset)}.png")
    m_ap = 100.0 * torch.cat(aps).mean().item()
    return {"value": 100.0 * torch.cat(topk_hits).mean().item(), "k": k, "mAP": m_ap, "png": str(png),
            "metric_name": f"precision@{k}: share of the {k} nearest training images of the query's class "
                           f"(mAP {m_ap:.2f})"}
