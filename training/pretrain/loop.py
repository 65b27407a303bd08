"""Relational-reasoning pretraining: the resumable loop around the method's step (``training.method.step``).

Data flow: uint8 images (decoded once) -> K views per image made on the training device
(``training.pretrain.augment``) -> :func:`~training.method.step.train_step`. Checkpoints are atomic
and hold every RNG state and the data position, so a run killed at any point resumes to the same result.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from rr_zoo.atomic import atomic_write
from training.data import DataRequest, get_dataset_spec, load_split, subset_indices
from training.method.step import RelationalModel, build_model, build_optimizer, train_step
from training.pretrain.augment import make_views
from training.pretrain.checkpoint import TrainingCheckpoint, atomic_write_text, load_checkpoint
from training.pretrain.inputs import augment_config, data_request
from training.pretrain.recipes import Recipe, RecipeError, RunOptions, evaluation_split
from training.release.provenance import code_commit, environment
from training.run_folders import CHECKPOINT, CURVES_PNG, EPOCH_CHECKPOINT, LOG, SUMMARY, read_log
from training.runtime.allocator import keep_freed_memory
from training.runtime.compile import resolve_compile
from training.runtime.machine import peak_cuda_mib, peak_rss_mib
from training.runtime.precision import native_bf16, resolve_precision


# ----------------------------------------------------------------------------- setup
def dist_info() -> tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[str, bool]:
    """Join the torchrun process group if launched by torchrun and not joined yet.

    Returns:
        The device to use, and whether this call joined the group (then the caller leaves it).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device, False
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}", True
    return device, True


def run_precision(opts: RunOptions, device: str, ckpt_path: Path) -> tuple[str, str]:
    """The precision a run trains in, and why (:func:`training.runtime.precision.resolve_precision`).

    ``auto`` resolves on this machine, except that a resumed run keeps the precision its
    checkpoint recorded (a resume continues the same computation).
    """
    if opts.precision != "auto":
        return opts.precision, "--precision " + opts.precision
    if opts.resume and ckpt_path.is_file():
        recorded = (load_checkpoint(ckpt_path).options or {}).get("precision")
        if recorded in ("fp32", "bf16", "fp16"):
            return recorded, "auto: the precision recorded in the checkpoint being resumed"
    _, why = native_bf16(device)
    return resolve_precision("auto", device), f"auto: {why}"


# ----------------------------------------------------------------------------- loop helpers
def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Deterministic shuffle of the dataset for an epoch (same on every process)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and exits cleanly at the next step."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.stop:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.stop = True
        print(f"\nsignal {signum}: saving a checkpoint and stopping (Ctrl-C again to abort)", flush=True)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def plot_training_curves(log_path: Path, out_png: Path) -> Path | None:
    """Loss and pair accuracy per epoch from ``log.jsonl`` as a PNG."""
    rows = [r for r in read_log(log_path) if r.get("kind") == "epoch"]
    if not rows:
        return None
    from matplotlib.figure import Figure  # no pyplot: no backend to choose, nothing left open

    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    axes[0].plot(epochs, [r["loss"] for r in rows], marker="o")
    axes[0].set(xlabel="epoch", ylabel="focal loss", title="relation loss")
    axes[1].plot(epochs, [r["acc_pos"] for r in rows], marker="o", label="positives")
    axes[1].plot(epochs, [r["acc_neg"] for r in rows], marker="o", label="negatives")
    knn = [(r["epoch"], r["knn_acc"]) for r in rows if r.get("knn_acc") is not None]
    if knn:
        axes[1].plot(*zip(*knn), marker="s", label="online kNN (%)")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="pair accuracy")
    axes[1].legend()
    fig.tight_layout()
    atomic_write(out_png, lambda fh: fig.savefig(fh, format="png", dpi=100))
    return out_png


# ----------------------------------------------------------------------------- the run
def pretrain(recipe: Recipe, opts: RunOptions) -> dict[str, Any]:
    """Run (or resume) relational-reasoning pretraining.

    Args:
        recipe: Hyperparameters.
        opts: Execution options.

    Returns:
        Summary dict: final epoch log, paths of checkpoint/log/plot, whether it stopped early.
    """
    if opts.num_threads:
        torch.set_num_threads(opts.num_threads)
    keep_freed_memory()  # no page faults on the step's large tensors (training/runtime/allocator.py)
    device, joined_here = init_distributed(opts.device)
    try:
        return _pretrain(recipe, opts, device)
    finally:
        if joined_here:
            # leave the group before exit: gloo's threads still running at interpreter exit abort the process
            dist.destroy_process_group()


