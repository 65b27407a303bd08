"""View generation of the working tree vs a given commit, side by side in one process.

    python -m benchmarks.views_change --before 92dc971 --ks 4 16 32 --out benchmarks/results/views_change_cpu.json

Loads ``training/pretrain/augment.py`` as it was at ``--before`` (``git show``) next to the current one and times
``make_views`` (M = 64 real images of ``cifar10_4k``, ``channels_last`` output, one thread) alternately, best
of ``--repeats``, in CPU seconds of this process. Also checks that both give the same views bit for bit
from the same generator state.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


AUGMENT_PATHS = ("training/pretrain/augment.py", "training/augment.py")  # where it is, where it was before


def load_previous(commit: str):
    """The view-generation module (``training/pretrain/augment.py``) as it was at ``commit``."""
    for path in AUGMENT_PATHS:
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"], capture_output=True, text=True)
        if shown.returncode == 0:
            source = shown.stdout
            break
    else:
        raise SystemExit(f"--before {commit}: none of {AUGMENT_PATHS} exists at that commit")
    path = Path(tempfile.mkdtemp()) / "augment_previous.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("augment_previous", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["augment_previous"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git commit of the earlier view generation (augment.py)")
    parser.add_argument("--ks", nargs="+", type=int, default=[4, 16, 32])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/out/views_change.json")
    args = parser.parse_args(argv)
    import torch

    import training.pretrain.augment as now
    from training.bench.record import machine_record, write_result
    from training.data import load_split
    from training.pretrain.inputs import augment_config
    from training.pretrain.recipes import recipe_for_entry
    from training.release.provenance import code_commit
    from training.runtime.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(1)
    machine = machine_record(threads=1)
    before = load_previous(args.before)
    images = load_split("cifar10_4k", "train").images[:64].clone()
    rows = []
    for k in args.ks:
        cfg = augment_config(recipe_for_entry("rr_conv4_cifar10", k=k, batch_size=64))
        same = all(torch.equal(now.make_views(images, k, cfg, torch.Generator().manual_seed(s), channels_last=True),
                               before.make_views(images, k, cfg, torch.Generator().manual_seed(s), channels_last=True))
                   for s in range(3))
        best = {"before": float("inf"), "now": float("inf")}
        gens = {name: torch.Generator().manual_seed(0) for name in best}
        for _ in range(args.repeats):
            for name, module in (("before", before), ("now", now)):
                t0 = time.process_time()
                module.make_views(images, k, cfg, gens[name], channels_last=True)
                best[name] = min(best[name], time.process_time() - t0)
        rows.append({"k": k, "views": 64 * k, "before_ms": 1e3 * best["before"], "now_ms": 1e3 * best["now"],
                     "speedup": best["before"] / best["now"], "bit_identical": same})
        print(f"K={k:2d}: {rows[-1]['before_ms']:.1f} -> {rows[-1]['now_ms']:.1f} ms per {64 * k} views "
              f"({rows[-1]['speedup']:.2f}x), bit-identical: {same}", flush=True)
    write_result(args.out, {"command": "python -m benchmarks.views_change " + " ".join(argv or sys.argv[1:]),
                            "before": args.before, "code_commit": code_commit(), "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
