"""This machine, as the training code describes it: the CPU (one reader of ``/proc/cpuinfo``) and
the peak memory of this process."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
# the SIMD flags a benchmark records: what the matrix kernels can use
SIMD_PREFIXES = ("avx", "amx", "fma", "sse4")


def cpuinfo_fields(cpuinfo: Path = CPUINFO) -> dict[str, str] | None:
    """``key: value`` fields of the first processor in ``/proc/cpuinfo``; None where the file is unreadable."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block ends at the first blank line
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str] | None:
    """The ``flags`` of the first processor in ``/proc/cpuinfo``; None where the file is unreadable."""
    fields = cpuinfo_fields(cpuinfo)
    return None if fields is None else set(fields.get("flags", "").split())


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    return (cpuinfo_fields(cpuinfo) or {}).get("model name") or platform.processor() or platform.machine()


def cpu_info() -> dict[str, Any]:
    """This CPU's model name, its SIMD flags (avx*, amx*, fma, sse4*) and core count, for a benchmark's JSON."""
    flags = sorted(f for f in (cpu_flags() or ()) if f.startswith(SIMD_PREFIXES))
    return {"processor": cpu_model(), "flags": flags, "cores": os.cpu_count()}


LOADAVG = Path("/proc/loadavg")


def other_runnable_tasks(samples: int = 5, interval_s: float = 0.05, loadavg: Path = LOADAVG) -> float | None:
    """Tasks runnable right now besides the caller (mean of a few reads of /proc/loadavg); None off Linux.

    The 4th field of /proc/loadavg, ``running/total``, counts the reading thread itself, so one is taken off.
    Above zero, other work competes for the CPUs and anything timed now runs slow.
    """
    counts = []
    for i in range(samples):
        try:
            running = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return None
        counts.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(interval_s)
    return sum(counts) / len(counts)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (CPU memory), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_cuda_mib(device: str) -> float:
    """Peak CUDA memory allocated by torch on ``device``, in MiB."""
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20
