"""Argument parsers of the ``python -m training`` commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import time
from collections.abc import Callable

from training.recipes import RECIPE_FIELDS, Recipe, RecipeError, RunOptions, recipe_for_entry

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}


def command(name: str, help_text: str):
    """Register a sub-command: the decorated function adds arguments and ``set_defaults(fn=...)``."""

    def decorator(fn: Callable[[argparse.ArgumentParser], None]):
        COMMANDS[name] = (help_text, fn)
        return fn

    return decorator


# flag -> recipe field, with the type argparse should parse
RECIPE_FLAGS: dict[str, tuple[str, type]] = {
    "--epochs": ("epochs", int), "--k": ("k", int), "--batch-size": ("batch_size", int),
    "--aggregation": ("aggregation", str), "--loss": ("loss", str), "--focal-gamma": ("focal_gamma", float),
    "--focal-alpha": ("focal_alpha", float), "--lr": ("lr", float), "--weight-decay": ("weight_decay", float),
    "--seed": ("seed", int), "--dataset": ("dataset", str), "--split": ("split", str),
    "--architecture": ("architecture", str), "--relation-hidden": ("relation_hidden", int),
}
assert {f for f, _ in RECIPE_FLAGS.values()} == set(RECIPE_FIELDS) - {"entry", "optimizer"}


def add_recipe_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One override flag per recipe field (default None: keep the manifest's), except the skipped fields."""
    group = p.add_argument_group("recipe overrides (default: the entry's manifest recipe)")
    for flag, (name, typ) in RECIPE_FLAGS.items():
        if name not in skip:
            group.add_argument(flag, dest=name, type=typ, default=None)


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The entry's manifest recipe with every given flag applied (validated)."""
    overrides = {name: getattr(args, name) for name, _ in RECIPE_FLAGS.values()}
    return recipe_for_entry(args.entry, **overrides)


def options_from_args(args: argparse.Namespace, recipe: Recipe) -> RunOptions:
    """RunOptions from the flags; the default run folder is runs/<entry>-s<seed>."""
    return RunOptions(
        out=args.out or f"runs/{recipe.entry}-s{recipe.seed}", device=args.device, precision=args.precision,
        compile=args.compile, channels_last=not args.no_channels_last, data_root=args.data_root,
        resume=args.resume, ckpt_every_steps=args.ckpt_every_steps, steps_per_epoch=args.steps_per_epoch,
        knn_every=args.knn_every, num_threads=args.threads, progress=not args.no_progress, sync_bn=args.sync_bn,
    )


