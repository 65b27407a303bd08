"""Convert the original repository's ``.tar`` checkpoints to safetensors.

The original saves ``torch.save({"backbone": ..., "relation": ..., "optimizer": ...}, path)``.
:func:`convert_checkpoint` reads it with ``torch.load(weights_only=True)`` (no
pickle code execution) and writes an export folder (:mod:`rr_zoo.export_format`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rr_zoo.errors import CheckpointFormatError
from rr_zoo.export_format import write_export_folder
from rr_zoo.hashing import sha256_file
from rr_zoo.manifest import ZooEntry
from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead, relation_input_features

STRIP_PREFIXES = ("module.",)  # DataParallel / DDP wrappers


def _clean(state_dict: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value.detach().contiguous().cpu()
    return out


def read_original_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read ``backbone`` and ``relation`` state dicts from an original ``.tar`` checkpoint.

    Raises:
        CheckpointFormatError: unreadable file or missing keys.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise CheckpointFormatError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or "backbone" not in ckpt or "relation" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointFormatError(
            f"{path} is not an original relational-reasoning checkpoint: expected keys 'backbone' and "
            f"'relation', found {keys}"
        )
    return _clean(ckpt["backbone"]), _clean(ckpt["relation"])


def check_state_dicts(entry: ZooEntry, backbone: dict[str, torch.Tensor], relation: dict[str, torch.Tensor]) -> None:
    """Load both state dicts strictly into the entry's modules, raising a clear error on mismatch."""
    model = build_backbone(entry.architecture, in_chans=entry.in_chans)
    head = RelationHead(relation_input_features(entry.num_features, entry.recipe["aggregation"]),
                        entry.recipe.get("relation_hidden", 256))
    for what, module, sd in (("backbone", model, backbone), ("relation", head, relation)):
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise CheckpointFormatError(f"{what} weights do not match {entry.name!r}: {exc}") from exc


def convert_checkpoint(checkpoint: str | os.PathLike, entry: ZooEntry, out_dir: str | os.PathLike) -> Path:
    """Convert an original ``.tar`` checkpoint into an export folder for ``entry``.

    Args:
        checkpoint: Path of the original checkpoint.
        entry: Target zoo entry (architecture and aggregation must match).
        out_dir: Folder to write.

    Returns:
        The written folder (``model.safetensors``, ``relation_head.safetensors``, ``config.json``).
    """
    backbone, relation = read_original_checkpoint(checkpoint)
    check_state_dicts(entry, backbone, relation)
    return write_export_folder(out_dir, entry, backbone, relation,
                               extra_config={"converted_from": Path(checkpoint).name,
                                             "converted_from_sha256": sha256_file(checkpoint)})
