"""``python -m training benchmark``: full training step, ours vs a faithful original, side by side.

Measures views/s of augmentation + forward + pairs + loss + backward + optimiser for
each (architecture, K) at M images per step, for the original-style step (fp32) and
ours (fp32 and bf16), in the same process on the same machine; reports the ratios,
peak memory and the share of the machine's measured matmul FLOP/s.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.data import get_dataset_spec
from training.method.step import build_model, build_optimizer, train_step
from training.original_step import original_step, original_transform, to_pil
from training.pretrain.augment import make_views
from training.pretrain.inputs import augment_config
from training.pretrain.recipes import recipe_for_entry


def matmul_flops_per_s(dtype: torch.dtype, n: int = 1024, repeats: int = 3) -> float:
    """Measured dense matmul throughput of this machine (FLOP/s) for ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn, steps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def bench_one(entry: str, k: int, m: int, steps: int, images: torch.Tensor,
              precisions: tuple[str, ...] = ("fp32", "bf16")) -> dict[str, Any]:
    """Seconds/step and views/s of the original step and ours (each precision) for one configuration.

    Args:
        entry: Zoo entry whose recipe (model, views, optimiser) is timed, with K and M replaced.
        k: Views per image.
        m: Images per step.
        steps: Timed steps (after one warm-up).
        images: uint8 (m, C, H, W) images of the entry's dataset (its channels and side).
        precisions: Precisions of our step to time.
    """
    recipe = recipe_for_entry(entry, k=k, batch_size=m)
    spec = get_dataset_spec(recipe.dataset)
    if tuple(images.shape[1:]) != spec.input_size:
        raise ValueError(f"{entry} trains on {spec.input_size} images; got {tuple(images.shape[1:])}")
    cfg = augment_config(recipe)
    row: dict[str, Any] = {"entry": recipe.entry, "arch": recipe.architecture, "k": k, "m": m,
                           "views_per_step": k * m}

    model = build_model(recipe, spec.channels)
    opt = build_optimizer(recipe, model.parameters())
    pil, transform = to_pil(images), original_transform(cfg.size, cfg.mean, cfg.std)
    row["original_fp32_s"] = _time(lambda: original_step(model.backbone, model.head, opt, pil, k, transform), steps)

    for precision in precisions:
        model = build_model(recipe, spec.channels)
        model.backbone.to(memory_format=torch.channels_last)
        opt = build_optimizer(recipe, model.parameters())
        gen = torch.Generator().manual_seed(0)

        def ours(model=model, opt=opt, gen=gen, precision=precision):
            views = make_views(images, k, cfg, generator=gen, channels_last=True)
            train_step(model, opt, views, recipe, precision)

        row[f"ours_{precision}_s"] = _time(ours, steps)
    model = build_model(recipe, spec.channels)
    with FlopCounterMode(display=False) as counter:
        train_step(model, build_optimizer(recipe, model.parameters()), make_views(images, k, cfg), recipe, "fp32")
    row["flops_per_step"] = counter.get_total_flops()
    for key in ("original_fp32", *(f"ours_{p}" for p in precisions)):
        row[f"{key}_views_per_s"] = k * m / row[f"{key}_s"]
    for p in precisions:
        row[f"speedup_{p}"] = row["original_fp32_s"] / row[f"ours_{p}_s"]
    row["peak_rss_mib"] = _rss_mib()
    return row


def run_benchmark(archs: list[str], ks: list[int], m: int, steps: int, out: str | Path,
                  threads: int | None = None) -> dict[str, Any]:
    """Run the grid and write JSON; returns the result dict."""
    if threads:
        torch.set_num_threads(threads)
    from training.data import load_split

    images = load_split("cifar10_4k", "train").images[:m].clone()
    peak = {"fp32": matmul_flops_per_s(torch.float32), "bf16": matmul_flops_per_s(torch.bfloat16, n=512)}
    # bf16 only pays off with hardware support (AVX512-BF16 / AMX); without it, it is many times slower
    precisions = ("fp32", "bf16") if peak["bf16"] >= 0.5 * peak["fp32"] else ("fp32",)
    if "bf16" not in precisions:
        print(f"bf16 skipped: this CPU's bf16 matmul runs at {peak['bf16'] / 1e9:.1f} GFLOP/s vs "
              f"{peak['fp32'] / 1e9:.1f} GFLOP/s fp32 (no bf16 matrix units)", flush=True)
    rows = []
    for arch in archs:
        for k in ks:
            row = bench_one(f"rr_{arch}_cifar10", k, m, steps, images, precisions)
            for precision in precisions:
                achieved = row["flops_per_step"] / row[f"ours_{precision}_s"]
                row[f"ours_{precision}_matmul_share"] = achieved / peak[precision]
            rows.append(row)
            print(_format_row(row), flush=True)
    result = {"precisions": list(precisions),
              "machine": {"platform": platform.platform(), "processor": _cpu_name(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "matmul_flops_per_s": peak},
              "m": m, "steps": steps, "rows": rows}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


HEADER = ("| arch | K | original fp32 views/s | ours fp32 views/s | ours bf16 views/s | speedup fp32 | "
          "speedup bf16 | matmul share fp32/bf16 | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(r: dict[str, Any], key: str, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    return f"{scale * r[key]:{spec}}{suffix}" if key in r else "n/a"


def _format_row(r: dict[str, Any]) -> str:
    return (f"| {r['arch']} | {r['k']} | {r['original_fp32_views_per_s']:.0f} | {r['ours_fp32_views_per_s']:.0f} | "
            f"{_fmt(r, 'ours_bf16_views_per_s', '.0f')} | {r['speedup_fp32']:.2f}x | "
            f"{_fmt(r, 'speedup_bf16', '.2f', suffix='x')} | {_fmt(r, 'ours_fp32_matmul_share', '.0f', 100, '%')} / "
            f"{_fmt(r, 'ours_bf16_matmul_share', '.0f', 100, '%')} | {r['peak_rss_mib']:.0f} |")


def format_table(result: dict[str, Any]) -> str:
    """Markdown table of a benchmark result."""
    return HEADER + "\n" + "\n".join(_format_row(r) for r in result["rows"])
