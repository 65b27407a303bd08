"""The export folder format, owned here alone.

An export folder (what ``python -m training export`` and ``python -m rr_zoo convert``
write, what the Hub repo of an entry holds, what ``timm.create_model("local-dir:DIR")``
and ``"hf-hub:org/name"`` read) contains:

- ``model.safetensors``: backbone weights (no classifier);
- ``relation_head.safetensors``: the relation head learnt in pretraining;
- ``config.json``: timm's fields (``architecture``, ``num_classes``, ``num_features``,
  ``pretrained_cfg``) plus an ``rr_zoo`` section whose ``files`` list records every
  weight file's name, role, sha256 and size (loaders verify against it);
- optionally ``README.md`` (model card), figures and training logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rr_zoo.atomic import atomic_folder
from rr_zoo.errors import CheckpointFormatError
from rr_zoo.hashing import sha256_file
from rr_zoo.manifest import FileRecord, ZooEntry

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ROLE_FILES = {"backbone": "model.safetensors", "relation_head": "relation_head.safetensors"}
# timm pretrained_cfg fields written into config.json (what local-dir:/hf-hub: loading needs)
CONFIG_CFG_FIELDS = ("tag", "input_size", "mean", "std", "interpolation", "crop_pct", "num_classes", "pool_size",
                     "first_conv", "classifier", "license", "paper_ids")
# the pretrained_cfg fields that say how images are prepared (an export may differ from its entry's: a user's data)
PREPROCESSING_FIELDS = ("input_size", "mean", "std", "interpolation", "crop_pct")
# the weight files' only metadata key: safetensors writes its metadata map in arbitrary order, and the files must
# be byte-reproducible (same weights -> same sha256); the entry is named in config.json
EXPORT_METADATA = {"format": "pt"}


def filename(role: str) -> str:
    """Standard file name of a weight role (``backbone`` / ``relation_head``) in an export folder."""
    try:
        return ROLE_FILES[role]
    except KeyError:
        raise ValueError(f"unknown weight role {role!r}; roles are {sorted(ROLE_FILES)}") from None


# ----------------------------------------------------------------------------- config.json
@dataclass(frozen=True)
class ExportConfig:
    """What a loader needs from an export folder's ``config.json``.

    Attributes:
        path: The config file.
        raw: The whole parsed JSON.
        entry: Zoo entry the weights belong to (``rr_zoo.entry``).
        files: Weight file records (name, role, sha256, size).
    """

    path: Path
    raw: dict[str, Any]
    entry: str | None
    files: tuple[FileRecord, ...]

    def file(self, role: str) -> FileRecord | None:
        """The record of a role's file, or None."""
        return next((f for f in self.files if f.role == role), None)

    @property
    def section(self) -> dict[str, Any]:
        """The ``rr_zoo`` section (recipe, metrics, provenance, ...)."""
        return self.raw.get("rr_zoo", {})

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing the weights were trained with (``pretrained_cfg``: input_size, mean, std, ...)."""
        cfg = self.raw.get("pretrained_cfg", {})
        return {k: cfg[k] for k in PREPROCESSING_FIELDS if k in cfg}


def read_export_config(path: str | os.PathLike) -> ExportConfig:
    """Parse the ``config.json`` of an export folder (pass the folder or the file).

    Raises:
        CheckpointFormatError: the file is missing, not JSON, or its ``rr_zoo.files`` is malformed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise CheckpointFormatError(
            f"{path} does not exist: not an rr_zoo export folder. Write one with `python -m training export` "
            "or `python -m rr_zoo convert`.")
    try:
        raw = json.loads(path.read_text())
        section = raw.get("rr_zoo", {})
        files = tuple(FileRecord(**{k: f[k] for k in ("name", "role", "sha256", "size")})
                      for f in section.get("files", []))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointFormatError(f"{path} is not a valid export config.json ({exc}); re-export the folder") from exc
    return ExportConfig(path=path, raw=raw, entry=section.get("entry"), files=files)


def file_record(path: Path, role: str) -> dict[str, Any]:
    """Config/manifest record (name, role, sha256, size) of a written file."""
    return {"name": path.name, "role": role, "sha256": sha256_file(path), "size": path.stat().st_size}


def export_config(entry: ZooEntry, files: list[dict[str, Any]], extra: dict[str, Any] | None = None,
                  preprocessing: dict[str, Any] | None = None, tag: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of an export folder.

    Args:
        entry: Zoo entry.
        files: Records from :func:`file_record`.
        extra: Extra keys of the ``rr_zoo`` section.
        preprocessing: Overrides of the entry's preprocessing (e.g. a user dataset's mean/std).
        tag: timm pretrained tag naming these weights (default: the entry's).

    Returns:
        timm's fields (pretrained_cfg from :func:`rr_zoo.timm_cfg.pretrained_cfg`) plus ``rr_zoo``.
    """
    from rr_zoo.timm_cfg import pretrained_cfg  # torch: builds the architecture on the meta device for pool_size

    cfg = pretrained_cfg(entry, preprocessing)
    return {
        "architecture": entry.arch,
        "num_classes": 0,
        "num_features": entry.num_features,
        "pretrained_cfg": {"tag": tag or entry.tag, **{k: _jsonable(cfg[k]) for k in CONFIG_CFG_FIELDS if k in cfg}},
        "rr_zoo": {"entry": entry.name, "aggregation": entry.recipe["aggregation"], "files": files, **(extra or {})},
    }


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def write_export_folder(out_dir: str | os.PathLike, entry: ZooEntry, backbone: dict[str, Any],
                        relation: dict[str, Any], extra_config: dict[str, Any] | None = None,
                        extra_files: dict[str, bytes] | None = None,
                        preprocessing: dict[str, Any] | None = None, tag: str | None = None,
                        card: Callable[[dict[str, Any]], str] | None = None) -> Path:
    """Write weights + ``config.json`` (+ extra files, model card) into ``out_dir`` atomically.

    Args:
        out_dir: Destination folder (replaced if it exists).
        entry: Zoo entry the weights belong to.
        backbone: Backbone state dict (no classifier).
        relation: Relation head state dict.
        extra_config: Extra keys for the ``rr_zoo`` section of config.json.
        extra_files: Further files (e.g. ``README.md``) as bytes.
        preprocessing: Overrides of the entry's preprocessing recorded in config.json.
        tag: timm pretrained tag recorded in config.json (default: the entry's).
        card: Makes the model card (``README.md``) from the written config.json (which holds the files' sha256).

    Returns:
        The folder path.
    """
    from safetensors.torch import save_file

    with atomic_folder(out_dir) as tmp:
        files = []
        for role, state in (("backbone", backbone), ("relation_head", relation)):
            save_file(state, str(tmp / filename(role)), metadata=EXPORT_METADATA)
            files.append(file_record(tmp / filename(role), role))
        for name, data in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        config = export_config(entry, files, extra_config, preprocessing, tag)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        if card is not None:
            (tmp / CARD_FILE).write_text(card(config))
    return Path(out_dir)
