"""ImageFolder trees (``<split>/<class>/<image>``), decoded once (PIL, resized to the spec's side
if needed) into a cached uint8 array; reloads are memory-mapped."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.cache import cached_array, readonly_tensor
from training.data.registry import DatasetSpec, ImageData, missing

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def decode_images(files: list[Path], side: int, desc: str | None = None) -> np.ndarray:
    """uint8 (N, 3, side, side) RGB images (resized bilinearly where not ``side``); ``desc``: a progress bar."""
    from PIL import Image
    from tqdm import tqdm

    out = np.empty((len(files), 3, side, side), dtype=np.uint8)
    for i, f in enumerate(tqdm(files, desc=desc, unit="image", mininterval=2.0, dynamic_ncols=True,
                               disable=desc is None)):
        with Image.open(f) as img:
            rgb = img.convert("RGB")
            if rgb.size != (side, side):
                rgb = rgb.resize((side, side), Image.BILINEAR)
            out[i] = np.asarray(rgb).transpose(2, 0, 1)
    return out


def load_image_folder(folder: Path, size: int, cache_key: str) -> ImageData:
    """Decode ``<folder>/<class>/<image>`` into uint8 (N, 3, size, size), cached.

    The cache is keyed by the folder, the sorted file list and their sizes, so adding or changing
    files invalidates it.
    """
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).rglob("*"))
             if f.suffix.lower() in IMAGE_EXTENSIONS]
    signature = hashlib.sha256("".join(f"{f}|{f.stat().st_size}" for f, _ in files).encode()).hexdigest()
    labels = torch.tensor([c for _, c in files], dtype=torch.int64)

    images = cached_array(f"{cache_key}|{folder.resolve()}|{signature}",
                          lambda: decode_images([f for f, _ in files], size))
    return ImageData(readonly_tensor(images), labels, classes)


@dataclass(frozen=True)
class ImageFolder:
    """``<folder>/<split>/<class>/<image>``."""

    folder: str  # relative to the data root

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        path = root / self.folder / split
        if not path.is_dir():
            raise missing(spec, root, path)
        return load_image_folder(path, spec.image_size, spec.name)