@dataclass
class _Run:
    """Everything one pretraining process holds: set up by :func:`_set_up`, advanced by :func:`_train_epoch`."""

    recipe: Recipe
    opts: RunOptions
    device: str
    rank: int
    world: int
    local_m: int                      # images per step on this process
    out: Path
    request: DataRequest
    spec: Any                         # the dataset's DatasetSpec (a folder's, built for the run)
    images: torch.Tensor              # uint8 (N, C, H, W), on the device for CUDA
    steps_per_epoch: int
    preprocessing: dict[str, Any]
    init_record: dict[str, Any] | None
    model: RelationalModel
    model_fwd: nn.Module              # the model, DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    aug_gen: torch.Generator
    aug_cfg: Any                      # AugmentConfig
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    acc: dict[str, float] = field(default_factory=lambda: _new_accumulator())
    env: dict[str, Any] = field(default_factory=dict)  # provenance of the run's start (rank 0), kept across resumes
    train_seconds: float = 0.0        # wall time of training steps, summed over resumes
    segments: list[dict[str, Any]] = field(default_factory=list)  # one per start or resume (_start_segment)

    @property
    def ckpt_path(self) -> Path:
        return self.out / CHECKPOINT


def _pretrain(recipe: Recipe, opts: RunOptions, device: str) -> dict[str, Any]:
    """:func:`pretrain` once the process group (if any) is joined and ``device`` resolved."""
    run = _set_up(recipe, opts, device)
    stopped, last_log = False, {}
    with StopFlag() as flag:
        while run.epoch < recipe.epochs and not stopped:
            stopped = _train_epoch(run, flag)
            if not stopped:
                last_log = _end_epoch(run)
    return _finish(run, stopped, last_log)


def _processes(recipe: Recipe, device: str) -> tuple[int, int, int]:
    """(rank, world size, images per step on this process), checked against the device and batch size."""
    rank, world = dist_info()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RecipeError(f"device={device!r} but CUDA is not available here; use --device cpu")
    if recipe.batch_size % world:
        raise RecipeError(f"batch_size={recipe.batch_size} must be divisible by the {world} processes")
    local_m = recipe.batch_size // world
    if local_m < 2:
        raise RecipeError(f"each process needs >= 2 images per step; got {local_m}")
    return rank, world, local_m


def _set_up(recipe: Recipe, opts: RunOptions, device: str) -> _Run:
    """Data, model, optimiser and RNG of a run, restored from its checkpoint with ``--resume``.

    Every check of the inputs (data, ``--init``) comes before anything is written.
    """
    rank, world, local_m = _processes(recipe, device)
    out = Path(opts.out)
    ckpt = load_checkpoint(out / CHECKPOINT) if opts.resume else None  # read first: a folder keeps its normalisation
    request = data_request(recipe, opts, ckpt, progress=opts.progress and rank == 0)
    spec = get_dataset_spec(recipe.dataset, request)
    images, steps_per_epoch = _training_images(recipe, opts, request, device)
    if opts.knn_every and spec.num_classes == 0:
        raise RecipeError(f"--knn-every needs labels and {recipe.dataset} has none (no class sub-folders); "
                          "leave out --knn-every")
    init = None  # --init: checked and loaded before anything is written
    if recipe.init is not None and ckpt is None:
        from training.pretrain.init import load_init

        init = load_init(recipe.init, recipe, spec.channels)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    model = _place_model(recipe, opts, spec.channels, init, device, world)
    precision, why = run_precision(opts, device, out / CHECKPOINT)
    opts = replace(opts, precision=precision)  # recorded in the checkpoint: the reproducing command pins it
    if rank == 0:
        print(json.dumps({"kind": "precision", "precision": precision, "why": why}), flush=True)
    run = _Run(
        recipe=recipe, opts=opts, device=device, rank=rank, world=world, local_m=local_m, out=out,
        request=request, spec=spec, images=images, steps_per_epoch=steps_per_epoch,
        preprocessing={"input_size": list(spec.input_size), "mean": list(spec.mean), "std": list(spec.std)},
        init_record=init.record if init is not None else (ckpt.init if ckpt is not None else None),
        model=model, model_fwd=model, optimizer=build_optimizer(recipe, model.parameters()),
        scaler=torch.amp.GradScaler("cuda") if opts.precision == "fp16" else None,
        aug_gen=torch.Generator(device=device).manual_seed(recipe.seed * 7919 + rank),
        aug_cfg=augment_config(recipe, spec))
    if ckpt is not None:
        restore(ckpt, recipe, model, run.optimizer, run.scaler, run.aug_gen, rank)
        run.epoch, run.step_in_epoch, run.global_step = ckpt.epoch, ckpt.step_in_epoch, ckpt.global_step
        run.acc, run.env, run.train_seconds = dict(ckpt.accumulator), ckpt.environment, ckpt.train_seconds
        run.segments = [dict(s) for s in ckpt.segments]
    elif rank == 0:
        (out / LOG).unlink(missing_ok=True)
    if rank == 0 and not run.env:
        run.env = environment(device, opts.num_threads)
    _compile(run)
    _start_segment(run)
    run.model_fwd = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    return run


