"""Linear accuracy vs the number of views K at a fixed budget of views (a small Fig. 2b).

For each K the same recipe is pretrained for about ``views_budget / (batch_size * K)``
steps, so every run pushes the same number of augmented images through the
backbone (the compute-fair comparison; the paper's Fig. 2b instead fixes the
epochs, so its larger K also get more compute). Each checkpoint is then
linear-evaluated with the standard protocol. Runs are resumable: a finished K is
skipped, an interrupted one continues from its checkpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.evaluate.protocols import LINEAR_EPOCHS
from training.pretrain.checkpoint import atomic_write_text, load_checkpoint
from training.pretrain.recipes import Recipe, RecipeError, RunOptions
from training.run_folders import CHECKPOINT, LOG, read_log


@dataclass(frozen=True)
class SweepPlan:
    """Epochs and steps of one K so that it sees ``views`` augmented images."""

    k: int
    epochs: int
    steps_per_epoch: int

    def views(self, batch_size: int) -> int:
        """Augmented images (views) the run pushes through the backbone."""
        return self.epochs * self.steps_per_epoch * batch_size * self.k


def plan_k(k: int, views_budget: int, batch_size: int, n_images: int) -> SweepPlan:
    """Split the step budget of one K into whole epochs of at most one pass over the data.

    Args:
        k: Views per image.
        views_budget: Augmented images to push through the backbone.
        batch_size: Images per step (M).
        n_images: Training-set size (one epoch is at most ``n_images // batch_size`` steps).

    Returns:
        The plan (its views are within one step per epoch of the budget).
    """
    steps = max(1, round(views_budget / (batch_size * k)))
    full = n_images // batch_size
    if full < 1:
        raise RecipeError(f"dataset has {n_images} images, fewer than batch_size={batch_size}")
    epochs = math.ceil(steps / full)
    return SweepPlan(k, epochs, math.ceil(steps / epochs))


def run_k_sweep(recipe: Recipe, opts: RunOptions, ks: list[int], views_budget: int, out: Path,
                eval_epochs: int = LINEAR_EPOCHS, eval_seeds: tuple[int, ...] = (0,), eval_max_train: int | None = None,
                eval_max_test: int | None = None) -> dict[str, Any]:
    """Pretrain and linear-evaluate one run per K; write ``ksweep.json``, ``ksweep.png`` and a table.

    Args:
        recipe: Base recipe (its ``k`` and ``epochs`` are replaced per run).
        opts: Run options (``out`` and ``steps_per_epoch`` are replaced per run).
        ks: Numbers of views to compare.
        views_budget: Augmented images per run.
        out: Sweep folder (one sub-folder per K).
        eval_epochs: Linear-classifier epochs.
        eval_seeds: Linear-classifier seeds (mean ± std over them).
        eval_max_train: Cap on labelled training images for the linear evaluation (quick runs).
        eval_max_test: Cap on test images (quick runs).

    Returns:
        The sweep summary (also written to ``out/ksweep.json``).
    """
    import statistics

    from training.data import load_split
    from training.evaluate import EvalSpec, run_protocol
    from training.evaluate.source import load_backbone
    from training.pretrain.inputs import data_request
    from training.pretrain.loop import pretrain

    n_images = load_split(recipe.dataset, recipe.split, root=opts.data_root,
                          request=data_request(recipe, opts)).images.shape[0]
    rows = []
    for k in ks:
        plan = plan_k(k, views_budget, recipe.batch_size, n_images)
        run_dir = out / f"k{k}"
        ckpt_path = run_dir / CHECKPOINT
        run_recipe = replace(recipe, k=k, epochs=plan.epochs)
        done = ckpt_path.is_file() and load_checkpoint(ckpt_path).epoch >= plan.epochs
        if not done:
            run_opts = replace(opts, out=str(run_dir), steps_per_epoch=plan.steps_per_epoch,
                               resume=ckpt_path.is_file())
            if pretrain(run_recipe, run_opts)["stopped_early"]:
                raise KeyboardInterrupt(f"stopped during K={k}; run the same command again to resume")
        values = []
        for seed in eval_seeds:
            backbone = load_backbone(recipe.entry, str(ckpt_path), seed=seed)
            spec = EvalSpec(dataset=recipe.dataset, out=str(run_dir / "eval"), data_root=opts.data_root,
                            seed=seed, epochs=eval_epochs, device=opts.device, max_train=eval_max_train,
                            max_test=eval_max_test)
            values.append(run_protocol("linear", backbone, spec)["value"])
        last = read_log(run_dir / LOG)[-1]
        rows.append({"k": k, "epochs": plan.epochs, "steps_per_epoch": plan.steps_per_epoch,
                     "views": plan.views(recipe.batch_size), "linear": statistics.mean(values),
                     "linear_std": statistics.stdev(values) if len(values) > 1 else None,
                     "final_loss": last["loss"], "train_seconds": load_checkpoint(ckpt_path).train_seconds})
        print(json.dumps(rows[-1]), flush=True)
    summary = {"entry": recipe.entry, "dataset": recipe.dataset, "batch_size": recipe.batch_size,
               "views_budget": views_budget, "eval_epochs": eval_epochs, "eval_seeds": list(eval_seeds),
               "rows": rows, "png": str(plot_k_sweep(rows, out / "ksweep.png", recipe, views_budget))}
    atomic_write_text(out / "ksweep.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "ksweep.md", format_k_sweep(summary) + "\n")
    return summary


def format_k_sweep(summary: dict[str, Any]) -> str:
    """Markdown table of a sweep summary."""
    lines = ["| K | epochs | steps/epoch | views | final loss | linear acc (%) |", "|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        std = f" ± {r['linear_std']:.2f}" if r["linear_std"] is not None else ""
        lines.append(f"| {r['k']} | {r['epochs']} | {r['steps_per_epoch']} | {r['views']:,} | "
                     f"{r['final_loss']:.4f} | {r['linear']:.2f}{std} |")
    return "\n".join(lines)


def plot_k_sweep(rows: list[dict[str, Any]], path: Path, recipe: Recipe, views_budget: int) -> Path:
    """Linear accuracy vs K (log-2 axis), written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no backend to choose, nothing left open

    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    ks = [r["k"] for r in rows]
    ax.errorbar(ks, [r["linear"] for r in rows], yerr=[r["linear_std"] or 0 for r in rows], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("views per image K")
    ax.set_ylabel("linear accuracy (%)")
    ax.set_title(f"{recipe.architecture} / {recipe.dataset}, {views_budget:,} views each", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    return path
