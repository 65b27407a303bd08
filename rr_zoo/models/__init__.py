"""Backbones of the zoo: the registry (:mod:`rr_zoo.models.registry`) and the families that fill it.

Importing this package registers every architecture (``conv4``, ``resnet``).
"""

from rr_zoo.models import conv4, resnet  # noqa: F401  (fill the registry)
from rr_zoo.models.registry import (
    ARCHITECTURES,
    Architecture,
    build_backbone,
    get_architecture,
    register_architecture,
)

__all__ = ["ARCHITECTURES", "Architecture", "build_backbone", "get_architecture", "register_architecture"]
