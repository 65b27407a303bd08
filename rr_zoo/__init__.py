"""rr-zoo: pretrained self-supervised relational-reasoning backbones.

Importing ``rr_zoo`` and ``timm`` (in either order) registers every zoo entry with timm::

    import rr_zoo, timm
    model = timm.create_model("rr_conv4_cifar10", pretrained=True)  # frozen feature extractor

``import rr_zoo`` itself is light: the public functions below import torch on first use, and the
registration happens when timm is imported (:mod:`rr_zoo.registration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rr_zoo.errors import (
    CheckpointFormatError,
    InputShapeError,
    ManifestError,
    ReleaseChangeError,
    RRZooError,
    UnknownModelError,
    UnpublishedWeightsError,
    WeightsHashError,
    WeightsNotFoundError,
)
from rr_zoo.registration import register_with_timm

if TYPE_CHECKING:
    from rr_zoo.api import create_model, create_relation_head, get_entry, get_transform, list_models, list_releases
    from rr_zoo.relation import RelationHead, focal_loss, make_pairs, relation_score

__version__ = "0.1.0"

_API = ("create_model", "create_relation_head", "get_entry", "get_transform", "list_models", "list_releases")
_RELATION = ("RelationHead", "focal_loss", "make_pairs", "relation_score")

__all__ = [
    "CheckpointFormatError", "InputShapeError", "ManifestError", "RRZooError", "RelationHead", "ReleaseChangeError",
    "UnknownModelError", "UnpublishedWeightsError", "WeightsHashError", "WeightsNotFoundError",
    "create_model", "create_relation_head", "focal_loss", "get_entry", "get_transform", "list_models",
    "list_releases", "make_pairs", "relation_score",
]


def __getattr__(name: str) -> Any:
    """The public functions and classes, imported (with torch) on first use."""
    if name in _API:
        from rr_zoo import api as module
    elif name in _RELATION:
        from rr_zoo import relation as module
    else:
        raise AttributeError(f"module 'rr_zoo' has no attribute {name!r}")
    value = globals()[name] = getattr(module, name)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, *_RELATION})


register_with_timm()
