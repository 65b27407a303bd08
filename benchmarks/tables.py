"""The tables of ``benchmarks/README.md``, each generated from the JSON in ``benchmarks/results/`` it cites.

    python -m benchmarks.tables            # print every table
    python -m benchmarks.tables --write    # replace the blocks between their markers in benchmarks/README.md
    python -m benchmarks.tables --check    # exit 1 if a block is stale (the tests do the same)

A block is ``<!-- table:NAME:begin -->`` ... ``<!-- table:NAME:end -->``; ``TABLES`` maps each NAME
to the function that formats it and the JSON files it reads.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "benchmarks" / "README.md"
RESULTS = "benchmarks/results"


def _load(path: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text())


def _machine(machine: dict[str, Any], threads: int | None = None) -> str:
    """One phrase for a machine record written by the benchmarks (processor, cores, bf16 flags, torch)."""
    flags = [f for f in ("avx512_bf16", "amx_bf16") if f in machine.get("flags", [])]
    parts = [machine.get("processor", "unknown CPU"), f"{machine['cores']} cores" if "cores" in machine else None,
             f"{threads} thread(s)" if threads else None, ", ".join(flags) if flags else "no bf16 instructions",
             f"torch {machine['torch']}" if "torch" in machine else None]
    return ", ".join(p for p in parts if p)


def _footer(r: dict[str, Any], path: str, machine: str, how: str | None = None,
            loads: list[float | None] | None = None) -> str:
    """The line under a table: command, machine, how it was timed, code commit, the load around it, raw JSON.

    ``loads`` default to the machine record's other runnable tasks at the start and the end.
    """
    if loads is None:
        loads = [r["machine"].get("other_runnable_tasks"), r["machine"].get("other_runnable_tasks_at_end")]
    busy = ", ".join("–" if b is None else f"{b:.1f}" for b in loads)
    return (f"`{r['command']}` — {machine}{f'; {how}' if how else ''}; code commit {_commit(r['code_commit'])}; "
            f"other runnable tasks before / after: {busy}; raw: `{path}`")


def _commit(commit: str) -> str:
    """A recorded code commit, a full sha shortened to 7 digits (a ``-dirty`` mark and any note kept)."""
    return re.sub(r"\b([0-9a-f]{7})[0-9a-f]{33}\b", r"\1", commit)


def original_comparison(paths: list[str]) -> str:
    """Ours vs the original repository's own code (``python -m training benchmark --original-repo``)."""
    from training.bench.original import format_table

    blocks = []
    for path in paths:
        r = _load(path)
        blocks.append(f"{format_table(r)}\n\n`{r['command']}` — images: {r['images']}; "
                      f"{_machine(r['machine'], r['threads'])}; {r['timing']}; "
                      f"code commit {_commit(r['code_commit'])}, original commit {r['original_commit'][:7]}; "
                      f"raw: `{path}`")
    return "\n\n".join(blocks)