@command("pretrain", "relational-reasoning pretraining of a zoo entry (recipe from the manifest)")
def _pretrain_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entry", required=True, help="zoo entry whose recipe to use, e.g. rr_conv4_cifar10")
    add_recipe_flags(p)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--data-root", default=None, help="dataset folder (see training.data for the layout)")
    p.add_argument("--out", default=None, help="run folder (default runs/<entry>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--ckpt-every-steps", type=int, default=200, help="also checkpoint every N steps (0: epochs only)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap steps per epoch (quick runs)")
    p.add_argument("--knn-every", type=int, default=0, help="online kNN accuracy every N epochs (0: off)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under torchrun/DDP")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--dry-run", action="store_true", help="print the recipe and a wall-time estimate, then exit")
    p.set_defaults(fn=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    recipe = recipe_from_args(args)
    opts = options_from_args(args, recipe)
    if args.dry_run:
        from training.estimate import estimate_wall_time

        print(json.dumps({"recipe": recipe.to_dict(), "pairs_per_step": recipe.pairs_per_step,
                          "estimate": estimate_wall_time(recipe, opts)}, indent=2))
        return 0
    from training.pretrain import pretrain

    t0 = time.perf_counter()
    summary = pretrain(recipe, opts)
    print(json.dumps({**summary, "wall_seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return 130 if summary["stopped_early"] else 0


# ----------------------------------------------------------------------------- evaluate
@command("evaluate", "evaluate a backbone with a paper protocol (linear, knn, transfer, grain, finetune, ...)")
def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    from training.evaluate import PROTOCOLS

    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--entry", default=None, help="zoo entry (its published weights unless --weights)")
    p.add_argument("--weights", default=None,
                   help="'random' (lower bound), a training checkpoint .pt, a safetensors file or export folder")
    p.add_argument("--dataset", default=None, help="evaluation dataset (default: the entry's pretraining dataset)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="several seeds -> mean ± std (default 0; with --check, the published seeds)")
    p.add_argument("--epochs", type=int, default=None, help="classifier epochs (linear 100, finetune 20)")
    p.add_argument("--max-train", type=int, default=None, help="cap training images (quick runs)")
    p.add_argument("--max-test", type=int, default=None, help="cap test images (quick runs)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output folder (default runs/eval/<entry>)")
    p.add_argument("--check", action="store_true",
                   help="compare with the manifest's published value for this protocol/dataset; exit 1 if off")
    p.add_argument("--tolerance", type=float, default=0.5, help="--check tolerance in accuracy points")
    p.set_defaults(fn=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import statistics

    from training.checkpoint import atomic_write_text
    from training.evaluate import EvalSpec, run_protocol
    from training.evaluate.source import load_backbone

    published = _published_metric(args) if args.check else None
    if args.check and published is None:
        return 1
    seeds = args.seeds or (published or {}).get("seeds") or [0]
    results = []
    for seed in seeds:
        backbone = load_backbone(args.entry, args.weights, seed=seed)
        dataset = args.dataset or (published or {}).get("dataset") or _default_eval_dataset(backbone.entry,
                                                                                             args.weights)
        out = args.out or f"runs/eval/{backbone.entry.name}"
        spec = EvalSpec(dataset=dataset, out=out, data_root=args.data_root, seed=seed, epochs=args.epochs,
                        max_train=args.max_train, max_test=args.max_test, device=args.device)
        results.append(run_protocol(args.protocol, backbone, spec))
    values = [r["value"] for r in results if r.get("value") is not None]
    summary = {"protocol": args.protocol, "entry": backbone.entry.name, "source": backbone.label,
               "dataset": dataset, "seeds": seeds, "runs": results,
               "value": statistics.mean(values) if values else None,
               "std": statistics.stdev(values) if len(values) > 1 else None}
    if values:
        summary["metric"] = _metric_record(args, summary, backbone.baseline)
    suffix = f"_{backbone.baseline}" if backbone.baseline else ""  # bounds never overwrite the entry's result
    path = atomic_write_text(f"{out}/{args.protocol}_{dataset}{suffix}.json", json.dumps(summary, indent=2) + "\n")
    std = f" ± {summary['std']:.2f}" if summary["std"] is not None else ""
    value = f"{summary['value']:.2f}{std}" if values else "(figure only)"
    print(f"| protocol | dataset | source | seeds | accuracy (%) |\n|---|---|---|---|---|\n"
          f"| {args.protocol} | {dataset} | {backbone.label} | {len(seeds)} | {value} |")
    for r in results:
        if r.get("png"):
            print(f"figure: {r['png']}")
    print(f"results: {path}")
    if args.check:
        return _check_against_manifest(backbone.entry, args.protocol, dataset, summary["value"], args.tolerance)
    return 0


def _metric_record(args: argparse.Namespace, summary: dict, baseline: str | None) -> dict:
    """The manifest/model-card metric of an evaluation, with the command that reproduces it."""
    from pathlib import Path

    argv = ["evaluate", args.protocol]
    if args.entry:
        argv += ["--entry", args.entry]
    if args.weights:
        argv += ["--weights", args.weights]
    argv += ["--dataset", summary["dataset"], "--seeds", *map(str, summary["seeds"])]
    for flag in ("epochs", "max_train", "max_test", "data_root"):
        if getattr(args, flag) is not None:
            argv += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    first = summary["runs"][0]
    command = "python -m training " + shlex.join(argv)
    if baseline == "supervised":  # the bound's checkpoint is made by its own command: record both
        from training.checkpoint import load_checkpoint

        r = load_checkpoint(args.weights)["recipe"]
        train = ["supervised", "--entry", summary["entry"], "--dataset", r["dataset"], "--epochs", str(r["epochs"]),
                 "--seed", str(r["seed"]), "--out", str(Path(args.weights).parent)]
        if args.data_root is not None:
            train += ["--data-root", args.data_root]
        command = "python -m training " + shlex.join(train) + " && " + command
    record = {"task": args.protocol, "dataset": summary["dataset"], "value": round(summary["value"], 2),
              "std": None if summary["std"] is None else round(summary["std"], 2), "seeds": summary["seeds"],
              "command": command, "unit": "%"}
    if first.get("metric_name"):
        record["note"] = first["metric_name"]
    if baseline:
        record["baseline"] = baseline
    return record


def _own_metrics(entry, protocol: str, dataset: str | None = None) -> list[dict]:
    """The entry's published metrics of a protocol (on a dataset, if given), bounds excluded."""
    return [m for m in entry.metrics if m["task"] == protocol and not m.get("baseline")
            and (dataset is None or m["dataset"] == dataset)]


def _published_metric(args: argparse.Namespace) -> dict | None:
    """For --check: the entry's published metric for this protocol (and --dataset, if given)."""
    from rr_zoo.manifest import load_manifest

    if not args.entry:
        print("--check needs --entry NAME")
        return None
    entry = load_manifest().get(args.entry)
    found = _own_metrics(entry, args.protocol, args.dataset)
    if not found:
        print(f"--check: {entry.name} has no published {args.protocol} metric"
              + (f" on {args.dataset}" if args.dataset else ""))
        return None
    return found[0]


def _default_eval_dataset(entry, weights) -> str:
    if weights and str(weights).endswith(".pt"):
        from training.checkpoint import load_checkpoint

        return load_checkpoint(weights)["dataset"]
    recipe = (entry.provenance or {}).get("recipe") or entry.recipe
    return recipe["dataset"]


def _check_against_manifest(entry, protocol: str, dataset: str, value: float, tolerance: float) -> int:
    published = _own_metrics(entry, protocol, dataset)
    if not published:
        print(f"--check: {entry.name} has no published {protocol} metric on {dataset}")
        return 1
    expected = published[0]["value"]
    ok = abs(value - expected) <= tolerance
    verdict = "OK" if ok else "MISMATCH"
    print(f"--check: measured {value:.2f}, manifest {expected:.2f} ({published[0]['command']}), "
          f"tolerance ±{tolerance}: {verdict}")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- K sweep (Fig. 2b)
@command("ksweep", "linear accuracy vs views per image K at a fixed budget of views (a small Fig. 2b)")
def _ksweep_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entry", required=True, help="zoo entry whose recipe to use")
    add_recipe_flags(p, skip=("k", "epochs"))
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--views-budget", type=int, default=800_000, help="augmented images per run (all K alike)")
    p.add_argument("--eval-epochs", type=int, default=100, help="linear-classifier epochs")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--eval-max-train", type=int, default=None, help="cap labelled train images (quick runs)")
    p.add_argument("--eval-max-test", type=int, default=None, help="cap test images (quick runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="runs/ksweep")
    p.set_defaults(fn=_run_ksweep, k=None, epochs=None)


def _run_ksweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.ksweep import format_k_sweep, run_k_sweep

    if args.views_budget < 1:
        raise RecipeError(f"--views-budget must be positive; got {args.views_budget}")
    recipe = recipe_from_args(args)
    for k in args.ks:  # every K must make a valid recipe (K >= 2, ...) before any work starts
        dataclasses.replace(recipe, k=k)
    opts = RunOptions(out=args.out, device=args.device, data_root=args.data_root, num_threads=args.threads,
                      progress=False, ckpt_every_steps=200)
    summary = run_k_sweep(recipe, opts, args.ks, args.views_budget, Path(args.out), args.eval_epochs,
                          tuple(args.eval_seeds), args.eval_max_train, args.eval_max_test)
    print(format_k_sweep(summary))
    print(f"figure: {summary['png']}\nresults: {args.out}/ksweep.json")
    return 0


# ----------------------------------------------------------------------------- export / publish
@command("export", "write a Hub-ready folder (safetensors, config.json, model card) from a checkpoint")
def _export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of a pretraining run")
    p.add_argument("--entry", default=None, help="zoo entry (default: the checkpoint's)")
    p.add_argument("--out", required=True, help="folder to write (atomically)")
    p.add_argument("--metrics", nargs="*", default=[], help="evaluate JSON files to include")
    p.add_argument("--figures", nargs="*", default=[], help="PNG files to include (t-SNE, retrieval grid)")
    p.add_argument("--provenance", default=None,
                   help="JSON file of provenance fields to set (the rest comes from the checkpoint)")
    p.set_defaults(fn=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.export import export_checkpoint, export_metrics_from

    metrics = [m for path in args.metrics for m in export_metrics_from(path)]
    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    out = export_checkpoint(args.checkpoint, args.out, args.entry, metrics, provenance, args.figures)
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


@command("publish", "upload an export folder to the Hub (--repo-id) and/or bundle it; update the manifest")
def _publish_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder")
    p.add_argument("--repo-id", default=None, help="Hub repo org/name (HF_ENDPOINT and HF_TOKEN honoured)")
    p.add_argument("--bundle", action="store_true", help="also copy the weights into the package")
    p.add_argument("--manifest", default=None, help="manifest to update (default: the package's)")
    p.set_defaults(fn=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    from training.publish import publish

    raw = publish(args.folder, repo_id=args.repo_id, bundle=args.bundle, manifest_path=args.manifest)
    print(json.dumps({"status": raw["status"], "hub": raw["hub"], "files": raw["files"]}, indent=2))
    return 0


# ----------------------------------------------------------------------------- benchmark
@command("benchmark", "time the full training step: ours vs a faithful original step, same run, same machine")
def _benchmark_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archs", nargs="+", default=["conv4", "resnet32"])
    p.add_argument("--ks", type=int, nargs="+", default=[4, 16, 32])
    p.add_argument("--m", type=int, default=64, help="images per step")
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after 1 warm-up)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/out/benchmark.json")
    p.set_defaults(fn=_run_benchmark)


def _run_benchmark(args: argparse.Namespace) -> int:
    from training.benchmark import HEADER, format_table, run_benchmark

    print(HEADER, flush=True)
    result = run_benchmark(args.archs, args.ks, args.m, args.steps, args.out, args.threads)
    print(f"\n{format_table(result)}\nwrote {args.out}")
    return 0


# ----------------------------------------------------------------------------- supervised bound
@command("supervised", "train the same backbone with labels (the supervised upper bound), save a checkpoint")
def _supervised_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entry", required=True, help="zoo entry giving architecture and preprocessing")
    p.add_argument("--dataset", default=None, help="labelled dataset (default: the entry's)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train", type=int, default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="run folder for checkpoint.pt")
    p.set_defaults(fn=_run_supervised)


def _run_supervised(args: argparse.Namespace) -> int:
    from training.supervised import train_supervised

    summary = train_supervised(args.entry, args.dataset, args.epochs, args.out, args.seed, args.data_root,
                               args.max_train, args.device)
    print(json.dumps(summary, indent=2))
    print(f"evaluate it: python -m training evaluate linear --weights {summary['checkpoint']}")
    return 0
