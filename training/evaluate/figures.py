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

    Args:
        source: The evaluated weights (for the title).
        spec: The evaluation (dataset, splits and caps the neighbours were computed on).
        neighbours: (Q, k) indices into the (capped) training subset, one row per (capped) test image.
        path: PNG to write.
        n_queries: Rows of the grid.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend to choose, nothing left open

    train = load_split(spec.dataset, spec.train_split, root=spec.data_root, request=source.data_request())
    test = load_split(spec.dataset, spec.test_split, root=spec.data_root, request=source.data_request())
    # neighbours and queries index the (possibly capped) subsets the features were computed on
    train_at = subset_indices(train.images.shape[0], spec.max_train)
    test_at = subset_indices(test.images.shape[0], spec.max_test)
    gen = torch.Generator().manual_seed(spec.seed)
    queries = torch.randperm(neighbours.shape[0], generator=gen)[:n_queries].tolist()
    k = neighbours.shape[1]
    fig = Figure(figsize=((k + 1) * 0.9, len(queries) * 0.95))
    axes = fig.subplots(len(queries), k + 1, squeeze=False)

    def show(ax, img, label, ok=None):
        arr = img.permute(1, 2, 0).numpy()
        ax.imshow(arr.squeeze(-1) if arr.shape[-1] == 1 else arr, cmap="gray" if arr.shape[-1] == 1 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        if ok is not None:
            for side in ax.spines.values():
                side.set_edgecolor("green" if ok else "red")
                side.set_linewidth(2)
        ax.set_title(label, fontsize=5)

    classes = train.classes
    for row, q in enumerate(queries):
        qy = int(test.labels[test_at[q]])
        show(axes[row, 0], test.images[test_at[q]], f"query: {classes[qy]}")
        for col, j in enumerate(neighbours[q].tolist()):
            y = int(train.labels[train_at[j]])
            show(axes[row, col + 1], train.images[train_at[j]], classes[y], ok=y == qy)
    fig.suptitle(f"{source.label}: top-{k} cosine neighbours (green = same class)", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


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
