"""What each part of the CPU training step is worth (allocator, fused head tail, hue), measured side by side.

    python -m benchmarks.step_changes --archs conv4 resnet32 --ks 4 16 32 --resnet-ks 4 \\
        --out benchmarks/results/step_changes_cpu.json

Per (architecture, K): M = 64 real images (the shared ``cifar10_4k`` pack), fp32, ``channels_last``
backbone, one thread, the step of ``python -m training pretrain`` (``make_views`` + ``train_step``).
The allocator setting (:func:`training.runtime.allocator.keep_freed_memory`; ``RR_ZOO_MALLOC=default``: glibc as
it comes) is per process and depends on what the process allocated before, so it is measured as a
training run meets it: child processes that run nothing but one step function, ``--reps`` times
(best kept): ``step_before`` with the default allocator (the step without any of these parts),
``step`` with the default allocator, and ``step`` with it tuned; alternated ``--rounds`` times. The
code changes are measured in one more child per round (allocator tuned), every variant below
interleaved ``--reps`` times, best kept:

- ``step``: the full step as it is now;
- ``step_unfused_head``: the same with ``RelationHead.fused_tail = False`` (gather, ``nn.BatchNorm1d``,
  LeakyReLU, ``nn.Linear`` over all pairs: the head before the fused tail);
- ``step_previous_hue``: the same with the hue rotation as it was (``reference_adjust_hue`` in
  ``tests/test_fused_head.py``; its output is bit-identical to the current one);
- ``step_before``: both of these at once (the step without these parts, apart from the allocator);
- ``views`` / ``views_previous_hue``: the view generation alone;
- ``head`` / ``head_unfused``: head + focal loss + backward on fixed features;
- ``backbone_channels_last`` / ``backbone_contiguous``: the backbone's forward + backward alone on the
  same number of views (no augmentation, head or optimiser): the ceiling of the step.

Times are CPU seconds of the child process (``time.process_time``: with one thread, the work done, not
the time waited for a core on a shared machine) and wall seconds; ratios use CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(arch: str, k: int, reps: int, only: str | None = None) -> dict:
    """Run every variant of one configuration in this process (or ``only`` one); best CPU and wall seconds."""
    import torch

    from training.runtime.allocator import keep_freed_memory

    tuned = keep_freed_memory()
    torch.set_num_threads(1)
    import training.pretrain.augment as augment
    from rr_zoo.relation import focal_loss
    from tests.test_fused_head import reference_adjust_hue
    from training.data import load_split
    from training.method.step import build_model, build_optimizer, train_step
    from training.pretrain.inputs import augment_config
    from training.pretrain.recipes import recipe_for_entry

    images = load_split("cifar10_4k", "train").images[:64].clone()
    recipe = recipe_for_entry(f"rr_{arch}_cifar10", k=k, batch_size=64)
    cfg = augment_config(recipe)
    hue_ops = {"current": augment.JITTER_OPS,
               "previous": (*augment.JITTER_OPS[:3], reference_adjust_hue)}

    def views(hue: str, channels_last: bool = True) -> torch.Tensor:
        augment.JITTER_OPS = hue_ops[hue]
        try:
            return augment.make_views(images, k, cfg, generator=gens[hue], channels_last=channels_last)
        finally:
            augment.JITTER_OPS = hue_ops["current"]

    gens = {h: torch.Generator().manual_seed(0) for h in hue_ops}

    def step_fn(fused: bool, hue: str):
        model = build_model(recipe, 3)
        model.backbone.to(memory_format=torch.channels_last)
        model.head.fused_tail = fused
        opt = build_optimizer(recipe, model.parameters())
        return lambda: train_step(model, opt, views(hue), recipe, "fp32")

    def head_fn(fused: bool):
        model = build_model(recipe, 3)
        model.head.fused_tail = fused
        feats = torch.randn(k * 64, model.backbone.num_features, requires_grad=True)

        def run():
            logits, targets = model.head.forward_views(feats, k, recipe.aggregation)
            focal_loss(logits, targets, recipe.focal_gamma, recipe.focal_alpha).backward()
        return run

    def backbone_fn(channels_last: bool):
        model = build_model(recipe, 3)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model.backbone.to(memory_format=fmt)
        x = views("current", channels_last)

        def run():
            model.zero_grad(set_to_none=True)
            model.backbone(x).sum().backward()
        return run

    makers = {"step": lambda: step_fn(True, "current"), "step_unfused_head": lambda: step_fn(False, "current"),
              "step_previous_hue": lambda: step_fn(True, "previous"), "step_before": lambda: step_fn(False, "previous"),
              "views": lambda: lambda: views("current"), "views_previous_hue": lambda: lambda: views("previous"),
              "head": lambda: head_fn(True), "head_unfused": lambda: head_fn(False),
              "backbone_channels_last": lambda: backbone_fn(True), "backbone_contiguous": lambda: backbone_fn(False)}
    fns = {name: make() for name, make in makers.items() if only in (None, name)}
    for fn in fns.values():  # warm-up
        fn()
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for rep in range(reps):
        for name in (order if rep % 2 == 0 else order[::-1]):
            c0, t0 = time.process_time(), time.perf_counter()
            fns[name]()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - t0)
    return {"allocator_tuned": tuned, "cpu_s": {n: min(v) for n, v in cpu.items()},
            "wall_s": {n: min(v) for n, v in wall.items()}}


def _spawn(arch: str, k: int, reps: int, malloc: str, only: str | None = None) -> dict:
    env = dict(os.environ, RR_ZOO_MALLOC=malloc, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "benchmarks.step_changes", "--child", arch, str(k), str(reps),
           *([only] if only else [])]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _keep_best(best: dict, key: str, res: dict) -> None:
    if key not in best:
        best[key] = res
        return
    for kind in ("cpu_s", "wall_s"):
        best[key][kind] = {n: min(v, best[key][kind][n]) for n, v in res[kind].items()}


def run_config(arch: str, k: int, reps: int, rounds: int) -> dict:
    """Alternate the child processes ``rounds`` times; keep each variant's best."""
    alone = (("default", "step_before"), ("default", "step"), ("tuned", "step"))
    best: dict[str, dict] = {}
    for rnd in range(rounds):
        for malloc, only in (alone if rnd % 2 == 0 else alone[::-1]):
            res = _spawn(arch, k, reps, malloc, only)
            _keep_best(best, f"{only}_alone_malloc_{malloc}", res)
            print(f"  {arch} K={k} round {rnd + 1}/{rounds} {only} alone, malloc={malloc}: "
                  f"{1000 * res['cpu_s'][only]:.0f} ms CPU", flush=True)
        _keep_best(best, "variants_malloc_tuned", _spawn(arch, k, reps, "tuned"))
    cpu = {key: res["cpu_s"] for key, res in best.items()}
    before = cpu["step_before_alone_malloc_default"]["step_before"]
    after = cpu["step_alone_malloc_tuned"]["step"]
    t = cpu["variants_malloc_tuned"]
    views = 64 * k
    return {
        "arch": arch, "k": k, "m": 64, "views": views, "runs": best,
        "views_per_cpu_s": {"before": views / before, "after": views / after,
                            "backbone_ceiling_channels_last": views / t["backbone_channels_last"],
                            "backbone_ceiling_contiguous": views / t["backbone_contiguous"]},
        "speedup": {
            "all_changes": before / after,
            "allocator_on_step": cpu["step_alone_malloc_default"]["step"] / after,
            "fused_head_on_step": t["step_unfused_head"] / t["step"],
            "fused_head_on_head": t["head_unfused"] / t["head"],
            "hue_on_step": t["step_previous_hue"] / t["step"],
            "hue_on_views": t["views_previous_hue"] / t["views"],
            "channels_last_on_backbone": t["backbone_contiguous"] / t["backbone_channels_last"],
        },
        "step_share_of_backbone_ceiling": t["backbone_channels_last"] / after,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["conv4", "resnet32"])
    p.add_argument("--ks", type=int, nargs="+", default=[4, 16, 32], help="K values for conv4")
    p.add_argument("--resnet-ks", type=int, nargs="+", default=[4], help="K values for the ResNets")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions per child (best kept)")
    p.add_argument("--rounds", type=int, default=2, help="child processes per allocator setting, alternated")
    p.add_argument("--out", default="benchmarks/out/step_changes.json")
    args = p.parse_args()

    from training.bench.record import machine_record, write_result

    machine = machine_record(threads=1)  # the load as the benchmark starts

    rows = []
    for arch in args.archs:
        for k in (args.ks if arch == "conv4" else args.resnet_ks):
            rows.append(run_config(arch, k, args.reps, args.rounds))
            r = rows[-1]
            print(json.dumps({"arch": arch, "k": k, **r["speedup"],
                              "step_share_of_backbone_ceiling": r["step_share_of_backbone_ceiling"]}), flush=True)
    result = {"command": "python -m benchmarks.step_changes " + " ".join(sys.argv[1:]),
              "machine": machine,
              "timing": "CPU seconds of the measuring process, best of reps x rounds; M = 64, fp32",
              "rows": rows}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
