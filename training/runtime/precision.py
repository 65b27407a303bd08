"""Which precision a run trains in: ``--precision auto`` picks bf16 only where the hardware has bf16 units.

bf16 autocast pays only on hardware that multiplies bf16 natively: on a CPU with AVX-512 BF16 a
matmul ran ~1.8x faster than fp32, on an AVX2-only CPU (emulated bf16) at ~1.5 % of fp32's speed.
:func:`resolve_precision` turns ``auto`` into the precision a run actually uses; the run records
that value (checkpoint options, provenance) and its reproducing command pins it
(``--precision bf16`` / ``--precision fp32``, never ``auto``).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from training.runtime.machine import CPUINFO, cpu_flags

# /proc/cpuinfo flags of x86 instructions that multiply bf16 in hardware
# (AVX512_BF16: VDPBF16PS, Cooper Lake / Zen 4 and later; AMX_BF16: TDPBF16PS, Sapphire Rapids and later)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
def native_bf16(device: str = "cpu", cpuinfo: Path = CPUINFO) -> tuple[bool, str]:
    """Whether ``device`` has native bf16 matrix support, and the evidence, in words.

    How it is decided:

    - CUDA: ``torch.cuda.is_bf16_supported()`` (compute capability >= 8.0, Ampere and later).
    - CPU, all of:
      1. an x86 CPU whose ``/proc/cpuinfo`` ``flags`` list ``avx512_bf16`` or ``amx_bf16``
         (where the file cannot be read, e.g. macOS: torch's own CPUID probes
         ``torch.cpu._is_avx512_bf16_supported()`` / ``torch.cpu._is_amx_tile_supported()``);
      2. ``torch.backends.mkldnn.is_available()``: oneDNN runs the bf16 convolutions;
      3. ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` where this torch has it (oneDNN's own
         check; it is also true on AVX-512 CPUs *without* bf16 units, which it emulates, so it is
         never enough alone).
    - Anything else (other CPU architectures, no oneDNN): no. bf16 on ARM CPUs is not measured
      here; pass ``--precision bf16`` to use it.

    Args:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        cpuinfo: Where to read the CPU flags (tests point it at a file).

    Returns:
        ``(supported, reason)``.
    """
    if device.startswith("cuda"):
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, f"torch.cuda.is_bf16_supported() is {ok}"
    flags = cpu_flags(cpuinfo)
    if flags is None:
        probes = {"avx512_bf16": getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)(),
                  "amx_tile": getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()}
        found = [name for name, ok in probes.items() if ok]
        source = "torch.cpu CPUID probes"
    else:
        found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
        source = "/proc/cpuinfo flags"
    if not found:
        return False, f"{source} list none of {', '.join(BF16_CPU_FLAGS)} ({platform.machine()} CPU)"
    if not torch.backends.mkldnn.is_available():
        return False, f"the CPU has {', '.join(found)} but this torch has no oneDNN (mkldnn)"
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None and not check():
        return False, f"the CPU has {', '.join(found)} but oneDNN reports no bf16 support"
    return True, f"{source}: {', '.join(found)}; oneDNN bf16 available"


def resolve_precision(requested: str, device: str = "cpu") -> str:
    """The precision a run uses: ``requested`` itself, or for ``auto`` bf16 where :func:`native_bf16` holds, else fp32.

    Args:
        requested: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        device: ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        ``fp32``, ``bf16`` or ``fp16`` (never ``auto``).
    """
    if requested != "auto":
        return requested
    return "bf16" if native_bf16(device)[0] else "fp32"
