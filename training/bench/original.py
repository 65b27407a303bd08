"""``python -m training benchmark --original-repo PATH``: ours vs the ORIGINAL repository's own code.

The other side of this comparison is the user's clone of mpatacchiola/self-supervised-relational-reasoning,
run unchanged: a small driver (:data:`DRIVER`, ``original_driver.py`` beside this file; never the clone) runs
its ``train_unsupervised.py`` (its argument parser, backbone, ``DataManager``, ``MultiCIFAR10`` dataset with
its PIL transforms, its ``DataLoader``, ``methods.relationnet.Model`` and its ``train`` loop) with
``--method relationnet --dataset cifar10``. Our side is ``python -m training pretrain``. Both read the SAME
files: the images (default: the shared ``cifar10_4k`` pack, 4,000 real CIFAR-10 images) are written once
as CIFAR-10 python pickle batches (``cifar-10-batches-py/data_batch_1..5`` + ``batches.meta``, what
torchvision's ``CIFAR10`` reads); the original reads them through torchvision, ours through
``--dataset cifar10 --data-root``.

Protocol (same for both sides): same backbone, K, M, fp32, same torch thread count (``--threads`` and
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``); the original's DataLoader gets ``--num_workers`` =
``workers`` (default 0: augmentation in the training process, as ours). Each run is a fresh subprocess
training 2 epochs of ``steps`` steps each (``steps`` = 0: full epochs); the first epoch is a warm-up, the
second is timed (wall clock of the epoch's steps, data loading and augmentation included: the original's
``Model.train`` call; our ``log.jsonl`` ``seconds``). Runs alternate original/ours (the first side swaps
every repeat); views/s is the best of ``repeats``. Peak RSS is each subprocess's own ``ru_maxrss``
(``os.wait4``), max over repeats. Full-epoch seconds are extrapolated from the timed steps at the
measured views/s (original: ceil(N/M) batches, last one partial; ours: floor(N/M) full batches).

Precision and ceiling: the original trains in fp32 only; ours runs in fp32 (``ours``) and, where
``--precision auto`` resolves to bf16 on this CPU, once more as a user gets it by default (``ours_default``).
Every repeat also times, in a fresh subprocess, the backbone's forward + backward alone on K·M random
views of the same shape (no augmentation, head, loss or optimiser) in each precision and memory format,
timed like our timed epoch (``steps`` untimed calls, then ``steps`` timed consecutive calls; 10 and 10
with ``--steps 0``; best of the repeats); each of our steps is reported as a share of that ceiling for
its precision in ``channels_last`` (the layout ``pretrain`` uses).

FLOP share: FLOPs per step of each side's own forward + backward, counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls; not BatchNorm, elementwise,
augmentation or the Adam update) at M = 4 and K = 2, 3 on random input and scaled exactly
(FLOPs = M·(a·K + b·K·(K−1)): backbone per view, head per pair), times views/s, divided by this machine's
measured fp32 ``torch.matmul`` FLOP/s on the same thread count (best of the measurements taken at the start
and after every repeat). The share of a 3×3 convolution's FLOP/s is reported too: torch's matmul (MKL) can
run far below its convolutions (oneDNN) on AMD CPUs, where the matmul share of a conv-bound step exceeds
100 %. Each run also records its CPU seconds per wall second: below the thread count means the machine was
busy with something else.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from training.bench.estimate import best_seconds
from training.bench.record import machine_record, write_result
from training.run_folders import LOG, read_log

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CIFAR_FOLDER = "cifar-10-batches-py"
FLOP_M, FLOP_KS = 4, (2, 3)

# the script that runs the original's train_unsupervised.py (with the clone on its sys.path)
DRIVER = Path(__file__).resolve().with_name("original_driver.py")
CEILING_FULL_EPOCH_STEPS = 10  # ceiling calls timed when the benchmark times full epochs (--steps 0)


# ----------------------------------------------------------------------------- data
def write_cifar10_pickles(images: torch.Tensor | np.ndarray, labels, classes: list[str], root: str | Path,
                          batches: int = 5) -> Path:
    """Write uint8 (N, 3, 32, 32) images as torchvision's CIFAR-10 python format under ``root``.

    Writes ``root/cifar-10-batches-py/data_batch_1..batches`` (the images split in order) and
    ``batches.meta``; returns that folder. No ``test_batch``: pretraining reads the train batches only.
    """
    arr = np.asarray(images, dtype=np.uint8)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) uint8 images; got shape {arr.shape}")
    labels = [int(v) for v in np.asarray(labels).reshape(-1)]
    folder = Path(root) / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for i, idx in enumerate(np.array_split(np.arange(arr.shape[0]), batches), start=1):
        entry = {"batch_label": f"training batch {i} of {batches}",
                 "data": arr[idx].reshape(len(idx), -1), "labels": [labels[j] for j in idx],
                 "filenames": [f"img_{j:05d}.png" for j in idx]}
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(classes), "num_cases_per_batch": math.ceil(arr.shape[0] / batches),
                     "num_vis": int(np.prod(arr.shape[1:]))}, fh, protocol=2)
    return folder


def write_tiny_imagenet_subset(root: str | Path, per_class: int = 20,
                               data_root: str | Path | None = None) -> tuple[str, int]:
    """Copy ``per_class`` real training JPEGs of every tiny-ImageNet class (the first, by file name) into
    ``root/tiny-imagenet-200/train/<wnid>/`` with ``wnids.txt``: the tree the original reads (``--dataset tiny``)
    and ours reads (``--dataset tinyimagenet``). Returns a description of what was written and the image count.

    Raises:
        DatasetNotFoundError: tiny-ImageNet is not where the data setting points (the message says how to get it).
    """
    from training.data import get_dataset_spec, search_roots
    from training.data.formats.tiny_imagenet import list_tiny_imagenet
    from training.data.registry import DatasetNotFoundError

    spec = get_dataset_spec("tinyimagenet")
    first: Exception | None = None
    for folder in search_roots(data_root):
        try:
            files, labels, wnids = list_tiny_imagenet(folder / "tiny-imagenet-200", "train", spec, folder)
            break
        except DatasetNotFoundError as exc:
            first = first or exc
    else:
        assert first is not None
        raise first
    base = Path(root) / "tiny-imagenet-200"
    taken: dict[int, int] = {}
    for f, label in zip(files, labels):
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            dest = base / "train" / wnids[label] / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
    (base / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    n = sum(taken.values())
    return f"tinyimagenet: {n} real training JPEGs ({per_class} per class, the first by file name)", n


@dataclass(frozen=True)
class BenchData:
    """What both sides of the comparison train on: the files, and each side's name for them."""

    ours: str            # our --dataset
    original: str        # the original's --dataset
    size: int            # image side, pixels
    entry: str           # our manifest entry whose recipe a run starts from ({arch} filled in; --architecture wins)
    write: Callable[[Path], tuple[str, int]]  # writes the files under a data folder: (what it wrote, images)


