"""``pretrain --dry-run``: FLOPs and wall time of a recipe, in seconds and without building a full-size step.

Nothing of the recipe's full size is ever allocated (a ResNet-56 step at K = 32, M = 64 needs
gigabytes), and the dataset is not read: the split size comes from its ``DatasetSpec``.

What is measured here and what is derived (the output's ``measured`` / ``derived`` lists say it again):

- **FLOPs per step** (counted, then scaled exactly): ``FlopCounterMode`` counts one fp32 forward +
  backward of the real step (backbone, relation head, loss, ``backward``) on ``meta`` tensors
  (shapes, no data: no memory) of the recipe's image size, at M = 2 images with K = 2 and K = 3
  views. The counted operations (convolutions and matrix products) of a step are
  ``per_view · M·K + per_pair · M·K·(K−1)``: the backbone and the relation head's first layer
  (applied per view, ``RelationHead.forward_views``) run once per view, the rest of the head once
  per pair. Two counts fix ``per_view`` and ``per_pair`` exactly; the recipe's count follows
  (``tests/test_estimate.py`` checks it against a full count of the real step).
- **Seconds per step** (measured at small size, scaled linearly): the run's own code, at the run's
  precision and threads, timed on a few views: augmentation (``make_views``) per view, backbone
  forward + backward per view, relation head + loss + backward per image at the recipe's K (pairs
  per image are fixed by K), and one optimiser step (per parameter; over all of them for models up
  to 2 M parameters). The step is then ``optimiser + (augment + backbone) · M·K + head · M``.
  Against a short real run of the same recipe on an idle 2-core AMD EPYC (``benchmarks/dry_run_check.py``)
  the real step took 0.87-0.96x the estimate (Conv-4 K = 16, ResNet-32 K = 4 at 32x32 and 64x64, bf16).
- **GPU hours**: FLOPs / an assumed sustained throughput (:data:`GPU_ASSUMED_TFLOPS`), not measured.

``python -m training.bench.estimate --all-entries --out benchmarks/out/dry_run.json`` times every manifest
entry's ``pretrain --dry-run`` in its own process (wall time and peak RSS) and writes a JSON table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from training.pretrain.recipes import Recipe, RecipeError, RunOptions

# Sustained dense bf16 throughput assumed for one H100-class GPU on these small convnets
# (about 15% of its 990 TFLOP/s peak); an assumption, not a measurement.
GPU_ASSUMED_TFLOPS = 150.0
COUNT_M, COUNT_KS = 2, (2, 3)     # images, views per image of the two FLOP counts
BACKBONE_TIMED_FLOPS = 2e10       # size of the timed backbone batch: about this many FLOPs ...
MAX_TIMED_VIEWS = 256             # ... and at most this many views
BACKBONE_WARMUP_CALLS = 3         # untimed backbone calls first: oneDNN's first calls on a shape run slower
BACKBONE_TIMED_CALLS = 3          # then the fastest of this many
AUGMENT_TIMED_VIEWS = 128         # about this many views in the timed augmentation
HEAD_TIMED_PAIRS = 8_192          # about this many pairs in the timed relation-head batch
OPTIMIZER_TIMED_PARAMS = 2_000_000  # at most this many parameters in the timed optimiser step
LIMIT_S, LIMIT_RSS_MIB = 20.0, 1024.0  # what --all-entries checks each dry run against


@dataclass(frozen=True)
class StepFlops:
    """Counted FLOPs of one training step (forward + backward): ``per_view·M·K + per_pair·M·K·(K−1)``."""

    per_view: int
    per_pair: int
    counted_on: str = "meta"  # device of the two counts: meta (no memory), else cpu (tiny real tensors)

    def at(self, m: int, k: int) -> int:
        """FLOPs of a step with ``m`` images of ``k`` views."""
        return self.per_view * m * k + self.per_pair * m * k * (k - 1)


def count_step_flops(recipe: Recipe, m: int, k: int, in_chans: int, image_size: int,
                     grad_checkpointing: bool = False, device: str = "meta") -> int:
    """``FlopCounterMode`` count of one fp32 forward + backward of the step at ``m`` images × ``k`` views.

    On the ``meta`` device (the default) no tensor holds data, so the count costs no memory at any
    size; the operations, and so the count, are those of the real step (the accuracy counts of
    ``relation_loss`` are left out: they need data and do no matrix products).

    Args:
        recipe: Architecture, head, aggregation and loss (``k`` and ``batch_size`` become ``k`` and ``m``).
        m: Images.
        k: Views per image.
        in_chans: Image channels.
        image_size: View side, pixels.
        grad_checkpointing: Count the backbone's recomputed forward too.
        device: Where to build the model and views.

    Returns:
        Total FLOPs counted (convolutions and matrix products, forward and backward).
    """
    from rr_zoo.relation import focal_loss
    from training.method.step import build_model

    small = replace(recipe, batch_size=m, k=k)
    with torch.device(device):
        model = build_model(small, in_chans)
        views = torch.randn(m * k, in_chans, image_size, image_size)
    if grad_checkpointing:
        model.backbone.set_grad_checkpointing(True)
    gamma, alpha = (small.focal_gamma, small.focal_alpha) if small.loss == "focal" else (0.0, None)
    with FlopCounterMode(display=False) as counter:
        logits, targets = model(views, k, small.aggregation)
        focal_loss(logits, targets, gamma=gamma, alpha=alpha).backward()
    return int(counter.get_total_flops())


def step_flops(recipe: Recipe, in_chans: int, image_size: int, grad_checkpointing: bool = False) -> StepFlops:
    """Per-view and per-pair FLOPs from two small counts (M = 2; K = 2 and 3), solved exactly.

    The counts run on ``meta`` tensors; should an operation of the step not support them, on tiny
    real CPU tensors instead (same count, a few hundred MiB more for the largest backbones).
    """
    (k1, k2), m = COUNT_KS, COUNT_M
    try:
        device = "meta"
        f1, f2 = (count_step_flops(recipe, m, k, in_chans, image_size, grad_checkpointing) for k in (k1, k2))
    except (RuntimeError, NotImplementedError):
        device = "cpu"
        f1, f2 = (count_step_flops(recipe, m, k, in_chans, image_size, grad_checkpointing, device=device)
                  for k in (k1, k2))
    # f = a·m·k + b·m·k·(k−1): a 2×2 linear system in (a, b), solved in integers
    v1, p1, v2, p2 = m * k1, m * k1 * (k1 - 1), m * k2, m * k2 * (k2 - 1)
    det = v1 * p2 - v2 * p1
    per_view, rem_a = divmod(f1 * p2 - f2 * p1, det)
    per_pair, rem_b = divmod(v1 * f2 - v2 * f1, det)
    if rem_a or rem_b:
        raise ArithmeticError(f"FLOP counts {f1}, {f2} are not of the form a·views + b·pairs; "
                              "the step has an operation that scales otherwise")
    return StepFlops(per_view, per_pair, device)


def best_seconds(fn, repeats: int = 2, warmup: int = 1) -> float:
    """Fastest of ``repeats`` timed calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def dataset_shape_of(recipe: Recipe) -> tuple[int, int, int]:
    """(image side, channels, images in the recipe's split); no image is read (a folder is only listed)."""
    from training.data import dataset_shape
    from training.pretrain.inputs import data_request

    return dataset_shape(recipe.dataset, recipe.split, data_request(recipe))


