"""Where the features under evaluation come from: a zoo entry, a file, a checkpoint or random init."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import rr_zoo
from rr_zoo.api import export_folder
from rr_zoo.manifest import ZooEntry, load_manifest
from rr_zoo.models import build_backbone
from training.data import DataRequest
from training.pretrain.recipes import RecipeError


@dataclass
class FeatureSource:
    """A backbone network ready for evaluation, with what identifies its weights."""

    model: nn.Module
    entry: ZooEntry
    label: str          # human description of the source
    digest: str         # sha256 over the state dict (cache key)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    baseline: str | None = None  # "random_init" / "supervised" for the paper's bounds, None otherwise
    trained_on: str | None = None  # dataset the weights were trained on (default evaluation dataset)
    input_size: tuple[int, int, int] | None = None  # (C, H, W) the weights take (None: the entry's)

    def data_request(self) -> DataRequest:
        """How a folder dataset is read for these weights: at their input size, with their normalisation."""
        c, h, _ = self.input_size or tuple(self.entry.preprocessing["input_size"])
        return DataRequest(image_size=int(h), channels=int(c), mean=self.mean, std=self.std)


def state_dict_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict (stable across save formats)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def load_backbone(entry: str | None = None, weights: str | None = None, seed: int = 0) -> FeatureSource:
    """Build the backbone to evaluate.

    Args:
        entry: Zoo entry (architecture and preprocessing; its default release unless ``weights``), or a
            release's timm name (``resnet32_rr.cifar10_jpeg_e30_k4``). Optional for training checkpoints and
            export folders (their config.json names the entry).
        weights: None (the entry's published weights), ``"random"`` (random init, seeded: the
            lower bound), a training checkpoint ``.pt``, or a safetensors file / export folder.
        seed: Seed of the random init.

    Returns:
        The :class:`FeatureSource`, its model in eval mode.

    Raises:
        RecipeError: ``weights`` does not exist, or neither an entry nor a checkpoint says which network to build.
    """
    ckpt = None
    if weights not in (None, "random") and not Path(weights).exists():
        raise RecipeError(f"--weights {weights}: no such file or folder; pass 'random', a training checkpoint .pt, "
                          "a safetensors file or an export folder")
    if weights not in (None, "random") and Path(weights).suffix == ".pt":
        from training.pretrain.checkpoint import load_checkpoint

        ckpt = load_checkpoint(weights)
        entry = entry or ckpt.entry
    elif entry is None and weights not in (None, "random") and export_folder(weights) is not None:
        from rr_zoo.export_format import read_export_config

        entry = read_export_config(export_folder(weights)).entry  # the folder's config.json names its entry
    if entry is None:
        raise RecipeError("say which network to evaluate: --entry NAME (a zoo entry, see `python -m rr_zoo list`) "
                          "or --weights CHECKPOINT.pt / EXPORT_FOLDER; --weights random or a loose safetensors "
                          "file also needs --entry")
    zoo_entry = load_manifest().get(entry)
    if weights == "random":
        torch.manual_seed(seed)
        model = build_backbone(zoo_entry.architecture, in_chans=zoo_entry.in_chans)
        label = f"random init (seed {seed})"
    elif ckpt is not None:
        model = build_backbone(ckpt.architecture, in_chans=ckpt.in_chans)
        model.load_state_dict(ckpt.backbone)
        label = f"checkpoint {weights} (epoch {ckpt.epoch})"
    elif weights is None:  # the entry's default release, or the release named by its timm name
        model = rr_zoo.create_model(zoo_entry.weights_name, pretrained=True)
        label = f"zoo release {zoo_entry.release_name(zoo_entry.release.tag)}" if zoo_entry.published else \
            f"zoo entry {zoo_entry.name}"
    else:
        model = rr_zoo.create_model(zoo_entry.name, weights=weights)
        label = f"weights {weights}"
    model.eval()
    pre = dict(zoo_entry.preprocessing)  # what the weights were trained with: a checkpoint or export may record its own
    folder = None if weights in (None, "random") or ckpt is not None else export_folder(weights)
    if ckpt is not None:
        pre.update(ckpt.preprocessing or {})
    elif folder is not None:
        from rr_zoo.export_format import read_export_config

        export = read_export_config(folder)
        pre.update(export.preprocessing)
        trained = export.section.get("recipe") or {}
    baseline = "random_init" if weights == "random" else None
    if ckpt is not None and ckpt.recipe.get("loss") == "supervised":
        baseline = "supervised"
    trained_on = ckpt.dataset if ckpt is not None else ((zoo_entry.provenance or {}).get("recipe")
                                                         or zoo_entry.recipe)["dataset"]
    if folder is not None and trained.get("dataset"):
        trained_on = trained["dataset"]
    return FeatureSource(model, zoo_entry, label, state_dict_digest(model.state_dict()),
                         tuple(pre["mean"]), tuple(pre["std"]), baseline, trained_on,
                         tuple(int(v) for v in pre["input_size"]))
