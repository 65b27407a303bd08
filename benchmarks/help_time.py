"""Wall time of every command's ``--help``: ``python -m training``, ``python -m rr_zoo`` and the ``rr_zoo`` script.

    python -m benchmarks.help_time --out benchmarks/results/help_time_cpu.json

Each help runs in a fresh process from the checkout root, ``--repeats`` times, interleaved with the
others; the best and the median wall seconds are kept (the best is what the code costs, the median
what a shared machine gave). The console script is timed through its own entry point
(``rr_zoo.__main__:main``, pyproject ``[project.scripts]``), as the installed script runs it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ["-c", "import sys; from rr_zoo.__main__ import main; sys.exit(main())"]


def commands() -> dict[str, list[str]]:
    """Label -> python arguments of every help."""
    from training.cli import COMMANDS
    from training.help_choices import recorded

    found = {"python -m training --help": ["-m", "training", "--help"]}
    for name in COMMANDS:
        found[f"python -m training {name} --help"] = ["-m", "training", name, "--help"]
    for name in recorded()["protocols"]:
        found[f"python -m training evaluate {name} --help"] = ["-m", "training", "evaluate", name, "--help"]
    found["python -m rr_zoo --help"] = ["-m", "rr_zoo", "--help"]
    for name in ("list", "download", "convert", "demo"):
        found[f"python -m rr_zoo {name} --help"] = ["-m", "rr_zoo", name, "--help"]
    found["rr_zoo --help"] = [*SCRIPT, "--help"]
    found["rr_zoo list --help"] = [*SCRIPT, "list", "--help"]
    return found


def time_once(argv: list[str]) -> float:
    """Wall seconds of one ``python ARGV`` process (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Time every help; print a table and write the JSON."""
    from training.bench.record import machine_record, write_result
    from training.release.provenance import code_commit

    p = argparse.ArgumentParser(prog="python -m benchmarks.help_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="runs per help, interleaved (default: %(default)s)")
    p.add_argument("--limit", type=float, default=1.0, help="seconds a help may take (default: %(default)s)")
    p.add_argument("--out", default="benchmarks/out/help_time.json")
    args = p.parse_args(argv)
    machine = machine_record()  # the load as the benchmark starts
    todo = commands()
    seconds: dict[str, list[float]] = {label: [] for label in todo}
    for _ in range(args.repeats):
        for label, cmd in todo.items():
            seconds[label].append(time_once(cmd))
    rows = [{"command": label, "best_s": round(min(s), 3), "median_s": round(statistics.median(s), 3)}
            for label, s in seconds.items()]
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':{width}s}  best s  median s")
    for r in rows:
        print(f"{r['command']:{width}s}  {r['best_s']:6.3f}  {r['median_s']:8.3f}")
    slow = [r["command"] for r in rows if r["best_s"] > args.limit]
    result = {"command": "python -m benchmarks.help_time " + " ".join(sys.argv[1:] if argv is None else argv),
              "code_commit": code_commit(),
              "machine": machine,
              "timing": f"wall seconds of a fresh process, best and median of {args.repeats} interleaved runs",
              "limit_s": args.limit, "over_limit": slow, "rows": rows}
    write_result(args.out, result)
    print(f"over {args.limit} s: {slow}" if slow else f"every help under {args.limit} s")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
