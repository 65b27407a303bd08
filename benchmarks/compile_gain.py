"""Does ``torch.compile`` pay for a backbone on this CPU? Eager vs compiled, side by side (training/runtime/compile.py).

    python -m benchmarks.compile_gain --archs conv4 resnet8 resnet32 --threads 1 2 \\
        --out benchmarks/results/compile_gain_cpu.json

Per (architecture, precision, threads): the backbone's forward + backward alone on a fixed batch of views
(``channels_last``, the allocator setting of a run), eager and compiled models built from the same weights,
timed alternately, best of ``--repeats`` after warm-up (the compile itself is reported apart). The ratio
eager / compiled is the speed-up ``training.runtime.compile.CPU_COMPILE_GAIN`` records for ``--compile auto``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWS = {"conv4": 1024, "resnet8": 512, "resnet32": 256, "resnet56": 256}


def measure(arch: str, precision: str, threads: int, repeats: int) -> dict:
    """Eager and compiled seconds per forward + backward, and the first compiled call's seconds."""
    import torch

    from rr_zoo.models import build_backbone
    from training.method.step import autocast_context
    from training.runtime.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(threads)
    torch._dynamo.reset()  # every backbone shares Backbone.forward: without this its recompile limit is hit
    views = VIEWS.get(arch, 256)
    x = torch.randn(views, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    eager = build_backbone(arch).to(memory_format=torch.channels_last)
    compiled = build_backbone(arch).to(memory_format=torch.channels_last)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile()

    def step(model) -> float:
        t0 = time.perf_counter()
        with autocast_context("cpu", precision):
            out = model(x)
        out.float().sum().backward()
        return time.perf_counter() - t0

    first = step(compiled)
    step(eager)
    best = {"eager": float("inf"), "compiled": float("inf")}
    for _ in range(repeats):
        for name, model in (("eager", eager), ("compiled", compiled)):
            best[name] = min(best[name], step(model))
    return {"arch": arch, "precision": precision, "threads": threads, "views": views,
            "eager_s": best["eager"], "compiled_s": best["compiled"], "first_compiled_call_s": first,
            "speedup": best["eager"] / best["compiled"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=["conv4", "resnet8", "resnet32"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/out/compile_gain.json")
    args = parser.parse_args(argv)
    from training.bench.record import machine_record, write_result
    from training.runtime.precision import resolve_precision

    machine = machine_record()
    rows = []
    for arch in args.archs:
        for precision in args.precisions:
            if precision == "bf16" and resolve_precision("auto") != "bf16":
                print(f"{arch} bf16: skipped (no native bf16 on this CPU)")
                continue
            for threads in args.threads:
                rows.append(measure(arch, precision, threads, args.repeats))
                r = rows[-1]
                print(f"{arch:9s} {precision} {threads} thread(s): eager {1e3 * r['eager_s']:.1f} ms, compiled "
                      f"{1e3 * r['compiled_s']:.1f} ms -> {r['speedup']:.2f}x "
                      f"(first call {r['first_compiled_call_s']:.1f} s)", flush=True)
    write_result(args.out, {"command": "python -m benchmarks.compile_gain " + " ".join(argv or sys.argv[1:]),
                            "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
