"""Online kNN accuracy vs views seen, from training logs: what more compute buys, across backbones.

    python -m training curves runs/rr_conv4_cifar10-s0 exports/rr_resnet8_cifar10 --out docs/results/knn_vs_views.png

Each argument is a run folder (``log.jsonl`` + ``checkpoint.pt``), an export folder (``log.jsonl`` +
``config.json``, whose provenance holds the recipe the weights were trained with), or the JSON of
points written beside an earlier figure (its curves are drawn again). Views seen after a
logged epoch = ``global_step`` × M × K of that run's recipe (images per step × views per image). The
accuracy is the log's ``knn_acc``: the online weighted kNN of ``pretrain --knn-every`` (up to 10,000
labelled train images as the bank, the test split as queries; see ``training.pretrain.loop.online_knn``).
Writes the figure and a JSON of the plotted points beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rr_zoo.atomic import atomic_write
from training.pretrain.recipes import RecipeError
from training.run_folders import CHECKPOINT, LOG, read_log


@dataclass(frozen=True)
class Curve:
    """One run's online kNN accuracy against the views it had seen."""

    label: str
    source: str
    recipe: dict[str, Any]
    views: list[int]        # augmented views seen, cumulative
    knn_acc: list[float]    # % top-1, online kNN


def run_recipe(folder: Path) -> dict[str, Any]:
    """The recipe a run folder (checkpoint.pt) or export folder (config.json provenance) was trained with."""
    config = folder / "config.json"
    if config.is_file():
        meta = json.loads(config.read_text()).get("rr_zoo", {})
        recipe = (meta.get("provenance") or {}).get("recipe") or meta.get("recipe")
        if recipe:
            return {**recipe, "entry": meta.get("entry"), "precision": (meta.get("provenance") or {}).get("precision")}
    if (folder / CHECKPOINT).is_file():
        from training.pretrain.checkpoint import load_checkpoint

        ckpt = load_checkpoint(folder / CHECKPOINT)
        return {**ckpt.recipe, "precision": ckpt.options.get("precision")}
    raise RecipeError(f"{folder}: neither config.json (an export) nor checkpoint.pt (a run folder); "
                      "pass the folder `pretrain --out` or `export --out` wrote")


def read_curve(folder: str | Path, label: str | None = None) -> Curve:
    """The (views seen, online kNN %) points of one run or export folder."""
    folder = Path(folder)
    if not (folder / LOG).is_file():
        raise FileNotFoundError(f"no {LOG} in {folder}; pretrain with --knn-every N to log online kNN accuracy")
    recipe = run_recipe(folder)
    points = [(r["global_step"] * recipe["batch_size"] * recipe["k"], r["knn_acc"]) for r in read_log(folder / LOG)
              if r.get("kind", "epoch") == "epoch" and r.get("knn_acc") is not None]
    if not points:
        raise RecipeError(f"{folder / LOG} has no knn_acc rows; pretrain with --knn-every N")
    precision = f", {recipe['precision']}" if recipe.get("precision") else ""
    label = label or f"{recipe['architecture']} (K={recipe['k']}{precision})"
    return Curve(label, str(folder), recipe, [p[0] for p in points], [p[1] for p in points])


def read_curves(source: str | Path, label: str | None = None) -> list[Curve]:
    """The curves of a run or export folder (one), or of a JSON this module wrote beside an earlier figure (all).

    A JSON source carries the plotted points themselves: a figure can be redrawn with more curves after
    the folders it was first drawn from are gone.
    """
    source = Path(source)
    if source.suffix != ".json":
        return [read_curve(source, label)]
    if not source.is_file():
        raise RecipeError(f"{source}: no such file; pass the .json `python -m training curves` wrote beside a figure")
    try:
        rows = json.loads(source.read_text())["curves"]
        curves = [Curve(r["label"], r["source"], {k: r.get(k) for k in ("architecture", "dataset", "k", "batch_size",
                                                                          "precision")},
                        [int(v) for v in r["views"]], [float(a) for a in r["knn_acc"]]) for r in rows]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RecipeError(f"{source}: not the JSON `python -m training curves` writes beside its figure "
                          f"({type(exc).__name__}: {exc})") from None
    if label is not None:
        if len(curves) != 1:
            raise RecipeError(f"{source} holds {len(curves)} curves: a --labels entry can rename a single one")
        curves = [replace(curves[0], label=label)]
    return curves


def plot_knn_curves(curves: list[Curve], out_png: str | Path) -> dict[str, Any]:
    """Draw every curve on one axis (views seen, log scale); write the PNG and its points as JSON beside it.

    Curves of more than one dataset carry the dataset in their labels.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend to choose, nothing left open

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    datasets = sorted({c.recipe.get("dataset") or "?" for c in curves})
    if len(datasets) > 1:
        curves = [c if c.label.endswith(f", {c.recipe.get('dataset') or '?'}")
                  else replace(c, label=f"{c.label}, {c.recipe.get('dataset') or '?'}") for c in curves]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for curve in curves:
        ax.plot([v / 1e6 for v in curve.views], curve.knn_acc, marker="o", markersize=3, label=curve.label)
    ax.set_xscale("log")
    ax.set_xlabel("augmented views seen (millions, log scale)")
    ax.set_ylabel("online kNN top-1 (%)")
    ax.set_title(f"RR pretraining on {', '.join(datasets)}: accuracy vs views seen")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(out_png, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    summary = {"figure": str(out_png), "curves": [
        {"label": c.label, "source": c.source, "architecture": c.recipe.get("architecture"),
         "dataset": c.recipe.get("dataset"), "k": c.recipe.get("k"), "batch_size": c.recipe.get("batch_size"),
         "precision": c.recipe.get("precision"), "views": c.views, "knn_acc": c.knn_acc} for c in curves]}
    atomic_write(out_png.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    return summary
