"""Evaluation protocols of the paper, on cached features where the backbone is frozen.

Protocols register themselves in ``PROTOCOLS``; each returns a result dict
(``value`` in %, plus details) and may write PNGs into the output folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.checkpoint import atomic_save
from training.data import get_dataset_spec, load_split, subset_indices
from training.evaluate.source import Backbone
from training.features import extract_features, knn_accuracy

PROTOCOLS: dict[str, Callable[[Backbone, EvalSpec], dict[str, Any]]] = {}


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate on and how (defaults: the paper's protocols)."""

    dataset: str                          # evaluation dataset (registry key)
    out: str = "runs/eval"                # folder for JSON/PNG outputs
    data_root: str | None = None
    seed: int = 0
    train_split: str = "train"
    test_split: str = "test"
    epochs: int | None = None             # linear: 100, finetune: 20
    batch_size: int = 128                 # images (or feature rows) per step
    lr: float = 1e-3                      # linear / finetune backbone learning rate
    head_lr: float = 1e-4                 # finetune: classifier learning rate
    weight_decay: float = 1e-5            # finetune
    knn_k: int = 20
    knn_temperature: float = 0.07
    retrieval_k: int = 10
    label_fractions: tuple[float, ...] = (0.01, 0.1, 0.25, 0.5, 1.0)
    max_train: int | None = None          # cap training images (quick runs / tests)
    max_test: int | None = None
    device: str = "cpu"
    cache_dir: str | None = None
    extra: dict = field(default_factory=dict)


def protocol(name: str):
    """Register an evaluation protocol under ``name``."""

    def decorator(fn):
        PROTOCOLS[name] = fn
        return fn

    return decorator


