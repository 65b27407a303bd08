"""Tiny ImageNet 200 (``tiny-imagenet-200/``), in either of the two layouts it is found in.

- **Official** (the unzipped ``tiny-imagenet-200.zip``): ``train/<wnid>/images/*.JPEG``,
  ``val/images/*.JPEG`` with ``val/val_annotations.txt`` (tab-separated: file, wnid, box).
- **ImageFolder** (torchvision's, as ``../shared/data/scripts/build_tiny_imagenet.py`` writes it):
  ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.

Both hold ``wnids.txt``: the 200 classes, and their label order. Each split is decoded once
(PIL, RGB) into a cached uint8 (N, 3, 64, 64) array, memory-mapped on reload.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.cache import cached_array, decoded_path, readonly_tensor
from training.data.formats.image_folder import IMAGE_EXTENSIONS, decode_images
from training.data.registry import DatasetError, DatasetNotFoundError, DatasetSpec, ImageData, missing


def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())


def list_tiny_imagenet(base: Path, split: str, spec: DatasetSpec, root: Path) -> tuple[list[Path], list[int],
                                                                                          list[str]]:
    """(files, labels, wnids) of one split, in ``wnids.txt`` class order then file name.

    Raises:
        DatasetNotFoundError: ``wnids.txt``, the split's folder, a class folder, ``val_annotations.txt`` or
            a file it lists is missing (one line: what, where, how to get it).
    """
    wnids_file = base / "wnids.txt"
    if not wnids_file.is_file():
        raise missing(spec, root, wnids_file)
    wnids = wnids_file.read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    folder = base / split
    if not folder.is_dir():
        raise missing(spec, root, folder)
    annotations = folder / "val_annotations.txt"
    files: list[Path] = []
    labels: list[int] = []
    if (folder / "images").is_dir() and annotations.is_file():  # official validation layout
        listed = []
        for line in annotations.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1] in index:
                listed.append((index[parts[1]], parts[0]))
        absent = [name for _, name in listed if not (folder / "images" / name).is_file()]
        if absent:
            raise DatasetNotFoundError(
                f"{spec.name}: {len(absent)} of the {len(listed)} images {annotations} lists are not in "
                f"{folder / 'images'} (first: {absent[0]}); the tree is partial: unzip tiny-imagenet-200.zip again. "
                f"How to get it: {spec.how_to_get}")
        for label, name in sorted(listed):
            files.append(folder / "images" / name)
            labels.append(label)
        return files, labels, wnids
    absent = [w for w in wnids if not (folder / w).is_dir()]
    if absent:
        raise DatasetNotFoundError(
            f"{spec.name}: {len(absent)} of the {len(wnids)} classes in {wnids_file} have no folder in {folder} "
            f"(first: {absent[0]}); the tree is partial. Expected under {root}: {spec.expected_files} "
            f"How to get it: {spec.how_to_get}")
    empty = []
    for label, wnid in enumerate(wnids):
        class_dir = folder / wnid / "images" if (folder / wnid / "images").is_dir() else folder / wnid
        found = _images_in(class_dir)
        if not found:
            empty.append(wnid)
        files += found
        labels += [label] * len(found)
    if empty:
        raise DatasetNotFoundError(
            f"{spec.name}: {len(empty)} class folder(s) of {folder} hold no images (first: {empty[0]}); the tree "
            f"is partial. How to get it: {spec.how_to_get}")
    return files, labels, wnids


@dataclass(frozen=True)
class TinyImageNetTree:
    """``<root>/<folder>/{wnids.txt,train,val}`` in the official or the ImageFolder layout."""

    folder: str  # relative to the data root

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        base = root / self.folder
        if not base.is_dir():
            raise missing(spec, root, base)
        files, labels, wnids = list_tiny_imagenet(base, split, spec, root)
        expected = spec.split_sizes.get(split)
        if expected is not None and len(files) != expected:
            print(f"note: {spec.name}/{split} at {base} has {len(files):,} images (the published split has "
                  f"{expected:,})", file=sys.stderr)
        signature = hashlib.sha256("".join(f"{f}|{f.stat().st_size}|{lab}\n" for f, lab in zip(files, labels))
                                   .encode()).hexdigest()
        key = f"{spec.name}|{base.resolve()}|{split}|{spec.image_size}|{signature}"

        def decode() -> np.ndarray:
            side = spec.image_size
            gib = len(files) * 3 * side * side / 2**30
            print(f"{spec.name}/{split}: decoding {len(files):,} images once into {decoded_path(key)} ({gib:.2f} "
                  "GiB; later runs memory-map it)", file=sys.stderr, flush=True)
            try:
                return decode_images(files, side, f"{spec.name}/{split}")
            except OSError as exc:
                raise DatasetError(f"{spec.name}: cannot decode an image under {base}: {exc}; the file is corrupt "
                                   f"or truncated: get the dataset again. {spec.how_to_get}") from exc

        return ImageData(readonly_tensor(cached_array(key, decode)), torch.tensor(labels, dtype=torch.int64), wnids)
