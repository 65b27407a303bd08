"""Argument parsers of the ``python -m training`` commands: thin layers over dataclasses and modules.

Each command registers a function that adds its arguments and ``set_defaults(fn=...)``; ``fn``
imports the module that does the work. Flags of ``Recipe``, ``RunOptions`` and ``EvalSpec`` fields
are generated from the fields (``training.flags``). Nothing heavy is imported at module level, so
``python -m training --help`` answers without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from training import run_folders
from training.flags import add_flags, values_from_args

if TYPE_CHECKING:
    from training.pretrain.recipes import Recipe, RunOptions

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}
SKIP_TEARDOWN = False  # set by a finished dry run: python -m training then exits without interpreter teardown


def command(name: str, help_text: str):
    """Register a sub-command: the decorated function adds arguments and ``set_defaults(fn=...)``."""

    def decorator(fn: Callable[[argparse.ArgumentParser], None]):
        COMMANDS[name] = (help_text, fn)
        return fn

    return decorator


def add_recipe_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """``--entry`` and one override flag per recipe field (default: keep the manifest's), except ``skip``."""
    from training.pretrain.recipes import Recipe

    add_flags(p, Recipe, only=("entry",))
    group = p.add_argument_group("recipe overrides (default: the entry's manifest recipe)")
    add_flags(group, Recipe, skip=("entry", *skip), overrides=True)


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The entry's manifest recipe with every given flag applied (validated)."""
    from training.pretrain.recipes import Recipe, recipe_for_entry

    return recipe_for_entry(args.entry, **values_from_args(args, Recipe, skip=("entry",)))


def options_from_args(args: argparse.Namespace, recipe: Recipe) -> RunOptions:
    """RunOptions from the flags; the default run folder is runs/<entry>-s<seed>."""
    from training.pretrain.recipes import RunOptions

    values = values_from_args(args, RunOptions)
    return RunOptions(**{**values, "out": values.get("out") or run_folders.pretrain_dir(recipe.entry, recipe.seed)})


@command("pretrain", "relational-reasoning pretraining of a zoo entry (recipe from the manifest)")
def _pretrain_parser(p: argparse.ArgumentParser) -> None:
    from training.pretrain.recipes import RunOptions

    add_recipe_flags(p)
    add_flags(p.add_argument_group("run options"), RunOptions, defaults={"out": None},
              default_help={"out": run_folders.PRETRAIN})
    p.add_argument("--dry-run", action="store_true", help="print the recipe and a wall-time estimate, then exit")
    p.set_defaults(fn=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    recipe = recipe_from_args(args)
    opts = options_from_args(args, recipe)
    if args.dry_run:
        from training.bench.estimate import estimate_wall_time

        estimate = estimate_wall_time(recipe, opts)
        print(json.dumps({"recipe": recipe.to_dict(), "pairs_per_step": recipe.pairs_per_step,
                          "estimate": estimate}, indent=2))
        if estimate["warning"]:
            print(f"warning: {estimate['warning']}", file=sys.stderr, flush=True)
        global SKIP_TEARDOWN
        SKIP_TEARDOWN = True
        return 0
    from training.pretrain.loop import pretrain

    t0 = time.perf_counter()
    summary = pretrain(recipe, opts)
    print(json.dumps({**summary, "wall_seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return 130 if summary["stopped_early"] else 0


# ----------------------------------------------------------------------------- evaluate
@command("evaluate", "evaluate a backbone with a paper protocol (linear, knn, transfer, grain, finetune, ...)")
def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    from training.evaluate import EvalSpec
    from training.help_choices import recorded

    protocols = recorded()["protocols"]  # name -> summary, without importing the protocols (torch)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "protocols:\n" + "\n".join(f"  {name:10s} {protocols[name]}" for name in sorted(protocols))
    p.add_argument("protocol", choices=sorted(protocols), help="evaluation protocol (listed below)")
    p.add_argument("--entry", default=None,
                   help="zoo entry (python -m rr_zoo list): architecture, preprocessing and, unless --weights, "
                        "its published weights")
    p.add_argument("--weights", default=None,
                   help="'random' (lower bound), a training checkpoint .pt, a safetensors file or an export folder "
                        "(a checkpoint or export folder names its own entry: --entry not needed)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="classifier seeds; several give mean ± std (default 0; with --check, the published seeds)")
    add_flags(p, EvalSpec, defaults={"dataset": None, "out": None},
              default_help={"dataset": "the protocol's, else the one the weights were trained on",
                            "out": run_folders.EVAL})
    p.add_argument("--check", action="store_true",
                   help="compare with the manifest's published value for this protocol/dataset; exit 1 if off")
    p.add_argument("--tolerance", type=float, default=0.5,
                   help="--check tolerance [accuracy points] (default: %(default)s)")
    p.set_defaults(fn=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import EvalSpec
    from training.evaluate.run import evaluate

    result = evaluate(args.protocol, args.entry, args.weights, args.seeds, values_from_args(args, EvalSpec),
                      check=args.check)
    print(result.table())
    for png in result.figures:
        print(f"figure: {png}")
    print(f"results: {result.path}")
    return result.check(args.tolerance) if args.check else 0


# ----------------------------------------------------------------------------- K sweep (Fig. 2b)
_KSWEEP_OPTIONS = ("device", "precision", "num_threads", "data_root", "out")


@command("ksweep", "linear accuracy vs views per image K at a fixed budget of views (a small Fig. 2b)")
def _ksweep_parser(p: argparse.ArgumentParser) -> None:
    from training.evaluate.protocols import LINEAR_EPOCHS
    from training.pretrain.recipes import RunOptions

    add_recipe_flags(p, skip=("k", "epochs"))
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8, 16], help="views per image to compare")
    p.add_argument("--views-budget", type=int, default=800_000,
                   help="augmented images per run, the same for every K [views] (default: %(default)s)")
    p.add_argument("--eval-epochs", type=int, default=LINEAR_EPOCHS,
                   help="linear-classifier epochs (default: %(default)s)")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0], help="linear-classifier seeds")
    p.add_argument("--eval-max-train", type=int, default=None, help="cap labelled train images (quick runs)")
    p.add_argument("--eval-max-test", type=int, default=None, help="cap test images (quick runs)")
    add_flags(p, RunOptions, only=_KSWEEP_OPTIONS, defaults={"out": run_folders.KSWEEP})
    p.set_defaults(fn=_run_ksweep)


def _run_ksweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.pretrain.recipes import RecipeError, RunOptions
    from training.studies.ksweep import format_k_sweep, run_k_sweep

    if args.views_budget < 1:
        raise RecipeError(f"--views-budget must be positive; got {args.views_budget}")
    recipe = recipe_from_args(args)
    for k in args.ks:  # every K must make a valid recipe (K >= 2, ...) before any work starts
        dataclasses.replace(recipe, k=k)
    opts = RunOptions(**values_from_args(args, RunOptions, only=_KSWEEP_OPTIONS), progress=False,
                      ckpt_every_steps=200)
    summary = run_k_sweep(recipe, opts, args.ks, args.views_budget, Path(args.out), args.eval_epochs,
                          tuple(args.eval_seeds), args.eval_max_train, args.eval_max_test)
    print(format_k_sweep(summary))
    print(f"figure: {summary['png']}\nresults: {args.out}/ksweep.json")
    return 0


# ----------------------------------------------------------------------------- datasets
@command("data", "where each dataset is looked for and how to get it; --download fetches it with torchvision")
def _data_parser(p: argparse.ArgumentParser) -> None:
    from training.help_choices import recorded

    p.add_argument("names", nargs="*", metavar="DATASET",
                   help=f"datasets to show or download (default: all); one of: {', '.join(recorded()['datasets'])}")
    p.add_argument("--data-root", default=None, help="data folder (default: $RR_DATA_DIR, else ~/.cache/rr_zoo/data)")
    p.add_argument("--download", action="store_true",
                   help="download the named datasets into the data folder with torchvision (needs internet)")
    p.set_defaults(fn=_run_data)


def _run_data(args: argparse.Namespace) -> int:
    from training.data import DATASETS, load_split, search_roots
    from training.pretrain.recipes import dataset_names, require

    unknown = [name for name in args.names if name not in DATASETS]
    require(not unknown, f"unknown dataset(s) {unknown}; choose from {dataset_names()}")
    require(bool(args.names) or not args.download,
            "--download needs the datasets to fetch, e.g. python -m training data cifar10 --download")
    for name in args.names or dataset_names():
        spec = DATASETS[name]
        if args.download:
            data = load_split(name, spec.pretrain_split, root=args.data_root, download=True)
            print(f"{name}: ok ({data.images.shape[0]} {spec.pretrain_split} images)")
            continue
        print(f"{name}: {spec.description}\n  looked for in: {', '.join(map(str, search_roots(args.data_root)))}"
              f"\n  expects: {spec.expected_files}\n  to get it: {spec.how_to_get}")
        if spec.torchvision_name:
            print(f"  or: python -m training data {name} --download")
    return 0


# ----------------------------------------------------------------------------- export / publish
@command("export", "write a Hub-ready folder (safetensors, config.json, model card) from a checkpoint")
def _export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of a pretraining run")
    p.add_argument("--entry", default=None, help="zoo entry (default: the checkpoint's)")
    p.add_argument("--out", required=True, help="folder to write (atomically)")
    p.add_argument("--metrics", nargs="*", default=[], help="evaluate JSON files to include")
    p.add_argument("--figures", nargs="*", default=[], help="PNG files to include (t-SNE, retrieval grid)")
    p.add_argument("--sample-figures", action="store_true",
                   help="also draw these weights' relation-score heatmap and retrieval grid (rr_zoo.viz) on the "
                        "checkpoint's dataset, as in the README")
    p.add_argument("--data-root", default=None, help="dataset folder for --sample-figures")
    p.add_argument("--repo-id", default=None,
                   help="Hub repository (org/name) the folder will be published to: the model card shows its "
                        "hf-hub: line (left out when not given)")
    p.add_argument("--provenance", default=None,
                   help="JSON file of provenance fields to set (the rest comes from the checkpoint)")
    p.set_defaults(fn=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.release.export import export_checkpoint, export_metrics_from

    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such file; pass the checkpoint.pt of a run "
                                f"(python -m training pretrain writes {run_folders.PRETRAIN}/checkpoint.pt)")
    metrics = [m for path in args.metrics for m in export_metrics_from(path)]
    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    out = export_checkpoint(args.checkpoint, args.out, args.entry, metrics, provenance, args.figures,
                            sample_figures=args.sample_figures, data_root=args.data_root, repo_id=args.repo_id)
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


@command("publish", "add an export folder to the manifest as a new immutable release (bundled and/or on the Hub), "
                    "or add metrics to a release")
def _publish_parser(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = """A release is immutable: its tag, files (sha256, size), trained recipe and data, preprocessing,
metrics with their commands and provenance never change once published; publishing other
files or another value of a metric under an existing tag is refused. The first release of an
entry becomes its default (what the alias rr_<arch>_<dataset> and <arch>_rr.<dataset> load);
--default moves the default to this release. Every release loads by its own timm name
<arch>_rr.<tag> (timm.list_pretrained("<arch>_rr*")).

examples:
  python -m training export --checkpoint runs/rr_resnet32_tinyimagenet-s0/checkpoint.pt --out exports/r32_tin
  python -m training publish exports/r32_tin --tag tinyimagenet_e20_k16 --bundle
  python -m training publish exports/r32_tin --tag tinyimagenet_e20_k16 --repo-id rr-zoo/rr_resnet32_tinyimagenet
  python -m training evaluate linear --entry resnet32_rr.tinyimagenet_e20_k16 --out runs/eval/r32_tin
  python -m training publish --entry rr_resnet32_tinyimagenet --tag tinyimagenet_e20_k16 \\
      --metrics runs/eval/r32_tin/linear_tinyimagenet.json
  python -m rr_zoo.docs --write     # README tables from the manifest
"""
    p.add_argument("folder", nargs="?", default=None,
                   help="export folder (python -m training export); leave out to add --metrics to a published release")
    p.add_argument("--tag", default=None,
                   help="release tag: lower-case words joined by '_', unique within the architecture (default: "
                        "<dataset>_e<epochs>_k<K>[_seed<N>] from the folder's recipe, e.g. cifar10_jpeg_e30_k4; "
                        "_seed<N> for a pretraining seed other than 0)")
    p.add_argument("--default", action="store_true", dest="make_default",
                   help="make this release the entry's default (the first release of an entry always is)")
    p.add_argument("--bundle", action="store_true",
                   help="copy the weight files into the package (rr_zoo/_weights/<entry>/<tag>/): loads offline")
    p.add_argument("--repo-id", default=None, help="Hub repo org/name to upload to; its new commit pins the release "
                                                   "(HF_ENDPOINT and HF_TOKEN honoured)")
    p.add_argument("--metrics", nargs="*", default=[],
                   help="evaluate result JSON files to add (metrics the release does not have yet)")
    p.add_argument("--entry", default=None, help="with --metrics and no folder: the entry of the release")
    p.add_argument("--manifest", default=None, help="manifest to update (default: the package's)")
    p.set_defaults(fn=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rr_zoo.manifest import add_metrics
    from training.release.export import export_metrics_from
    from training.release.publish import publish

    metrics = [m for path in args.metrics for m in export_metrics_from(path)]
    if args.folder is None:
        if not (args.entry and args.tag and metrics):
            raise FileNotFoundError("pass an export folder to publish (python -m training export --checkpoint CKPT "
                                    "--out FOLDER), or --entry NAME --tag TAG --metrics FILE.json to add metrics")
        entry = add_metrics(args.entry, args.tag, metrics, path=args.manifest)
    else:
        if not (Path(args.folder) / "config.json").is_file():
            raise FileNotFoundError(f"{args.folder} is not an export folder (no config.json); write one with "
                                    "python -m training export --checkpoint CKPT --out FOLDER")
        entry = publish(args.folder, tag=args.tag, repo_id=args.repo_id, bundle=args.bundle,
                        make_default=args.make_default, metrics=metrics, manifest_path=args.manifest)
    release = entry.release
    print(json.dumps({"entry": entry.name, "release": entry.release_name(release.tag),
                      "default": entry.default_release == release.tag, "hub": release.hub,
                      "files": [dataclasses.asdict(f) for f in release.files],
                      "metrics": len(release.metrics)}, indent=2))
    return 0


# ----------------------------------------------------------------------------- benchmark
@command("benchmark", "time our pretraining against the original repository's own code, same images, same machine")
def _benchmark_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archs", nargs="+", default=["conv4", "resnet32"])
    p.add_argument("--ks", type=int, nargs="+", default=[4, 16, 32])
    p.add_argument("--m", type=int, default=64, help="images per step")
    p.add_argument("--steps", type=int, default=3,
                   help="timed steps per run after a warm-up epoch as long (0: full epochs)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/out/benchmark.json")
    p.add_argument("--original-repo", required=True, metavar="PATH",
                   help="a clone of mpatacchiola/self-supervised-relational-reasoning: ITS training code is timed "
                        "against our `pretrain` on the same images (training/bench/original.py)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per side, best kept")
    p.add_argument("--original-workers", type=int, default=0,
                   help="the original's DataLoader num_workers (0: in-process, as ours)")
    p.add_argument("--dataset", choices=("cifar10", "tinyimagenet"), default="cifar10",
                   help="what both sides train on: cifar10 (the shared 4,000-image pack, 32x32) or "
                        "tinyimagenet (20 real training JPEGs per class, 64x64, from the data folder: $RR_DATA_DIR)")
    p.set_defaults(fn=_run_benchmark)


def _run_benchmark(args: argparse.Namespace) -> int:
    from rr_zoo.models import ARCHITECTURES
    from training.bench.original import run_from_args
    from training.pretrain.recipes import require

    unknown = sorted(set(args.archs) - set(ARCHITECTURES))
    require(not unknown, f"--archs: unknown {unknown}; choose from {sorted(ARCHITECTURES)}")
    return run_from_args(args)


# ----------------------------------------------------------------------------- supervised bound
@command("supervised", "train the same backbone with labels (the supervised upper bound), save a checkpoint")
def _supervised_parser(p: argparse.ArgumentParser) -> None:
    from training.evaluate.protocols import FINETUNE_EPOCHS, EvalSpec

    p.add_argument("--entry", required=True, help="zoo entry giving architecture and preprocessing")
    add_flags(p, EvalSpec, only=("dataset", "max_train", "data_root", "precision", "device"),
              defaults={"dataset": None}, default_help={"dataset": "the entry's"})
    p.add_argument("--epochs", type=int, default=FINETUNE_EPOCHS, help="training epochs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and augmentation")
    p.add_argument("--out", required=True, help="run folder for checkpoint.pt")
    p.set_defaults(fn=_run_supervised)


def _run_supervised(args: argparse.Namespace) -> int:
    from training.evaluate.supervised import train_supervised

    summary = train_supervised(args.entry, args.dataset, args.epochs, args.out, args.seed, args.data_root,
                               args.max_train, args.device, precision=args.precision)
    print(json.dumps(summary, indent=2))
    print(f"evaluate it: python -m training evaluate linear --weights {summary['checkpoint']}")
    return 0


# ----------------------------------------------------------------------------- accuracy vs views seen
@command("curves", "online kNN accuracy vs views seen, from the logs of runs or exports (one plot)")
def _curves_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="run folders (log.jsonl + checkpoint.pt), export folders (log.jsonl + config.json), or the "
                        ".json of points an earlier `curves` wrote beside its figure (its curves are drawn again)")
    p.add_argument("--labels", nargs="+", default=None,
                   help="legend labels, one per folder or single-curve JSON (default: from recipes)")
    p.add_argument("--out", default=run_folders.KNN_CURVES_PNG, help="figure; its points go to the .json beside it")
    p.set_defaults(fn=_run_curves)


def _run_curves(args: argparse.Namespace) -> int:
    from training.pretrain.recipes import RecipeError
    from training.studies.curves import plot_knn_curves, read_curves

    if args.labels is not None and len(args.labels) != len(args.folders):
        raise RecipeError(f"--labels gives {len(args.labels)} labels for {len(args.folders)} folders; "
                          "give one per folder or none")
    labels = args.labels or [None] * len(args.folders)
    curves = [c for f, label in zip(args.folders, labels) for c in read_curves(f, label)]
    summary = plot_knn_curves(curves, args.out)
    for curve in summary["curves"]:
        print(f"{curve['label']:32s} {curve['views'][-1] / 1e6:6.2f}M views: kNN {curve['knn_acc'][-1]:.2f} %")
    print(f"figure: {summary['figure']}\npoints: {summary['figure'].rsplit('.', 1)[0]}.json")
    return 0
