"""Pair construction, relation head and focal loss against slow, obviously-correct references."""

from __future__ import annotations

import math

import pytest
import torch

from rr_zoo.models import build_backbone
from rr_zoo.relation import AGGREGATIONS, RelationHead, focal_loss, make_pairs, relation_score

AGG = {"cat": lambda a, b: torch.cat([a, b], 0), "sum": lambda a, b: a + b, "mean": lambda a, b: (a + b) / 2,
       "max": lambda a, b: torch.max(a, b)}


def reference_pairs(features: torch.Tensor, k: int, aggregation: str):
    """The method written as loops: view pairs i<j, positives then negatives rolled by a shift."""
    m = features.shape[0] // k
    views = [features[v * m:(v + 1) * m] for v in range(k)]
    pairs, targets, shift = [], [], 1
    for i in range(k):
        for j in range(i + 1, k):
            rolled = torch.roll(views[j], shifts=shift, dims=0)
            for r in range(m):
                pairs.append(AGG[aggregation](views[i][r], views[j][r]))
                targets.append(1.0)
            for r in range(m):
                pairs.append(AGG[aggregation](views[i][r], rolled[r]))
                targets.append(0.0)
            shift += 1
            if shift >= m:
                shift = 1
    return torch.stack(pairs), torch.tensor(targets)


def reference_focal(logits, targets, gamma, alpha):
    out = []
    for z, t in zip(logits.tolist(), targets.tolist()):
        p = 1 / (1 + math.exp(-z))
        bce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
        p_t = p if t == 1 else 1 - p
        w = 1.0 if alpha is None else (alpha if t == 1 else 1 - alpha)
        out.append(w * (1 - p_t) ** gamma * bce)
    return sum(out) / len(out)


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
@pytest.mark.parametrize("k,m", [(2, 2), (2, 5), (3, 4), (4, 3), (5, 7), (8, 4)])
def test_make_pairs_matches_reference_loop(aggregation, k, m):
    features = torch.randn(k * m, 6, dtype=torch.float64)
    pairs, targets = make_pairs(features, k, aggregation)
    ref_pairs, ref_targets = reference_pairs(features, k, aggregation)
    assert pairs.shape == ref_pairs.shape
    assert pairs.shape[0] == m * k * (k - 1)
    torch.testing.assert_close(pairs, ref_pairs, atol=1e-6, rtol=0)
    torch.testing.assert_close(targets, ref_targets.to(targets.dtype))
    assert targets.mean().item() == 0.5


def test_no_negative_pairs_an_image_with_itself():
    k, m = 6, 4
    ids = torch.arange(m, dtype=torch.float64).repeat(k)[:, None]  # feature = image id
    pairs, targets = make_pairs(ids, k, "cat")
    same = pairs[:, 0] == pairs[:, 1]
    assert torch.equal(same, targets.bool())


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.5), (0.0, None), (1.0, 0.25), (3.0, 0.9)])
def test_focal_loss_matches_reference(gamma, alpha):
    torch.manual_seed(0)
    logits = torch.randn(50, dtype=torch.float64) * 3
    targets = (torch.rand(50) > 0.5).double()
    got = focal_loss(logits, targets, gamma, alpha).item()
    assert abs(got - reference_focal(logits, targets, gamma, alpha)) < 1e-6


def test_focal_loss_bce_special_case():
    logits, targets = torch.randn(20), (torch.rand(20) > 0.5).float()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0, alpha=None), expected)


@pytest.mark.parametrize("bad", [dict(gamma=-1.0), dict(alpha=1.5)])
def test_focal_loss_rejects_bad_constants(bad):
    with pytest.raises(ValueError):
        focal_loss(torch.zeros(2), torch.ones(2), **bad)


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
@pytest.mark.parametrize("k,m", [(2, 3), (4, 5), (7, 2)])
def test_forward_views_equals_head_on_explicit_pairs(aggregation, k, m):
    torch.manual_seed(1)
    d = 8
    head = RelationHead(2 * d if aggregation == "cat" else d, hidden=16).double()
    features = torch.randn(k * m, d, dtype=torch.float64)
    pairs, targets = make_pairs(features, k, aggregation)
    logits, t2 = head.forward_views(features, k, aggregation)
    torch.testing.assert_close(logits, head(pairs), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(t2, targets)


def test_relation_head_keys_match_original():
    keys = set(RelationHead(128).state_dict())
    assert keys == {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "bn1.weight", "bn1.bias",
                    "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"}
    assert RelationHead(128).linear1.out_features == 256


def test_make_pairs_rejects_bad_shapes():
    with pytest.raises(ValueError, match="view-major"):
        make_pairs(torch.randn(7, 4), 2)
    with pytest.raises(ValueError, match="aggregation"):
        make_pairs(torch.randn(8, 4), 2, "prod")


def test_relation_loss_goes_down():
    """A few Adam steps of backbone + head on fixed views lower the focal loss."""
    torch.manual_seed(0)
    k, m = 4, 8
    backbone = build_backbone("conv4")
    head = RelationHead(128)
    opt = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=1e-3)
    base = torch.randn(m, 3, 16, 16)
    views = torch.cat([base + 0.3 * torch.randn_like(base) for _ in range(k)])
    losses = []
    for _ in range(30):
        opt.zero_grad()
        logits, targets = head.forward_views(backbone(views), k)
        loss = focal_loss(logits, targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_relation_score_is_a_symmetric_probability():
    torch.manual_seed(0)
    backbone, head = build_backbone("conv4"), RelationHead(128)
    a, b = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    s_ab = relation_score(backbone, head, a, b)
    s_ba = relation_score(backbone, head, b, a)
    assert s_ab.shape == (4,) and torch.all((s_ab >= 0) & (s_ab <= 1))
    torch.testing.assert_close(s_ab, s_ba)
    assert backbone.training and head.training  # modes restored
