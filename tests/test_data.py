"""Dataset registry: every loader on real data or a stand-in in the real on-disk format."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.fakes import make_fake_cifar100, make_fake_fashionmnist, make_fake_image_folder, make_fake_stl10
from training.data import DATASETS, DatasetNotFoundError, get_dataset_spec, load_split

EXPECTED = {"cifar10", "cifar100", "cifar100_20", "stl10", "tinyimagenet", "slimagenet64", "fashionmnist",
            "cifar10_4k", "cifar10_jpeg"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))


def test_registry_is_complete():
    assert set(DATASETS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_specs_are_consistent(name):
    spec = get_dataset_spec(name)
    assert len(spec.mean) == len(spec.std) == spec.channels
    assert spec.pretrain_split in spec.splits and spec.expected_files


@pytest.mark.parametrize("name", sorted(EXPECTED - {"cifar10_4k", "cifar10_jpeg"}))
def test_missing_dataset_says_what_to_put_where(name, tmp_path):
    spec = get_dataset_spec(name)
    with pytest.raises(DatasetNotFoundError, match="Expected under") as info:
        load_split(name, spec.splits[-1] if name != "stl10" else "train", root=tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value) and "--data-root" in str(info.value)


def test_unknown_dataset_lists_close_matches():
    with pytest.raises(KeyError, match="cifar100"):
        get_dataset_spec("cifar1000")


def test_cifar100_and_coarse_labels(tmp_path):
    written = make_fake_cifar100(tmp_path)
    fine = load_split("cifar100", "train", root=tmp_path)
    coarse = load_split("cifar100_20", "test", root=tmp_path)
    assert fine.images.dtype == torch.uint8 and fine.images.shape == (20, 3, 32, 32)
    assert np.array_equal(fine.images.numpy(), written["train"][0])
    assert fine.labels.tolist() == written["train"][1]
    assert coarse.labels.tolist() == written["test"][2] and len(coarse.classes) == 20


def test_stl10_splits_and_memmap(tmp_path):
    written = make_fake_stl10(tmp_path)
    train = load_split("stl10", "train", root=tmp_path)
    assert np.array_equal(train.images.numpy(), written["train"][0])
    assert train.labels.tolist() == (written["train"][1].astype(int) - 1).tolist()
    unlabeled = load_split("stl10", "unlabeled", root=tmp_path)
    assert unlabeled.images.shape == (5, 3, 96, 96) and bool((unlabeled.labels == -1).all())
    assert not unlabeled.images.is_contiguous()  # a lazy view of the memory-mapped file, not a decoded copy
    both = load_split("stl10", "train+unlabeled", root=tmp_path)
    assert both.images.shape[0] == 11 and unlabeled.classes[0] == "class0"


@pytest.mark.parametrize("name,base,split", [("tinyimagenet", "tiny-imagenet-200", "val"),
                                             ("slimagenet64", "SlimageNet64", "train")])
def test_image_folder_datasets_decode_once(tmp_path, name, base, split):
    written = make_fake_image_folder(tmp_path / base / split)
    data = load_split(name, split, root=tmp_path)
    assert data.images.shape == (6, 3, 64, 64) and data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    first = next(iter(written.values()))[0]
    assert np.array_equal(data.images[0].numpy().transpose(1, 2, 0), first)
    caches = list((tmp_path / "cache").rglob("*.npy"))
    assert len(caches) == 1
    mtime = caches[0].stat().st_mtime_ns
    load_split(name, split, root=tmp_path)
    assert caches[0].stat().st_mtime_ns == mtime  # reused
    make_fake_image_folder(tmp_path / base / split, classes=4, seed=1)  # files changed -> new cache
    assert load_split(name, split, root=tmp_path).images.shape[0] == 8


@pytest.mark.parametrize("gz", [True, False])
def test_fashionmnist_idx(tmp_path, gz):
    written = make_fake_fashionmnist(tmp_path, gz=gz)
    data = load_split("fashionmnist", "test", root=tmp_path)
    assert data.images.shape == (5, 1, 28, 28)
    assert np.array_equal(data.images[:, 0].numpy(), written["t10k"][0])
    assert data.labels.tolist() == written["t10k"][1].tolist()


FMNIST_ROOT = os.environ.get("RR_FASHIONMNIST_ROOT", "/work/data_fmnist")


@pytest.mark.skipif(not os.path.isdir(f"{FMNIST_ROOT}/FashionMNIST/raw"), reason="Fashion-MNIST not installed")
def test_fashionmnist_constants_recomputed_from_real_data():
    from training.data.stats import channel_stats

    stats = channel_stats("fashionmnist", root=FMNIST_ROOT)
    spec = get_dataset_spec("fashionmnist")
    assert stats["mean"] == pytest.approx(list(spec.mean), abs=1e-3)
    assert stats["std"] == pytest.approx(list(spec.std), abs=1e-3)


def test_real_cifar10_subsets(shared_data):
    four_k = load_split("cifar10_4k", "train")
    assert four_k.images.shape == (4000, 3, 32, 32) and four_k.labels[:5].tolist() == [6, 9, 9, 4, 1]
    test = load_split("cifar10_jpeg", "test")
    assert test.images.shape == (10000, 3, 32, 32) and len(test.classes) == 10
    assert abs(test.images.float().mean().item() / 255 - 0.47) < 0.02
