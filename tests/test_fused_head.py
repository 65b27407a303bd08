"""Speed changes that must not change the computation: fused relation-head tail, hue rewrite, jitter batching.

The fused tail (``rr_zoo.relation._PairTail``, ``RelationHead.fused_tail``) is checked against the
unfused one (``fused_tail = False``: gather, ``nn.BatchNorm1d``, LeakyReLU, ``nn.Linear``): in float64
both must agree to ~1e-10 (same maths); in float32 both are compared with a float64 run of the
unfused tail and the fused one must be as close to it as fp32 rounding allows.
"""

from __future__ import annotations

import copy

import pytest
import torch

import rr_zoo.relation as relation
from rr_zoo.relation import RelationHead, focal_loss, make_pairs
from training.runtime.allocator import keep_freed_memory


@pytest.fixture(autouse=True)
def _always_fuse(monkeypatch):
    """Use the fused tail at every size here (by default it starts above ``FUSED_MIN_ELEMENTS``)."""
    monkeypatch.setattr(relation, "FUSED_MIN_ELEMENTS", 0)


def _random_head(in_features: int, hidden: int, dtype, seed: int = 0) -> RelationHead:
    torch.manual_seed(seed)
    head = RelationHead(in_features, hidden=hidden).to(dtype)
    with torch.no_grad():  # BN affine and running statistics away from their defaults
        head.bn1.weight.uniform_(-1.0, 2.0)
        head.bn1.bias.normal_()
        head.bn1.running_mean.normal_()
        head.bn1.running_var.uniform_(0.5, 2.0)
    return head


def _step(head: RelationHead, features: torch.Tensor, k: int, aggregation: str, fused: bool, dtype=None):
    """Logits, loss, gradients (features and every parameter) and buffers after one forward + backward."""
    head = copy.deepcopy(head)
    if dtype is not None:
        head = head.to(dtype)
        features = features.to(dtype)
    head.fused_tail = fused
    x = features.detach().clone().requires_grad_()
    logits, targets = head.forward_views(x, k, aggregation)
    loss = focal_loss(logits, targets)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach(), "features.grad": x.grad}
    out.update({f"{n}.grad": p.grad for n, p in head.named_parameters()})
    out.update({n: b.clone() for n, b in head.named_buffers()})
    return out


@pytest.mark.parametrize("aggregation,k,m,chunk", [
    ("cat", 2, 3, 1 << 18), ("cat", 4, 5, 16 * 7), ("cat", 7, 2, 16), ("sum", 3, 4, 16 * 5), ("mean", 5, 3, 16 * 11)])
def test_fused_tail_equals_unfused_in_float64(monkeypatch, aggregation, k, m, chunk):
    """Same maths: logits, loss, all gradients and the running statistics agree to float64 rounding.

    Small chunks (``FUSED_CHUNK_ELEMENTS``) make several passes with a ragged last chunk.
    """
    monkeypatch.setattr(relation, "FUSED_CHUNK_ELEMENTS", chunk)
    d = 6
    head = _random_head(2 * d if aggregation == "cat" else d, 16, torch.float64)
    features = torch.randn(k * m, d, dtype=torch.float64) + 2.0
    fused = _step(head, features, k, aggregation, fused=True)
    plain = _step(head, features, k, aggregation, fused=False)
    assert fused.keys() == plain.keys()
    for key in plain:
        torch.testing.assert_close(fused[key], plain[key], atol=1e-10, rtol=1e-9, msg=lambda s, key=key: f"{key}: {s}")
    assert int(fused["bn1.num_batches_tracked"]) == 1


def test_fused_tail_float32_is_as_close_to_float64_as_unfused():
    """Realistic width (d 64, hidden 256): fp32 fused vs a float64 reference, error relative to each scale."""
    k, m, d = 6, 16, 64
    head = _random_head(2 * d, 256, torch.float32)
    features = torch.randn(k * m, d) + 3.0
    ref = _step(head, features, k, "cat", fused=False, dtype=torch.float64)
    fused = _step(head, features, k, "cat", fused=True)
    plain = _step(head, features, k, "cat", fused=False)
    for key, r in ref.items():
        if key in ("linear1.bias.grad", "bn1.num_batches_tracked"):
            continue
        scale = r.abs().max().double().clamp_min(1e-30)
        err_fused = ((fused[key].double() - r).abs().max() / scale).item()
        err_plain = ((plain[key].double() - r).abs().max() / scale).item()
        assert err_fused < max(1e-4, 2 * err_plain), (key, err_fused, err_plain)
    # linear1's bias is followed by BatchNorm: its gradient is zero up to rounding in every version
    weight_scale = ref["linear1.weight.grad"].abs().max()
    assert fused["linear1.bias.grad"].abs().max() < 1e-4 * weight_scale
    assert int(fused["bn1.num_batches_tracked"]) == int(plain["bn1.num_batches_tracked"]) == 1


