"""How close ``pretrain --dry-run`` comes to the step it estimates: dry run and a short real run, interleaved.

    python -m benchmarks.dry_run_check --threads 2 --rounds 3 --steps 10 \\
        --out benchmarks/results/dry_run_check_cpu.json

Per case (an entry and its recipe flags; defaults: the architecture, dataset, K and M of the CPU runs of
the ResNet-32 tiny-ImageNet and CIFAR-10 releases, and of the Conv-4 CIFAR-10 release on one thread) and
round: one ``python -m training pretrain ... --dry-run`` (its ``cpu_seconds_per_step``), then one real
``python -m training pretrain ...`` of two epochs of ``--steps`` steps on the real dataset, whose second
epoch is timed (the log's ``views_per_s``: step time only, no checkpoint or data loading between epochs).
Both in fresh processes, same threads, ``--precision auto`` for every case (bf16 on a CPU with bf16
instructions, whatever precision the release trained in; each row records it) and ``--compile off``
(the dry run times the eager step). Reported per case: every estimate and measurement, their medians,
and measured / estimate (above 1: the dry run was low). Run it on an idle machine; the JSON records the load.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # (entry, recipe flags, threads or None for --threads)
    ("rr_resnet32_tinyimagenet", "--dataset tinyimagenet --k 4 --batch-size 64", None),
    ("rr_resnet32_cifar10", "--dataset cifar10_jpeg --k 4 --batch-size 64", None),
    ("rr_conv4_cifar10", "--dataset cifar10_jpeg --k 16 --batch-size 64", 1),
]


def _pretrain(entry: str, flags: str, threads: int, extra: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "training", "pretrain", "--entry", entry, *shlex.split(flags),
           "--threads", str(threads), "--precision", "auto", "--compile", "off", *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{shlex.join(cmd[2:])} failed:\n{done.stderr[-2000:]}")
    return done


def estimate(entry: str, flags: str, threads: int) -> dict:
    """The dry run's estimate (``cpu_seconds_per_step``, ``precision``, ``views_per_step``, ...)."""
    return json.loads(_pretrain(entry, flags, threads, ["--dry-run"]).stdout)["estimate"]


def measure(entry: str, flags: str, threads: int, steps: int, views_per_step: int) -> float:
    """Seconds per step of the second of two epochs of at most ``steps`` steps of the real run."""
    from training.run_folders import LOG, read_log

    with tempfile.TemporaryDirectory() as tmp:
        _pretrain(entry, flags, threads, ["--epochs", "2", "--steps-per-epoch", str(steps), "--no-progress",
                                          "--ckpt-every-steps", "0", "--out", tmp])
        timed = read_log(Path(tmp) / LOG)[-1]
    return views_per_step / timed["views_per_s"]


def main(argv: list[str] | None = None) -> int:
    from training.bench.record import machine_record, write_result
    from training.release.provenance import code_commit

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the cases that do not fix theirs")
    ap.add_argument("--rounds", type=int, default=3, help="dry run + real run pairs per case")
    ap.add_argument("--steps", type=int, default=10, help="steps of each real epoch (the second is timed)")
    ap.add_argument("--case", nargs=3, action="append", metavar=("ENTRY", "FLAGS", "THREADS"),
                    help="a case instead of the default ones (THREADS 0: --threads); repeatable")
    ap.add_argument("--out", default="benchmarks/out/dry_run_check.json")
    args = ap.parse_args(argv)
    cases = [(e, f, int(t) or None) for e, f, t in args.case] if args.case else CASES
    machine = machine_record()
    results = {case: {"estimates_s": [], "measured_s": []} for case in range(len(cases))}
    for r in range(args.rounds):
        for i, (entry, flags, threads) in enumerate(cases):
            threads = threads or args.threads
            dry = estimate(entry, flags, threads)
            est = dry["cpu_seconds_per_step"]
            meas = measure(entry, flags, threads, args.steps, dry["views_per_step"])
            results[i]["precision"] = dry["precision"]
            results[i]["estimates_s"].append(est)
            results[i]["measured_s"].append(meas)
            print(f"round {r + 1}/{args.rounds} {entry} {flags} ({threads} threads): estimate {est:.3f} s/step, "
                  f"measured {meas:.3f} s/step", flush=True)
    rows = []
    for i, (entry, flags, threads) in enumerate(cases):
        est, meas = (statistics.median(results[i][key]) for key in ("estimates_s", "measured_s"))
        rows.append({"entry": entry, "flags": flags, "threads": threads or args.threads,
                     **results[i], "estimate_median_s": est, "measured_median_s": meas,
                     "measured_over_estimate": meas / est})
        print(f"{entry} {flags}: measured / estimate = {meas / est:.2f}", flush=True)
    write_result(args.out, {"command": "python -m benchmarks.dry_run_check " + shlex.join(sys.argv[1:] if argv is None
                                                                                        else argv),
                            "code_commit": code_commit(), "steps": args.steps, "rounds": args.rounds, "rows": rows,
                            "machine": machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
