"""Run the ORIGINAL repository's train_unsupervised.py unchanged, for rr-zoo's benchmark.

Run as a script by training/bench/original.py (``python training/bench/original_driver.py --repo CLONE ...``),
with the working directory holding ./data/cifar-10-batches-py (--dataset cifar10) or
./data/tiny-imagenet-200/train (--dataset tiny). sys.path gets the clone (--repo), whose modules it imports;
nothing in the clone is edited. Not imported by the training package.

Compatibility shims (monkeypatches, applied before the script runs):
1. torchvision.datasets.cifar.check_integrity -> "the file exists", and CIFAR10._check_integrity checks
   only the requested split's batch files. The original builds its dataset with download=True, which
   checks the md5 sums of the official 50,000-image release (batches and batches.meta) and otherwise
   downloads it; the benchmark's files hold its own images (other md5 sums, no test_batch) and the
   machine may be offline.
2. torch.cuda.is_available -> False, and --gpu "" (CUDA_VISIBLE_DEVICES=""): a CPU benchmark; the script
   otherwise picks CUDA whenever one exists.
3. --seed 0: the script's default seed -1 is passed to numpy.random.seed, which rejects it.
Measurement hooks (not shims):
4. datamanager.DataManager.get_train_loader: the DataLoader it returns is wrapped so that each epoch
   yields at most --steps batches (0: the full epoch).
5. methods.relationnet.Model.train (its epoch loop) is wrapped to time each call (perf_counter) and count
   the images it saw; with --mode flops it is replaced by one FlopCounterMode count of the original's
   forward + backward (its net, aggregate, relation_module and FocalLoss) on random input.
"""
import argparse
import itertools
import json
import os
import runpy
import sys
import time

import torch
import torchvision.datasets as dset
from torch.utils.flop_counter import FlopCounterMode

p = argparse.ArgumentParser()
for name, typ in (("--repo", str), ("--mode", str), ("--arch", str), ("--k", int), ("--m", int),
                  ("--steps", int), ("--epochs", int), ("--threads", int), ("--workers", int),
                  ("--result", str), ("--flop-m", int), ("--flop-ks", str), ("--dataset", str), ("--size", int)):
    p.add_argument(name, type=typ, required=True)
a = p.parse_args()
sys.path.insert(0, a.repo)  # the original repository's modules, imported below

torch.set_num_threads(a.threads)
torch.cuda.is_available = lambda: False                                   # shim 2
dset.cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)  # shim 1
dset.CIFAR10._check_integrity = lambda self: all(                         # shim 1
    os.path.isfile(os.path.join(self.root, self.base_folder, f))
    for f, _ in (self.train_list if self.train else self.test_list))

import datamanager  # noqa: E402  (the clone's modules: on sys.path since --repo was parsed)
import methods.relationnet as relationnet  # noqa: E402

result = {"mode": a.mode, "threads": torch.get_num_threads(), "torch": torch.__version__, "epochs": []}


class Limited:                                                            # hook 4
    def __init__(self, loader, steps):
        self.loader, self.steps, self.images = loader, steps, 0

    def __len__(self):
        return min(len(self.loader), self.steps) if self.steps else len(self.loader)

    def __iter__(self):
        it = iter(self.loader)
        for batch in (itertools.islice(it, self.steps) if self.steps else it):
            self.images += int(batch[0].shape[0])
            yield batch


_get_loader = datamanager.DataManager.get_train_loader


def get_train_loader(self, *args, **kwargs):
    loader, train_set = _get_loader(self, *args, **kwargs)
    result["dataset_size"] = len(train_set)
    return Limited(loader, a.steps), train_set


datamanager.DataManager.get_train_loader = get_train_loader
_train = relationnet.Model.train


def timed_train(self, epoch, train_loader):                               # hook 5
    before = train_loader.images
    t0 = time.perf_counter()
    out = _train(self, epoch, train_loader)
    seconds = time.perf_counter() - t0
    images = train_loader.images - before
    result["epochs"].append({"epoch": epoch, "seconds": seconds, "images": images,
                             "steps": len(train_loader), "views_per_s": images * a.k / seconds})
    return out


def count_flops(self, epoch, train_loader):                               # hook 5, --mode flops
    flops = {}
    for k in (int(v) for v in a.flop_ks.split(",")):
        x = torch.randn(a.flop_m * k, 3, a.size, a.size)
        with FlopCounterMode(display=False) as counter:
            self.optimizer.zero_grad()
            features = self.net(x)
            pairs, target, _, _ = self.aggregate(features, k, type=self.aggregation)
            loss = self.fl(self.relation_module(pairs).squeeze(), target)
            loss.backward()
        flops[str(k)] = counter.get_total_flops()
    result["flops"] = {"m": a.flop_m, "per_k": flops}
    return 0.0, 0.0


relationnet.Model.train = count_flops if a.mode == "flops" else timed_train
sys.argv = ["train_unsupervised.py", "--dataset", a.dataset, "--method", "relationnet", "--backbone", a.arch,
            "--data_size", str(a.m), "--K", str(a.k), "--epochs", str(a.epochs), "--seed", "0",
            "--num_workers", str(a.workers), "--gpu", "", "--aggregation", "cat"]          # shim 2, 3
runpy.run_path(os.path.join(a.repo, "train_unsupervised.py"), run_name="__main__")
with open(a.result, "w") as fh:
    json.dump(result, fh)