def backbone_breakdown(paths: list[str]) -> str:
    """Where a backbone-only step's time goes: per oneDNN convolution pass, then per aten op."""
    blocks = []
    for path in paths:
        r = _load(path)
        lines = [f"**{r['arch']}, {r['precision']}, {r['layout']}, {r['views']} views**: "
                 f"{r['step_views_per_s']:,.0f} views/s "
                 f"({1000 * r['views'] / r['step_views_per_s']:.0f} ms per step; instrumented step "
                 f"{1000 * r['instrumented_step_s']:.0f} ms)", "",
                 "| convolution pass | ms per step | GFLOP/s | oneDNN kernels |", "|---|---|---|---|"]
        for name, p in sorted(r["conv_passes"].items(), key=lambda kv: -kv[1]["ms_per_step"]):
            lines.append(f"| {name} | {p['ms_per_step']:.1f} | {p['gflop_per_s']:.0f} | "
                         f"{', '.join(f'`{i}`' for i in p['implementations'])} |")
        lines += ["", "| aten op | ms per step | share |", "|---|---|---|"]
        lines += [f"| `{o['op']}` | {o['ms']:.1f} | {100 * o['share']:.1f} % |" for o in r["ops"] if o["share"] >= 0.01]
        lines += ["", f"`{r['command']}` — {_machine(r['machine'], r['threads'])}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def step_parts(paths: list[str]) -> str:
    """What each part of the training step is worth (``benchmarks/step_changes.py``): speedups, CPU time."""
    r = _load(paths[0])
    rows = r["rows"]
    cols = [f"{x['arch']} K={x['k']}" for x in rows]
    speed = [x["speedup"] for x in rows]

    def line(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    lines = [line("", cols), "|---|" + "---|" * len(cols),
             line("step without / with all three parts (CPU ms)",
                  [f"{1000 * x['runs']['step_before_alone_malloc_default']['cpu_s']['step_before']:.1f} → "
                   f"{1000 * x['runs']['step_alone_malloc_tuned']['cpu_s']['step']:.1f}" for x in rows]),
             line("**speedup, all three**", [f"**{s['all_changes']:.2f}×**" for s in speed]),
             line("allocator setting, on the step", [f"{s['allocator_on_step']:.2f}×" for s in speed]),
             line("fused relation-head tail, on the head", [f"{s['fused_head_on_head']:.2f}×" for s in speed]),
             line("fused relation-head tail, on the step", [f"{s['fused_head_on_step']:.2f}×" for s in speed]),
             line("hue rotation by gathers, on view generation", [f"{s['hue_on_views']:.2f}×" for s in speed]),
             line("hue rotation by gathers, on the step", [f"{s['hue_on_step']:.2f}×" for s in speed]),
             line("`channels_last`, on the backbone alone", [f"{s['channels_last_on_backbone']:.2f}×" for s in speed]),
             line("step as a share of the backbone-only ceiling",
                  [f"{100 * x['step_share_of_backbone_ceiling']:.0f} %" for x in rows]),
             "", f"`{r['command']}` — {_machine(r['machine'], r['machine'].get('threads'))}; {r['timing']}"]
    return "\n".join(lines)


def compile_gain(paths: list[str]) -> str:
    """Backbone forward + backward, ``torch.compile`` vs eager (``benchmarks/compile_gain.py``)."""
    r = _load(paths[0])
    threads = sorted({x["threads"] for x in r["rows"]})
    configs = sorted({(x["arch"], x["precision"]) for x in r["rows"]},
                     key=lambda c: ([x["arch"] for x in r["rows"]].index(c[0]), c[1] != "fp32"))
    by = {(x["arch"], x["precision"], x["threads"]): x for x in r["rows"]}
    lines = ["| arch | precision | views | " + " | ".join(f"compiled / eager, {t} thread(s)" for t in threads)
             + " | first compiled call s |", "|---|---|---|" + "---|" * len(threads) + "---|"]
    for arch, precision in configs:
        cells = [by[(arch, precision, t)] for t in threads]
        lines.append(f"| {arch} | {precision} | {cells[0]['views']} | "
                     + " | ".join(f"{c['speedup']:.2f}×" for c in cells)
                     + " | " + " / ".join(f"{c['first_compiled_call_s']:.1f}" for c in cells) + " |")
    lines += ["", f"`{r['command']}` — {_machine(r['machine'])}"]
    return "\n".join(lines)


def eval_precision(paths: list[str]) -> str:
    """Feature extraction, fp32 vs bf16 side by side (``benchmarks/eval_precision.py``)."""
    r = _load(paths[0])
    lines = ["| images | batch | fp32 images/s | bf16 images/s | bf16 / fp32 | min cosine fp32 vs bf16 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {x['side']}×{x['side']} | {x['batch_size']}{' (default)' if x['default_batch'] else ''} | "
              f"{x['fp32_images_per_s']:,.0f} | {x['bf16_images_per_s']:,.0f} | {x['bf16_speedup']:.2f}× | "
              f"{x['min_cosine_fp32_bf16']:.4f} |" for x in r["rows"]]
    machine = (f"{r['hardware']}, {', '.join(r['bf16_cpu_flags']) or 'no bf16 instructions'}, "
               f"torch {r['torch']}")
    lines += ["", _footer(r, paths[0], machine, loads=r["other_runnable_tasks"])]
    return "\n".join(lines)


def dry_run(paths: list[str]) -> str:
    """Every entry's dry run (``python -m training.bench.estimate --all-entries``)."""
    from training.bench.estimate import markdown_table

    return markdown_table(_load(paths[0]))


def step_share(paths: list[str]) -> str:
    """Our step against the backbone alone, interleaved in one process (``benchmarks/step_share.py``)."""
    r = _load(paths[0])
    lines = ["| entry | K × M | views | precision | step views/s | backbone alone views/s | step / backbone alone |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['entry']}` | {x['k']} × {x['m']} | {x['image_size']}×{x['image_size']} | {x['precision']} | "
              f"{x['median_views_per_s']['step']:,.0f} | {x['median_views_per_s']['backbone']:,.0f} | "
              f"{100 * x['share']:.0f} % |" for x in r["rows"]]
    lines += ["", _footer(r, paths[0], _machine(r["machine"], r["threads"]),
                          f"medians of {r['reps']} alternating calls each")]
    return "\n".join(lines)


def dry_run_check(paths: list[str]) -> str:
    """Dry-run estimates against the real step (``benchmarks/dry_run_check.py``)."""
    r = _load(paths[0])
    lines = ["| entry | recipe | threads | precision | estimated s/step | measured s/step | measured / estimate |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| `{x['entry']}` | `{x['flags']}` | {x['threads']} | {x.get('precision', 'auto')} | "
              f"{' / '.join(f'{v:.2f}' for v in x['estimates_s'])} | "
              f"{' / '.join(f'{v:.2f}' for v in x['measured_s'])} | {x['measured_over_estimate']:.2f} |"
              for x in r["rows"]]
    lines += ["", _footer(r, paths[0], _machine(r["machine"]), f"{r['rounds']} rounds, each a dry run then a real "
                          f"run timed over {r['steps']} steps, interleaved; ratio of the medians")]
    return "\n".join(lines)


TABLES: dict[str, tuple[Callable[[list[str]], str], list[str]]] = {
    "original": (original_comparison, [f"{RESULTS}/original_cpu_2threads_conv4.json",
                                       f"{RESULTS}/original_cpu_2threads_resnet32.json",
                                       f"{RESULTS}/original_cpu_2threads_resnet32_tinyimagenet.json"]),
    "step-share": (step_share, [f"{RESULTS}/step_share_resnet32_tinyimagenet.json"]),
    "backbone-breakdown": (backbone_breakdown, [f"{RESULTS}/backbone_breakdown_resnet32_bf16.json",
                                                f"{RESULTS}/backbone_breakdown_resnet32_fp32.json"]),
    "step-parts": (step_parts, [f"{RESULTS}/step_changes_cpu.json"]),
    "compile-gain": (compile_gain, [f"{RESULTS}/compile_gain_cpu.json"]),
    "dry-run": (dry_run, [f"{RESULTS}/dry_run_cpu.json"]),
    "dry-run-check": (dry_run_check, [f"{RESULTS}/dry_run_check_cpu.json"]),
    "eval-precision": (eval_precision, [f"{RESULTS}/eval_precision_cpu.json"]),
}


def markers(name: str) -> tuple[str, str]:
    """The begin and end marker of a table's block."""
    return f"<!-- table:{name}:begin -->", f"<!-- table:{name}:end -->"


def render(name: str) -> str:
    """The Markdown of one table of ``TABLES``."""
    fn, paths = TABLES[name]
    return fn(paths)


def block(text: str, name: str) -> str | None:
    """The current content between a table's markers in ``text`` (None when the markers are missing)."""
    begin, end = markers(name)
    found = re.search(re.escape(begin) + r"\n(.*?)\n?" + re.escape(end), text, flags=re.S)
    return found.group(1) if found else None


def update(text: str) -> str:
    """``text`` with every table block replaced by its freshly generated content."""
    for name in TABLES:
        begin, end = markers(name)
        replacement = f"{begin}\n{render(name)}\n{end}"
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _, r=replacement: r, text, flags=re.S)
    return text


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the generated tables of ``benchmarks/README.md``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tables", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update benchmarks/README.md in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if a table in benchmarks/README.md is stale")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for name in TABLES:
            print(f"{name}:\n{render(name)}\n")
        return 0
    text = README.read_text()
    missing = [name for name in TABLES if block(text, name) is None]
    if missing:
        parser.error(f"{README} has no markers for {', '.join(missing)}: add "
                     + " / ".join(" ... ".join(markers(n)) for n in missing))
    new = update(text)
    if args.check:
        stale = [name for name in TABLES if block(text, name) != render(name)]
        if stale:
            print(f"stale tables in {README}: {', '.join(stale)}; run python -m benchmarks.tables --write",
                  file=sys.stderr)
            return 1
        print("up to date")
        return 0
    if new != text:
        from rr_zoo.atomic import atomic_write

        atomic_write(README, new)
    print("updated" if new != text else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
