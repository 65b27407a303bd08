"""What every benchmark's JSON records about the machine, and how the JSON is written.

One load measure serves the benchmarks and the dry run: :func:`~training.runtime.machine.other_runnable_tasks`
(tasks runnable besides the caller, read from ``/proc/loadavg``), taken when a benchmark starts and ends.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from rr_zoo.atomic import atomic_write


def machine_record(**extra: Any) -> dict[str, Any]:
    """The machine a benchmark ran on: CPU model, SIMD flags, cores, Python, torch, platform, and the other
    tasks runnable right now (``other_runnable_tasks``; None off Linux).

    Args:
        **extra: More fields (threads, measured peaks).
    """
    import torch

    from training.runtime.machine import cpu_info, other_runnable_tasks

    return {**cpu_info(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "other_runnable_tasks": other_runnable_tasks(), **extra}


def write_result(out: str | Path, result: dict[str, Any], indent: int = 2) -> Path:
    """Write a benchmark's result JSON atomically (its folder made if needed) and say where.

    A ``machine`` record in ``result`` gets ``other_runnable_tasks_at_end`` (the load as the benchmark ends), once:
    several files written from one record share the value.
    """
    from training.runtime.machine import other_runnable_tasks

    if isinstance(result.get("machine"), dict):
        result["machine"].setdefault("other_runnable_tasks_at_end", other_runnable_tasks())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(result, indent=indent) + "\n")
    print(f"wrote {out}", flush=True)
    return out