def _training_images(recipe: Recipe, opts: RunOptions, request: DataRequest, device: str,
                     ) -> tuple[torch.Tensor, int]:
    """The split's uint8 images (on the GPU for CUDA, as airbench does) and the steps per epoch."""
    images = load_split(recipe.dataset, recipe.split, root=opts.data_root, request=request).images
    if device.startswith("cuda"):
        images = images.to(device)
    steps_per_epoch = images.shape[0] // recipe.batch_size  # drop the last partial batch
    if opts.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, opts.steps_per_epoch)
    if steps_per_epoch < 1:
        raise RecipeError(f"{recipe.dataset}/{recipe.split} has {images.shape[0]} images, fewer than "
                          f"batch_size={recipe.batch_size}; use more images or a smaller --batch-size")
    return images, steps_per_epoch


def _place_model(recipe: Recipe, opts: RunOptions, channels: int, init, device: str, world: int) -> RelationalModel:
    """The seeded model (with ``--init`` weights), on the device in the run's memory format."""
    model = build_model(recipe, channels)
    if init is not None:
        from training.pretrain.init import apply_init

        apply_init(init, model.backbone, model.head)
    memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format
    model.backbone.to(device, memory_format=memory_format)
    model.head.to(device)
    if world > 1 and opts.sync_bn:
        model.backbone = nn.SyncBatchNorm.convert_sync_batchnorm(model.backbone)
    if opts.grad_checkpointing:
        model.backbone.set_grad_checkpointing(True)
    return model


def _compile(run: _Run) -> None:
    """``torch.compile`` the backbone where ``--compile`` says so for the steps left; record the choice."""
    recipe, opts = run.recipe, run.opts
    steps_left = (recipe.epochs - run.epoch) * run.steps_per_epoch - run.step_in_epoch
    compiled, why = resolve_compile(opts.compile, recipe.architecture, opts.precision, run.device, steps_left,
                                    opts.grad_checkpointing)
    run.opts = replace(opts, compile="on" if compiled else "off")  # recorded in the checkpoint's options
    if run.rank == 0:
        print(json.dumps({"kind": "compile", "compiled": compiled, "why": why}), flush=True)
    if compiled:
        run.model.backbone.compile()  # in place: state-dict keys unchanged


def _start_segment(run: _Run) -> None:
    """Record how this start or resume of the run executes (from which step, device, threads, precision,
    compiled or not, the code commit, when): the checkpoint keeps one record per segment, and provenance
    reports them."""
    from training.runtime.machine import other_runnable_tasks

    on_cpu = run.device == "cpu"
    run.segments.append({
        "from_step": run.global_step, "train_seconds_at_start": round(run.train_seconds, 1),
        "device": run.device, "world_size": run.world,
        "threads": torch.get_num_threads() if on_cpu else None, "precision": run.opts.precision,
        "compiled": run.opts.compile == "on", "code_commit": code_commit() if run.rank == 0 else None,
        "other_runnable_tasks": other_runnable_tasks(samples=3) if on_cpu and run.rank == 0 else None,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })


def _save(run: _Run, reason: str) -> None:
    """Checkpoint the run (every process takes part under DDP: the augmentation RNG states are gathered)."""
    aug_states = [run.aug_gen.get_state().cpu()]
    if run.world > 1:
        gathered: list = [None] * run.world
        dist.all_gather_object(gathered, aug_states[0])
        aug_states = gathered
    if run.rank != 0:
        return
    recipe = run.recipe
    TrainingCheckpoint(
        entry=recipe.entry, architecture=recipe.architecture, dataset=recipe.dataset, in_chans=run.spec.channels,
        recipe=recipe.to_dict(), options={k: v for k, v in asdict(run.opts).items() if k != "extra"},
        backbone=run.model.backbone.state_dict(), relation=run.model.head.state_dict(),
        optimizer=run.optimizer.state_dict(), scaler=run.scaler.state_dict() if run.scaler else None,
        epoch=run.epoch, step_in_epoch=run.step_in_epoch, global_step=run.global_step, accumulator=run.acc,
        rng={"aug": aug_states, "torch": torch.get_rng_state()}, saved_because=reason, world_size=run.world,
        environment=run.env, train_seconds=run.train_seconds, preprocessing=run.preprocessing,
        init=run.init_record, segments=run.segments,
    ).save(run.ckpt_path)


