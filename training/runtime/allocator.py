"""Keep freed memory in the process: the C allocator setting that a CPU training step wants.

A training step allocates and frees the same large tensors every step (activations, gradients,
the views). glibc's ``malloc`` serves a block above its mmap threshold (128 KiB, raised
dynamically up to 32 MiB) with a fresh ``mmap`` and returns it to the kernel on ``free``, and it
trims the top of the heap back to the kernel once more than twice that threshold is free. Either way
the next step touches new pages: one page fault per 4 KiB, each zero-filled by the kernel. On one
core (AMD EPYC, torch 2.14, Conv-4 at M = 64, K = 32, unfused relation head) that was ~280,000
faults and ~0.4 s of kernel time per step, a third of the step; with the settings below, none (the
step at K = 32 ran 1.4x faster, ``benchmarks/results/step_changes_cpu.json``).

:func:`keep_freed_memory` raises both thresholds once (``mallopt``), so freed blocks stay in the
heap and are reused. The process keeps its peak memory until it exits (its RSS does not shrink after
a step), which is what a training process does anyway. Linux with glibc only; elsewhere (musl,
macOS, Windows) it does nothing. ``RR_ZOO_MALLOC=default`` turns it off (to measure the difference).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # the largest int: never trim the heap's top

_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds so that freed tensors are reused, not returned; once per process.

    Returns:
        True when the settings are in effect (now or from an earlier call), False where they do not apply
        (not glibc, or ``RR_ZOO_MALLOC=default``).
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if sys.platform.startswith("linux") and os.environ.get("RR_ZOO_MALLOC", "") != "default":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt  # glibc only (musl has none)
            gnu = libc.gnu_get_libc_version
        except (OSError, AttributeError):
            mallopt = gnu = None
        if mallopt is not None and gnu is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            # glibc before 2.35 caps the mmap threshold at 32 MiB (64-bit): then that
            mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) or mallopt(M_MMAP_THRESHOLD, 32 << 20)
            applied = bool(mmap) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _state["applied"] = applied
    return applied
