"""Where the backbone under evaluation comes from: a zoo entry, a file, a checkpoint or random init."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import rr_zoo
from rr_zoo.manifest import ZooEntry, load_manifest
from rr_zoo.models import build_backbone


@dataclass
class Backbone:
    """A backbone ready for evaluation, with what identifies it."""

    model: nn.Module
    entry: ZooEntry
    label: str          # human description of the source
    digest: str         # sha256 over the state dict (cache key)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    baseline: str | None = None  # "random_init" / "supervised" for the paper's bounds, None otherwise


def state_dict_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict (stable across save formats)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def load_backbone(entry: str | None = None, weights: str | None = None, seed: int = 0) -> Backbone:
    """Build the backbone to evaluate.

    Args:
        entry: Zoo entry (architecture and preprocessing). Optional for training checkpoints.
        weights: None (the entry's published weights), ``"random"`` (random init, seeded: the
            lower bound), a training checkpoint ``.pt``, or a safetensors file / export folder.
        seed: Seed of the random init.

    Returns:
        The :class:`Backbone`, in eval mode.
    """
    ckpt = None
    if weights not in (None, "random") and Path(weights).suffix == ".pt":
        from training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(weights)
        entry = entry or ckpt["entry"]
    if entry is None:
        raise ValueError("pass --entry NAME (needed for random init and safetensors files)")
    zoo_entry = load_manifest().get(entry)
    if weights == "random":
        torch.manual_seed(seed)
        model = build_backbone(zoo_entry.architecture, in_chans=zoo_entry.in_chans)
        label = f"random init (seed {seed})"
    elif ckpt is not None:
        model = build_backbone(ckpt["architecture"], in_chans=ckpt["in_chans"])
        model.load_state_dict(ckpt["backbone"])
        label = f"checkpoint {weights} (epoch {ckpt['epoch']})"
    elif weights is None:
        model = rr_zoo.create_model(zoo_entry.name, pretrained=True)
        label = f"zoo entry {zoo_entry.name}"
    else:
        model = rr_zoo.create_model(zoo_entry.name, weights=weights)
        label = f"weights {weights}"
    model.eval()
    pre = zoo_entry.preprocessing
    baseline = "random_init" if weights == "random" else None
    if ckpt is not None and ckpt["recipe"].get("loss") == "supervised":
        baseline = "supervised"
    return Backbone(model, zoo_entry, label, state_dict_digest(model.state_dict()),
                    tuple(pre["mean"]), tuple(pre["std"]), baseline)
