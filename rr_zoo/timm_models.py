"""timm registration, generated from the manifest.

Importing this module registers, for every architecture, a timm model
``<arch>_rr`` whose pretrained tags are the manifest entries (``resnet32_rr.cifar100``),
and for every entry an alias model ``rr_<arch>_<dataset>`` with that entry's cfg.
``default_cfgs`` is generated here from the manifest; nothing is written twice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from rr_zoo.errors import CheckpointFormatError
from rr_zoo.manifest import ZooEntry, load_manifest
from rr_zoo.models import ARCHITECTURES, get_architecture
from rr_zoo.weights import download_from_hub, load_entry_state_dict, load_safetensors, verify_file

_MANIFEST = load_manifest()  # registration; weight lookups re-read load_manifest()
FIRST_CONV = {"conv4": "layer1.conv"}  # others: "conv1"


def pretrained_cfg(entry: ZooEntry) -> dict[str, Any]:
    """timm pretrained cfg of a zoo entry (preprocessing, licence, Hub id when published)."""
    pre = entry.preprocessing
    cfg = dict(
        input_size=tuple(pre["input_size"]),
        mean=tuple(pre["mean"]),
        std=tuple(pre["std"]),
        interpolation=pre["interpolation"],
        crop_pct=pre["crop_pct"],
        num_classes=0,
        first_conv=FIRST_CONV.get(entry.architecture, "conv1"),
        classifier="fc",
        license=entry.license,
        paper_ids=entry.paper_ids,
        paper_name="Self-Supervised Relational Reasoning for Representation Learning",
        description=entry.description,
        origin_url="https://github.com/mpatacchiola/self-supervised-relational-reasoning",
    )
    if entry.published:
        cfg["hf_hub_id"] = entry.hub["repo_id"]
    return cfg


def _entries() -> list[ZooEntry]:
    # published entries first, so an architecture's default tag has weights when any does
    return sorted(_MANIFEST.entries.values(), key=lambda e: (not e.published, e.name))


default_cfgs = generate_default_cfgs(
    {**{e.timm_name: pretrained_cfg(e) for e in _entries()}, **{e.name: pretrained_cfg(e) for e in _entries()}}
)


def _entry_for(cfg: dict[str, Any]) -> ZooEntry | None:
    arch, tag = cfg.get("architecture"), cfg.get("tag")
    name = f"{arch}.{tag}" if tag else arch
    try:
        return load_manifest().get(name) if name else None
    except KeyError:
        return None


def _hub_folder_state_dict(hub_id: str) -> dict[str, torch.Tensor]:
    """Backbone weights of an exported folder on the Hub (``hf-hub:org/name[@rev]``), hash-checked."""
    repo_id, _, revision = hub_id.partition("@")
    config_path = download_from_hub(repo_id, "config.json", revision or None)
    weights_path = download_from_hub(repo_id, "model.safetensors", revision or None)
    return _verified_by_config(weights_path, config_path)


def _verified_by_config(weights_path: Path, config_path: Path) -> dict[str, torch.Tensor]:
    files = json.loads(Path(config_path).read_text()).get("rr_zoo", {}).get("files", [])
    record = next((f for f in files if f.get("role") == "backbone"), None)
    if record is None:
        raise CheckpointFormatError(
            f"{config_path} lists no backbone file under rr_zoo.files; re-export the folder with "
            "`python -m training export` so its weights can be verified."
        )
    verify_file(weights_path, record["sha256"], record.get("size"), what=str(config_path.parent))
    return load_safetensors(weights_path)


def load_backbone_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Load backbone weights; only a new classifier (``fc.*``) may be missing.

    Raises:
        CheckpointFormatError: unexpected or missing keys, or shape mismatches, named in the message.
    """
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:
        raise CheckpointFormatError(
            f"weights of {what} do not fit this model (did you change in_chans or the architecture?): {exc}"
        ) from exc
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise CheckpointFormatError(
            f"weights of {what} do not match the architecture: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}"
        )


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` for everything but a classifier ``fc`` with parameters."""
    model.eval()
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("fc.") and getattr(model, "num_classes", 0) > 0)
    return model


def _create(variant: str, arch: str, pretrained: bool = False, *, trainable: bool = False,
            sha256: str | None = None, **kwargs: Any) -> nn.Module:
    builder = get_architecture(arch).builder
    if kwargs.get("features_only"):
        # default: every stage timm knows of (timm assumes five otherwise)
        n_stages = len(builder(in_chans=kwargs.get("in_chans", 3)).feature_info)
        kwargs.setdefault("out_indices", tuple(range(n_stages)))
    model = build_model_with_cfg(builder, variant, pretrained=False, **kwargs)
    if not pretrained:
        return model
    cfg = model.pretrained_cfg
    entry = _entry_for(cfg)
    source = cfg.get("source")
    if source == "hf-hub":
        state_dict, what = _hub_folder_state_dict(cfg["hf_hub_id"]), cfg["hf_hub_id"]
    elif source == "local-dir":
        folder = Path(cfg["file"])
        state_dict, what = _verified_by_config(folder / "model.safetensors", folder / "config.json"), str(folder)
    elif entry is not None:
        state_dict = load_entry_state_dict(entry, "backbone", file=cfg.get("file"), sha256=sha256)
        what = entry.name
    else:
        raise CheckpointFormatError(
            f"{variant!r} has no zoo entry; pick a tag (e.g. {arch}_rr.cifar10) or pass a pretrained_cfg_overlay file"
        )
    load_backbone_weights(model, state_dict, what)
    return model if trainable else freeze(model)


def _make_entrypoint(fn_name: str, arch: str, doc: str):
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _create(fn_name, arch, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = fn_name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = doc
    setattr(sys.modules[__name__], fn_name, entrypoint)
    return register_model(entrypoint)


_ENTRY_DOC = """{description}

Status: {status}. timm name ``{timm_name}``; input {input_size}, mean {mean}, std {std}.

Args:
    pretrained: Load the entry's published weights (sha256-verified) and return a
        frozen feature extractor (eval mode, ``requires_grad=False``).
    trainable: With ``pretrained=True``, keep the model trainable (train mode, gradients on).
    num_classes: 0 (default) returns pooled {num_features}-d features; n > 0 adds a linear head
        (left trainable when the backbone is frozen).
    pretrained_cfg_overlay: ``dict(file=PATH)`` loads a local safetensors file instead.
"""

for _arch in ARCHITECTURES:
    _make_entrypoint(f"{_arch}_rr", _arch,
                     f"{get_architecture(_arch).description}, relational-reasoning zoo architecture. "
                     f"Pick weights with a tag: timm.create_model('{_arch}_rr.<dataset>', pretrained=True).")
for _entry in _MANIFEST.entries.values():
    _make_entrypoint(_entry.name, _entry.architecture, _ENTRY_DOC.format(
        description=_entry.description, status=_entry.status, timm_name=_entry.timm_name,
        input_size=tuple(_entry.preprocessing["input_size"]), mean=tuple(_entry.preprocessing["mean"]),
        std=tuple(_entry.preprocessing["std"]), num_features=_entry.num_features))
