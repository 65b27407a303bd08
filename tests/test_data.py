"""Dataset registry: every loader on real data or a stand-in in the real on-disk format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rr_zoo.manifest import read_manifest
from tests.fakes import (
    make_fake_cifar100,
    make_fake_fashionmnist,
    make_fake_image_folder,
    make_fake_stl10,
    make_fake_tiny_imagenet,
)
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


@pytest.mark.parametrize("name,base,split", [("slimagenet64", "SlimageNet64", "train")])
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


@pytest.mark.parametrize("layout", ["official", "imagefolder"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_tiny_imagenet_layouts(tmp_path, layout, split):
    written = make_fake_tiny_imagenet(tmp_path, layout)
    data = load_split("tinyimagenet", split, root=tmp_path)
    assert data.classes == ["n03", "n01", "n02"]  # wnids.txt order, not sorted
    assert data.labels.tolist() == [label for _, label in written[split]]
    assert np.array_equal(data.images.numpy(), np.stack([a.transpose(2, 0, 1) for a, _ in written[split]]))
    again = load_split("tinyimagenet", split, root=tmp_path)  # from the cache
    assert np.array_equal(again.images.numpy(), data.images.numpy())
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1


@pytest.mark.parametrize("layout", ["official", "imagefolder"])
def test_tiny_imagenet_partial_tree_says_what_is_missing(tmp_path, layout):
    import shutil

    make_fake_tiny_imagenet(tmp_path, layout)
    base = tmp_path / "tiny-imagenet-200"
    shutil.rmtree(base / "train" / "n01")
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 3 classes .* no folder .*first: n01"):
        load_split("tinyimagenet", "train", root=tmp_path)
    victim = next((base / "val").rglob("val_0.JPEG"))
    victim.unlink()
    if layout == "official":
        with pytest.raises(DatasetNotFoundError, match="1 of the 3 images .*val_annotations.txt lists.*val_0.JPEG"):
            load_split("tinyimagenet", "val", root=tmp_path)
    else:
        with pytest.raises(DatasetNotFoundError, match="hold no images .*first: n03"):
            load_split("tinyimagenet", "val", root=tmp_path)
    (base / "wnids.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="wnids.txt not found"):
        load_split("tinyimagenet", "val", root=tmp_path)


@pytest.mark.slow
def test_real_tiny_imagenet():
    """The real tree wherever the data setting points ($RR_DATA_DIR), when present."""
    from training.data.stats import image_stats

    try:
        val = load_split("tinyimagenet", "val")
    except DatasetNotFoundError:
        pytest.skip("tiny-ImageNet is not under $RR_DATA_DIR (../shared/data/scripts/build_tiny_imagenet.py)")
    spec = get_dataset_spec("tinyimagenet")
    assert val.images.shape == (10_000, 3, 64, 64) and len(val.classes) == 200
    assert val.labels.bincount().tolist() == [50] * 200
    train = load_split("tinyimagenet", "train")
    assert train.images.shape == (100_000, 3, 64, 64) and train.labels.bincount().tolist() == [500] * 200
    mean, std = image_stats(train.images)
    assert mean == pytest.approx(spec.mean, abs=1e-3) and std == pytest.approx(spec.std, abs=1e-3)


@pytest.mark.parametrize("gz", [True, False])
def test_fashionmnist_idx(tmp_path, gz):
    written = make_fake_fashionmnist(tmp_path, gz=gz)
    data = load_split("fashionmnist", "test", root=tmp_path)
    assert data.images.shape == (5, 1, 28, 28)
    assert np.array_equal(data.images[:, 0].numpy(), written["t10k"][0])
    assert data.labels.tolist() == written["t10k"][1].tolist()


def test_fashionmnist_constants_recomputed_from_real_data():
    """Real Fashion-MNIST wherever the data setting points (--data-root default: $RR_DATA_DIR)."""
    from training.data.stats import channel_stats

    try:
        stats = channel_stats("fashionmnist")
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not under $RR_DATA_DIR (torchvision.datasets.FashionMNIST(DIR, download=True))")
    spec = get_dataset_spec("fashionmnist")
    assert stats["mean"] == pytest.approx(list(spec.mean), abs=1e-3)
    assert stats["std"] == pytest.approx(list(spec.std), abs=1e-3)


def test_real_cifar10_subsets(shared_data):
    four_k = load_split("cifar10_4k", "train")
    assert four_k.images.shape == (4000, 3, 32, 32) and four_k.labels[:5].tolist() == [6, 9, 9, 4, 1]
    test = load_split("cifar10_jpeg", "test")
    assert test.images.shape == (10000, 3, 32, 32) and len(test.classes) == 10
    assert abs(test.images.float().mean().item() / 255 - 0.47) < 0.02


def test_data_location_is_one_setting(tmp_path, monkeypatch):
    from training.data import data_dir, search_roots

    monkeypatch.setenv("RR_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RR_SHARED_DATA", str(tmp_path / "pack"))
    assert data_dir() == tmp_path / "d" and search_roots() == [tmp_path / "d"]  # no pack folder: no fallback
    (tmp_path / "pack").mkdir()
    assert search_roots() == [tmp_path / "d", tmp_path / "pack"]  # the maintainers' pack comes last
    assert search_roots(tmp_path / "x") == [tmp_path / "x"]  # an explicit --data-root is the only place
    monkeypatch.delenv("RR_DATA_DIR")
    assert data_dir() == Path.home() / ".cache" / "rr_zoo" / "data"
    make_fake_fashionmnist(tmp_path / "d")
    monkeypatch.setenv("RR_DATA_DIR", str(tmp_path / "d"))
    assert load_split("fashionmnist", "train").images.shape == (12, 1, 28, 28)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_sizes_and_cutout_are_given(name):
    spec = get_dataset_spec(name)
    assert set(spec.split_sizes) == set(spec.splits) and all(n > 0 for n in spec.split_sizes.values())
    assert 0 < spec.cutout_area < 1 and spec.input_size == (spec.channels, spec.image_size, spec.image_size)


def test_offline_pack_sizes_match_their_specs(shared_data):
    for name in ("cifar10_4k", "cifar10_jpeg"):
        spec = get_dataset_spec(name)
        for split in spec.splits:
            assert load_split(name, split).images.shape == (spec.split_sizes[split], *spec.input_size)


def test_cifar10_variants_share_cifar10_facts():
    base = get_dataset_spec("cifar10")
    for name in ("cifar10_4k", "cifar10_jpeg"):
        spec = get_dataset_spec(name)
        assert (spec.mean, spec.std, spec.input_size, spec.num_classes, spec.cutout_area) == (
            base.mean, base.std, base.input_size, base.num_classes, base.cutout_area)


@pytest.mark.parametrize("name", read_manifest().names())
def test_manifest_preprocessing_is_its_datasets_spec(name):
    """Every entry's published preprocessing is its dataset's normalisation and input size (one fact)."""
    entry = read_manifest().get(name)
    spec = get_dataset_spec(entry.dataset)
    pre = entry.preprocessing
    assert tuple(pre["mean"]) == spec.mean and tuple(pre["std"]) == spec.std
    assert tuple(pre["input_size"]) == spec.input_size and entry.in_chans == spec.channels
    trained_on = ((entry.provenance or {}).get("recipe") or entry.recipe)["dataset"]
    trained = get_dataset_spec(trained_on)  # e.g. cifar10_jpeg for a cifar10 entry: the same constants
    assert (trained.mean, trained.std, trained.input_size) == (spec.mean, spec.std, spec.input_size)
