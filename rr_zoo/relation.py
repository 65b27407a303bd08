"""The relation module: pair construction, relation head, focal loss, relation score.

Pure tensor functions. Pair order follows the original repository exactly
(see ``../shared/design/method.md``): for every view pair (i, j) with i < j,
M positives ``a(z_i, z_j)`` then M negatives ``a(z_i, roll(z_j, s))``; the
shift ``s`` starts at 1, grows after every view pair and wraps to 1 at M.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

AGGREGATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cat": lambda a, b: torch.cat([a, b], dim=1),
    "sum": lambda a, b: a + b,
    "mean": lambda a, b: (a + b) / 2,
    "max": torch.maximum,
}


def check_aggregation(aggregation: str) -> None:
    """Raise ValueError naming the valid choices if ``aggregation`` is unknown."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {sorted(AGGREGATIONS)}")


def relation_input_features(num_features: int, aggregation: str) -> int:
    """Width of an aggregated pair: 2d for ``cat``, d otherwise."""
    check_aggregation(aggregation)
    return 2 * num_features if aggregation == "cat" else num_features


@functools.lru_cache(maxsize=64)
def _pair_indices_cpu(k: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices (left, right) into view-major features, and targets, in original order."""
    i, j = torch.triu_indices(k, k, offset=1)  # row-major: (0,1), (0,2), ..., (k-2,k-1)
    n_pairs = i.numel()
    # shift after p view pairs: 1 + (p mod (m - 1)), never 0 (for m == 1 there are no negatives to roll)
    shifts = 1 + torch.arange(n_pairs) % max(m - 1, 1)
    r = torch.arange(m)
    left = (i[:, None] * m + r).repeat_interleave(2, dim=0)  # (2*n_pairs, m)
    right_pos = j[:, None] * m + r
    # torch.roll(z, s)[r] == z[(r - s) mod m]
    right_neg = j[:, None] * m + (r[None, :] - shifts[:, None]) % m
    right = torch.stack([right_pos, right_neg], dim=1).reshape(2 * n_pairs, m)
    targets = torch.tensor([1.0, 0.0]).repeat(n_pairs)[:, None].expand(-1, m)
    return left.reshape(-1), right.reshape(-1), targets.reshape(-1).contiguous()


def pair_indices(k: int, m: int, device: torch.device | str = "cpu"):
    """Indices of every pair, in the original order.

    Args:
        k: Views per image.
        m: Images per mini-batch.
        device: Where to put the index tensors.

    Returns:
        ``(left, right, targets)``: two int64 tensors of length P = m*k*(k-1) indexing rows of
        the (k*m, d) view-major feature matrix, and float targets (1 positive, 0 negative).
    """
    if k < 2 or m < 2:
        raise ValueError(f"relational reasoning needs k >= 2 views and m >= 2 images, got k={k}, m={m}")
    left, right, targets = _pair_indices_cpu(int(k), int(m))
    device = torch.device(device)
    return left.to(device), right.to(device), targets.to(device)


def _split_views(features: torch.Tensor, k: int) -> int:
    if features.ndim != 2:
        raise ValueError(f"features must be (k*m, d), got shape {tuple(features.shape)}")
    if k < 2 or features.shape[0] % k:
        raise ValueError(
            f"features has {features.shape[0]} rows, which is not k={k} views of m images "
            "(rows must be view-major: [view 0 of all m, view 1 of all m, ...])"
        )
    return features.shape[0] // k


def make_pairs(features: torch.Tensor, k: int, aggregation: str = "cat") -> tuple[torch.Tensor, torch.Tensor]:
    """Build all positive and negative aggregated pairs of a view-major batch.

    Args:
        features: (k*m, d) backbone features; rows [v*m, (v+1)*m) hold view v of all images.
        k: Number of views per image.
        aggregation: ``"cat"``, ``"sum"``, ``"mean"`` or ``"max"``.

    Returns:
        ``(pairs, targets)``: (P, 2d or d) aggregated pairs and (P,) float targets,
        P = m*k*(k-1), in the original repository's order.
    """
    check_aggregation(aggregation)
    m = _split_views(features, k)
    left, right, targets = pair_indices(k, m, features.device)
    pairs = AGGREGATIONS[aggregation](features[left], features[right])
    return pairs, targets.to(features.dtype)


class RelationHead(nn.Module):
    """MLP scoring an aggregated pair: Linear -> BN -> LeakyReLU(0.01) -> Linear(1).

    Key names match the original (``linear1``, ``bn1``, ``linear2``).

    Args:
        in_features: Width of an aggregated pair (2d for ``cat``).
        hidden: Hidden units (256 in the paper).
    """

    def __init__(self, in_features: int, hidden: int = 256) -> None:
        super().__init__()
        self.in_features = in_features
        self.linear1 = nn.Linear(in_features, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act = nn.LeakyReLU(0.01)
        self.linear2 = nn.Linear(hidden, 1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """Return one logit per aggregated pair, shape (P,)."""
        if pairs.ndim != 2 or pairs.shape[1] != self.in_features:
            raise ValueError(
                f"RelationHead expects (P, {self.in_features}) aggregated pairs, got {tuple(pairs.shape)}"
            )
        return self._tail(self.linear1(pairs))

    def _tail(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.act(self.bn1(hidden))).squeeze(1)

    def forward_views(
        self, features: torch.Tensor, k: int, aggregation: str = "cat"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of every pair of a view-major batch, without materialising the pairs.

        For ``cat``, ``sum`` and ``mean`` the first linear layer is applied once per
        view (``W [a; b] = W_a a + W_b b``) and the results gathered per pair, which
        is mathematically identical to ``self(make_pairs(...)[0])`` but k*(k-1)/2·2/k
        times cheaper in that layer. ``max`` falls back to explicit pairs.

        Args:
            features: (k*m, d) view-major backbone features.
            k: Views per image.
            aggregation: Aggregation function name.

        Returns:
            ``(logits, targets)``, both (P,), in :func:`make_pairs` order.
        """
        check_aggregation(aggregation)
        if aggregation == "max":
            pairs, targets = make_pairs(features, k, aggregation)
            return self(pairs), targets
        m = _split_views(features, k)
        d = features.shape[1]
        if relation_input_features(d, aggregation) != self.in_features:
            raise ValueError(
                f"RelationHead has in_features={self.in_features}, but {aggregation!r} pairs of "
                f"{d}-d features have {relation_input_features(d, aggregation)}"
            )
        left, right, targets = pair_indices(k, m, features.device)
        w = self.linear1.weight
        if aggregation == "cat":
            proj_left = features @ w[:, :d].t()
            proj_right = features @ w[:, d:].t()
        else:
            scale = 0.5 if aggregation == "mean" else 1.0
            proj_left = proj_right = (features @ w.t()) * scale
        hidden = proj_left[left] + proj_right[right] + self.linear1.bias
        return self._tail(hidden), targets.to(hidden.dtype)


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float | None = 0.5
) -> torch.Tensor:
    """Sigmoid focal loss, mean over pairs.

    ``mean(alpha_t * (1 - p_t)**gamma * BCEWithLogits(logits, targets))`` with
    ``alpha_t = alpha`` for positives and ``1 - alpha`` for negatives. ``gamma=0,
    alpha=None`` is plain binary cross-entropy.

    Args:
        logits: (P,) raw relation scores.
        targets: (P,) 1 for positives, 0 for negatives.
        gamma: Focusing exponent (>= 0).
        alpha: Weight of positives in [0, 1], or None for no class weighting.

    Returns:
        Scalar loss.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    logits = logits.float()
    targets = targets.float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    loss = bce
    if gamma:
        p = torch.sigmoid(logits)
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = loss * (1 - p_t).pow(gamma)
    if alpha is not None:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss.mean()


@torch.no_grad()
def relation_score(
    backbone: nn.Module,
    head: RelationHead,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    aggregation: str = "cat",
    symmetric: bool = True,
) -> torch.Tensor:
    """Probability that ``images_a[n]`` and ``images_b[n]`` show the same object.

    Uses the relation head learnt during pretraining: a use is near-duplicate
    detection (e.g. scores above 0.5 flag two crops or edits of one photo).
    Both modules are run in eval mode (BatchNorm uses running statistics).

    Args:
        backbone: Feature extractor returning (N, d) features (``num_classes=0``).
        head: The matching :class:`RelationHead`.
        images_a: (N, C, H, W) normalised images.
        images_b: (N, C, H, W) normalised images, paired row by row with ``images_a``.
        aggregation: The aggregation the head was trained with.
        symmetric: For ``cat``, average the scores of both argument orders so that
            ``score(a, b) == score(b, a)``.

    Returns:
        (N,) probabilities in [0, 1].
    """
    check_aggregation(aggregation)
    if images_a.shape != images_b.shape:
        raise ValueError(f"images_a {tuple(images_a.shape)} and images_b {tuple(images_b.shape)} differ")
    was_training = backbone.training, head.training
    backbone.eval()
    head.eval()
    try:
        z_a, z_b = backbone(images_a), backbone(images_b)
        agg = AGGREGATIONS[aggregation]
        score = torch.sigmoid(head(agg(z_a, z_b)))
        if symmetric and aggregation == "cat":
            score = (score + torch.sigmoid(head(agg(z_b, z_a)))) / 2
    finally:
        backbone.train(was_training[0])
        head.train(was_training[1])
    return score