def _write_cifar10_4k(root: Path) -> tuple[str, int]:
    from training.data import load_split

    data = load_split("cifar10_4k", "train")
    write_cifar10_pickles(data.images, data.labels, data.classes, root)
    return "cifar10_4k (shared pack)", int(data.images.shape[0])


BENCH_DATA: dict[str, BenchData] = {
    "cifar10": BenchData("cifar10", "cifar10", 32, "rr_{arch}_cifar10", _write_cifar10_4k),
    "tinyimagenet": BenchData("tinyimagenet", "tiny", 64, "rr_resnet32_tinyimagenet", write_tiny_imagenet_subset),
}


# ----------------------------------------------------------------------------- FLOPs and peak
def scale_flops(per_k: dict[int, float], m_counted: int, m: int, k: int) -> float:
    """FLOPs of a step at (m, k) from counts at K = 2 and 3 with ``m_counted`` images.

    A step costs M·(a·K + b·K·(K−1)) counted FLOPs (backbone a per view, head b per pair); two counts
    fix a and b exactly.
    """
    f2, f3 = per_k[2] / m_counted, per_k[3] / m_counted
    b = (f3 - 1.5 * f2) / 3.0
    a = f2 / 2.0 - b
    return m * (a * k + b * k * (k - 1))


def count_ours(arch: str, k: int, m: int, size: int = 32) -> float:
    """FLOPs of our forward + backward (``relation_loss``) at (m, k) on ``size``² views, exactly as a step does."""
    from training.method.step import build_model, relation_loss
    from training.pretrain.recipes import recipe_for_entry

    recipe = recipe_for_entry(f"rr_{arch}_cifar10", k=k, batch_size=m)
    model = build_model(recipe, 3)
    with FlopCounterMode(display=False) as counter:
        loss, _ = relation_loss(model, torch.randn(k * m, 3, size, size), recipe)
        loss.backward()
    return float(counter.get_total_flops())


