"""rr_zoo.viz: the pictures shared by the quickstart notebook, the README and model cards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rr_zoo
from rr_zoo import viz

NAME = "rr_conv4_cifar10"


@pytest.fixture(scope="module")
def samples():
    return viz.sample_images()


@pytest.fixture(scope="module")
def rr():
    return rr_zoo.create_model(NAME, pretrained=True), rr_zoo.create_relation_head(NAME, pretrained=True)


def test_sample_images(samples):
    assert samples.images.shape == (200, 3, 32, 32) and samples.images.dtype == torch.uint8
    assert samples.labels.bincount().tolist() == [20] * 10 and len(samples.classes) == 10
    sub = samples.subset([3, 1])
    assert torch.equal(sub.images[1], samples.images[1]) and sub.labels.tolist() == samples.labels[[3, 1]].tolist()
    train, test = viz.split_alternate(samples)
    assert train.labels.bincount().tolist() == test.labels.bincount().tolist() == [10] * 10
    assert not (train.images.view(100, 1, -1) == test.images.view(1, 100, -1)).all(-1).any()


def test_load_cifar10_reads_torchvision_and_fails_cleanly_offline(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="not found"):  # what the notebook catches when offline
        viz.load_cifar10(tmp_path, train=False, download=False)

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            self.data = np.zeros((5, 32, 32, 3), dtype=np.uint8)
            self.data[:, 0, 0, 2] = 255
            self.targets = [0, 1, 2, 3, 4]
            self.classes = [f"c{i}" for i in range(10)]

    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    data = viz.load_cifar10(tmp_path, train=True)
    assert data.images.shape == (5, 3, 32, 32) and data.images[0, 2, 0, 0] == 255
    assert data.labels.tolist() == [0, 1, 2, 3, 4] and data.classes[0] == "c0"


def test_augment_views_seeded_and_leaves_global_rng_alone(samples):
    state = torch.get_rng_state()
    a = viz.augment_views(samples.images[:2], n_views=3, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, viz.augment_views(samples.images[:2], n_views=3, seed=5))
    assert not torch.equal(a, viz.augment_views(samples.images[:2], n_views=3, seed=6))


def test_relation_matrix_separates_views_of_one_image(samples, rr):
    views = viz.augment_views(samples.images[:20:4], n_views=3, seed=0)  # 5 images of 5 classes
    scores = viz.relation_matrix(*rr, views, NAME)
    group = torch.arange(15) // 3
    same = (group[:, None] == group[None]) & ~torch.eye(15, dtype=torch.bool)
    assert scores.shape == (15, 15) and 0 <= scores.min() and scores.max() <= 1
    assert torch.allclose(scores, scores.t(), atol=1e-6)  # symmetric relation score
    assert scores[same].mean() > scores[group[:, None] != group[None]].mean() + 0.3


def test_nearest_neighbours_excludes_the_query():
    feats = torch.eye(4) + 0.1
    nn_idx = viz.nearest_neighbours(feats, feats, 2, exclude=torch.arange(4))
    assert nn_idx.shape == (4, 2) and not (nn_idx == torch.arange(4)[:, None]).any()


def test_entry_figures_are_small_and_reproducible(samples, rr, tmp_path):
    train, test = viz.split_alternate(samples)
    first = viz.entry_figures(NAME, *rr, train, test, tmp_path / "a", n_queries=2)
    second = viz.entry_figures(NAME, *rr, train, test, tmp_path / "b", n_queries=2)
    for key in ("relation", "retrieval"):
        data = first[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 150_000
        assert data == second[key].read_bytes()


def test_other_plots_build_figures(samples, rr):
    model = rr[0]
    assert len(viz.plot_images(samples, 5).axes) == 5
    points = {"a": np.random.rand(20, 2), "b": np.random.rand(20, 2)}
    assert len(viz.plot_embedding(points, samples.labels[:20], samples.classes).axes) == 2
    assert viz.tsne(viz.embed(model, samples.images[:20], NAME)).shape == (20, 2)
    maps = [torch.rand(1, 8, 16, 16), torch.rand(1, 64, 4, 4)]
    assert len(viz.plot_feature_maps(samples.images[0], maps, n_channels=3).axes) == 8


def test_export_sample_figures_go_into_the_model_card(samples, rr, tmp_path, monkeypatch):
    training_data = pytest.importorskip("training.data")
    from training.pretrain.checkpoint import TrainingCheckpoint
    from training.release.export import export_checkpoint

    entry = rr_zoo.get_entry(NAME)
    backbone, head = rr
    ckpt = TrainingCheckpoint(entry=NAME, architecture=entry.architecture, dataset="cifar10", in_chans=3,
                              recipe=dict(entry.recipe), backbone=backbone.state_dict(),
                              relation=head.state_dict(), epoch=1)
    ckpt.save(tmp_path / "run" / "checkpoint.pt")
    monkeypatch.setattr(training_data, "load_split", lambda name, split, root=None, download=False: samples)
    out = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "export", sample_figures=True)
    card = (out / "README.md").read_text()
    for name in ("relation_scores.png", "retrieval.png"):
        assert (out / name).stat().st_size > 5_000
        assert f"![{name}]({name})" in card


def test_readme_pictures_exist_and_are_small(repo_root):
    import re

    readme = (repo_root / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert "docs/figures/relation_scores_rr_conv4_cifar10.png" in pictures
    for rel in pictures:
        size = (repo_root / rel).stat().st_size
        assert 5_000 < size < 150_000, f"{rel}: {size} bytes"
