"""Command line: ``python -m rr_zoo {list,download,convert,demo}`` (also the ``rr_zoo`` script)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


def _cmd_list(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry, list_models

    for name in list_models(args.pattern, published_only=args.published):
        entry = get_entry(name)
        print(f"{name:32s} {entry.timm_name:30s} {entry.status:12s} {entry.description}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry
    from rr_zoo.weights import resolve_file, verify_file

    for name in args.names:
        entry = get_entry(name)
        for record in entry.files:
            path, _ = resolve_file(entry, record.role, cache_dir=args.cache_dir)
            verify_file(path, record.sha256, record.size, what=f"{entry.name} {record.role}")
            print(f"{entry.name}: {record.name} ok ({record.size} bytes, sha256 {record.sha256[:12]}...) -> {path}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry
    from rr_zoo.convert import convert_checkpoint

    out = convert_checkpoint(args.checkpoint, get_entry(args.entry), args.out)
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    print(f"load it with rr_zoo.create_model({args.entry!r}, weights={str(out)!r})")
    return 0


def load_sample_images() -> tuple[list, list[int], list[str]]:
    """The CIFAR-10 sample images shipped with the package (PIL images, labels, class names)."""
    from PIL import Image

    meta = json.loads((ASSETS / "cifar10_samples.json").read_text())
    strip = Image.open(ASSETS / "cifar10_samples.png").convert("RGB")
    tile = meta["tile"]
    images = [strip.crop((i * tile, 0, (i + 1) * tile, tile)) for i in range(len(meta["labels"]))]
    return images, meta["labels"], meta["classes"]


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from rr_zoo.api import create_model, get_entry, get_transform

    entry = get_entry(args.entry)
    pretrained = entry.published
    model = create_model(entry.name, pretrained=pretrained)
    model.eval()
    transform = get_transform(entry.name)
    images, labels, classes = load_sample_images()
    if args.image:
        from PIL import Image

        images, labels = [Image.open(args.image)] + images, [-1] + labels
    batch = torch.stack([transform(img) for img in images])
    with torch.no_grad():
        feats = model(batch)
    state = "published weights (sha256 verified)" if pretrained else "RANDOM weights (entry unpublished)"
    print(f"{entry.name}: {entry.description}")
    print(f"loaded {state}; input {tuple(batch.shape)} -> features {tuple(feats.shape)}")
    print("first image, first 8 features:", [round(v, 4) for v in feats[0, :8].tolist()])
    normed = torch.nn.functional.normalize(feats, dim=1)
    sim = normed @ normed.t()
    sim.fill_diagonal_(-2)
    nn_idx = sim.argmax(1).tolist()
    hits = 0
    for i, j in enumerate(nn_idx):
        query = "your image" if labels[i] < 0 else classes[labels[i]]
        hits += labels[i] >= 0 and labels[i] == labels[j]
        if i < args.show:
            print(f"  query {i:2d} ({query:10s}) -> nearest {j:2d} ({classes[labels[j]]}), cosine {sim[i, j]:.3f}")
    n = sum(label >= 0 for label in labels)
    print(f"nearest neighbour has the query's class for {hits}/{n} sample images (chance ~{100 / len(classes):.0f}%)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the rr_zoo command line."""
    parser = argparse.ArgumentParser(prog="rr_zoo", description="Relational-reasoning model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list zoo entries")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--published", action="store_true", help="only entries with weights")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("download", help="pre-fetch entries' weights (Hub cache) for offline use")
    p.add_argument("names", nargs="+")
    p.add_argument("--cache-dir", default=None, help="huggingface_hub cache folder")
    p.set_defaults(fn=_cmd_download)
    p = sub.add_parser("convert", help="convert an original .tar checkpoint to safetensors")
    p.add_argument("checkpoint")
    p.add_argument("--entry", required=True, help="zoo entry the checkpoint belongs to")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(fn=_cmd_convert)
    p = sub.add_parser("demo", help="load an entry and embed sample CIFAR-10 images")
    p.add_argument("--entry", default="rr_conv4_cifar10")
    p.add_argument("--image", default=None, help="also embed this image file")
    p.add_argument("--show", type=int, default=6, help="nearest neighbours to print")
    p.set_defaults(fn=_cmd_demo)
    args = parser.parse_args(argv)
    from rr_zoo.errors import RRZooError

    try:
        return args.fn(args)
    except RRZooError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
