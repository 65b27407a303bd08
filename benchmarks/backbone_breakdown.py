"""Where the backbone-only ceiling of a CPU training step goes: per aten op, and per oneDNN convolution pass.

    python -m benchmarks.backbone_breakdown --arch resnet32 --views 256 --threads 2 \\
        --out benchmarks/results/backbone_breakdown_resnet32_bf16.json

The step is the one ``python -m training benchmark`` times as the ceiling
(:func:`training.bench.original.ceiling_step`): the backbone's forward + backward alone on random
views, under the precision's autocast, in the chosen memory format. Two child processes:

- ``ops``: the plain step's wall time (best of ``--steps``, after one more warm-up), then the same step
  under a dispatch mode that times every aten op with ``time.perf_counter`` (CPU kernels are synchronous,
  so an op's wall time is its kernel's); the shares are of that instrumented step.
- ``onednn``: the step with ``ONEDNN_VERBOSE=1``; every convolution primitive oneDNN executes is listed
  with its implementation (``brg_conv_fwd``, ``jit_bf16``, ...), its pass (forward, backward data,
  backward weights) and its time. FLOPs come from the problem descriptor (2·mb·oc·oh·ow·kh·kw·ic/groups).

It says which kernels bound the ceiling; it changes nothing in the step.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESC = re.compile(r"mb(\d+)_g?(\d*)ic(\d+)oc(\d+)_.*?oh(\d+)kh(\d+).*?ow(\d+)kw(\d+)")
PASSES = {"forward_training": "forward", "backward_data": "backward data", "backward_weights": "backward weights"}


def warmed_step(args: argparse.Namespace):
    """The ceiling step (:func:`training.bench.original.ceiling_step`) on ``--threads``, run ``--warmup`` times."""
    import torch

    from training.bench.original import ceiling_step

    torch.set_num_threads(args.threads)
    step = ceiling_step(args.arch, args.views, args.precision, args.layout == "channels_last")
    for _ in range(args.warmup):
        step()
    return step


def child_ops(args: argparse.Namespace) -> dict:
    """Plain step wall time and per-aten-op wall time of the instrumented step."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from training.bench.estimate import best_seconds

    step = warmed_step(args)
    plain_s = best_seconds(step, args.steps)
    per_op: collections.Counter = collections.Counter()

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t0 = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            per_op[func.__name__] += time.perf_counter() - t0
            return out

    best, best_ops = float("inf"), {}
    for _ in range(args.steps):
        per_op.clear()
        t0 = time.perf_counter()
        with OpTimer():
            step()
        wall = time.perf_counter() - t0
        if wall < best:
            best, best_ops = wall, dict(per_op)
    return {"step_s": plain_s, "instrumented_step_s": best, "ops_s": best_ops}


def child_onednn(args: argparse.Namespace) -> None:
    """Run warm-up then ``--steps`` steps; oneDNN prints its verbose lines to stdout."""
    step = warmed_step(args)
    ctypes.CDLL(None).fflush(None)  # oneDNN logs through C stdio: its warm-up lines go out before the mark
    print("=== timed", flush=True)
    for _ in range(args.steps):
        step()
    sys.stdout.flush()


