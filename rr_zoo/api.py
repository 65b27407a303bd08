"""Public entry points: list_models, create_model, get_transform, create_relation_head."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from rr_zoo.errors import CheckpointFormatError
from rr_zoo.export_format import CONFIG_FILE, read_export_config
from rr_zoo.manifest import ZooEntry, load_manifest
from rr_zoo.relation import RelationHead, relation_input_features
from rr_zoo.weights import load_entry_state_dict


def list_releases(pattern: str = "*") -> list[str]:
    """timm names of every published release (``resnet32_rr.cifar10_jpeg_e30_k4``), each loadable by name.

    Args:
        pattern: Shell-style filter, e.g. ``"resnet32_rr.*"``.
    """
    return [n for n in load_manifest().release_names() if fnmatch.fnmatch(n, pattern)]


def list_models(pattern: str = "*", published_only: bool = False) -> list[str]:
    """Names (aliases) of zoo entries.

    Args:
        pattern: Shell-style filter, e.g. ``"rr_resnet32_*"``.
        published_only: Only entries whose weights can be loaded.

    Returns:
        Sorted entry names, usable with :func:`create_model`, timm and torch.hub.
    """
    return [n for n in load_manifest().names(published_only) if fnmatch.fnmatch(n, pattern)]


def get_entry(name: str) -> ZooEntry:
    """The manifest entry for an alias or timm name (``UnknownModelError`` lists close matches)."""
    return load_manifest().get(name)


def create_model(name: str, pretrained: bool = False, weights: str | os.PathLike | None = None,
                 trainable: bool = False, sha256: str | None = None, release: str | None = None,
                 **kwargs: Any) -> nn.Module:
    """Build a zoo backbone, optionally with verified pretrained weights.

    Args:
        name: Entry alias (``rr_resnet32_cifar100``), its timm name (``resnet32_rr.cifar100``), both
            loading the entry's default release, or a release's timm name (``resnet32_rr.cifar10_jpeg_e30_k4``).
        pretrained: Load the published weights (bundled copy or Hub at the pinned revision).
        weights: Local safetensors file or export folder to load instead (implies ``pretrained``).
            Every tensor of it is loaded, or the call fails naming the keys: a classifier in the
            file (``fc.weight`` / ``fc.bias``) needs the matching ``num_classes``. A file in an
            export folder is checked against the folder's ``config.json``; a loose safetensors
            file needs no hash (safetensors runs no code).
        trainable: Keep a pretrained model trainable; by default it is frozen
            (eval mode, ``requires_grad=False``; a classifier stays trainable).
        sha256: Pin ``weights`` to this digest (checked before reading).
        release: Tag of the entry's release to load (implies ``pretrained``; ``python -m rr_zoo list``
            shows them); default: the release ``name`` names, else the entry's default release.
        **kwargs: timm model kwargs, e.g. ``num_classes=10``.

    Returns:
        The backbone; ``model(x)`` gives (N, num_features) features when ``num_classes=0``.

    Raises:
        CheckpointFormatError: the weights do not fit the model (the message names the keys and the fix).
        WeightsHashError: a file that differs from its recorded or pinned digest, or is not safetensors.
    """
    import timm

    entry = get_entry(name)
    if release is not None:
        if weights is not None:
            raise ValueError("pass weights= (your own file) or release= (a published release), not both")
        entry, pretrained = entry.with_release(release), True
    if weights is not None:
        pretrained = True
        folder = export_folder(weights)  # its config.json may record other preprocessing (a user's dataset)
        overlay = {} if folder is None else _preprocessing_cfg(entry, read_export_config(folder).preprocessing)
        kwargs["pretrained_cfg_overlay"] = dict(file=os.fspath(weights), **overlay)
    return timm.create_model(entry.weights_name, pretrained=pretrained, trainable=trainable, sha256=sha256, **kwargs)


def create_relation_head(name: str, pretrained: bool = False, weights: str | os.PathLike | None = None,
                         sha256: str | None = None, release: str | None = None) -> RelationHead:
    """Build the relation head of a zoo entry (for :func:`rr_zoo.relation_score`).

    Args:
        name: Entry alias or timm name.
        pretrained: Load the entry's published ``relation_head.safetensors``.
        weights: Local file or export folder to load instead (implies ``pretrained``).
        sha256: Pin ``weights`` to this digest.
        release: Tag of the entry's release (implies ``pretrained``); default: the entry's default release.

    Returns:
        The head, in eval mode when pretrained.
    """
    entry = get_entry(name).with_release(release)
    pretrained = pretrained or release is not None
    head = RelationHead(relation_input_features(entry.num_features, entry.recipe["aggregation"]),
                        hidden=entry.recipe.get("relation_hidden", 256))
    if pretrained or weights is not None:
        head.load_state_dict(load_entry_state_dict(entry, "relation_head", file=weights, sha256=sha256))
        head.eval()
    return head


def export_folder(weights: str | os.PathLike) -> Path | None:
    """The export folder ``weights`` names (the folder, or a weight file in it), or None."""
    path = Path(weights)
    folder = path if path.is_dir() else path.parent
    return folder if (folder / CONFIG_FILE).is_file() else None


def _preprocessing_cfg(entry: ZooEntry, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The timm cfg fields of ``preprocessing`` over the entry's (pool size recomputed for the input size)."""
    from rr_zoo.timm_models import pretrained_cfg

    cfg = pretrained_cfg(entry, preprocessing)
    return {k: cfg[k] for k in ("input_size", "mean", "std", "interpolation", "crop_pct", "pool_size")}


def get_transform(name: str, train: bool = False, weights: str | os.PathLike | None = None) -> Callable:
    """The preprocessing of an entry's weights for PIL images (timm's transform from its cfg).

    Weights trained on other data (``python -m training pretrain --dataset folder:PATH``) record their
    own normalisation and input size in their export folder's ``config.json``: pass the folder as
    ``weights``, or as ``name`` (``"local-dir:PATH"`` or the path), to use them.
    Images are first converted to the colour mode of the input (RGB, or L for 1-channel entries),
    so any PIL image works.

    Args:
        name: Entry alias or timm name, or an export folder (``"local-dir:PATH"`` or its path).
        train: timm's training transform instead of the eval one.
        weights: Export folder (or a weight file in it) whose recorded preprocessing to use.

    Returns:
        A callable mapping a PIL image to a normalised (C, H, W) tensor.
    """
    import timm.data
    from torchvision import transforms

    folder = export_folder(weights) if weights is not None else None
    if name.startswith("local-dir:") or (folder is None and export_folder(name) is not None and Path(name).is_dir()):
        folder = Path(name.removeprefix("local-dir:"))
        export = read_export_config(folder)
        if export.entry is None:
            raise CheckpointFormatError(f"{export.path} names no zoo entry (rr_zoo.entry); re-export the folder "
                                        "with `python -m training export`")
        name = export.entry
    entry = get_entry(name)
    pre = read_export_config(folder).preprocessing if folder is not None else {}
    config = timm.data.resolve_data_config(pretrained_cfg=_preprocessing_cfg(entry, pre))
    mode = "L" if config["input_size"][0] == 1 else "RGB"
    return transforms.Compose([transforms.Lambda(lambda img: img.convert(mode)),
                               timm.data.create_transform(**config, is_training=train)])