def ours_flops_per_step(arch: str, k: int, m: int, size: int = 32) -> float:
    """Our FLOPs per step at (m, k), from small counts scaled exactly (see :func:`scale_flops`)."""
    return scale_flops({kk: count_ours(arch, kk, FLOP_M, size) for kk in FLOP_KS}, FLOP_M, m, k)


def matmul_flops_per_s(n: int = 2048, repeats: int = 3) -> float:
    """Best-of-``repeats`` fp32 ``torch.matmul`` FLOP/s of an n×n product on the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best_seconds(lambda: torch.matmul(a, b), repeats)


def conv_flops_per_s(batch: int = 128, repeats: int = 3) -> float:
    """Best-of-``repeats`` fp32 FLOP/s of a 3×3 64→64 convolution on 16×16 maps (channels_last).

    A second reference beside the matmul: on some CPUs torch's matmul (MKL) takes a slower path than its
    convolutions (oneDNN), e.g. AMD EPYC with AVX-512, where a step's share of the matmul peak exceeds 100 %.
    """
    x = torch.randn(batch, 64, 16, 16).to(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).to(memory_format=torch.channels_last)
    return 2 * batch * 64 * 16 * 16 * 64 * 9 / best_seconds(
        lambda: torch.nn.functional.conv2d(x, w, padding=1), repeats)


def measure_peaks(matmul_n: int = 2048) -> dict[str, float]:
    """This machine's fp32 matmul and convolution FLOP/s on the current thread count."""
    return {"matmul": matmul_flops_per_s(matmul_n), "conv": conv_flops_per_s(32 if matmul_n < 1024 else 128)}


def ceiling_step(arch: str, views: int, precision: str, channels_last: bool, size: int = 32,
                 compiled: bool = False, in_chans: int = 3) -> Callable[[], None]:
    """The step a ceiling times: the backbone's forward + backward alone on ``views`` random views.

    No augmentation, relation head, loss or optimiser: ``backbone(x).float().sum().backward()`` on random
    views of ``in_chans`` × ``size`` × ``size`` under
    the precision's autocast (``compiled``: ``torch.compile``-d, as ``pretrain --compile on``), with the
    allocator setting of a run.
    """
    from rr_zoo.models import build_backbone
    from training.method.step import autocast_context
    from training.runtime.allocator import keep_freed_memory

    keep_freed_memory()  # as pretrain does: without it every step pays ~280k page faults
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_backbone(arch, in_chans=in_chans).to(memory_format=layout)
    if compiled:
        model.compile()
    x = torch.randn(views, in_chans, size, size).contiguous(memory_format=layout)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast_context("cpu", precision):
            out = model(x)
        out.float().sum().backward()

    return step


def backbone_ceiling(arch: str, views: int, precision: str, channels_last: bool, steps: int = 3,
                     size: int = 32, compiled: bool = False) -> float:
    """Views/s of :func:`ceiling_step` (the backbone's forward + backward alone): a step's ceiling.

    Timed as our timed epoch is: ``steps`` untimed calls (our warm-up epoch), then ``steps`` consecutive
    calls, total views over total seconds (not the fastest single call, which a noisy machine biases
    upward). On the current thread count.
    """
    step = ceiling_step(arch, views, precision, channels_last, size, compiled)
    for _ in range(steps):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return views * steps / (time.perf_counter() - t0)


