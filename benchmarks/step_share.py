"""Our whole training step against the backbone alone, interleaved in one process: the step's share of its ceiling.

    python -m benchmarks.step_share --entry rr_resnet32_tinyimagenet --dataset tinyimagenet --ks 4 16 \\
        --threads 2 --reps 6 --out benchmarks/results/step_share_resnet32_tinyimagenet.json

``python -m training benchmark`` times our step inside a ``pretrain`` run and the backbone-only ceiling in
another process; on a shared virtual machine the two can meet different moments of the host's load (its
ceiling repeats have differed by 20 %). Here both run in one process, alternately, on the same machine
moment: ``step`` is what ``pretrain`` runs per step (``make_views`` on M real images of the dataset, then
``train_step``: backbone, relation head, focal loss, backward, Adam) in the given precision with a
``channels_last`` backbone and the run's allocator setting; ``backbone`` is
:func:`training.bench.original.ceiling_step`: the same architecture's forward + backward alone on K·M
random views of the same shape. After two warm-up calls of each, ``--reps`` calls of each alternate; the
share is the median backbone time over the median step time (per-call views/s listed in the JSON).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time


def measure(entry: str, dataset: str, k: int, m: int, precision: str, reps: int) -> dict:
    """Seconds of ``reps`` alternating step and backbone-alone calls, and the share."""
    import torch

    from training.bench.original import ceiling_step
    from training.data import load_split
    from training.method.step import build_model, build_optimizer, train_step
    from training.pretrain.augment import make_views
    from training.pretrain.inputs import augment_config
    from training.pretrain.recipes import recipe_for_entry

    recipe = recipe_for_entry(entry, k=k, batch_size=m, dataset=dataset)
    images = load_split(dataset, recipe.split).images[:m].clone()
    size = images.shape[-1]
    model = build_model(recipe, images.shape[1])
    model.backbone.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(recipe, model.parameters())
    cfg = augment_config(recipe)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        views = make_views(images, k, cfg, generator=gen, channels_last=True)
        train_step(model, optimizer, views, recipe, precision)

    fns = {"step": step, "backbone": ceiling_step(recipe.architecture, k * m, precision, True, size=size,
                                                  in_chans=images.shape[1])}
    for _ in range(2):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(reps):
        for name in (list(fns) if rep % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            fns[name]()
            seconds[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in seconds.items()}
    return {"k": k, "m": m, "precision": precision, "image_size": size,
            "views_per_s": {name: [round(k * m / s, 1) for s in v] for name, v in seconds.items()},
            "median_views_per_s": {name: k * m / s for name, s in med.items()},
            "share": med["backbone"] / med["step"]}


def main(argv: list[str] | None = None) -> int:
    import torch

    from training.bench.record import machine_record, write_result
    from training.release.provenance import code_commit
    from training.runtime.allocator import keep_freed_memory
    from training.runtime.precision import resolve_precision

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entry", default="rr_resnet32_tinyimagenet")
    ap.add_argument("--dataset", default="tinyimagenet")
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--m", type=int, default=64, help="images per step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "auto"], help="fp32, bf16 or auto (this CPU's)")
    ap.add_argument("--reps", type=int, default=8, help="alternating calls of each")
    ap.add_argument("--out", default="benchmarks/out/step_share.json")
    args = ap.parse_args(argv)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    machine = machine_record(threads=args.threads)
    precisions = list(dict.fromkeys(resolve_precision(p) for p in args.precisions))
    rows = []
    for k in args.ks:
        for precision in precisions:
            row = measure(args.entry, args.dataset, k, args.m, precision, args.reps)
            rows.append(row)
            print(f"{args.entry} K={k} M={args.m} {precision}: step {row['median_views_per_s']['step']:.0f} views/s, "
                  f"backbone alone {row['median_views_per_s']['backbone']:.0f} views/s: "
                  f"{100 * row['share']:.0f} % of its ceiling", flush=True)
    command = "python -m benchmarks.step_share " + shlex.join(sys.argv[1:] if argv is None else argv)
    write_result(args.out, {"command": command, "entry": args.entry, "dataset": args.dataset,
                            "threads": args.threads, "reps": args.reps, "code_commit": code_commit(),
                            "rows": rows, "machine": machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
