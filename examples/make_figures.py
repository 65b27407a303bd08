"""Regenerate the README's pictures of a zoo entry: relation-score heatmap and retrieval grid.

    python -m examples.make_figures                       # rr_conv4_cifar10 on cifar10_jpeg -> docs/figures/
    python -m examples.make_figures --dataset cifar10 --data-root data --download   # torchvision's CIFAR-10
    python -m examples.make_figures --dataset samples     # the 200 bundled images, no data needed

Run from the checkout root (``training`` is a package of the repository, not of the wheel).

The plotting code is ``rr_zoo.viz`` (shared with examples/quickstart.ipynb and
``python -m training export --sample-figures``). Images: ``--dataset`` is a ``training.data``
name (train split = retrieval gallery, test split = queries and heatmap images) or ``samples``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.make_figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", default="rr_conv4_cifar10")
    parser.add_argument("--dataset", default="cifar10_jpeg", help="training.data name, or 'samples'")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--download", action="store_true", help="let torchvision download the dataset")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    import rr_zoo
    from rr_zoo import viz

    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.dataset == "samples":
        train, test = viz.split_alternate(viz.sample_images())
    else:
        from training.data import load_split

        train = load_split(args.dataset, "train", root=args.data_root, download=args.download)
        test = load_split(args.dataset, "test", root=args.data_root)
    backbone = rr_zoo.create_model(args.entry, pretrained=True)
    head = rr_zoo.create_relation_head(args.entry, pretrained=True)
    paths = viz.entry_figures(args.entry, backbone, head, train, test, args.out, suffix=f"_{args.entry}",
                              seed=args.seed)
    for path in paths.values():
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