def ceiling_variants(arch: str) -> list[tuple[str, bool, bool]]:
    """(precision, channels_last, compiled) the ceiling is timed in: fp32, and bf16 where the CPU has it,
    eager in both layouts, and compiled in ``channels_last`` where ``pretrain --compile auto`` compiles."""
    from training.runtime.compile import compile_pays_on_cpu
    from training.runtime.precision import resolve_precision

    precisions = ["fp32"] + (["bf16"] if resolve_precision("auto") == "bf16" else [])
    return [(p, cl, False) for p in precisions for cl in (False, True)] + [
        (p, True, True) for p in precisions if compile_pays_on_cpu(arch, p)]


def variant_name(precision: str, channels_last: bool, compiled: bool) -> str:
    """``"fp32 channels_last"``, ``"bf16 contiguous"``, ``"fp32 channels_last compiled"``, ..."""
    return f"{precision} {'channels_last' if channels_last else 'contiguous'}{' compiled' if compiled else ''}"


# ----------------------------------------------------------------------------- subprocesses
def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, float]:
    """Run ``cmd``; returns (wall seconds, its own peak RSS in MiB, its CPU seconds per wall second).

    Raises with the log's tail on failure.
    """
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; log {log}:\n{tail}")
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return wall, rss, (usage.ru_utime + usage.ru_stime) / wall


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


