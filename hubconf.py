"""torch.hub entry points: one callable per zoo entry, generated from the manifest.

    torch.hub.load("OWNER/rr-zoo", "rr_conv4_cifar10")   # OWNER: the GitHub account hosting this repository
    torch.hub.load(path, "rr_conv4_cifar10", source="local", pretrained=False)

Each callable builds the same model as ``timm.create_model(name, ...)`` after
``import rr_zoo`` (same weights, same output); ``torch.hub.help(repo, name)`` says
whether the entry has published weights.
"""

# torch.hub checks these import names before loading (pillow's is PIL)
dependencies = ["torch", "torchvision", "timm", "huggingface_hub", "safetensors", "PIL"]

import inspect as _inspect  # noqa: E402

from rr_zoo import create_model as _create_model  # noqa: E402
from rr_zoo import get_entry as _get_entry  # noqa: E402
from rr_zoo import list_models as _list_models  # noqa: E402

_P = _inspect.Parameter
_SIGNATURE = _inspect.Signature([
    _P("pretrained", _P.KEYWORD_ONLY, default=True, annotation=bool),
    _P("trainable", _P.KEYWORD_ONLY, default=False, annotation=bool),
    _P("weights", _P.KEYWORD_ONLY, default=None, annotation="str | os.PathLike | None"),
    _P("sha256", _P.KEYWORD_ONLY, default=None, annotation="str | None"),
    _P("release", _P.KEYWORD_ONLY, default=None, annotation="str | None"),
    _P("kwargs", _P.VAR_KEYWORD),
])


def _doc(name):
    entry = _get_entry(name)
    if entry.published:
        releases = "\n".join(f"    {tag}: {r.summary()}{' (default)' if tag == entry.default_release else ''}"
                              for tag, r in entry.releases.items())
        status = (f"Published: pretrained=True (the default) loads its default release, {entry.default_release}, "
                  "sha256-verified, as a frozen feature extractor (eval mode, FrozenBatchNorm2d, no gradients); "
                  f"release=TAG loads another. Releases:\n{releases}")
    else:
        status = ("Unpublished: no weights yet, so load it with pretrained=False (random init) or "
                  "weights=PATH (an export folder or safetensors file); pretrained=True raises "
                  "UnpublishedWeightsError.")
    return f"""{entry.description}

{status}

Keyword args:
    pretrained: load the entry's weights (default True).
    trainable: return an ordinary trainable model instead of a frozen one.
    weights: local export folder or safetensors file to load instead, every tensor of it (an export folder is
        verified by its config.json; a classifier in the file needs the matching num_classes).
    sha256: pin ``weights`` to this digest.
    release: tag of the release to load (default: the entry's default release).
    **kwargs: timm model kwargs (num_classes, in_chans, global_pool, drop_rate, drop_path_rate,
        features_only, ...); see rr_zoo.create_model and timm.create_model.
"""


def _hub_entry(name):
    def entry(*, pretrained=True, trainable=False, weights=None, sha256=None, release=None, **kwargs):
        return _create_model(name, pretrained=pretrained, trainable=trainable, weights=weights, sha256=sha256,
                             release=release, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = _doc(name)
    entry.__signature__ = _SIGNATURE
    return entry


for _name in _list_models():
    globals()[_name] = _hub_entry(_name)
