"""rr-zoo: pretrained self-supervised relational-reasoning backbones.

``import rr_zoo`` registers every zoo entry with timm::

    import rr_zoo, timm
    model = timm.create_model("rr_conv4_cifar10", pretrained=True)  # frozen feature extractor
"""

import sys as _sys

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


def _load() -> None:
    """Import the library (torch, timm) and register the zoo with timm."""
    global create_model, create_relation_head, get_entry, get_transform, list_models, list_releases
    global RelationHead, focal_loss, make_pairs, relation_score
    from rr_zoo import timm_models  # noqa: F401  (registers the zoo with timm)
    from rr_zoo.api import create_model, create_relation_head, get_entry, get_transform, list_models, list_releases
    from rr_zoo.relation import RelationHead, focal_loss, make_pairs, relation_score


def _cli_is_starting() -> bool:
    """True while ``python -m rr_zoo`` imports this package to find its ``__main__``.

    Python sets ``sys.argv[0]`` to ``"-m"`` only during that search. The command line imports the
    library once it knows its command, so ``python -m rr_zoo --help`` answers without torch; every
    other ``import rr_zoo`` imports it at once.
    """
    argv = list(getattr(_sys, "orig_argv", ()))
    return _sys.argv[:1] == ["-m"] and "-m" in argv and argv[argv.index("-m") + 1:][:1] == ["rr_zoo"]


if _cli_is_starting():
    def __getattr__(name: str):
        """The public API, imported on first use (``python -m rr_zoo`` only)."""
        if name not in __all__:
            raise AttributeError(f"module 'rr_zoo' has no attribute {name!r}")
        _load()
        return globals()[name]
else:
    _load()

__version__ = "0.1.0"
__all__ = [
    "CheckpointFormatError", "InputShapeError", "ManifestError", "RRZooError", "RelationHead", "ReleaseChangeError",
    "UnknownModelError", "UnpublishedWeightsError", "WeightsHashError", "WeightsNotFoundError",
    "create_model", "create_relation_head", "focal_loss", "get_entry", "get_transform", "list_models",
    "list_releases", "make_pairs", "relation_score",
]