class Harness:
    """Paths and settings shared by the runs of one benchmark."""

    def __init__(self, repo: Path, work: Path, threads: int, workers: int, python: str,
                 data: BenchData = BENCH_DATA["cifar10"]) -> None:
        self.repo, self.work, self.threads, self.workers, self.python = repo, work, threads, workers, python
        self.dataset = data
        self.data = work / "data"
        self.driver = DRIVER
        self.runs = 0

    def _next(self, tag: str) -> Path:
        """A fresh run folder; the original reads ./data (relative to its working directory): a link."""
        self.runs += 1
        path = self.work / f"{self.runs:03d}_{tag}"
        path.mkdir()
        (path / "data").symlink_to(self.data, target_is_directory=True)
        return path

    def _driver_cmd(self, mode: str, arch: str, k: int, m: int, steps: int, epochs: int, result: Path):
        return [self.python, str(self.driver), "--repo", str(self.repo), "--mode", mode, "--arch", arch,
                "--k", str(k), "--m", str(m), "--steps", str(steps), "--epochs", str(epochs),
                "--threads", str(self.threads), "--workers", str(self.workers), "--result", str(result),
                "--flop-m", str(FLOP_M), "--flop-ks", ",".join(map(str, FLOP_KS)),
                "--dataset", self.dataset.original, "--size", str(self.dataset.size)]

    def original_flops(self, arch: str, k: int, m: int) -> float:
        run = self._next(f"original_flops_{arch}")
        _run(self._driver_cmd("flops", arch, 2, m, 1, 1, run / "result.json"), run, _env(self.threads),
             run / "log.txt")
        counted = json.loads((run / "result.json").read_text())["flops"]
        return scale_flops({int(kk): v for kk, v in counted["per_k"].items()}, counted["m"], m, k)

    def original(self, arch: str, k: int, m: int, steps: int) -> dict[str, Any]:
        """One original run: warm-up epoch + timed epoch (each ``steps`` steps; 0: full)."""
        run = self._next(f"original_{arch}_k{k}")
        wall, rss, cpu = _run(self._driver_cmd("train", arch, k, m, steps, 2, run / "result.json"), run,
                              _env(self.threads), run / "log.txt")
        res = json.loads((run / "result.json").read_text())
        timed = res["epochs"][-1]
        shutil.rmtree(run / "checkpoint", ignore_errors=True)  # its log and the checkpoint it saves
        return {"views_per_s": timed["views_per_s"], "seconds": timed["seconds"], "steps": timed["steps"],
                "views": timed["images"] * k, "dataset_size": res["dataset_size"], "threads": res["threads"],
                "peak_rss_mib": rss, "process_wall_s": wall, "process_cpu_per_wall": cpu}

    def ceiling(self, arch: str, k: int, m: int, steps: int) -> dict[str, float]:
        """Backbone-only views/s on K·M views per ``"<precision> <layout>"``, timed as our timed epoch
        (:func:`backbone_ceiling`; ``steps`` 0: :data:`CEILING_FULL_EPOCH_STEPS`), in one fresh subprocess."""
        run = self._next(f"ceiling_{arch}_k{k}")
        _run([self.python, "-m", "training.bench.original", "ceiling", arch, str(k * m), str(self.threads),
              str(run / "result.json"), str(self.dataset.size), str(steps or CEILING_FULL_EPOCH_STEPS)],
             PROJECT_ROOT, _env(self.threads), run / "log.txt")
        return json.loads((run / "result.json").read_text())

    def ours(self, arch: str, k: int, m: int, steps: int, precision: str = "fp32") -> dict[str, Any]:
        """One ``python -m training pretrain`` run: warm-up epoch + timed epoch.

        ``--compile`` is what ``auto`` picks for a full-length run of this backbone and precision
        (a benchmark run is too short for ``auto`` to compile; the first compiled step is in the warm-up).
        """
        from training.runtime.compile import compile_pays_on_cpu
        from training.runtime.precision import resolve_precision

        compiled = compile_pays_on_cpu(arch, resolve_precision(precision))
        run = self._next(f"ours_{precision}_{arch}_k{k}")
        cmd = [self.python, "-m", "training", "pretrain", "--entry", self.dataset.entry.format(arch=arch),
               "--architecture", arch, "--dataset", self.dataset.ours, "--data-root", str(self.data),
               "--k", str(k), "--batch-size", str(m),
               "--epochs", "2", "--seed", "0", "--threads", str(self.threads), "--precision", precision,
               "--compile", "on" if compiled else "off",
               "--no-progress", "--ckpt-every-steps", "0", "--out", str(run / "out")]
        if steps:
            cmd += ["--steps-per-epoch", str(steps)]
        wall, rss, cpu = _run(cmd, PROJECT_ROOT, _env(self.threads), run / "log.txt")
        logs = read_log(run / "out" / LOG)
        timed = logs[-1]
        shutil.rmtree(run / "out")
        n_steps = steps or None
        return {"views_per_s": timed["views_per_s"], "seconds": timed["seconds"],
                "steps": n_steps if n_steps else round(timed["views_per_s"] * timed["seconds"] / (k * m)),
                "views": round(timed["views_per_s"] * timed["seconds"]), "peak_rss_mib": rss,
                "process_wall_s": wall, "process_cpu_per_wall": cpu, "compiled": compiled,
                "command": "python -m training " + shlex.join(cmd[3:])}