def _drop_grad(param: torch.Tensor) -> None:
    """Post-accumulate-grad hook: free a parameter's gradient once backward has written it."""
    param.grad = None


def estimate_wall_time(recipe: Recipe, opts: RunOptions) -> dict[str, Any]:
    """FLOPs and wall time of the recipe, from exact small FLOP counts and small timed pieces of the step.

    Args:
        recipe: The recipe to estimate.
        opts: Run options (precision, threads, channels-last, gradient checkpointing).

    Returns:
        Dict: images, steps, FLOPs per step (and per view / per pair), seconds per step with the
        timed pieces, CPU hours, a GPU-hours estimate, what was measured and what derived, and
        the dry run's own peak RSS.
    """
    from training.data import from_files
    from training.method.step import RelationalModel, autocast_context, build_model, build_optimizer, relation_loss
    from training.pretrain.augment import make_views
    from training.pretrain.inputs import augment_config
    from training.runtime.allocator import keep_freed_memory
    from training.runtime.machine import other_runnable_tasks, peak_rss_mib
    from training.runtime.precision import native_bf16, resolve_precision

    keep_freed_memory()  # the allocator setting the run itself applies: without it the timed pieces page-fault
    if opts.num_threads:
        torch.set_num_threads(opts.num_threads)
    t_start = time.perf_counter()
    busy = other_runnable_tasks()
    m, k = recipe.batch_size, recipe.k
    size, chans, n_images = dataset_shape_of(recipe)
    if n_images < m:  # what the run itself would refuse
        raise RecipeError(f"{recipe.dataset}/{recipe.split} has {n_images} images, fewer than batch_size={m}; "
                          "use more images or a smaller --batch-size")
    steps = (n_images // m) * recipe.epochs
    precision = resolve_precision(opts.precision, opts.device)
    if precision == "fp16":  # CUDA only; timed here on the CPU
        precision = "fp32"
    memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format

    flops = step_flops(recipe, chans, size, opts.grad_checkpointing)
    model = build_model(recipe, chans)
    model.backbone.to(memory_format=memory_format)
    if opts.grad_checkpointing:
        model.backbone.set_grad_checkpointing(True)
    gen = torch.Generator().manual_seed(0)

    # backbone forward + backward on n_bb views
    n_bb = max(2, min(MAX_TIMED_VIEWS, m * k, int(BACKBONE_TIMED_FLOPS // max(flops.per_view, 1))))
    views = torch.randn(n_bb, chans, size, size, generator=gen).contiguous(memory_format=memory_format)

    def backbone_step() -> None:
        with autocast_context("cpu", precision):
            features = model.backbone(views)
        features.float().sum().backward()

    # every weight gradient is computed in full, then dropped as soon as it is accumulated: the timing is
    # that of the real backward, without holding a second copy of the model (85 MB for ResNet-34)
    hooks = [p.register_post_accumulate_grad_hook(_drop_grad) for p in model.backbone.parameters()]
    t_backbone = best_seconds(backbone_step, repeats=BACKBONE_TIMED_CALLS, warmup=BACKBONE_WARMUP_CALLS) / n_bb
    for hook in hooks:
        hook.remove()

    # relation head + loss + backward at the recipe's K on m_head images (random features)
    m_head = max(2, min(m, math.ceil(HEAD_TIMED_PAIRS / (k * (k - 1)))))
    features = torch.randn(m_head * k, model.backbone.num_features, generator=gen, requires_grad=True)
    head_only = RelationalModel(nn.Identity(), model.head)
    head_recipe = replace(recipe, batch_size=m_head)

    def head_step() -> None:
        with autocast_context("cpu", precision):
            loss, _ = relation_loss(head_only, features, head_recipe)
        loss.backward()

    t_head = best_seconds(head_step) / m_head

    # augmentation of m_aug images × K views
    m_aug = max(1, min(m, AUGMENT_TIMED_VIEWS // k))
    images = torch.randint(0, 256, (m_aug, chans, size, size), dtype=torch.uint8, generator=gen)
    cfg = augment_config(recipe)
    t_augment = best_seconds(lambda: make_views(images, k, cfg, generator=gen,
                                                 channels_last=opts.channels_last)) / (m_aug * k)

    # one optimiser step: over every parameter, or (large models) over the smallest tensors up to
    # OPTIMIZER_TIMED_PARAMS elements, scaled by element count (its state would cost 2 more model copies)
    params = sorted(model.parameters(), key=lambda p: p.numel())
    n_params = sum(p.numel() for p in params)
    timed_params, timed_numel = [], 0
    for p in params:
        if timed_params and timed_numel + p.numel() > OPTIMIZER_TIMED_PARAMS:
            break
        timed_params.append(p)
        timed_numel += p.numel()
    optimizer = build_optimizer(recipe, timed_params)
    for p in timed_params:
        p.grad = torch.zeros_like(p)
    t_optimizer = best_seconds(optimizer.step) * n_params / timed_numel
    del optimizer

    per_step = t_optimizer + (t_augment + t_backbone) * m * k + t_head * m
    total_flops = flops.at(m, k)
    time.sleep(0.3)  # this process's own OpenMP workers stop spinning before /proc/loadavg is read again
    busy = max(busy, other_runnable_tasks() or 0.0) if busy is not None else None
    warning = None
    if busy is not None and busy >= 0.5:
        warning = (f"{busy:.1f} other task(s) were runnable on {os.cpu_count()} CPUs while the pieces were timed: "
                   "they ran slow (multi-threaded kernels suffer most when CPUs are shared); time again on an "
                   "idle machine")
    return {
        "images": n_images,
        "images_source": (f"files listed in {recipe.dataset} (split {recipe.split}; no image decoded)"
                          if from_files(recipe.dataset) else
                          f"DatasetSpec {recipe.dataset}/{recipe.split} (the dataset is not read)"),
        "steps": steps, "views_per_step": m * k, "pairs_per_step": recipe.pairs_per_step,
        "view_shape": [chans, size, size],
        "precision": precision, "precision_why": (native_bf16(opts.device)[1] if opts.precision == "auto"
                                                  else f"--precision {opts.precision}"),
        "cpu_threads": torch.get_num_threads(), "grad_checkpointing": opts.grad_checkpointing,
        "flops_per_step": total_flops,
        "flops_per_view": flops.per_view, "flops_per_pair": flops.per_pair,
        "cpu_seconds_per_step": round(per_step, 4),
        "cpu_hours": round(per_step * steps / 3600, 1),
        "timed": {
            "augment_s_per_view": t_augment, "augment_views_timed": m_aug * k,
            "backbone_fwd_bwd_s_per_view": t_backbone, "backbone_views_timed": n_bb,
            "head_loss_bwd_s_per_image": t_head, "head_images_timed": m_head, "head_pairs_timed": m_head * k * (k - 1),
            "optimizer_step_s": t_optimizer, "optimizer_params_timed": timed_numel, "params": n_params,
        },
        "measured": [
            f"FLOPs of one fp32 forward+backward at M={COUNT_M}, K={COUNT_KS[0]} and K={COUNT_KS[1]} "
            f"(torch.utils.flop_counter.FlopCounterMode on {flops.counted_on} tensors: convolutions, matrix products)",
            f"seconds ({precision}, {torch.get_num_threads()} thread(s); fastest of 2 calls after one untimed call, "
            f"the backbone fastest of {BACKBONE_TIMED_CALLS} after {BACKBONE_WARMUP_CALLS}): augmentation of "
            f"{m_aug * k} views, backbone forward+backward on {n_bb} views, relation head+loss+backward on "
            f"{m_head} images × {k} views ({m_head * k * (k - 1)} pairs), one optimiser step over {timed_numel} of the "
            f"{n_params} parameters",
        ],
        "derived": [
            f"flops_per_step = {flops.per_view}·M·K + {flops.per_pair}·M·K·(K−1) at M={m}, K={k} (exact)",
            f"cpu_seconds_per_step = optimiser + (augment + backbone)·{m * k} views + head·{m} images "
            "(per-view / per-image / per-parameter times scaled linearly; on an idle machine the real step "
            "took 0.87-0.96x this: benchmarks/dry_run_check.py)",
            f"steps = {n_images} // {m} × {recipe.epochs} epochs; cpu_hours = steps × cpu_seconds_per_step",
            "gpu_hours_estimate = flops_per_step × steps / the assumed GPU throughput",
        ],
        "gpu_hours_estimate": float(f"{total_flops * steps / (GPU_ASSUMED_TFLOPS * 1e12) / 3600:.3g}"),
        "gpu_assumption": f"{GPU_ASSUMED_TFLOPS:.0f} TFLOP/s sustained on one H100-class GPU (assumed, not measured)",
        "other_runnable_tasks": busy,
        "warning": warning,
        "dry_run_seconds": round(time.perf_counter() - t_start, 2),
        "dry_run_peak_rss_mib": round(peak_rss_mib(), 1),
    }


# ----------------------------------------------------------------------------- benchmark over the manifest
def _rss_anon_mib(pid: int) -> float | None:
    """Current anonymous (private, not file-backed) resident memory of a process, MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def time_dry_run(entry: str, threads: int, extra: list[str] | None = None) -> dict[str, Any]:
    """Run ``python -m training pretrain --entry ENTRY --dry-run`` in a fresh process.

    Returns:
        Dict with the process's wall time, peak RSS (``ru_maxrss`` of the child: all resident pages,
        including the shared libraries torch maps), the peak of its anonymous resident memory
        (sampled every 10 ms from /proc), its exit status and its printed estimate.
    """
    cmd = [sys.executable, "-m", "training", "pretrain", "--entry", entry, "--dry-run", "--threads", str(threads),
           *(extra or [])]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        anon_peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                anon_peak[0] = max(anon_peak[0], _rss_anon_mib(proc.pid) or 0.0)
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    row: dict[str, Any] = {"entry": entry, "command": " ".join(["python", *cmd[1:]]), "exit_status": proc.returncode,
                           "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                           "peak_anon_rss_mib_sampled": round(anon_peak[0], 1)}
    if proc.returncode == 0:
        printed = json.loads(stdout)
        est = printed["estimate"]
        row.update({"k": printed["recipe"]["k"], "batch_size": printed["recipe"]["batch_size"]})
        row.update({k: est[k] for k in ("view_shape", "precision", "cpu_seconds_per_step", "cpu_hours",
                                        "flops_per_step", "gpu_hours_estimate", "dry_run_seconds")})
    else:
        row["stderr_tail"] = stderr[-2000:]
    row["within_limits"] = bool(proc.returncode == 0 and wall <= LIMIT_S and row["peak_rss_mib"] <= LIMIT_RSS_MIB)
    return row


def import_baseline(threads: int) -> dict[str, float]:
    """Peak RSS of a process that only imports what a dry run imports (torch, timm, the training code).

    It ends as a dry run does (``os._exit`` after the imports, no interpreter teardown: see
    ``training.__main__.exit_now``), so the two peaks compare like with like.
    """
    code = ("import os, torch, timm, training.method.step, training.pretrain.inputs, training.bench.estimate; "
            "os._exit(0)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    _, status, usage = os.wait4(proc.pid, 0)
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "exit_status": os.waitstatus_to_exitcode(status)}


def markdown_table(result: dict[str, Any]) -> str:
    """The dry-run table of benchmarks/README.md, from the JSON that ``--all-entries`` writes.

    Args:
        result: The parsed JSON (``benchmarks/results/dry_run_cpu.json``).

    Returns:
        A Markdown table (one row per entry) and a line saying where and how it was measured.
    """
    lines = [
        "| entry | views (image px) | K × M | dry run wall s | peak RSS MiB (over the import) "
        "| anonymous MiB (sampled) "
        f"| est. s/step | FLOPs/step | est. CPU h | GPU h (assumed {GPU_ASSUMED_TFLOPS:.0f} TFLOP/s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if r["exit_status"] != 0:
            lines.append(f"| `{r['entry']}` | failed (exit {r['exit_status']}) |  |  |  |  |  |  |  |  |")
            continue
        _, h, w = r["view_shape"]
        lines.append(
            f"| `{r['entry']}` | {h}×{w} | {r['k']} × {r['batch_size']} | {r['wall_s']:.1f} "
            f"| {r['peak_rss_mib']:,.0f} ({r['peak_rss_above_import_mib']:+,.0f}) "
            f"| {r['peak_anon_rss_mib_sampled']:,.0f} "
            f"| {r['cpu_seconds_per_step']:.2f} | {r['flops_per_step']:.2e} | {r['cpu_hours']:,.0f} "
            f"| {r['gpu_hours_estimate']:.3g} |")
    ok = sum(r["within_limits"] for r in result["rows"])
    walls = [r["wall_s"] for r in result["rows"]]
    peaks = [r["peak_rss_mib"] for r in result["rows"]]
    commit = result["code_commit"]
    commit = commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")
    lines += ["", f"({result['hardware']}, torch {result['torch']}, commit {commit}, "
                  f"import alone {result['import_only']['peak_rss_mib']:,.0f} MiB; `{result['command']}`.) "
                  f"**{ok} of {len(walls)} entries within {result['limits']['wall_s']:.0f} s and "
                  f"{result['limits']['peak_rss_mib']:,.0f} MiB: wall {min(walls):.1f}–{max(walls):.1f} s, "
                  f"peak RSS {min(peaks):,.0f}–{max(peaks):,.0f} MiB.**"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.bench.estimate --all-entries --out FILE``: time every entry's dry run, write JSON."""
    import platform

    import rr_zoo
    from training.release.provenance import code_commit, hardware
    from training.runtime.machine import cpu_flags

    parser = argparse.ArgumentParser(prog="python -m training.bench.estimate", description=main.__doc__)
    parser.add_argument("--all-entries", action="store_true", help="every manifest entry (default)")
    parser.add_argument("--entries", nargs="+", default=None, help="only these entries")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each dry run (default: 1)")
    parser.add_argument("--out", default="benchmarks/out/dry_run.json", help="JSON file to write")
    parser.add_argument("--table", metavar="JSON", default=None,
                        help="only print the Markdown table (as in benchmarks/README.md) of a JSON written before")
    args = parser.parse_args(argv)
    if args.table:
        try:
            result = json.loads(Path(args.table).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"--table {args.table}: cannot read it as JSON ({exc}); give the file that "
                         "--all-entries --out wrote, e.g. benchmarks/results/dry_run_cpu.json")
        print(markdown_table(result))
        return 0
    entries = args.entries or rr_zoo.list_models()
    baseline = import_baseline(args.threads)
    print(f"import torch + timm + training only: peak RSS {baseline['peak_rss_mib']:.0f} MiB", flush=True)
    rows = []
    for entry in entries:
        rows.append(time_dry_run(entry, args.threads))
        r = rows[-1]
        r["peak_rss_above_import_mib"] = round(r["peak_rss_mib"] - baseline["peak_rss_mib"], 1)
        print(f"{entry:30s} {r['wall_s']:6.1f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB "
              f"(+{r['peak_rss_above_import_mib']:.0f} over the import; anonymous {r['peak_anon_rss_mib_sampled']:.0f})"
              f"  exit {r['exit_status']}", flush=True)
    flags = cpu_flags() or set()
    result = {
        "command": "python -m training.bench.estimate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "code_commit": code_commit(), "hardware": hardware("cpu", args.threads), "torch": torch.__version__,
        "python": platform.python_version(), "bf16_cpu_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "limits": {"wall_s": LIMIT_S, "peak_rss_mib": LIMIT_RSS_MIB},
        "import_only": baseline,
        "rows": rows,
    }
    from training.bench.record import write_result

    write_result(args.out, result)
    print(f"{sum(r['within_limits'] for r in rows)}/{len(rows)} within {LIMIT_S:.0f} s and {LIMIT_RSS_MIB:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
