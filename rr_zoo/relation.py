"""The relation module: pair construction, relation head, focal loss, relation score.

Pure tensor functions. Pair order follows the original repository exactly
(see ``../shared/design/method.md``): for every view pair (i, j) with i < j,
M positives ``a(z_i, z_j)`` then M negatives ``a(z_i, roll(z_j, s))``; the
shift ``s`` starts at 1, grows after every view pair and wraps to 1 at M.
"""

from __future__ import annotations

import contextlib
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


@functools.lru_cache(maxsize=64)
def _pair_indices_on(k: int, m: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """:func:`_pair_indices_cpu` plus how often each feature row is a left / right member, on ``device``.

    Cached per (k, m, device), so that a step on an accelerator copies no index tensor.
    """
    left, right, targets = _pair_indices_cpu(k, m)
    counts_left = torch.bincount(left, minlength=k * m).double()
    counts_right = torch.bincount(right, minlength=k * m).double()
    return tuple(t.to(device) for t in (left, right, targets, counts_left, counts_right))


def pair_indices(k: int, m: int, device: torch.device | str = "cpu"):
    """Indices of every pair, in the original order.

    Args:
        k: Views per image.
        m: Images per mini-batch.
        device: Where to put the index tensors (cached per (k, m, device): do not modify them in place).

    Returns:
        ``(left, right, targets)``: two int64 tensors of length P = m*k*(k-1) indexing rows of
        the (k*m, d) view-major feature matrix, and float targets (1 positive, 0 negative).
    """
    if k < 2 or m < 2:
        raise ValueError(f"relational reasoning needs k >= 2 views and m >= 2 images, got k={k}, m={m}")
    return _pair_indices_on(int(k), int(m), torch.device(device))[:3]


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


# Pairs per chunk of the fused tail: a (chunk, hidden) fp32 block of ~1 MiB, which stays in a CPU core's cache.
FUSED_CHUNK_ELEMENTS = 1 << 18
# The fused tail is used above this many (pair, hidden) activations; below, the unfused tail fits in cache
# and is as fast (K <= 4 at M = 64 with 256 hidden units).
FUSED_MIN_ELEMENTS = 1 << 18


class _PairTail(torch.autograd.Function):
    """Pair logits ``linear2(leaky(bn1(left[l] + right[r] + bias)))`` with batch statistics, fused and chunked.

    The unfused tail writes and reads (P, hidden) tensors about thirty times per step (gathers, adds,
    BatchNorm forward and backward, LeakyReLU, the last linear layer): at K = 32 that is 63,488 × 256
    floats each time, far larger than the cache. Here every pass runs over chunks of pairs that stay in
    cache, and nothing of size (P, hidden) is kept for backward: the forward makes one pass for the
    variance (the mean is exact from per-row pair counts) and one for the logits; the backward one pass
    that recomputes the activations of a chunk and scatters its gradient onto the (k·m, hidden) rows.
    The BatchNorm backward needs, per row, the sum of the centred activations of its pairs; they are
    scattered in the same pass (``h_left``, ``h_right``).

    Same maths as ``bn1`` in training mode: biased variance for the normalisation, unbiased for the
    running estimate; floating-point sums run in another order, so results agree with the unfused tail
    to rounding (``tests/test_fused_head.py`` checks logits, loss, every gradient and the running
    statistics, in float64 to 1e-10 and in float32 against a float64 reference). On 1 CPU thread at
    M = 64 the head + loss + backward ran 3.6x (K = 16) and 5.7x (K = 32) faster than unfused.
    """

    @staticmethod
    def forward(ctx, proj_left, proj_right, bias, gamma, beta, w2, b2, left, right, counts_left, counts_right,
                eps, slope):
        n_pairs, hidden = left.numel(), proj_left.shape[1]
        chunk = max(1, FUSED_CHUNK_ELEMENTS // hidden)
        cl, cr = counts_left.to(proj_left.dtype), counts_right.to(proj_left.dtype)
        # mean over pairs of left[l] + right[r] + bias, from how often each row is used
        mean = (torch.mv(proj_left.t(), cl) + torch.mv(proj_right.t(), cr)) / n_pairs + bias
        centred_left = proj_left + (bias - mean)  # left[l] + right[r] + bias - mean = centred_left[l] + right[r]
        sq = torch.zeros_like(mean)
        for start in range(0, n_pairs, chunk):
            lc, rc = left[start:start + chunk], right[start:start + chunk]
            d = centred_left.index_select(0, lc).add_(proj_right.index_select(0, rc))
            sq += d.square_().sum(0)
        var = sq / n_pairs
        invstd = torch.rsqrt(var + eps)
        scale = gamma * invstd
        logits = proj_left.new_empty(n_pairs)
        w = w2.reshape(-1)
        for start in range(0, n_pairs, chunk):
            lc, rc = left[start:start + chunk], right[start:start + chunk]
            centred = centred_left.index_select(0, lc).add_(proj_right.index_select(0, rc))
            y = torch.nn.functional.leaky_relu_(torch.addcmul(beta, centred, scale), slope)
            torch.mm(y, w[:, None], out=logits[start:start + chunk, None])
        logits += b2
        ctx.mark_non_differentiable(mean, var)
        ctx.save_for_backward(proj_right, centred_left, gamma, beta, invstd, w2, left, right, cl, cr)
        ctx.slope = slope
        return logits, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logits, _grad_mean, _grad_var):
        proj_right, centred_left, gamma, beta, invstd, w2, left, right, cl, cr = ctx.saved_tensors
        n_pairs, hidden = left.numel(), centred_left.shape[1]
        chunk = max(1, FUSED_CHUNK_ELEMENTS // hidden)
        scale = gamma * invstd
        w = w2.reshape(-1)
        g = grad_logits.to(centred_left.dtype).contiguous()
        # per feature row: sums over the pairs it is the left / right member of, of dL/dy and of h - mean
        d_left, d_right, h_left, h_right = (torch.zeros_like(centred_left) for _ in range(4))
        grad_w = torch.zeros_like(w)
        for start in range(0, n_pairs, chunk):
            lc, rc, gc = left[start:start + chunk], right[start:start + chunk], g[start:start + chunk]
            centred = centred_left.index_select(0, lc).add_(proj_right.index_select(0, rc))
            y = torch.addcmul(beta, centred, scale)
            grad_w += torch.mm(torch.nn.functional.leaky_relu(y, ctx.slope).t(), gc[:, None]).view(-1)
            # matrix products where the unfused tail has them, so that FlopCounterMode counts the same FLOPs
            dy = torch.ops.aten.leaky_relu_backward(torch.mm(gc[:, None], w[None, :]), y, ctx.slope, False)
            d_left.index_add_(0, lc, dy)
            d_right.index_add_(0, rc, dy)
            h_left.index_add_(0, lc, centred)
            h_right.index_add_(0, rc, centred)
        # BatchNorm backward, dh = scale * (dy - mean(dy) - xhat * mean(dy * xhat)) with xhat = (h - mean) * invstd,
        # summed over each row's pairs
        grad_beta = d_left.sum(0)
        grad_gamma = invstd * ((d_left * centred_left).sum(0) + (d_right * proj_right).sum(0))
        m_dy, m_dyx = grad_beta / n_pairs, grad_gamma * invstd / n_pairs
        grad_left = scale * (d_left - cl[:, None] * m_dy - m_dyx * h_left)
        grad_right = scale * (d_right - cr[:, None] * m_dy - m_dyx * h_right)
        return (grad_left, grad_right, grad_left.sum(0), grad_gamma, grad_beta, grad_w.view_as(w2), g.sum().view(1),
                None, None, None, None, None, None)


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
        self.fused_tail = True  # forward_views: fused, cache-sized passes over the pairs (see _PairTail)

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
        pair_indices(k, m)  # validates k and m
        left, right, targets, counts_left, counts_right = _pair_indices_on(k, m, features.device)
        w = self.linear1.weight
        if aggregation == "cat":
            proj_left = features @ w[:, :d].t()
            proj_right = features @ w[:, d:].t()
        else:
            scale = 0.5 if aggregation == "mean" else 1.0
            proj_left = proj_right = (features @ w.t()) * scale
        if (self.fused_tail and left.numel() * self.linear1.out_features > FUSED_MIN_ELEMENTS
                and self._can_fuse(features.device)):
            logits = self._fused_tail(proj_left, proj_right, left, right, counts_left, counts_right)
            return logits, targets.to(logits.dtype)
        hidden = proj_left[left] + proj_right[right] + self.linear1.bias
        return self._tail(hidden), targets.to(hidden.dtype)

    def _can_fuse(self, device: torch.device) -> bool:
        """The fused tail covers BatchNorm with batch statistics (training mode), on the CPU (and ``meta``)."""
        bn = self.bn1
        return (device.type in ("cpu", "meta") and bn.affine and (bn.training or bn.running_mean is None)
                and isinstance(self.act, nn.LeakyReLU))

    def _fused_tail(self, proj_left, proj_right, left, right, counts_left, counts_right) -> torch.Tensor:
        """``_tail(proj_left[left] + proj_right[right] + bias)`` through :class:`_PairTail`, BN stats updated as
        ``nn.BatchNorm1d`` does (momentum, or a cumulative average when it is None)."""
        bn = self.bn1
        factor = 0.0
        if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        dtype = self.linear1.bias.dtype  # fp32 under autocast too: the tail is memory-bound, not matmul-bound
        device_type = proj_left.device.type
        no_autocast = (torch.autocast(device_type, enabled=False) if torch.amp.is_autocast_available(device_type)
                       else contextlib.nullcontext())
        with no_autocast:
            logits, mean, var = _PairTail.apply(
                proj_left.to(dtype), proj_right.to(dtype), self.linear1.bias, bn.weight, bn.bias,
                self.linear2.weight, self.linear2.bias, left, right, counts_left, counts_right, bn.eps,
                self.act.negative_slope)
        if bn.training and bn.running_mean is not None:
            n_pairs = left.numel()
            with torch.no_grad():
                bn.running_mean.copy_(factor * mean + (1 - factor) * bn.running_mean)
                unbiased = var * (n_pairs / max(n_pairs - 1, 1))
                bn.running_var.copy_(factor * unbiased + (1 - factor) * bn.running_var)
        return logits


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
