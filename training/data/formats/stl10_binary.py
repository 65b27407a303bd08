"""STL-10's binary format: ``<split>_X.bin`` (uint8 images, column-major 3x96x96 each) and
``<split>_y.bin`` (1-based uint8 labels; none for ``unlabeled``). ``a+b`` splits concatenate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.cache import readonly_tensor
from training.data.registry import DatasetSpec, ImageData, missing


@dataclass(frozen=True)
class Stl10Binary:
    """``<folder>/{<part>_X.bin,<part>_y.bin,class_names.txt}``."""

    folder: str = "stl10_binary"            # relative to the data root
    unlabeled_parts: tuple[str, ...] = ("unlabeled",)

    def _part(self, spec: DatasetSpec, root: Path, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        base = root / self.folder
        side = spec.image_size
        if not (base / f"{part}_X.bin").is_file():
            raise missing(spec, root, base / f"{part}_X.bin")
        # memory-map and transpose lazily (the 2.7 GB unlabeled split stays on disk)
        raw = np.memmap(base / f"{part}_X.bin", dtype=np.uint8, mode="r").reshape(-1, spec.channels, side, side)
        images = (readonly_tensor(raw).transpose(2, 3) if raw.size
                  else torch.empty(0, spec.channels, side, side, dtype=torch.uint8))
        if part in self.unlabeled_parts:
            labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
        else:  # 1-based on disk
            labels = torch.from_numpy(np.fromfile(base / f"{part}_y.bin", dtype=np.uint8).astype(np.int64) - 1)
        return images, labels

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        loaded = [self._part(spec, root, p) for p in split.split("+")]
        if len(loaded) == 1:
            images, labels = loaded[0]
        else:  # one copy of the combined split (memmaps are not concatenated lazily)
            images = torch.cat([x for x, _ in loaded])
            labels = torch.cat([y for _, y in loaded])
        names = root / self.folder / "class_names.txt"
        classes = names.read_text().split() if names.is_file() else [str(i) for i in range(spec.num_classes)]
        return ImageData(images, labels, classes)
