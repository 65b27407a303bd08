"""torchvision's CIFAR python format: pickled dicts with ``data`` (N, 3072 uint8, CHW order) and
a label list, plus a ``meta`` pickle with the class names."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.registry import DatasetSpec, ImageData, missing


def _read_pickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


@dataclass(frozen=True)
class CifarPickle:
    """``<folder>/<batch files of the split>`` and ``<folder>/<meta_file>``."""

    folder: str                             # relative to the data root
    files: Mapping[str, tuple[str, ...]]    # split -> batch files, concatenated in order
    label_key: str                          # "labels", "fine_labels" or "coarse_labels"
    meta_file: str
    names_key: str                          # key of the class names in the meta pickle

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        base = root / self.folder
        images, labels = [], []
        for f in self.files[split]:
            if not (base / f).is_file():
                raise missing(spec, root, base / f)
            d = _read_pickle(base / f)
            images.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(d[self.label_key])
        classes = _read_pickle(base / self.meta_file)[self.names_key]
        return ImageData(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64),
                         list(classes))