# ----------------------------------------------------------------------------- the benchmark
def _git_commit(repo: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def check_original_repo(repo: str | Path) -> Path:
    """The clone's root; a clear error when it does not look like the original repository."""
    repo = Path(repo).expanduser().resolve()
    missing = [f for f in ("train_unsupervised.py", "datamanager.py", "methods/relationnet.py")
               if not (repo / f).is_file()]
    if missing:
        raise FileNotFoundError(f"--original-repo {repo}: not a clone of mpatacchiola/self-supervised-relational-"
                                f"reasoning (missing {', '.join(missing)}); clone it with: git clone "
                                "https://github.com/mpatacchiola/self-supervised-relational-reasoning")
    return repo


def bench_config(h: Harness, arch: str, k: int, m: int, steps: int, repeats: int, dataset_size: int,
                 peaks: list[dict[str, float]], matmul_n: int = 2048) -> dict[str, Any]:
    """Interleaved, best-of-``repeats`` comparison of one (arch, K); appends a peak measurement per repeat.

    Sides: ``original`` (fp32, the only precision it has), ``ours`` (``--precision fp32``) and, where
    ``--precision auto`` picks bf16 on this CPU, ``ours_default`` (what a user gets by default). Every
    repeat also times the backbone-only ceiling (:func:`backbone_ceiling`, fresh subprocess) in each
    precision and layout; each of our steps is reported as a share of the best ceiling of its precision
    in the layout it trains in (``channels_last``).
    """
    from training.runtime.precision import resolve_precision

    default = resolve_precision("auto")
    row: dict[str, Any] = {"arch": arch, "k": k, "m": m, "views_per_step": k * m, "default_precision": default,
                           "image_size": h.dataset.size}
    row["flops_per_view"] = {"original": h.original_flops(arch, k, m) / (k * m),
                             "ours": ours_flops_per_step(arch, k, m, h.dataset.size) / (k * m)}
    sides = {"original": lambda: h.original(arch, k, m, steps), "ours": lambda: h.ours(arch, k, m, steps)}
    if default != "fp32":
        sides["ours_default"] = lambda: h.ours(arch, k, m, steps, precision="auto")
    runs: dict[str, list] = {side: [] for side in sides}
    ceilings: list[dict[str, float]] = []
    for rep in range(repeats):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        for side in order:
            runs[side].append(sides[side]())
            r = runs[side][-1]
            print(f"  {arch} K={k} repeat {rep + 1}/{repeats} {side}: {r['views_per_s']:.0f} views/s, "
                  f"{r['steps']} timed steps, peak RSS {r['peak_rss_mib']:.0f} MiB, "
                  f"CPU/wall {r['process_cpu_per_wall']:.2f}", flush=True)
        ceilings.append(h.ceiling(arch, k, m, steps))
        print(f"  {arch} K={k} repeat {rep + 1}/{repeats} backbone alone: "
              + ", ".join(f"{name} {v:.0f}" for name, v in ceilings[-1].items()) + " views/s", flush=True)
        peaks.append(measure_peaks(matmul_n))
    row["ceiling_views_per_s"] = {name: max(c[name] for c in ceilings) for name in ceilings[0]}
    row["ceiling_views_per_s_all"] = ceilings
    for side, rs in runs.items():
        best = max(rs, key=lambda r: r["views_per_s"])
        images_per_epoch = (dataset_size if side == "original" else dataset_size // m * m)
        row[side] = {"views_per_s": best["views_per_s"], "views_per_s_all": [r["views_per_s"] for r in rs],
                     "timed_steps": best["steps"], "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
                     "process_cpu_per_wall_all": [r["process_cpu_per_wall"] for r in rs],
                     "epoch_seconds_extrapolated": images_per_epoch * k / best["views_per_s"]}
        if side != "original":
            precision = "fp32" if side == "ours" else default
            row[side]["precision"] = precision
            row[side]["command"] = best["command"]
            row[side]["compiled"] = best["compiled"]
            ceiling = row["ceiling_views_per_s"][variant_name(precision, True, best["compiled"])]
            row[side]["share_of_ceiling"] = best["views_per_s"] / ceiling
            row[f"ratio{side[4:]}"] = best["views_per_s"] / row["original"]["views_per_s"]
    add_shares(row, peaks)
    return row


def add_shares(row: dict[str, Any], peaks: list[dict[str, float]]) -> None:
    """Each side's achieved FLOP/s as a share of the best matmul and convolution FLOP/s measured."""
    for side in (side for side in ("original", "ours", "ours_default") if side in row):
        achieved = row[side]["views_per_s"] * row["flops_per_view"]["original" if side == "original" else "ours"]
        row[side]["achieved_flops_per_s"] = achieved
        for kind in ("matmul", "conv"):
            row[side][f"{kind}_share"] = achieved / max(p[kind] for p in peaks)


def run_original_benchmark(repo: str | Path, archs: list[str], ks: list[int], m: int = 64, steps: int = 5,
                           repeats: int = 3, threads: int = 1, workers: int = 0,
                           out_dir: str | Path = "benchmarks/out", images=None, labels=None,
                           classes: list[str] | None = None, python: str = sys.executable,
                           keep_work: bool = False, matmul_n: int = 2048,
                           combined_name: str = "original.json", dataset: str = "cifar10") -> dict[str, Any]:
    """Benchmark the original clone against ``python -m training pretrain``; writes one JSON per config.

    Args:
        repo: The user's clone of the original repository.
        archs, ks: Backbones (``conv4``, ``resnet8/32/56``) and K values; every pair is run.
        m: Images per step (M) for both sides.
        steps: Timed steps per run, after a warm-up epoch of the same length (0: full epochs).
        repeats: Runs per side, interleaved; the best views/s is reported.
        threads: Torch threads for both sides (and for the matmul / convolution peaks).
        workers: The original's DataLoader ``num_workers`` (0: augmentation in-process, like ours).
        out_dir: Where ``original_<arch>_k<K>.json`` (one per config) and ``combined_name`` (all) go.
        images, labels, classes: uint8 (N, 3, 32, 32) images to use (``dataset`` cifar10); default: the
            dataset's own files (:data:`BENCH_DATA`).
        dataset: What both sides train on (:data:`BENCH_DATA`): ``cifar10`` (the shared ``cifar10_4k`` pack as
            CIFAR-10 pickles, 32×32) or ``tinyimagenet`` (20 real training JPEGs per class, 64×64).
        python: Interpreter for both sides' subprocesses.
        keep_work: Keep the temp folder (data, logs) and report its path.
        matmul_n: Side of the square fp32 matmul timed for the machine's peak (measured at the start and
            after every repeat; the best is used).
    """
    repo = check_original_repo(repo)
    if dataset not in BENCH_DATA:
        raise ValueError(f"unknown benchmark dataset {dataset!r}; choose from {sorted(BENCH_DATA)}")
    if images is not None and dataset != "cifar10":
        raise ValueError("caller-supplied images are written as CIFAR-10 pickles: use dataset='cifar10'")
    work = Path(tempfile.mkdtemp(prefix="rr_bench_original_"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if images is None:
            source, n_images = BENCH_DATA[dataset].write(work / "data")
        else:
            source, n_images = "caller-supplied images", int(len(images))
            labels = np.zeros(len(images), dtype=np.int64) if labels is None else labels
            write_cifar10_pickles(images, labels, classes or [str(i) for i in range(10)], work / "data")
        h = Harness(repo, work, threads, workers, python, BENCH_DATA[dataset])
        torch.set_num_threads(threads)
        peaks = [measure_peaks(matmul_n)]
        _, baseline_rss, _ = _run([python, "-c", "import torch, torchvision"], work, _env(threads), work / "import.log")
        from training.release.provenance import code_commit

        ceiling_calls = steps or CEILING_FULL_EPOCH_STEPS
        meta = {"original_repo": str(repo), "original_commit": _git_commit(repo), "code_commit": code_commit(),
                "command": "python -m training benchmark " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == [
                    "benchmark"] else None, "images": source,
                "dataset": dataset, "image_size": h.dataset.size, "n_images": n_images, "m": m, "threads": threads,
                "original_num_workers": workers,
                "precision": "fp32", "repeats": repeats, "steps": steps,
                "import_torch_torchvision_rss_mib": baseline_rss,  # what both sides pay before any work
                "timing": (f"each run: warm-up epoch + timed epoch of {steps} steps (M={m}); best of {repeats}, "
                           "interleaved" if steps else f"each run: warm-up epoch + timed full epoch; best of "
                           f"{repeats}, interleaved") + (
                    f"; backbone alone: {ceiling_calls} untimed + {ceiling_calls} timed consecutive calls, "
                    f"best of {repeats}"),
                "machine": machine_record()}
        print(f"fp32, {threads} thread(s): matmul {peaks[0]['matmul'] / 1e9:.1f} GFLOP/s, conv "
              f"{peaks[0]['conv'] / 1e9:.1f} GFLOP/s; `import torch, torchvision` alone peaks at "
              f"{baseline_rss:.0f} MiB RSS; original commit {meta['original_commit']}", flush=True)
        rows = []
        for arch in archs:
            for k in ks:
                rows.append(bench_config(h, arch, k, m, steps, repeats, n_images, peaks, matmul_n))
                print(format_row(rows[-1]), flush=True)
        for row in rows:  # shares against the best peak measured over the whole run
            add_shares(row, peaks)
        meta["machine"]["fp32_flops_per_s"] = {kind: max(p[kind] for p in peaks) for kind in ("matmul", "conv")}
        meta["machine"]["fp32_flops_per_s_measurements"] = peaks
        for row in rows:
            suffix = "" if dataset == "cifar10" else f"_{dataset}"
            write_result(out_dir / f"original_{row['arch']}_k{row['k']}{suffix}.json", {**meta, "row": row})
        result = {**meta, "rows": rows}
        write_result(out_dir / combined_name, result)
        if keep_work:
            result["work_dir"] = str(work)
        return result
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


HEADER = ("| arch | K | M | timed steps | original views/s | ours fp32 views/s | ours fp32 / original | "
          "ours fp32 / its backbone alone | ours default (precision) views/s | default / original | "
          "default / its backbone alone | peak RSS MiB orig / ours | share of conv peak orig / ours |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def format_row(r: dict[str, Any]) -> str:
    o, u = r["original"], r["ours"]
    d = r.get("ours_default")
    default = (f"{d['views_per_s']:.0f} ({d['precision']}{', compiled' if d.get('compiled') else ''}) | "
               f"{r['ratio_default']:.2f}x | "
               f"{100 * d['share_of_ceiling']:.0f}%" if d else f"= fp32 ({r['default_precision']}) | - | -")
    compiled = " (compiled)" if u.get("compiled") else ""
    return (f"| {r['arch']} | {r['k']} | {r['m']} | {o['timed_steps']} / {u['timed_steps']} | "
            f"{o['views_per_s']:.0f} | {u['views_per_s']:.0f}{compiled} | {r['ratio']:.2f}x | "
            f"{100 * u['share_of_ceiling']:.0f}% | {default} | "
            f"{o['peak_rss_mib']:.0f} / {u['peak_rss_mib']:.0f} | "
            f"{100 * o['conv_share']:.0f}% / {100 * u['conv_share']:.0f}% |")


def format_table(result: dict[str, Any]) -> str:
    """Markdown table of a result (``run_original_benchmark``'s return value or ``original.json``)."""
    return HEADER + "\n" + "\n".join(format_row(r) for r in result["rows"])


def run_from_args(args) -> int:
    """The ``benchmark --original-repo`` path of the CLI.

    All rows go to ``--out`` (its default, benchmark.json, becomes original.json beside it), one file per
    configuration ``original_<arch>_k<K>.json`` beside it.
    """
    out = Path(args.out)
    out = out.with_name("original.json") if out.name == "benchmark.json" else out
    try:
        check_original_repo(args.original_repo)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    result = run_original_benchmark(args.original_repo, args.archs, args.ks, m=args.m, steps=args.steps,
                                    repeats=args.repeats, threads=args.threads or 1,
                                    workers=args.original_workers, out_dir=out.parent, combined_name=out.name,
                                    dataset=args.dataset)
    print(f"\n{format_table(result)}\nwrote {out} and original_<arch>_k<K>.json beside it")
    return 0


def _ceiling_child(argv: list[str]) -> int:
    """``python -m training.bench.original ceiling ARCH VIEWS THREADS OUT [SIZE [STEPS]]``: the ceiling subprocess."""
    arch, views, threads, out = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    size = int(argv[4]) if len(argv) > 4 else 32
    steps = int(argv[5]) if len(argv) > 5 else 3
    torch.set_num_threads(threads)
    result = {variant_name(p, cl, c): backbone_ceiling(arch, views, p, cl, steps=steps, size=size, compiled=c)
              for p, cl, c in ceiling_variants(arch)}
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["ceiling"]:
        sys.exit("usage: python -m training.bench.original ceiling ARCH VIEWS THREADS OUT [SIZE [STEPS]] "
                 "(run by the benchmark)")
    sys.exit(_ceiling_child(sys.argv[2:]))
