"""Command line: ``python -m rr_zoo {list,download,convert,demo}`` (also the ``rr_zoo`` script).

This module is the light entry of both: it imports argparse and the error classes, and a command
imports torch and timm only when it runs, so every ``--help`` answers at once. Wrong input ends in
one line on stderr that names the fix, and status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rr_zoo.errors import RRZooError, UnpublishedWeightsError


class UsageError(RRZooError):
    """A command-line input that cannot work as given; the message names the fix."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line that points at ``--help``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_list(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry, list_models

    names = list_models(args.pattern, published_only=args.published)
    if not names:
        raise UsageError(f"no {'published ' if args.published else ''}zoo entry matches {args.pattern!r}; "
                         "`python -m rr_zoo list` shows them all")
    for name in names:
        entry = get_entry(name)
        print(f"{name:32s} {entry.timm_name:30s} {entry.status:12s} {entry.description}")
        for tag, release in entry.releases.items():  # each release: its own timm name; the default one is marked
            mark = "default" if tag == entry.default_release else ""
            linear = next((m for m in release.metrics if m["task"] == "linear" and not m.get("baseline")
                           and m["dataset"] == release.recipe["dataset"]), None)
            score = f"; linear {linear['value']:.2f}" if linear else ""
            print(f"  {'':30s} {entry.release_name(tag):30s} {mark:12s} {release.summary()}{score}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry
    from rr_zoo.errors import WeightsHashError
    from rr_zoo.weights import resolve_file, verify_file

    entries = [get_entry(name) for name in args.names]  # every name is checked before any download
    unpublished = [e.name for e in entries if not e.published]
    if unpublished:
        raise UnpublishedWeightsError(
            f"{', '.join(unpublished)}: unpublished, there are no weights to download yet; train one with "
            f"`python -m training pretrain --entry {unpublished[0]}`, or pick a published entry "
            "(`python -m rr_zoo list --published`)")
    for entry in entries:
        for record in entry.files:
            path, _, fix = resolve_file(entry, record.role, cache_dir=args.cache_dir)
            try:
                verify_file(path, record.sha256, record.size, what=f"{entry.name} {record.role}", fix=fix)
            except WeightsHashError:
                if path.is_relative_to(entry.bundled_dir):
                    raise
                # a damaged cached download: fetch it again, and check the new copy
                path, _, fix = resolve_file(entry, record.role, cache_dir=args.cache_dir, force_download=True)
                verify_file(path, record.sha256, record.size, what=f"{entry.name} {record.role}", fix=fix)
            print(f"{entry.name}: {record.name} ok ({record.size} bytes, sha256 {record.sha256[:12]}...) -> {path}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from rr_zoo.api import get_entry
    from rr_zoo.convert import convert_checkpoint

    if not Path(args.checkpoint).is_file():
        raise UsageError(f"no checkpoint at {args.checkpoint}; pass the original repository's .tar file")
    out = convert_checkpoint(args.checkpoint, get_entry(args.entry), args.out)
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    print(f"load it with rr_zoo.create_model({args.entry!r}, weights={str(out)!r})")
    return 0


def _open_image(path: str):
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise UsageError(f"--image {path}: no such file; pass the path of a PNG or JPEG image")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"--image {path}: not an image this program can read ({exc}); pass a PNG or JPEG") from exc


def leave_one_out_knn(features, labels, k: int = 20, temperature: float = 0.07) -> float:
    """Accuracy (%) of a weighted cosine k-NN vote for each image among all the others."""
    import torch.nn.functional as F

    from rr_zoo.neighbours import knn_votes

    normed = F.normalize(features, dim=1)
    sim = normed @ normed.t()
    sim.fill_diagonal_(-float("inf"))  # an image never votes for itself
    votes = knn_votes(sim, labels, min(k, len(labels) - 1), temperature, int(labels.max()) + 1)
    return 100.0 * (votes.argmax(1) == labels).float().mean().item()


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    import torch

    from rr_zoo.api import create_model, create_relation_head, get_entry
    from rr_zoo.relation import relation_score
    from rr_zoo.samples import load_sample_images
    from rr_zoo.viz import augment_views, embed, pil_to_uint8, preprocess

    t0 = time.perf_counter()
    entry = get_entry(args.entry)
    if entry.in_chans != 3:
        raise UsageError(
            f"{entry.name} was trained on {entry.dataset} ({entry.in_chans}-channel images) but the demo's bundled "
            "images are CIFAR-10 colour photos; run it with a colour entry (--entry rr_conv4_cifar10), or "
            f"evaluate {entry.name} on its own data: python -m training evaluate knn --entry {entry.name}")
    user_image = _open_image(args.image) if args.image else None
    pil, labels, classes = load_sample_images(200)
    images, labels = torch.stack([pil_to_uint8(img) for img in pil]), torch.tensor(labels)
    model = create_model(entry.name, pretrained=entry.published).eval()
    torch.manual_seed(0)
    untrained = create_model(entry.name).eval()
    feats, feats0 = embed(model, images, entry.name), embed(untrained, images, entry.name)

    print(f"{entry.name}: {entry.description}")
    if entry.published:
        print(f"weights: published, sha256 verified; input: {len(images)} CIFAR-10 photos bundled with the package "
              f"({len(images) // len(classes)} per class) -> {feats.shape[1]} features each")
    else:
        print(f"weights: none published yet, so this shows a RANDOM network (train it: python -m training pretrain "
              f"--entry {entry.name})")
    if entry.dataset.split("_")[0] != "cifar10":
        print(f"note: {entry.name} was pretrained on {entry.dataset}; CIFAR-10 photos are outside its training data")
    print("\n1. Features group photos by what they show, though no label was used in pretraining.")
    print(f"   Leave-one-out 20-NN class accuracy over the {len(images)} photos (chance {100 / len(classes):.0f}%): "
          f"{leave_one_out_knn(feats, labels):.1f}% with these weights, "
          f"{leave_one_out_knn(feats0, labels):.1f}% with the same network at random init.")

    head = create_relation_head(entry.name, pretrained=entry.published).eval()
    aggregation = entry.recipe.get("aggregation", "cat")
    views_a = preprocess(augment_views(images, 1, seed=1), entry.name)
    views_b = preprocess(augment_views(images, 1, seed=2), entry.name)
    with torch.no_grad():
        same = relation_score(model, head, views_a, views_b, aggregation)
        other = relation_score(model, head, views_a, views_b.roll(len(images) // 2, 0), aggregation)
    print("\n2. The relation head scores whether two images show the same thing (rr_zoo.relation_score):")
    print(f"   two random crops/colour changes of one photo: {same.mean():.2f} on average over {len(same)} pairs; "
          f"of two different photos: {other.mean():.2f}.")
    print(f"   A score above 0.5 flags a near-duplicate: right for {100 * (same > 0.5).float().mean():.0f}% of "
          f"same-photo pairs and {100 * (other <= 0.5).float().mean():.0f}% of different-photo pairs.")

    normed = torch.nn.functional.normalize(feats, dim=1)
    queries = list(range(args.show))
    if user_image is not None:
        query = embed(model, pil_to_uint8(user_image)[None], entry.name)
        normed = torch.cat([normed, torch.nn.functional.normalize(query, dim=1)])
        queries.append(len(normed) - 1)
    if queries:
        print("\n3. Nearest photos (cosine similarity of features):")
    for q in queries:
        sim = normed[:len(images)] @ normed[q]
        if q < len(images):
            sim[q] = -2  # not itself
        top = sim.topk(3)
        name = f"your image {args.image}" if q >= len(images) else f"photo {q} ({classes[labels[q]]})"
        print(f"   {name} -> " + ", ".join(f"{classes[labels[j]]} {s:.2f}" for s, j in zip(top.values.tolist(),
                                                                                          top.indices.tolist())))
    print(f"\n({time.perf_counter() - t0:.1f} s. The same on a held-out test set: python -m training evaluate knn "
          f"--entry {entry.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(prog="python -m rr_zoo", description="Relational-reasoning model zoo: list, download, "
                     "convert and try pretrained backbones.", epilog="`python -m rr_zoo COMMAND --help` shows a "
                     "command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("list", help="list zoo entries and their weight releases",
                       description="list zoo entries and, under each, its weight releases (timm name, what was "
                                   "trained, linear accuracy); the entry's alias and timm name load the release "
                                   "marked default")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'rr_resnet32_*'")
    p.add_argument("--published", action="store_true", help="only entries with weights")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("download", help="pre-fetch entries' weights (Hub cache) for offline use",
                       description="pre-fetch entries' weights (Hub cache) for offline use")
    p.add_argument("names", nargs="+", help="published zoo entries (their default release) or release timm names "
                                            "(python -m rr_zoo list --published)")
    p.add_argument("--cache-dir", default=None, help="huggingface_hub cache folder")
    p.set_defaults(fn=_cmd_download)
    p = sub.add_parser("convert", help="convert an original .tar checkpoint to safetensors",
                       description="convert a checkpoint of the original repository to an export folder")
    p.add_argument("checkpoint", help="the original repository's .tar checkpoint")
    p.add_argument("--entry", required=True, help="zoo entry the checkpoint belongs to")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(fn=_cmd_convert)
    p = sub.add_parser("demo", help="what an entry's features and relation head do, on bundled CIFAR-10 photos",
                       description="what an entry's features and relation head do, on 200 bundled CIFAR-10 photos")
    p.add_argument("--entry", default="rr_conv4_cifar10", help="zoo entry (default: %(default)s)")
    p.add_argument("--image", default=None, help="also find the nearest bundled photos of this image file")
    p.add_argument("--show", type=int, default=3, help="photos whose nearest neighbours to print (default: 3)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the rr_zoo command line."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (RRZooError, FileNotFoundError) as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
