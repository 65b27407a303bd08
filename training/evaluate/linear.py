"""Linear protocols on frozen, cached features: linear, transfer (another dataset), grain (super-classes)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from rr_zoo.manifest import ZooEntry
from training.data import get_dataset_spec
from training.evaluate.feature_cache import labelled_features
from training.evaluate.protocols import LINEAR_EPOCHS, EvalSpec, protocol
from training.evaluate.source import FeatureSource
from training.pretrain.recipes import require


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


@protocol("linear", epochs=LINEAR_EPOCHS)
def linear(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Frozen backbone, linear classifier, Adam lr 1e-3, batch 128, 100 epochs, test accuracy."""
    train_x, train_y = labelled_features(source, spec, spec.train_split)
    test_x, test_y = labelled_features(source, spec, spec.test_split)
    num_classes = get_dataset_spec(spec.dataset, source.data_request()).num_classes
    epochs = spec.epochs or LINEAR_EPOCHS
    t0 = time.perf_counter()
    clf = train_linear(train_x, train_y, num_classes, epochs, spec.batch_size, spec.lr, spec.seed)
    with torch.no_grad():
        acc = 100.0 * (clf(test_x).argmax(1) == test_y).float().mean().item()
        train_acc = 100.0 * (clf(train_x).argmax(1) == train_y).float().mean().item()
    return {"value": acc, "train_accuracy": train_acc, "epochs": epochs, "n_train": len(train_y),
            "n_test": len(test_y), "classifier_seconds": round(time.perf_counter() - t0, 2),
            "metric_name": f"top-1 test accuracy of a linear classifier on frozen features ({epochs} epochs)"}


def _another_dataset(spec: EvalSpec, entry: ZooEntry) -> None:
    require(spec.dataset.split("_")[0] != entry.dataset.split("_")[0],
            f"transfer needs an evaluation dataset other than the pretraining one ({entry.dataset}); "
            "use --dataset, e.g. cifar100 for a CIFAR-10 entry")


@protocol("transfer", epochs=LINEAR_EPOCHS, check=_another_dataset)
def transfer(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Linear evaluation on a dataset other than the pretraining one (e.g. CIFAR-10 -> CIFAR-100)."""
    return {**linear(source, spec), "pretrained_on": source.entry.dataset}


def _superclasses(spec: EvalSpec, entry: ZooEntry) -> None:
    require(spec.dataset == "cifar100_20",
            f"grain evaluates on cifar100_20 (the 20 CIFAR-100 super-classes), not {spec.dataset}: "
            "leave out --dataset or pass --dataset cifar100_20")


@protocol("grain", epochs=LINEAR_EPOCHS, dataset="cifar100_20", check=_superclasses)
def grain(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Linear evaluation on the 20 CIFAR-100 super-classes."""
    return linear(source, spec)