def _train_epoch(run: _Run, flag: StopFlag) -> bool:
    """The rest of the current epoch's steps; True when a signal stopped the run (a checkpoint is saved)."""
    recipe, opts, rank, m = run.recipe, run.opts, run.rank, run.local_m
    perm = epoch_permutation(run.images.shape[0], recipe.seed, run.epoch)
    bar = _progress(opts.progress and rank == 0, run.steps_per_epoch, run.step_in_epoch, run.epoch, recipe.epochs)
    t_start = time.perf_counter()
    stopped = False
    while run.step_in_epoch < run.steps_per_epoch:
        idx = perm[run.step_in_epoch * recipe.batch_size:(run.step_in_epoch + 1) * recipe.batch_size]
        idx = idx[rank * m:(rank + 1) * m]
        batch = run.images[idx.to(run.images.device)].to(run.device, non_blocking=True)
        views = make_views(batch, recipe.k, run.aug_cfg, generator=run.aug_gen, channels_last=opts.channels_last)
        loss, stats = train_step(run.model_fwd, run.optimizer, views, recipe, opts.precision, run.scaler)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at epoch {run.epoch} step {run.step_in_epoch}; "
                                     "try --precision fp32 or a lower --lr")
        step_seconds = time.perf_counter() - t_start
        _accumulate(run.acc, loss, stats, step_seconds, m * recipe.k)
        run.train_seconds += step_seconds
        t_start = time.perf_counter()
        run.step_in_epoch += 1
        run.global_step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{run.acc['loss_sum'] / run.acc['steps']:.4f}")
        stop_now = _agree(flag.stop, run.device)
        if stop_now or (opts.ckpt_every_steps and run.global_step % opts.ckpt_every_steps == 0):
            _save(run, "signal" if stop_now else "steps")
        if stop_now:
            stopped = True
            break
    if bar is not None:
        bar.close()
    return stopped


def _end_epoch(run: _Run) -> dict[str, Any]:
    """Close a finished epoch: its log row (with the online kNN accuracy when due), a checkpoint, log.jsonl."""
    last_log = _epoch_log(run.acc, run.epoch, run.global_step, run.device)
    opts = run.opts
    if opts.knn_every and (run.epoch + 1) % opts.knn_every == 0 and run.rank == 0:
        last_log["knn_acc"] = online_knn(run.model.backbone, run.recipe, opts, run.device, request=run.request)
    run.epoch, run.step_in_epoch, run.acc = run.epoch + 1, 0, _new_accumulator()
    _save(run, "epoch")
    if opts.keep_epochs and run.rank == 0:  # the epoch's own copy: checkpoint.pt moves on with the run
        with open(run.ckpt_path, "rb") as src:
            atomic_write(run.out / EPOCH_CHECKPOINT.format(epoch=run.epoch), lambda fh: shutil.copyfileobj(src, fh))
    if run.rank == 0:
        with open(run.out / LOG, "a") as fh:
            fh.write(json.dumps(last_log) + "\n")
        print(json.dumps(last_log), flush=True)
    return last_log


def _finish(run: _Run, stopped: bool, last_log: dict[str, Any]) -> dict[str, Any]:
    """The run's summary (and, on rank 0, its curves.png and summary.json)."""
    out = run.out
    plot = plot_training_curves(out / LOG, out / CURVES_PNG) if run.rank == 0 and (out / LOG).exists() else None
    summary = {"stopped_early": stopped, "epoch": run.epoch, "global_step": run.global_step, "last": last_log,
               "checkpoint": str(run.ckpt_path), "log": str(out / LOG), "plot": str(plot) if plot else None}
    if run.rank == 0:
        atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


RESUMABLE_CHANGES = frozenset({"epochs"})  # recipe fields --resume may change