def run_protocol(name: str, backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Run one protocol; unknown names list the valid ones."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    t0 = time.perf_counter()
    result = PROTOCOLS[name](backbone, spec)
    result.update(protocol=name, dataset=spec.dataset, source=backbone.label, seed=spec.seed,
                  seconds=round(time.perf_counter() - t0, 2))
    return result


# ----------------------------------------------------------------------------- cached features
def _cache_root(spec: EvalSpec) -> Path:
    return Path(spec.cache_dir or os.environ.get("RR_CACHE_DIR") or Path.home() / ".cache" / "rr_zoo") / "features"


def cached_features(backbone: Backbone, spec: EvalSpec, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a split, computed once and cached on disk.

    The cache key is the weights digest + dataset + split + subset size + preprocessing.
    """
    data = load_split(spec.dataset, split, root=spec.data_root)
    cap = spec.max_train if split == spec.train_split else spec.max_test
    sl = subset_indices(data.images.shape[0], cap)
    key = json.dumps([backbone.digest, spec.dataset, split, len(sl), "subset-v2", backbone.mean, backbone.std,
                      tuple(data.images.shape[1:])])
    path = _cache_root(spec) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        return cached["features"], cached["labels"]
    images = data.images[sl]
    if images.shape[1] != backbone.entry.in_chans:
        raise ValueError(f"{spec.dataset} has {images.shape[1]}-channel images but {backbone.entry.name} "
                         f"expects {backbone.entry.in_chans}")
    feats = extract_features(backbone.model, images, backbone.mean, backbone.std, device=spec.device)
    labels = data.labels[sl].clone()
    atomic_save({"features": feats, "labels": labels, "key": key}, path)
    return feats, labels


def _labelled(feats: torch.Tensor, labels: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    keep = labels >= 0
    if not keep.any():
        raise ValueError(f"{what} has no labels; pick a labelled split")
    return feats[keep], labels[keep]


# ----------------------------------------------------------------------------- linear / knn
def train_linear(train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, epochs: int, batch_size: int,
                 lr: float, seed: int, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> torch.nn.Linear:
    """Linear classifier trained with Adam on fixed features (the paper's linear protocol).

    Same initialisation, batches and updates as ``nn.Linear`` + ``F.cross_entropy`` +
    ``torch.optim.Adam`` (a test checks it against them), but with the softmax
    cross-entropy gradient and the Adam step written out in place: tens of
    thousands of tiny steps are dominated by per-op overhead, and this runs them
    several times faster than autograd + the optimiser.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    clf = torch.nn.Linear(train_x.shape[1], num_classes)
    # one (C, D+1) parameter: weight and bias side by side, the features get a column of ones
    theta = torch.cat([clf.weight.detach(), clf.bias.detach()[:, None]], 1).contiguous()
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    x1 = torch.cat([train_x.float(), torch.ones(train_x.shape[0], 1)], 1)
    onehot = F.one_hot(train_y, num_classes).float()
    (b1, b2), n, step = betas, x1.shape[0], 0
    with torch.no_grad():
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            xs, ys = x1[perm], onehot[perm]
            for start in range(0, n, batch_size):
                xb, yb = xs[start:start + batch_size], ys[start:start + batch_size]
                grad = torch.softmax(xb @ theta.t(), dim=1).sub_(yb).t().mm(xb).div_(xb.shape[0])
                step += 1
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                denom = v.sqrt().div_(math.sqrt(1 - b2 ** step)).add_(eps)
                theta.addcdiv_(m, denom, value=-lr / (1 - b1 ** step))
        clf.weight.copy_(theta[:, :-1])
        clf.bias.copy_(theta[:, -1])
    return clf


@protocol("linear")
def linear(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Frozen backbone, linear classifier, Adam lr 1e-3, batch 128, 100 epochs, test accuracy."""
    train_x, train_y = _labelled(*cached_features(backbone, spec, spec.train_split), spec.train_split)
    test_x, test_y = _labelled(*cached_features(backbone, spec, spec.test_split), spec.test_split)
    num_classes = get_dataset_spec(spec.dataset).num_classes
    epochs = spec.epochs or 100
    t0 = time.perf_counter()
    clf = train_linear(train_x, train_y, num_classes, epochs, spec.batch_size, spec.lr, spec.seed)
    with torch.no_grad():
        acc = 100.0 * (clf(test_x).argmax(1) == test_y).float().mean().item()
        train_acc = 100.0 * (clf(train_x).argmax(1) == train_y).float().mean().item()
    return {"value": acc, "train_accuracy": train_acc, "epochs": epochs, "n_train": len(train_y),
            "n_test": len(test_y), "classifier_seconds": round(time.perf_counter() - t0, 2),
            "metric_name": f"top-1 test accuracy of a linear classifier on frozen features ({epochs} epochs)"}


@protocol("knn")
def knn(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Weighted cosine k-NN (k=20, temperature 0.07) on the same cached features."""
    train_x, train_y = _labelled(*cached_features(backbone, spec, spec.train_split), spec.train_split)
    test_x, test_y = _labelled(*cached_features(backbone, spec, spec.test_split), spec.test_split)
    acc = knn_accuracy(train_x, train_y, test_x, test_y, k=spec.knn_k, temperature=spec.knn_temperature)
    return {"value": acc, "k": spec.knn_k, "temperature": spec.knn_temperature,
            "metric_name": f"weighted cosine {spec.knn_k}-NN accuracy (temperature {spec.knn_temperature})"}


@protocol("transfer")
def transfer(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Linear evaluation on a dataset other than the pretraining one (e.g. CIFAR-10 -> CIFAR-100)."""
    pretrained_on = backbone.entry.dataset
    if spec.dataset.split("_")[0] == pretrained_on.split("_")[0]:
        raise ValueError(f"transfer needs an evaluation dataset other than the pretraining one ({pretrained_on}); "
                         "use --dataset, e.g. cifar100 for a CIFAR-10 entry")
    return {**linear(backbone, spec), "pretrained_on": pretrained_on}


@protocol("grain")
def grain(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Linear evaluation on the 20 CIFAR-100 super-classes."""
    if spec.dataset != "cifar100_20":
        raise ValueError("grain evaluates on cifar100_20: pass --dataset cifar100_20")
    return linear(backbone, spec)


# ----------------------------------------------------------------------------- retrieval / embedding
def _average_precision(relevant: torch.Tensor) -> torch.Tensor:
    """AP of each row of a (Q, N) boolean relevance matrix ranked left to right."""
    hits = relevant.float().cumsum(1)
    ranks = torch.arange(1, relevant.shape[1] + 1, dtype=torch.float32)
    precision = hits / ranks
    n_rel = relevant.sum(1).clamp(min=1)
    return (precision * relevant).sum(1) / n_rel


@protocol("retrieval")
def retrieval(backbone: Backbone, spec: EvalSpec) -> dict[str, Any]:
    """Cosine nearest neighbours of test queries among training images: top-k accuracy and mAP."""
    train_x, train_y = _labelled(*cached_features(backbone, spec, spec.train_split), spec.train_split)
    test_x, test_y = _labelled(*cached_features(backbone, spec, spec.test_split), spec.test_split)
    bank = F.normalize(train_x, dim=1)
    queries = F.normalize(test_x, dim=1)
    k = spec.retrieval_k
    topk_hits, aps, first_neighbours = [], [], []
    for start in range(0, queries.shape[0], 256):
        sim = queries[start:start + 256] @ bank.t()
        order = sim.argsort(dim=1, descending=True)
        relevant = train_y[order] == test_y[start:start + 256, None]
        topk_hits.append(relevant[:, :k].float().mean(1))
        aps.append(_average_precision(relevant))
        first_neighbours.append(order[:, :k])
    neighbours = torch.cat(first_neighbours)
    out = Path(spec.out)
    png = _retrieval_grid(backbone, spec, neighbours, out / f"retrieval_{spec.dataset}.png")
    m_ap = 100.0 * torch.cat(aps).mean().item()
    return {"value": 100.0 * torch.cat(topk_hits).mean().item(), "k": k, "mAP": m_ap, "png": str(png),
            "metric_name": f"precision@{k}: share of the {k} nearest training images of the query's class "
                           f"(mAP {m_ap:.2f})"}


def _retrieval_grid(backbone: Backbone, spec: EvalSpec, neighbours: torch.Tensor, path: Path,
                    n_queries: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = load_split(spec.dataset, spec.train_split, root=spec.data_root)
    test = load_split(spec.dataset, spec.test_split, root=spec.data_root)
    # neighbours and queries index the (possibly capped) subsets the features were computed on
    train_at = subset_indices(train.images.shape[0], spec.max_train)
    test_at = subset_indices(test.images.shape[0], spec.max_test)
    gen = torch.Generator().manual_seed(spec.seed)
    queries = torch.randperm(neighbours.shape[0], generator=gen)[:n_queries].tolist()  # not cherry-picked
    k = neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=((k + 1) * 0.9, len(queries) * 0.95))

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
    fig.suptitle(f"{backbone.label}: top-{k} cosine neighbours (green = same class)", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


@protocol("embedding")
def embedding(backbone: Backbone, spec: EvalSpec, max_points: int = 2000) -> dict[str, Any]:
    """2-D t-SNE of test features coloured by class (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    feats, labels = _labelled(*cached_features(backbone, spec, spec.test_split), spec.test_split)
    gen = torch.Generator().manual_seed(spec.seed)
    idx = torch.randperm(feats.shape[0], generator=gen)[:max_points]
    feats, labels = feats[idx], labels[idx]
    perplexity = float(min(30, max(2, (len(idx) - 1) // 3)))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=spec.seed).fit_transform(
        F.normalize(feats, dim=1).numpy())
    classes = load_split(spec.dataset, spec.test_split, root=spec.data_root).classes
    fig, ax = plt.subplots(figsize=(6, 6))
    for c in labels.unique().tolist():
        sel = (labels == c).numpy()
        ax.scatter(xy[sel, 0], xy[sel, 1], s=3, label=classes[c] if c < len(classes) else str(c))
    ax.legend(markerscale=4, fontsize=6, loc="best")
    ax.set_title(f"t-SNE of {spec.dataset} test features: {backbone.label}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    path = Path(spec.out) / f"tsne_{spec.dataset}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {"value": None, "points": len(idx), "png": str(path)}
