"""Backbones: registry, key layout (method.md), feature sizes, timm contract, input errors."""

from __future__ import annotations

import re

import pytest
import timm
import torch
import torchvision

import rr_zoo
from rr_zoo.errors import InputShapeError, UnknownArchitectureError
from rr_zoo.models import ARCHITECTURES, build_backbone, get_architecture

FEATURES = {"conv4": 64, "resnet8": 64, "resnet32": 64, "resnet56": 64, "resnet34": 512}
BLOCKS = {"resnet8": 1, "resnet32": 5, "resnet56": 9}


def expected_cifar_resnet_keys(blocks: int) -> set[str]:
    """Key layout of the original CIFAR ResNets, written out from method.md."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight", *(f"bn1.{b}" for b in bn)}
    for stage in (1, 2, 3):
        for n in range(blocks):
            p = f"layer{stage}.{n}"
            keys |= {f"{p}.conv1.weight", f"{p}.conv2.weight", *(f"{p}.bn1.{b}" for b in bn),
                     *(f"{p}.bn2.{b}" for b in bn)}
        if stage > 1:
            keys |= {f"layer{stage}.0.downsample.0.weight", *(f"layer{stage}.0.downsample.1.{b}" for b in bn)}
    return keys


def test_registry_has_the_papers_backbones():
    assert set(ARCHITECTURES) == set(FEATURES)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_feature_size_and_contract(arch):
    model = build_backbone(arch).eval()
    assert model.num_features == FEATURES[arch] == get_architecture(arch).num_features
    x = torch.randn(2, 3, 64, 64)
    feats = model(x)
    assert feats.shape == (2, FEATURES[arch])
    fmap = model.forward_features(x)
    assert fmap.shape[1] == FEATURES[arch]
    torch.testing.assert_close(model.forward_head(fmap, pre_logits=True), feats)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    assert model.forward_head(fmap, pre_logits=True).shape == (2, FEATURES[arch])
    model.reset_classifier(0)
    assert not any(k.startswith("fc.") for k in model.state_dict())
    assert [f["num_chs"] for f in model.feature_info][-1] == FEATURES[arch]


def test_conv4_keys_follow_method_md():
    keys = set(build_backbone("conv4").state_dict())
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    expected = {f"layer{i}.conv.weight" for i in range(1, 5)} | {f"layer{i}.bn.{b}" for i in range(1, 5) for b in bn}
    assert keys == expected
    shapes = [build_backbone("conv4").state_dict()[f"layer{i}.conv.weight"].shape for i in range(1, 5)]
    assert shapes == [(8, 3, 3, 3), (16, 8, 3, 3), (32, 16, 3, 3), (64, 32, 3, 3)]


@pytest.mark.parametrize("arch", sorted(BLOCKS))
def test_cifar_resnet_keys_follow_method_md(arch):
    assert set(build_backbone(arch).state_dict()) == expected_cifar_resnet_keys(BLOCKS[arch])


def test_resnet34_is_torchvision_layout_without_fc():
    ours = build_backbone("resnet34").state_dict()
    tv = {k: v for k, v in torchvision.models.resnet34().state_dict().items() if not k.startswith("fc.")}
    assert set(ours) == set(tv)
    assert all(ours[k].shape == tv[k].shape for k in tv)


def test_resnet34_matches_torchvision_features():
    """A torchvision state dict loads strictly and gives the same pooled features."""
    tv = torchvision.models.resnet34().eval()
    tv.fc = torch.nn.Identity()
    ours = build_backbone("resnet34").eval()
    ours.load_state_dict({k: v for k, v in tv.state_dict().items()}, strict=True)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), tv(x))


def test_conv4_matches_a_plain_reference():
    """Conv-4 equals the original's layer stack (conv-bn-relu-avgpool x3, then adaptive pool)."""
    model = build_backbone("conv4").eval()
    x = torch.randn(3, 3, 32, 32)
    h = x
    for i in range(1, 5):
        block = getattr(model, f"layer{i}")
        h = torch.relu(block.bn(block.conv(h)))
        h = torch.nn.functional.avg_pool2d(h, 2) if i < 4 else h.mean((2, 3))
    torch.testing.assert_close(model(x), h)


def test_init_follows_original():
    model = build_backbone("resnet32")
    w = model.layer3[0].conv2.weight
    assert abs(w.std().item() - (2.0 / (9 * 64)) ** 0.5) < 0.005
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)


@pytest.mark.parametrize("bad", [torch.randn(3, 32, 32), torch.randn(2, 1, 32, 32), torch.randn(2, 3, 2, 2)])
def test_wrong_input_shape_is_a_clear_error(bad):
    with pytest.raises(InputShapeError, match=r"expects input of shape|at least"):
        build_backbone("conv4")(bad)


def test_grayscale_backbone():
    model = build_backbone("conv4", in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 64)


def test_unknown_architecture_lists_close_matches():
    with pytest.raises(UnknownArchitectureError, match="resnet32"):
        build_backbone("resnet33")


@pytest.mark.parametrize("name", rr_zoo.list_models())
def test_timm_features_only(name):
    model = timm.create_model(name, features_only=True)
    c = rr_zoo.get_entry(name).in_chans
    outs = model(torch.randn(1, c, 64, 64))
    assert [o.shape[1] for o in outs] == model.feature_info.channels()


def test_key_names_regex_sanity():
    assert all(re.match(r"^(conv1|bn1|layer\d)", k) for k in build_backbone("resnet34").state_dict())
