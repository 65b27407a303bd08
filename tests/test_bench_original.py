"""``benchmark --original-repo``: the harness without the real original repository.

The end-to-end test drives a tiny stand-in "original" (written here; only the layout and the interface
the driver relies on: ``train_unsupervised.py`` runs ``DataManager.get_train_loader`` with a torchvision
CIFAR10 dataset on ``./data`` and calls ``Model.train(epoch, loader)``; the model has ``net``,
``aggregate``, ``relation_module``, ``fl`` and ``optimizer``).
"""

from __future__ import annotations

import json
import pickle
import textwrap

import numpy as np
import pytest
import torch

from training.bench.original import (
    FLOP_KS,
    FLOP_M,
    count_ours,
    format_table,
    run_original_benchmark,
    scale_flops,
    write_cifar10_pickles,
)

FAKE_DATAMANAGER = '''
import torch, torchvision.datasets as dset, torchvision.transforms as T
from PIL import Image

class Multi(dset.CIFAR10):
    def __init__(self, k, **kw):
        super().__init__(**kw)
        self.k = k
    def __getitem__(self, i):
        pic = Image.fromarray(self.data[i])
        return self.data[i], [self.transform(pic.copy()) for _ in range(self.k)], self.targets[i]

class DataManager:
    def __init__(self, seed):
        torch.manual_seed(seed)
    def get_train_transforms(self, method, dataset):
        return T.Compose([T.RandomHorizontalFlip(), T.ToTensor()])
    def get_train_loader(self, dataset, data_type, data_size, train_transform, repeat_augmentations,
                         num_workers=8, drop_last=False):
        ds = Multi(repeat_augmentations, root="data", train=True, transform=train_transform, download=True)
        return torch.utils.data.DataLoader(ds, batch_size=data_size, shuffle=True, num_workers=num_workers), ds
'''

FAKE_MODEL = '''
import torch
from torch import nn

class Model(nn.Module):
    def __init__(self, feature_extractor, device="cuda", aggregation="cat"):
        super().__init__()
        self.device, self.aggregation = device, aggregation
        self.net = feature_extractor
        self.relation_module = nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8), nn.LeakyReLU(), nn.Linear(8, 1))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        self.fl = nn.BCEWithLogitsLoss()
    def aggregate(self, features, k, type="cat"):
        m = features.shape[0] // k
        pairs, target = [], []
        for i in range(k):
            for j in range(i + 1, k):
                a, b = features[i * m:(i + 1) * m], features[j * m:(j + 1) * m]
                pairs += [torch.cat([a, b], 1), torch.cat([a, b.roll(1, 0)], 1)]
                target += [torch.ones(m), torch.zeros(m)]
        return torch.cat(pairs), torch.cat(target), 0, 0
    def train(self, epoch, loader):
        for data, views, _ in loader:
            x = torch.cat(views).to(self.device)
            self.optimizer.zero_grad()
            pairs, y, _, _ = self.aggregate(self.net(x), len(views), self.aggregation)
            loss = self.fl(self.relation_module(pairs).squeeze(), y)
            loss.backward()
            self.optimizer.step()
        return loss.item(), 0.0
'''

FAKE_SCRIPT = '''
import argparse, os
p = argparse.ArgumentParser()
for f in ("--dataset", "--method", "--backbone", "--aggregation", "--gpu"):
    p.add_argument(f, default="")
for f in ("--data_size", "--K", "--epochs", "--seed", "--num_workers"):
    p.add_argument(f, type=int, default=0)
args = p.parse_args()
os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
import torch
from torch import nn
from datamanager import DataManager
from methods.relationnet import Model
net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
manager = DataManager(args.seed)
loader, _ = manager.get_train_loader(args.dataset, "multi", args.data_size,
                                     manager.get_train_transforms(args.method, args.dataset), args.K,
                                     num_workers=args.num_workers)
model = Model(net, device, aggregation=args.aggregation)
model.to(device)
def main():
    for epoch in range(args.epochs):
        model.train(epoch, loader)
if __name__ == "__main__":
    main()
'''


