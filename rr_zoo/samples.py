"""The CIFAR-10 photos bundled with the package (``assets/``): data for the demo, the notebook and figures."""

from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


def load_sample_images(count: int = 20) -> tuple[list, list[int], list[str]]:
    """CIFAR-10 photos shipped with the package: (PIL images, labels, class names).

    Args:
        count: How many of the 200 bundled images: the first 20 hold two per class, all 200 twenty.
    """
    from PIL import Image

    meta = json.loads((ASSETS / "cifar10_samples.json").read_text())
    strip = Image.open(ASSETS / "cifar10_samples.png").convert("RGB")
    tile = meta["tile"]
    count = min(count, len(meta["labels"]))
    images = [strip.crop((i * tile, 0, (i + 1) * tile, tile)) for i in range(count)]
    return images, meta["labels"][:count], meta["classes"]