def test_fused_tail_momentum_none_eval_and_autocast():
    """Cumulative BN average (momentum None) as nn.BatchNorm1d; eval mode uses the unfused tail; bf16 autocast runs."""
    k, m, d = 3, 4, 5
    head = _random_head(2 * d, 8, torch.float64)
    head.bn1.momentum = None
    features = torch.randn(k * m, d, dtype=torch.float64)
    fused, plain = _step(head, features, k, "cat", True), _step(head, features, k, "cat", False)
    for key in ("bn1.running_mean", "bn1.running_var", "logits", "features.grad"):
        torch.testing.assert_close(fused[key], plain[key], atol=1e-10, rtol=1e-9)
    head.eval()
    pairs, _ = make_pairs(features, k, "cat")
    torch.testing.assert_close(head.forward_views(features, k, "cat")[0], head(pairs))
    head = _random_head(2 * d, 8, torch.float32).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = head.forward_views(torch.randn(k * m, d), k, "cat")
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_fused_tail_runs_on_meta_tensors():
    """The dry-run estimate counts FLOPs on ``meta`` tensors: the fused tail must run there too."""
    with torch.device("meta"):
        head = RelationHead(16, hidden=8)
        features = torch.randn(3 * 4, 8, requires_grad=True)
    logits, targets = head.forward_views(features, 3, "cat")
    focal_loss(logits, targets).backward()
    assert logits.shape == (3 * 4 * 2,) and features.grad.shape == features.shape


def test_fused_tail_counts_the_same_flops_as_unfused():
    """``pretrain --dry-run`` scales FLOPs counted at a tiny K (unfused there) to the recipe's K (fused)."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for fused in (True, False):
        head = _random_head(16, 32, torch.float32)
        head.fused_tail = fused
        features = torch.randn(5 * 4, 8, requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            logits, targets = head.forward_views(features, 5, "cat")
            focal_loss(logits, targets).backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1]


def test_keep_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() is first


# ----------------------------------------------------------------------------- hue
def reference_adjust_hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """The hue rotation as written before (torchvision's formulation: masked sums, a (N, 6, 3, H, W) table)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_div = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_div, (maxc - g) / cr_div, (maxc - b) / cr_div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    h = torch.remainder(h + factor.view(-1, 1, 1), 1.0)
    v = maxc
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    table = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                     (v, p, q))], 1)
    return table.gather(1, i[:, None, None].expand(-1, 1, 3, -1, -1)).squeeze(1)


def test_hue_equals_previous_implementation_bit_for_bit():
    """Quantised values (channel ties), grays, black, white and factors at the ends of the range."""
    from training.pretrain.augment import adjust_hue

    gen = torch.Generator().manual_seed(0)
    for levels in (4, 255, None):
        x = torch.rand(48, 3, 8, 8, generator=gen)
        if levels:
            x = (x * levels).round() / levels
        x[:4] = x[:4, :1]  # gray pixels: max == min
        x[4, :, :2], x[5, :, :2] = 0.0, 1.0
        factor = torch.rand(48, generator=gen) * 1.0 - 0.5
        factor[:3] = torch.tensor([0.0, -0.5, 0.5])
        got, ref = adjust_hue(x, factor), reference_adjust_hue(x, factor)
        assert torch.equal(got.view(torch.int32), ref.view(torch.int32))


# ----------------------------------------------------------------------------- colour jitter
def reference_color_jitter(x: torch.Tensor, apply: torch.Tensor, cfg, gen=None) -> torch.Tensor:
    """ColorJitter as written before: per stage and op, gather the views (``x[idx]``) and scatter them back."""
    from training.pretrain.augment import JITTER_OPS, _uniform

    n = x.shape[0]
    b, c, s, h = cfg.jitter
    factors = torch.stack([_uniform(n, max(0.0, 1 - b), 1 + b, gen, x.device),
                           _uniform(n, max(0.0, 1 - c), 1 + c, gen, x.device),
                           _uniform(n, max(0.0, 1 - s), 1 + s, gen, x.device), _uniform(n, -h, h, gen, x.device)], 1)
    order = torch.rand(n, 4, generator=gen, device=x.device).argsort(1)
    for stage in range(4):
        for op_index, op in enumerate(JITTER_OPS):
            idx = (apply & (order[:, stage] == op_index)).nonzero().squeeze(1)
            if idx.numel():
                x[idx] = op(x[idx], factors[idx, op_index])
    return x


@pytest.mark.parametrize("p_apply", [0.0, 0.8, 1.0])
def test_color_jitter_equals_previous_implementation_bit_for_bit(p_apply):
    from training.pretrain.augment import AugmentConfig, color_jitter

    cfg = AugmentConfig(8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.rand(96, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    apply = torch.rand(96, generator=torch.Generator().manual_seed(2)) < p_apply
    got = color_jitter(x.clone(), apply, cfg, torch.Generator().manual_seed(3))
    ref = reference_color_jitter(x.clone(), apply, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(got.view(torch.int32), ref.view(torch.int32))
