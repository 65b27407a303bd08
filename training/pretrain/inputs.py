"""What a pretraining run reads: its dataset (registered, or a folder built for the run) and the
distribution of the views it makes (the paper's augmentation for that dataset)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.data import DataRequest, DatasetSpec, get_dataset_spec
from training.pretrain.augment import AugmentConfig

if TYPE_CHECKING:
    from training.pretrain.checkpoint import TrainingCheckpoint
    from training.pretrain.recipes import Recipe, RunOptions


def augment_config(recipe: Recipe, spec: DatasetSpec | None = None) -> AugmentConfig:
    """The paper's view distribution for the recipe's dataset (``spec``: the run's, if already resolved)."""
    spec = spec or dataset_spec(recipe)
    return AugmentConfig(size=spec.image_size, mean=spec.mean, std=spec.std)


def data_request(recipe: Recipe, opts: RunOptions | None = None, ckpt: TrainingCheckpoint | None = None,
                 progress: bool = False) -> DataRequest:
    """What a run asks of a folder dataset (registered datasets ignore it): the entry's input side (or the
    recipe's ``image_size``) and channels, the recipe's mean/std (else measured on the images; a resumed run
    keeps its checkpoint's), ``--strict``."""
    from rr_zoo.manifest import load_manifest

    entry = load_manifest().get(recipe.entry)
    mean, std = recipe.mean, recipe.std
    if ckpt is not None and ckpt.preprocessing:
        mean, std = mean or tuple(ckpt.preprocessing["mean"]), std or tuple(ckpt.preprocessing["std"])
    return DataRequest(image_size=recipe.image_size or int(entry.preprocessing["input_size"][-1]),
                       channels=entry.in_chans, mean=mean, std=std, strict=bool(opts and opts.strict),
                       progress=progress)


def dataset_spec(recipe: Recipe, opts: RunOptions | None = None) -> DatasetSpec:
    """The spec of the recipe's dataset (a folder's is built for the run: :func:`data_request`)."""
    return get_dataset_spec(recipe.dataset, data_request(recipe, opts))
