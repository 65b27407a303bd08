"""Whether a run compiles its backbone with ``torch.compile``: ``pretrain --compile {auto,on,off}``.

Compiling (inductor) fuses the elementwise work around the convolutions (BatchNorm, ReLU, pooling and
their backward passes). On CPU that pays only where eager mode is memory-bound in small layers, so
``auto`` follows what was measured, per architecture (:data:`CPU_COMPILE_GAIN`: backbone forward +
backward alone, ``channels_last``, eager vs compiled side by side, on AMD EPYC with AVX512-BF16;
``python -m benchmarks.compile_gain`` measures it again):

- Conv-4: fp32 1.11x on one thread, 1.17x on two; bf16 1.07x / 1.26x (1,024 views).
- ResNet-8: fp32 1.08x / 1.09x; bf16 0.95x / 0.96x (slower). ResNet-32: fp32 1.02x / 0.95x, bf16 0.91x / 0.91x.

``auto`` compiles when all hold: the device is the CPU, the architecture gains in the run's precision, the
run has at least :data:`MIN_STEPS` steps left (the first compiled step costs 10-40 s), no gradient
checkpointing, and a C++ compiler is on ``PATH`` (inductor's CPU backend builds its kernels with one).
Compiled and eager steps agree closely, not bit for bit: against a float64 step, eager fp32 gradients are
within 3e-6 (relative), compiled ones within 1.5e-3 in Conv-4's first two blocks (inductor's fused
BatchNorm backward) and 3e-6 elsewhere; far inside bf16 autocast's error.
``tests/test_training.py::test_compiled_step_matches_eager`` checks loss, gradients and BatchNorm
statistics. The resolved value is printed at the start of the run and recorded in the checkpoint's options.
"""

from __future__ import annotations

import os
import shutil

COMPILE_CHOICES = ("auto", "on", "off")
MIN_STEPS = 1000  # steps left in the run below which auto stays eager: compiling costs 10-40 s

# measured speed-up of the compiled backbone (forward + backward) over eager, per architecture and precision,
# on the CPU (benchmarks/results/compile_gain_cpu.json); auto compiles where it is above WORTH_IT
CPU_COMPILE_GAIN: dict[str, dict[str, float]] = {  # the lower of the 1- and 2-thread figures
    "conv4": {"fp32": 1.11, "bf16": 1.07},
    "resnet8": {"fp32": 1.08, "bf16": 0.95},
    "resnet32": {"fp32": 0.95, "bf16": 0.91},
}
WORTH_IT = 1.05


def compiled_by_auto() -> str:
    """Which backbones ``--compile auto`` compiles on CPU, in words (``--help``, README): from
    :data:`CPU_COMPILE_GAIN`, e.g. ``conv4 in fp32 and bf16, resnet8 in fp32``."""
    parts = []
    for arch, gains in CPU_COMPILE_GAIN.items():
        paying = [precision for precision in gains if compile_pays_on_cpu(arch, precision)]
        if paying:
            parts.append(f"{arch} in {' and '.join(paying)}")
    return ", ".join(parts) or "nothing"


def cpp_compiler() -> str | None:
    """The C++ compiler inductor's CPU backend would call (``$CXX``, else g++ or clang++), if on PATH."""
    for name in filter(None, (os.environ.get("CXX"), "g++", "clang++")):
        path = shutil.which(name)
        if path:
            return path
    return None


def compile_pays_on_cpu(architecture: str, precision: str) -> bool:
    """Whether compiling this backbone was measured to pay on CPU in this precision."""
    return CPU_COMPILE_GAIN.get(architecture, {}).get(precision, 1.0) > WORTH_IT


def resolve_compile(requested: str, architecture: str, precision: str, device: str, steps_left: int,
                    grad_checkpointing: bool = False) -> tuple[bool, str]:
    """Turn ``--compile`` into (compile?, why).

    Args:
        requested: ``auto``, ``on`` or ``off``.
        architecture: Backbone registry key.
        precision: The run's resolved precision (``fp32``, ``bf16``, ``fp16``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        steps_left: Training steps the run still has to do.
        grad_checkpointing: Whether the backbone recomputes its activations in backward.

    Raises:
        ValueError: ``requested`` is not one of :data:`COMPILE_CHOICES`.
    """
    if requested not in COMPILE_CHOICES:
        raise ValueError(f"--compile must be one of {', '.join(COMPILE_CHOICES)}; got {requested!r}")
    if requested != "auto":
        return requested == "on", f"--compile {requested}"
    if not device.startswith("cpu"):
        return False, f"auto: eager on {device} (compiling was measured on CPU only; --compile on to try it)"
    gain = CPU_COMPILE_GAIN.get(architecture, {}).get(precision)
    if not compile_pays_on_cpu(architecture, precision):
        measured = f"measured {gain:.2f}x" if gain is not None else "not measured"
        return False, f"auto: eager ({architecture} {precision} compiled on CPU: {measured})"
    if grad_checkpointing:
        return False, "auto: eager (gradient checkpointing is on)"
    if steps_left < MIN_STEPS:
        return False, f"auto: eager ({steps_left} steps left < {MIN_STEPS}: compiling would cost more than it saves)"
    compiler = cpp_compiler()
    if compiler is None:
        return False, "auto: eager (no C++ compiler on PATH for inductor; install g++ to get the compiled step)"
    return True, f"auto: compiled ({architecture} {precision} on CPU measured {gain:.2f}x; C++ compiler {compiler})"