@pytest.fixture
def fake_original(tmp_path):
    repo = tmp_path / "original"
    (repo / "methods").mkdir(parents=True)
    (repo / "train_unsupervised.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    (repo / "datamanager.py").write_text(textwrap.dedent(FAKE_DATAMANAGER))
    (repo / "methods" / "relationnet.py").write_text(textwrap.dedent(FAKE_MODEL))
    return repo


def _images(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_cifar_pickles_round_trip(tmp_path):
    from training.data import load_split

    images, labels = _images(23), np.arange(23) % 10
    folder = write_cifar10_pickles(images, labels, [f"c{i}" for i in range(10)], tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["batches.meta"] + [f"data_batch_{i}" for i in range(1, 6)]
    with open(folder / "data_batch_1", "rb") as fh:  # the layout torchvision's CIFAR10 reads
        entry = pickle.load(fh, encoding="latin1")
    assert entry["data"].dtype == np.uint8 and entry["data"].shape == (5, 3072) and len(entry["labels"]) == 5
    data = load_split("cifar10", "train", root=tmp_path)
    assert torch.equal(data.images, images)
    assert data.labels.tolist() == labels.tolist() and data.classes[3] == "c3"


@pytest.mark.parametrize("arch", ["conv4", "resnet8"])
def test_flops_scale_exactly_with_k_and_m(arch):
    counted = {k: count_ours(arch, k, FLOP_M) for k in FLOP_KS}
    assert scale_flops(counted, FLOP_M, 2 * FLOP_M, 4) == pytest.approx(count_ours(arch, 4, 2 * FLOP_M), rel=1e-9)


def test_driver_runs_the_stand_in_original(fake_original, tmp_path):
    import sys

    from training.bench.original import Harness

    write_cifar10_pickles(_images(40), np.zeros(40), [str(i) for i in range(10)], tmp_path / "data")
    h = Harness(fake_original, tmp_path, threads=1, workers=0, python=sys.executable)
    run = h.original("conv4", 3, 8, 2)
    assert run["steps"] == 2 and run["views"] == 2 * 8 * 3 and run["dataset_size"] == 40
    assert run["views_per_s"] > 0 and run["peak_rss_mib"] > 50 and run["threads"] == 1
    # conv 3->8 (3x3, 30x30 out) fwd + weight grad per view; Linear(16, 8) and (8, 1) fwd + bwd per pair
    per_view, per_pair = 2 * 2 * 8 * 3 * 9 * 30 * 30, 3 * 2 * (16 * 8 + 8 * 1)
    assert h.original_flops("conv4", 5, 8) == pytest.approx(8 * (5 * per_view + 5 * 4 * per_pair))


@pytest.mark.slow
def test_end_to_end_with_a_stand_in_original(fake_original, tmp_path):
    out = tmp_path / "out"
    result = run_original_benchmark(fake_original, ["conv4"], [2], m=8, steps=2, repeats=1, threads=1,
                                    out_dir=out, images=_images(40), matmul_n=256)
    row = result["rows"][0]
    for side in ("original", "ours"):
        assert row[side]["views_per_s"] > 0 and row[side]["peak_rss_mib"] > 50
        assert row[side]["timed_steps"] == 2 and 0 < row[side]["matmul_share"] < 1
        assert row["flops_per_view"][side] > 0
    assert row["ratio"] == pytest.approx(row["ours"]["views_per_s"] / row["original"]["views_per_s"])
    assert "--steps-per-epoch 2" in row["ours"]["command"] and "--precision fp32" in row["ours"]["command"]
    ceiling = row["ceiling_views_per_s"]
    assert {"fp32 contiguous", "fp32 channels_last"} <= set(ceiling) and min(ceiling.values()) > 0
    fp32_ceiling = ceiling["fp32 channels_last compiled" if row["ours"]["compiled"] else "fp32 channels_last"]
    assert row["ours"]["share_of_ceiling"] == pytest.approx(row["ours"]["views_per_s"] / fp32_ceiling)
    if row["default_precision"] == "bf16":  # --precision auto picks bf16 on this CPU: a third side
        assert "--precision auto" in row["ours_default"]["command"] and "bf16 channels_last" in ceiling
        default = row["ours_default"]["views_per_s"]
        assert row["ratio_default"] == pytest.approx(default / row["original"]["views_per_s"])
    else:
        assert "ours_default" not in row and not any(name.startswith("bf16") for name in ceiling)
    saved = json.loads((out / "original_conv4_k2.json").read_text())
    assert saved["row"]["k"] == 2 and saved["n_images"] == 40 and saved["threads"] == 1
    assert json.loads((out / "original.json").read_text())["rows"][0]["arch"] == "conv4"
    table = format_table(result)
    assert table.count("\n") == 2 and "| conv4 | 2 | 8 | 2 / 2 |" in table


def test_tiny_imagenet_subset_is_the_tree_both_sides_read(tmp_path, monkeypatch):
    from tests.fakes import make_fake_tiny_imagenet
    from training.bench.original import BENCH_DATA, write_tiny_imagenet_subset
    from training.data import load_split

    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    make_fake_tiny_imagenet(tmp_path / "src", "official", per_class=3)
    described, n = write_tiny_imagenet_subset(tmp_path / "data", per_class=2, data_root=tmp_path / "src")
    assert described.startswith("tinyimagenet: 6 real training JPEGs") and n == 6
    train = tmp_path / "data" / "tiny-imagenet-200" / "train"
    assert sorted(p.name for p in train.iterdir()) == ["n01", "n02", "n03"]  # ImageFolder: what the original reads
    assert sum(1 for f in train.rglob("*") if f.is_file()) == 6
    ours = load_split("tinyimagenet", "train", root=tmp_path / "data")  # what ours reads
    assert ours.images.shape == (6, 3, 64, 64) and ours.classes == ["n03", "n01", "n02"]
    data = BENCH_DATA["tinyimagenet"]
    assert (data.original, data.ours, data.size) == ("tiny", "tinyimagenet", 64)


def test_backbone_ceiling_subprocess_times_every_variant(tmp_path):
    import subprocess
    import sys

    from training.bench.original import PROJECT_ROOT, ceiling_variants, variant_name

    out = tmp_path / "ceiling.json"
    subprocess.run([sys.executable, "-m", "training.bench.original", "ceiling", "resnet8", "4", "1", str(out),
                    "16", "1"], cwd=PROJECT_ROOT, check=True)  # 16x16 views, one untimed and one timed call
    got = json.loads(out.read_text())
    assert set(got) == {variant_name(*v) for v in ceiling_variants("resnet8")}
    assert "fp32 channels_last compiled" in {variant_name(*v) for v in ceiling_variants("conv4")}
    assert all(v > 0 for v in got.values())


def test_cli_rejects_a_folder_that_is_not_the_original(tmp_path, capsys):
    from training.__main__ import main

    assert main(["benchmark", "--original-repo", str(tmp_path), "--out", str(tmp_path / "o.json")]) == 2
    assert "not a clone of mpatacchiola" in capsys.readouterr().err


def test_backbone_ceiling_times_consecutive_calls_like_a_timed_epoch(monkeypatch):
    """The ceiling is total views over total seconds of ``steps`` calls after ``steps`` untimed ones (the
    estimator of our warm-up + timed epoch), not the fastest single call."""
    import training.bench.original as original

    clock = [0.0]
    durations = iter([0.5, 0.5, 0.5, 0.1, 0.2, 0.3])  # three untimed calls, then three timed ones

    def fake_step(*args, **kwargs):
        def step():
            clock[0] += next(durations)
        return step

    monkeypatch.setattr(original, "ceiling_step", fake_step)
    monkeypatch.setattr(original.time, "perf_counter", lambda: clock[0])
    # 180 views in 0.6 s; the fastest call alone would say 600 views/s, all six calls 86
    assert original.backbone_ceiling("resnet8", 60, "fp32", True, steps=3) == pytest.approx(300.0)
