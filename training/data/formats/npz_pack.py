"""The offline data pack's ``.npz`` files (``../shared/data/README.md`` documents them).

``NpzArrays``: one split as arrays ``images`` (uint8 N, H, W, C), ``labels``, ``classes``.
``NpzJpeg``: per split ``<split>_jpeg`` (all JPEG files concatenated), ``<split>_offsets``
(N + 1), ``<split>_labels``, plus ``classes``; decoded once into a cache.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.cache import cached_array
from training.data.registry import DatasetSpec, ImageData, missing


@dataclass(frozen=True)
class NpzArrays:
    """A single-split ``.npz`` of decoded NHWC uint8 images."""

    file: str  # relative to the data root

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        path = root / self.file
        if not path.is_file():
            raise missing(spec, root, path)
        with np.load(path) as d:
            images = torch.from_numpy(np.ascontiguousarray(d["images"].transpose(0, 3, 1, 2)))
            return ImageData(images, torch.from_numpy(d["labels"].astype(np.int64)), [str(c) for c in d["classes"]])


@dataclass(frozen=True)
class NpzJpeg:
    """A ``.npz`` of JPEG bytes per split, decoded once (PIL) into a cached uint8 array."""

    file: str  # relative to the data root

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        from PIL import Image

        path = root / self.file
        if not path.is_file():
            raise missing(spec, root, path)
        stat = path.stat()
        key = f"{spec.name}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}"
        with np.load(path) as d:
            labels = torch.from_numpy(d[f"{split}_labels"].astype(np.int64))
            classes = [str(c) for c in d["classes"]]

            def decode() -> np.ndarray:
                jpeg, offsets = d[f"{split}_jpeg"], d[f"{split}_offsets"]
                images = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes()))
                                              .convert("RGB")) for i in range(len(offsets) - 1)])
                return images.transpose(0, 3, 1, 2).copy()

            images = torch.from_numpy(cached_array(key, decode).copy())
        return ImageData(images, labels, classes)
