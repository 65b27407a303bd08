"""Feature extraction in fp32 and in bf16 (``evaluate --precision``), side by side in one process.

    python -m benchmarks.eval_precision --out benchmarks/results/eval_precision_cpu.json

Times :func:`training.evaluate.features.extract_features` of a randomly initialised ResNet-32 on
random uint8 images at 32×32 and 64×64, the two precisions interleaved ``--repeats`` times (the best
of each is kept: what the code costs on this machine; the ratio is taken within one run), at the
default batch (:data:`~training.evaluate.features.BATCH_PIXELS`) and at ``--batch-sizes``. Also
records how far the bf16 features are from fp32 (cosine similarity).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from rr_zoo.models import build_backbone
from training.bench.record import write_result
from training.evaluate.features import BATCH_PIXELS, extract_features
from training.release.provenance import code_commit, hardware
from training.runtime.machine import cpu_flags, other_runnable_tasks

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def time_extraction(side: int, images: int, repeats: int, threads: int, batch_size: int | None = None) -> dict:
    """Best images/s of fp32 and bf16 extraction at ``side`` pixels, and the features' agreement."""
    torch.manual_seed(0)
    model = build_backbone("resnet32").eval()
    data = torch.randint(0, 256, (images, 3, side, side), dtype=torch.uint8)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    feats = {}
    for precision in best:  # warm-up
        extract_features(model, data[:64], MEAN, STD, batch_size=batch_size, precision=precision)
    for _ in range(repeats):
        for precision in best:
            t0 = time.perf_counter()
            feats[precision] = extract_features(model, data, MEAN, STD, batch_size=batch_size, precision=precision)
            best[precision] = min(best[precision], time.perf_counter() - t0)
    cos = torch.nn.functional.cosine_similarity(feats["fp32"], feats["bf16"], dim=1)
    used = batch_size or max(8, BATCH_PIXELS // (side * side))
    return {"side": side, "images": images, "threads": threads, "batch_size": used, "default_batch": batch_size is None,
            "fp32_images_per_s": round(images / best["fp32"], 1), "bf16_images_per_s": round(images / best["bf16"], 1),
            "bf16_speedup": round(best["fp32"] / best["bf16"], 2), "min_cosine_fp32_bf16": round(float(cos.min()), 4)}


def main(argv: list[str] | None = None) -> int:
    """Time both precisions at 32 and 64 pixels; print a table and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_precision", description=main.__doc__)
    parser.add_argument("--images", type=int, default=1024, help="images per timed extraction")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best is kept")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[],
                        help="also time these images per batch (default: only the default batch)")
    parser.add_argument("--out", default="benchmarks/out/eval_precision.json", help="JSON file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    busy_before = other_runnable_tasks()
    rows = [time_extraction(side, args.images, args.repeats, args.threads, batch)
            for side in (32, 64) for batch in (None, *args.batch_sizes)]
    busy_after = other_runnable_tasks()
    for r in rows:
        print(f"{r['side']}x{r['side']}, batch {r['batch_size']:4d}: fp32 {r['fp32_images_per_s']:7.1f} img/s, "
              f"bf16 {r['bf16_images_per_s']:7.1f} "
              f"img/s, {r['bf16_speedup']:.2f}x; min cosine {r['min_cosine_fp32_bf16']}")
    given = sys.argv[1:] if argv is None else argv
    result = {"command": "python -m benchmarks.eval_precision " + " ".join(given),
              "code_commit": code_commit(), "hardware": hardware("cpu", args.threads), "torch": torch.__version__,
              "python": platform.python_version(),
              "bf16_cpu_flags": sorted((cpu_flags() or set()) & {"avx512_bf16", "amx_bf16"}),
              "other_runnable_tasks": [busy_before, busy_after], "rows": rows}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
