"""rr-zoo: pretrained self-supervised relational-reasoning backbones.

``import rr_zoo`` registers every zoo entry with timm::

    import rr_zoo, timm
    model = timm.create_model("rr_conv4_cifar10", pretrained=True)  # frozen feature extractor
"""

from rr_zoo import timm_models as _timm_models  # noqa: F401  (registers the zoo with timm)
from rr_zoo.api import create_model, create_relation_head, get_entry, get_transform, list_models
from rr_zoo.errors import (
    CheckpointFormatError,
    InputShapeError,
    ManifestError,
    RRZooError,
    UnknownModelError,
    UnpublishedWeightsError,
    WeightsHashError,
    WeightsNotFoundError,
)
from rr_zoo.relation import RelationHead, focal_loss, make_pairs, relation_score

__version__ = "0.1.0"
__all__ = [
    "CheckpointFormatError", "InputShapeError", "ManifestError", "RRZooError", "RelationHead",
    "UnknownModelError", "UnpublishedWeightsError", "WeightsHashError", "WeightsNotFoundError",
    "create_model", "create_relation_head", "focal_loss", "get_entry", "get_transform", "list_models",
    "make_pairs", "relation_score",
]
