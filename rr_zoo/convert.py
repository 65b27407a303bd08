"""Convert the original repository's ``.tar`` checkpoints to safetensors.

The original saves ``torch.save({"backbone": ..., "relation": ..., "optimizer": ...}, path)``.
:func:`convert_checkpoint` reads it with ``torch.load(weights_only=True)`` (no
pickle code execution) and writes ``model.safetensors`` (backbone),
``relation_head.safetensors`` and ``config.json`` atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from rr_zoo.errors import CheckpointFormatError
from rr_zoo.manifest import ZooEntry
from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead, relation_input_features
from rr_zoo.weights import sha256_file

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


def file_record(path: Path, role: str) -> dict[str, Any]:
    """Manifest/config record (name, role, sha256, size) of a written file."""
    return {"name": path.name, "role": role, "sha256": sha256_file(path), "size": path.stat().st_size}


def timm_config(entry: ZooEntry, files: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` of an export folder: timm fields plus an ``rr_zoo`` section with file hashes."""
    pre = entry.preprocessing
    return {
        "architecture": entry.arch,
        "num_classes": 0,
        "num_features": entry.num_features,
        "pretrained_cfg": {
            "tag": entry.tag,
            "input_size": pre["input_size"],
            "mean": pre["mean"],
            "std": pre["std"],
            "interpolation": pre["interpolation"],
            "crop_pct": pre["crop_pct"],
            "num_classes": 0,
            "license": entry.license,
            "paper_ids": list(entry.paper_ids),
        },
        "rr_zoo": {"entry": entry.name, "aggregation": entry.recipe["aggregation"], "files": files, **(extra or {})},
    }


def write_export_folder(out_dir: str | os.PathLike, entry: ZooEntry, backbone: dict[str, torch.Tensor],
                        relation: dict[str, torch.Tensor], extra_config: dict[str, Any] | None = None,
                        extra_files: dict[str, bytes] | None = None) -> Path:
    """Write weights + ``config.json`` (+ extra files) into ``out_dir`` atomically.

    Everything is written into a temporary sibling folder which then replaces
    ``out_dir`` in one rename, so a crash never leaves a half-written export.

    Args:
        out_dir: Destination folder (replaced if it exists).
        entry: Zoo entry the weights belong to.
        backbone: Backbone state dict (no classifier).
        relation: Relation head state dict.
        extra_config: Extra keys for the ``rr_zoo`` section of config.json.
        extra_files: Further files (e.g. ``README.md``) as bytes, written first so
            config.json can list them.

    Returns:
        The folder path.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        # one metadata key: safetensors writes its metadata map in arbitrary order, and the files must be
        # byte-reproducible (same weights -> same sha256); the entry is named in config.json
        meta = {"format": "pt"}
        save_file(backbone, str(tmp / "model.safetensors"), metadata=meta)
        save_file(relation, str(tmp / "relation_head.safetensors"), metadata=meta)
        files = [file_record(tmp / "model.safetensors", "backbone"),
                 file_record(tmp / "relation_head.safetensors", "relation_head")]
        for name, data in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        (tmp / "config.json").write_text(json.dumps(timm_config(entry, files, extra_config), indent=2) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


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
