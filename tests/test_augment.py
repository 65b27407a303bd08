"""Batched views follow the paper's torchvision pipeline: op-by-op equality and distribution statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from scipy import stats

from training.pretrain.augment import (
    AugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_boxes,
    make_views,
    normalize,
    resized_crops,
)

MEAN, STD = (0.491, 0.482, 0.447), (0.247, 0.243, 0.262)
CFG = AugmentConfig(size=32, mean=MEAN, std=STD)


@pytest.fixture(scope="module")
def images(shared_data):
    data = np.load(shared_data / "cifar10_4k.npz")["images"][:64]
    return torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("ours,theirs,factors", [
    (adjust_brightness, TF.adjust_brightness, [0.2, 0.7, 1.0, 1.5, 1.8]),
    (adjust_contrast, TF.adjust_contrast, [0.2, 0.7, 1.0, 1.5, 1.8]),
    (adjust_saturation, TF.adjust_saturation, [0.2, 0.7, 1.0, 1.5, 1.8]),
    (adjust_hue, TF.adjust_hue, [-0.2, -0.05, 0.0, 0.1, 0.2]),
])
def test_colour_ops_equal_torchvision(ours, theirs, factors):
    x = torch.rand(len(factors), 3, 16, 16, generator=torch.Generator().manual_seed(0))
    got = ours(x, torch.tensor(factors))
    ref = torch.stack([theirs(x[i], f) for i, f in enumerate(factors)])
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_crop_resize_equals_torchvision(images):
    x = images[:5].float() / 255
    boxes = torch.tensor([[3.0, 5, 10, 20], [0, 0, 32, 32], [10, 2, 22, 9], [31, 31, 1, 1], [4, 4, 24, 24]])
    flip = torch.tensor([False, False, True, False, True])
    got = resized_crops(x, boxes, 32, flip)
    for i, (t, left, h, w) in enumerate(boxes.long().tolist()):
        ref = TF.resized_crop(x[i], t, left, h, w, [32, 32], antialias=False)
        torch.testing.assert_close(got[i], ref.flip(-1) if flip[i] else ref, atol=1e-5, rtol=0)


def test_identity_config_gives_normalised_images_view_major(images):
    cfg = AugmentConfig(32, MEAN, STD, scale=(1, 1), ratio=(1, 1), flip_p=0, jitter_p=0, grayscale_p=0)
    views = make_views(images[:8], 3, cfg, torch.Generator().manual_seed(0))
    assert views.shape == (24, 3, 32, 32) and views.dtype == torch.float32
    torch.testing.assert_close(views, normalize(images[:8], MEAN, STD).repeat(3, 1, 1, 1), atol=1e-6, rtol=0)


def test_crop_parameters_follow_torchvision_distribution():
    n = 4000
    boxes = crop_boxes(n, 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ref = torch.tensor([T.RandomResizedCrop.get_params(torch.empty(3, 32, 32), [0.08, 1.0], [3 / 4, 4 / 3])
                        for _ in range(n)], dtype=torch.float32)
    for col, name in ((2, "height"), (3, "width")):
        assert stats.ks_2samp(boxes[:, col].numpy(), ref[:, col].numpy()).pvalue > 1e-3, name
    area, ref_area = boxes[:, 2] * boxes[:, 3], ref[:, 2] * ref[:, 3]
    assert stats.ks_2samp(area.numpy(), ref_area.numpy()).pvalue > 1e-3
    aspect, ref_aspect = (boxes[:, 3] / boxes[:, 2]).log(), (ref[:, 3] / ref[:, 2]).log()
    assert stats.ks_2samp(aspect.numpy(), ref_aspect.numpy()).pvalue > 1e-3
    assert bool(((boxes[:, 0] + boxes[:, 2] <= 32) & (boxes[:, 1] + boxes[:, 3] <= 32)).all())


def _torchvision_views(images: torch.Tensor, k: int) -> torch.Tensor:
    pipe = T.Compose([T.RandomResizedCrop(32, scale=(0.08, 1.0), antialias=False), T.RandomHorizontalFlip(),
                      T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), T.RandomGrayscale(0.2),
                      T.Normalize(MEAN, STD)])
    x = images.float() / 255
    return torch.stack([pipe(x[i]) for _ in range(k) for i in range(x.shape[0])])


def test_output_statistics_match_torchvision(images):
    torch.manual_seed(0)
    k = 24
    ours = make_views(images, k, CFG, torch.Generator().manual_seed(1))
    ref = _torchvision_views(images, k)
    # per-channel moments over all pixels of all views
    for c in range(3):
        a, b = ours[:, c].flatten(), ref[:, c].flatten()
        se = math.sqrt(b.var().item() / (ours.shape[0] / 4))  # views are the independent unit; be conservative
        assert abs(a.mean().item() - b.mean().item()) < 4 * se, c
        assert abs(a.std().item() / b.std().item() - 1) < 0.05, c
    # grayscale rate: channels equal (before normalisation) in ~0.2 + a little from saturation 0
    def gray_rate(v):
        raw = v * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        return ((raw[:, 0] - raw[:, 1]).abs().amax((1, 2)) < 1e-4).float().mean().item()

    n = ours.shape[0]
    assert abs(gray_rate(ours) - gray_rate(ref)) < 4 * math.sqrt(0.25 / n)
    # per-view brightness spread (colour jitter) and contrast spread
    for fn in (lambda v: v.mean((1, 2, 3)), lambda v: v.std((1, 2, 3))):
        assert stats.ks_2samp(fn(ours).numpy(), fn(ref).numpy()).pvalue > 1e-3


def test_flip_rate_and_reproducibility(images):
    cfg = AugmentConfig(32, MEAN, STD, scale=(1, 1), ratio=(1, 1), jitter_p=0, grayscale_p=0)
    views = make_views(images[:16], 50, cfg, torch.Generator().manual_seed(0))
    base = normalize(images[:16], MEAN, STD).repeat(50, 1, 1, 1)
    flipped = torch.tensor([torch.equal(v, b.flip(-1)) and not torch.equal(v, b) for v, b in zip(views, base)])
    assert abs(flipped.float().mean().item() - 0.5) < 4 * math.sqrt(0.25 / 800)
    again = make_views(images[:16], 50, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(views, again)


def test_grayscale_images_are_handled():
    cfg = AugmentConfig(28, (0.286,), (0.353,))
    imgs = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    views = make_views(imgs, 3, cfg, torch.Generator().manual_seed(0))
    assert views.shape == (12, 1, 28, 28) and torch.isfinite(views).all()


@pytest.mark.parametrize("bad", [dict(size=0), dict(std=(0.0, 1.0, 1.0)), dict(scale=(0.5, 0.1)),
                                 dict(flip_p=1.5), dict(jitter=(0.8, 0.8, 0.8, 0.7)), dict(mean=(0.5,))])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**{"size": 32, "mean": MEAN, "std": STD, **bad})


def test_input_validation():
    with pytest.raises(ValueError, match="uint8"):
        make_views(torch.rand(2, 3, 32, 32), 2, CFG)
    with pytest.raises(ValueError, match="channels"):
        make_views(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), 2, CFG)
