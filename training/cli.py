"""Argument parsers of the ``python -m training`` commands."""

from __future__ import annotations

import argparse
import json
import time

from training.__main__ import command
from training.recipes import RECIPE_FIELDS, Recipe, RunOptions, recipe_for_entry

# flag -> recipe field, with the type argparse should parse
RECIPE_FLAGS: dict[str, tuple[str, type]] = {
    "--epochs": ("epochs", int), "--k": ("k", int), "--batch-size": ("batch_size", int),
    "--aggregation": ("aggregation", str), "--loss": ("loss", str), "--focal-gamma": ("focal_gamma", float),
    "--focal-alpha": ("focal_alpha", float), "--lr": ("lr", float), "--weight-decay": ("weight_decay", float),
    "--seed": ("seed", int), "--dataset": ("dataset", str), "--split": ("split", str),
    "--architecture": ("architecture", str), "--relation-hidden": ("relation_hidden", int),
}
assert {f for f, _ in RECIPE_FLAGS.values()} == set(RECIPE_FIELDS) - {"entry", "optimizer"}


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
    group = p.add_argument_group("recipe overrides (default: the entry's manifest recipe)")
    for flag, (name, typ) in RECIPE_FLAGS.items():
        group.add_argument(flag, dest=name, type=typ, default=None)
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