def conv_flops(desc: str) -> float:
    """2·mb·oc·oh·ow·kh·kw·ic/g from a oneDNN convolution descriptor (ic, oc: all channels; g: groups)."""
    m = DESC.search(desc)
    if m is None:
        raise ValueError(f"unrecognised oneDNN convolution descriptor {desc!r}")
    mb, g, ic, oc, oh, kh, ow, kw = (int(v) if v else 1 for v in m.groups())
    return 2.0 * mb * oc * oh * ow * kh * kw * (ic // g)


def parse_onednn(stdout: str, steps: int) -> list[dict]:
    """Convolution executions after the ``=== timed`` mark, grouped by (pass, implementation, shape)."""
    timed = stdout.split("=== timed", 1)[1]
    groups: dict[tuple[str, str, str], dict] = {}
    for line in timed.splitlines():
        fields = line.split(",")
        if len(fields) < 8 or fields[0] != "onednn_verbose" or fields[3:6] != ["exec", "cpu", "convolution"]:
            continue
        impl, prop, desc, ms = fields[6], fields[7], fields[-2], float(fields[-1])
        key = (PASSES.get(prop, prop), impl, desc)
        g = groups.setdefault(key, {"pass": key[0], "implementation": impl, "shape": desc, "calls": 0,
                                    "ms": 0.0, "flops": 0.0})
        g["calls"] += 1
        g["ms"] += ms
        g["flops"] += conv_flops(desc)
    rows = []
    for g in groups.values():
        g["calls_per_step"] = g["calls"] / steps
        g["ms_per_step"] = g["ms"] / steps
        g["gflop_per_s"] = g["flops"] / (g["ms"] / 1e3) / 1e9
        rows.append(g)
    return sorted(rows, key=lambda r: -r["ms"])


def summarize_passes(rows: list[dict]) -> dict[str, dict]:
    """Per pass: ms per step, GFLOP/s, and the implementations oneDNN picked."""
    out: dict[str, dict] = {}
    for r in rows:
        p = out.setdefault(r["pass"], {"ms": 0.0, "ms_per_step": 0.0, "flops": 0.0, "implementations": set()})
        p["ms"] += r["ms"]
        p["ms_per_step"] += r["ms_per_step"]
        p["flops"] += r["flops"]
        p["implementations"].add(r["implementation"])
    for p in out.values():
        p["gflop_per_s"] = p.pop("flops") / (p.pop("ms") / 1e3) / 1e9
        p["implementations"] = sorted(p["implementations"])
    return out


def run_child(args: argparse.Namespace, mode: str) -> str:
    cmd = [sys.executable, "-m", "benchmarks.backbone_breakdown", "--child", mode, "--arch", args.arch,
           "--views", str(args.views), "--threads", str(args.threads), "--precision", args.precision,
           "--layout", args.layout, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if mode == "onednn":
        env["ONEDNN_VERBOSE"] = "1"
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet32")
    parser.add_argument("--views", type=int, default=256, help="views per step (K·M)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--layout", default="channels_last", choices=["channels_last", "contiguous"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps (best kept for the op table)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--child", choices=["ops", "onednn"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ops":
        print(json.dumps(child_ops(args)))
        return
    if args.child == "onednn":
        child_onednn(args)
        return

    from training.bench.record import machine_record, write_result

    machine = machine_record()
    ops = json.loads(run_child(args, "ops").strip().splitlines()[-1])
    convs = parse_onednn(run_child(args, "onednn"), args.steps)
    passes = summarize_passes(convs)
    inst = ops["instrumented_step_s"]
    top_ops = sorted(ops["ops_s"].items(), key=lambda kv: -kv[1])[:10]
    result = {
        "command": "python -m benchmarks.backbone_breakdown " + " ".join(sys.argv[1:]),
        "machine": machine,
        "arch": args.arch, "views": args.views, "threads": args.threads, "precision": args.precision,
        "layout": args.layout,
        "step_views_per_s": args.views / ops["step_s"],
        "instrumented_step_s": inst,
        "ops": [{"op": k, "ms": v * 1e3, "share": v / inst} for k, v in top_ops],
        "conv_passes": passes,
        "convolutions": convs,
    }
    print(f"{args.arch} {args.precision} {args.layout}, {args.views} views, {args.threads} threads: "
          f"backbone forward + backward {result['step_views_per_s']:,.0f} views/s "
          f"({ops['step_s'] * 1e3:.1f} ms; instrumented {inst * 1e3:.1f} ms)")
    print(f"{'aten op':38s} {'ms':>7s} {'share':>6s}")
    for r in result["ops"]:
        print(f"{r['op']:38s} {r['ms']:7.1f} {r['share'] * 100:5.1f}%")
    print(f"\n{'convolution pass':18s} {'ms/step':>8s} {'GFLOP/s':>8s}  oneDNN implementations")
    for name, p in passes.items():
        print(f"{name:18s} {p['ms_per_step']:8.1f} {p['gflop_per_s']:8.0f}  {', '.join(p['implementations'])}")
    if args.out:
        print()
        write_result(args.out, result, indent=1)


if __name__ == "__main__":
    main()
