"""Figures of the evaluation: the retrieval grid and the t-SNE embedding protocol (PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.data import dataset_label, load_split, subset_indices
from training.evaluate.feature_cache import labelled_features
from training.evaluate.protocols import EvalSpec, protocol
from training.evaluate.source import FeatureSource


def retrieval_grid(source: FeatureSource, spec: EvalSpec, neighbours: torch.Tensor, path: Path,
                   n_queries: int = 8) -> Path:
    """PNG: random test queries (not cherry-picked), each with its nearest training images (green = same class).

    Drawn by :func:`rr_zoo.viz.plot_retrieval`, the one retrieval figure of the project.

    Args:
        source: The evaluated weights (for the title).
        spec: The evaluation (dataset, splits and caps the neighbours were computed on).
        neighbours: (Q, k) indices into the (capped) training subset, one row per (capped) test image.
        path: PNG to write.
        n_queries: Rows of the grid.
    """
    from rr_zoo.viz import ImageSet, plot_retrieval, save_figure

    train = load_split(spec.dataset, spec.train_split, root=spec.data_root, request=source.data_request())
    test = load_split(spec.dataset, spec.test_split, root=spec.data_root, request=source.data_request())
    # neighbours and queries index the (possibly capped) subsets the features were computed on
    train_at = subset_indices(train.images.shape[0], spec.max_train)
    test_at = subset_indices(test.images.shape[0], spec.max_test)
    gen = torch.Generator().manual_seed(spec.seed)
    queries = torch.randperm(neighbours.shape[0], generator=gen)[:n_queries]
    query_set = ImageSet(test.images[test_at[queries]], test.labels[test_at[queries]], list(train.classes))
    gallery = ImageSet(train.images, train.labels, list(train.classes))
    k = neighbours.shape[1]
    fig = plot_retrieval(query_set, gallery, {source.label: train_at[neighbours[queries]]},
                         title=f"{source.label}: top-{k} cosine neighbours (green = same class)")
    return save_figure(fig, path, dpi=130)


@protocol("embedding")
def embedding(source: FeatureSource, spec: EvalSpec, max_points: int = 2000) -> dict[str, Any]:
    """2-D t-SNE of test features coloured by class (PNG)."""
    from matplotlib.figure import Figure
    from sklearn.manifold import TSNE

    feats, labels = labelled_features(source, spec, spec.test_split)
    gen = torch.Generator().manual_seed(spec.seed)
    idx = torch.randperm(feats.shape[0], generator=gen)[:max_points]
    feats, labels = feats[idx], labels[idx]
    perplexity = float(min(30, max(2, (len(idx) - 1) // 3)))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=spec.seed).fit_transform(
        F.normalize(feats, dim=1).numpy())
    classes = load_split(spec.dataset, spec.test_split, root=spec.data_root, request=source.data_request()).classes
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    for c in labels.unique().tolist():
        sel = (labels == c).numpy()
        ax.scatter(xy[sel, 0], xy[sel, 1], s=3, label=classes[c] if c < len(classes) else str(c))
    ax.legend(markerscale=4, fontsize=6, loc="best")
    ax.set_title(f"t-SNE of {spec.dataset} test features: {source.label}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    path = Path(spec.out) / f"tsne_{dataset_label(spec.dataset)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return {"value": None, "points": len(idx), "png": str(path)}
