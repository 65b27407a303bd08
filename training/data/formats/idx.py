"""MNIST's idx format (Fashion-MNIST as torchvision lays it out): big-endian header, then uint8
data; files raw or gzipped. Grayscale images are kept as one channel."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.registry import DatasetSpec, ImageData, missing


def read_idx(path: Path) -> np.ndarray:
    """The array in an idx file (``.gz`` read transparently)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@dataclass(frozen=True)
class Idx:
    """``<folder>/<prefix>-images-idx3-ubyte[.gz]`` and ``<prefix>-labels-idx1-ubyte[.gz]``."""

    folder: str                      # relative to the data root
    prefixes: Mapping[str, str]      # split -> file prefix ("train", "t10k")
    classes: tuple[str, ...]         # idx files carry no class names

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        base = root / self.folder
        prefix = self.prefixes[split]
        arrays = []
        for kind in ("images-idx3", "labels-idx1"):
            candidates = [base / f"{prefix}-{kind}-ubyte", base / f"{prefix}-{kind}-ubyte.gz"]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise missing(spec, root, candidates[0])
            arrays.append(read_idx(path))
        images, labels = arrays
        return ImageData(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                         list(self.classes))
