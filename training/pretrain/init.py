"""``pretrain --init``: start from trained weights (backbone and relation head) instead of a random init.

The source is a published zoo entry, an export folder, or a training checkpoint ``.pt``. Published and
exported weights are loaded through rr_zoo's verified loaders (sha256 of the manifest or of the folder's
``config.json``); a checkpoint is the user's own file, read with ``weights_only=True`` and its sha256
recorded. The architecture, input channels, aggregation and relation-head width must match the run.

What the run started from is kept as a record (:attr:`InitWeights.record`) in the checkpoint
(``TrainingCheckpoint.init``) and from there in the export's provenance and the manifest::

    {"from": "rr_conv4_cifar10", "kind": "zoo entry", "sha256": {"backbone": ..., "relation_head": ...},
     "epochs": 12, "provenance": {...the source's own provenance, with its own "init" if it had one...}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rr_zoo.errors import UnknownModelError
from rr_zoo.export_format import CONFIG_FILE, read_export_config
from rr_zoo.manifest import load_manifest
from rr_zoo.weights import load_entry_state_dict, load_safetensors, sha256_file, verified_export_file
from training.pretrain.recipes import Recipe, RecipeError


@dataclass(frozen=True)
class InitWeights:
    """Weights to start from and the record of where they came from."""

    backbone: dict[str, torch.Tensor]
    relation: dict[str, torch.Tensor]
    record: dict[str, Any]  # from, kind, sha256, epochs, provenance (see the module docstring)
    facts: dict[str, Any]   # architecture, in_chans, aggregation, relation_hidden of the source


def load_init(source: str, recipe: Recipe, in_chans: int) -> InitWeights:
    """Load and check the weights ``--init`` names.

    Args:
        source: A zoo entry name, an export folder (or a weight file in one), or a checkpoint ``.pt``.
        recipe: The run's recipe (architecture, aggregation, relation_hidden must match the source's).
        in_chans: Image channels of the run.

    Raises:
        RecipeError: an unknown name, or weights that do not fit the run (the message names what differs).
        WeightsHashError / WeightsNotFoundError / UnpublishedWeightsError: published or exported weights
            that are missing or differ from their recorded sha256.
    """
    path = Path(source)
    if path.is_dir():
        init = _from_export(path)
    elif path.is_file() and path.suffix == ".safetensors" and (path.parent / CONFIG_FILE).is_file():
        init = _from_export(path.parent)
    elif path.is_file():
        init = _from_checkpoint(path)
    else:
        try:
            entry = load_manifest().get(source)
        except UnknownModelError as exc:
            raise RecipeError(f"--init {source!r} is neither an existing file or folder nor a zoo entry ({exc}); "
                              "pass a published entry (python -m rr_zoo list), an export folder or a checkpoint.pt"
                              ) from None
        init = _from_entry(entry)
    wanted = {"architecture": recipe.architecture, "in_chans": in_chans, "aggregation": recipe.aggregation,
              "relation_hidden": recipe.relation_hidden}
    wrong = [f"{k} {init.facts[k]!r} there, {v!r} here" for k, v in wanted.items() if init.facts[k] != v]
    if wrong:
        raise RecipeError(f"--init {source}: its weights do not fit this run ({'; '.join(wrong)}); start from weights "
                          "of the same network, or set --architecture/--aggregation/--relation-hidden to theirs")
    return init


def apply_init(init: InitWeights, backbone: torch.nn.Module, head: torch.nn.Module) -> None:
    """Load the weights into the run's modules (shapes were checked by their facts; a mismatch left is an error)."""
    try:
        backbone.load_state_dict(init.backbone)
        head.load_state_dict(init.relation)
    except RuntimeError as exc:
        raise RecipeError(f"--init {init.record['from']}: its weights do not fit this run's network ({exc})") from exc


def _from_entry(entry) -> InitWeights:
    backbone = load_entry_state_dict(entry, "backbone")
    relation = load_entry_state_dict(entry, "relation_head")
    provenance = entry.provenance
    trained = (provenance or {}).get("recipe") or entry.recipe
    record = {"from": entry.name, "kind": "zoo entry", "release": entry.release_name(entry.release.tag),
              "sha256": {role: entry.file(role).sha256 for role in ("backbone", "relation_head")},
              "epochs": (provenance or {}).get("epochs_trained", trained.get("epochs")), "provenance": provenance}
    facts = {"architecture": entry.architecture, "in_chans": entry.in_chans, "aggregation": trained["aggregation"],
             "relation_hidden": trained.get("relation_hidden", 256)}
    return InitWeights(backbone, relation, record, facts)


def _from_export(folder: Path) -> InitWeights:
    config = read_export_config(folder)
    if config.entry is None:
        raise RecipeError(f"--init {folder}: its config.json names no zoo entry; re-export it with "
                          "`python -m training export`")
    entry = load_manifest().get(config.entry)
    backbone = load_safetensors(verified_export_file(folder, "backbone"))
    relation = load_safetensors(verified_export_file(folder, "relation_head"))
    section = config.section
    trained = section.get("recipe") or entry.recipe
    input_size = config.raw.get("pretrained_cfg", {}).get("input_size") or entry.preprocessing["input_size"]
    record = {"from": str(folder.resolve()), "kind": "export folder", "entry": entry.name,
              "sha256": {role: config.file(role).sha256 for role in ("backbone", "relation_head")},
              "epochs": section.get("epochs_trained"), "provenance": section.get("provenance")}
    facts = {"architecture": trained.get("architecture", entry.architecture), "in_chans": int(input_size[0]),
             "aggregation": section.get("aggregation") or trained["aggregation"],
             "relation_hidden": trained.get("relation_hidden", 256)}
    return InitWeights(backbone, relation, record, facts)


def _from_checkpoint(path: Path) -> InitWeights:
    from training.pretrain.checkpoint import load_checkpoint
    from training.release.provenance import run_provenance

    digest = sha256_file(path)
    ckpt = load_checkpoint(path)
    if not ckpt.relation:
        raise RecipeError(f"--init {path}: the checkpoint has no relation head (a supervised run?); start from a "
                          "pretraining checkpoint, an export folder or a zoo entry")
    provenance = run_provenance(ckpt, path.parent)
    record = {"from": str(path.resolve()), "kind": "training checkpoint", "sha256": {"checkpoint": digest},
              "epochs": provenance.get("epochs_trained"), "provenance": provenance}
    facts = {"architecture": ckpt.architecture, "in_chans": ckpt.in_chans,
             "aggregation": ckpt.recipe.get("aggregation"), "relation_hidden": ckpt.recipe.get("relation_hidden", 256)}
    return InitWeights(ckpt.backbone, ckpt.relation, record, facts)

