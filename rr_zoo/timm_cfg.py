"""timm's pretrained cfg of a zoo entry, computed from the manifest (nothing is registered with timm here).

:mod:`rr_zoo.timm_models` registers these cfgs; export folders write them into ``config.json``
(:mod:`rr_zoo.export_format`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from rr_zoo.manifest import ZooEntry
from rr_zoo.models import get_architecture

PAPER_NAME = "Self-Supervised Relational Reasoning for Representation Learning"
ORIGIN_URL = "https://github.com/mpatacchiola/self-supervised-relational-reasoning"


@functools.cache
def pool_size(architecture: str, input_size: tuple[int, int, int]) -> tuple[int, int]:
    """Spatial size of ``forward_features`` at ``input_size`` (shape-only pass on the meta device)."""
    model = get_architecture(architecture).builder(in_chans=input_size[0], device="meta")
    return tuple(model.forward_features(torch.empty(1, *input_size, device="meta")).shape[-2:])


def release_description(entry: ZooEntry) -> str:
    """The entry's description plus what its selected release holds (which release, how it was trained)."""
    release = entry.release
    if release is None:
        return entry.description
    which = "default release" if release.tag == entry.default_release else "release"
    return f"{entry.description} Weights: {which} {entry.release_name(release.tag)}, {release.summary()}."


def pretrained_cfg(entry: ZooEntry, preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """timm pretrained cfg of a zoo entry's selected release (preprocessing, pool size, licence, Hub id).

    Args:
        entry: The zoo entry (its default release, or the one selected with :meth:`ZooEntry.with_release`).
        preprocessing: Overrides of the weights' preprocessing (e.g. a user dataset's mean/std).
    """
    pre = {**entry.weights_preprocessing, **(preprocessing or {})}
    input_size = tuple(pre["input_size"])
    cfg = dict(
        input_size=input_size,
        mean=tuple(pre["mean"]),
        std=tuple(pre["std"]),
        interpolation=pre["interpolation"],
        crop_pct=pre["crop_pct"],
        pool_size=pool_size(entry.architecture, input_size),
        num_classes=0,
        first_conv=get_architecture(entry.architecture).first_conv,
        classifier="fc",
        license=entry.license,
        paper_ids=entry.paper_ids,
        paper_name=PAPER_NAME,
        description=release_description(entry),
        origin_url=ORIGIN_URL,
    )
    if entry.published:
        revision = entry.hub.get("revision")
        cfg["hf_hub_id"] = entry.hub["repo_id"] + (f"@{revision}" if revision else "")
    return cfg