def restore(ckpt: TrainingCheckpoint, recipe: Recipe, model: RelationalModel, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler | None, aug_gen: torch.Generator, rank: int = 0) -> None:
    """Load a checkpoint's weights, optimiser, scaler and RNG states into a run of the same recipe.

    Raises:
        RecipeError: the recipe differs from the checkpoint's, or the file cannot be resumed (weights only).
    """
    # a field added since the checkpoint was written is absent from it: compared as its default (None).
    # ``epochs`` may change: it only says where the run stops (no schedule depends on it), so a finished
    # run is extended with --resume --epochs N.
    diff = {k: (ckpt.recipe.get(k), v) for k, v in recipe.to_dict().items()
            if k not in RESUMABLE_CHANGES and ckpt.recipe.get(k) != v}
    if diff:
        raise RecipeError(f"--resume with a different recipe than the checkpoint's: {diff} (checkpoint, now)")
    if not ckpt.resumable:
        raise RecipeError("--resume: the checkpoint holds weights only (no optimiser or RNG state); start a new run")
    model.backbone.load_state_dict(ckpt.backbone)
    model.head.load_state_dict(ckpt.relation)
    optimizer.load_state_dict(ckpt.optimizer)
    if scaler is not None and ckpt.scaler:
        scaler.load_state_dict(ckpt.scaler)
    aug_gen.set_state(ckpt.rng["aug"][rank].to(aug_gen.get_state().device))
    torch.set_rng_state(ckpt.rng["torch"])


def _agree(flag: bool, device: str) -> bool:
    """Under DDP, stop when any process was signalled (all must save together)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if device.startswith("cuda") else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _new_accumulator() -> dict[str, float]:
    return {"loss_sum": 0.0, "steps": 0, "correct_pos": 0, "n_pos": 0, "correct_neg": 0, "n_neg": 0,
            "seconds": 0.0, "views": 0}


def _accumulate(acc: dict[str, float], loss: float, stats: dict[str, torch.Tensor], seconds: float,
                views: int) -> None:
    acc["loss_sum"] += loss
    acc["steps"] += 1
    for key in ("correct_pos", "n_pos", "correct_neg", "n_neg"):
        acc[key] += int(stats[key])
    acc["seconds"] += seconds
    acc["views"] += views


def _epoch_log(acc: dict[str, float], epoch: int, global_step: int, device: str) -> dict[str, Any]:
    seconds = max(acc["seconds"], 1e-9)
    return {
        "kind": "epoch", "epoch": epoch + 1, "global_step": global_step,
        "loss": acc["loss_sum"] / max(acc["steps"], 1),
        "acc_pos": 100.0 * acc["correct_pos"] / max(acc["n_pos"], 1),
        "acc_neg": 100.0 * acc["correct_neg"] / max(acc["n_neg"], 1),
        "views_per_s": acc["views"] / seconds,
        "seconds": acc["seconds"],
        "peak_rss_mib": peak_rss_mib(),
        **({"peak_cuda_mib": peak_cuda_mib(device)} if device.startswith("cuda") else {}),
    }


def _progress(enabled: bool, total: int, initial: int, epoch: int, epochs: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True)


def _labelled(data):
    """The labelled images of a split (a folder may mix unlabelled ones in; -1)."""
    keep = data.labels >= 0
    return data if bool(keep.all()) else replace(data, images=data.images[keep], labels=data.labels[keep])


def online_knn(backbone: nn.Module, recipe: Recipe, opts: RunOptions, device: str, max_train: int = 10_000,
               request: DataRequest | None = None) -> float:
    """kNN accuracy (k=20) of the current backbone on the dataset's labelled splits (monitor only).

    ``request``: the run's :func:`data_request` (folder datasets; default: built from the recipe).
    """
    from training.evaluate.features import extract_features, knn_accuracy

    request = request or data_request(recipe, opts)
    spec = get_dataset_spec(recipe.dataset, request)
    train_split = "train" if recipe.split != "train" or "train" in spec.splits else recipe.split
    bank = load_split(recipe.dataset, train_split, root=opts.data_root, request=request)
    query = load_split(recipe.dataset, evaluation_split(recipe.dataset, opts.knn_split), root=opts.data_root,
                       request=request)
    bank, query = _labelled(bank), _labelled(query)
    idx = subset_indices(bank.images.shape[0], max_train)  # a random subset: some datasets are class-sorted
    f_bank = extract_features(backbone, bank.images[idx], spec.mean, spec.std, device=device)
    f_query = extract_features(backbone, query.images, spec.mean, spec.std, device=device)
    return knn_accuracy(f_bank, bank.labels[idx], f_query, query.labels)

