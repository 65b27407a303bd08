"""Features of a frozen backbone, computed once per (weights, dataset, split, subset, preprocessing,
side fed, precision).

They are cached under ``<cache root>/features`` (``$RR_CACHE_DIR``, default ``~/.cache/rr_zoo``;
``EvalSpec.cache_dir`` overrides it), so the linear, kNN, retrieval and embedding protocols and
every classifier seed share one forward pass over the data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from training.data import from_files, load_split, subset_indices
from training.data.cache import cache_root
from training.evaluate.features import extract_features
from training.evaluate.protocols import EvalSpec, evaluation_side
from training.evaluate.source import FeatureSource
from training.pretrain.checkpoint import atomic_save
from training.pretrain.recipes import RecipeError, require


def cached_features(source: FeatureSource, spec: EvalSpec, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, d) features and (N,) labels of a split (capped by ``spec.max_train``/``max_test``).

    The cache key is the weights digest + dataset + split + subset size + preprocessing.
    """
    data = load_split(spec.dataset, split, root=spec.data_root, request=source.data_request())
    cap = spec.max_train if split == spec.train_split else spec.max_test
    sl = subset_indices(data.images.shape[0], cap)
    side = evaluation_side(source, spec)
    fed = (data.images.shape[1], side, side)
    key = [source.digest, spec.dataset, split, len(sl), "subset-v2", source.mean, source.std,
           tuple(data.images.shape[1:])]
    if fed != tuple(data.images.shape[1:]) or spec.precision != "fp32":  # as before for unresized fp32 features
        key += [fed, spec.precision]
    key = json.dumps(key)
    root = Path(spec.cache_dir) if spec.cache_dir else cache_root()
    path = root / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        return cached["features"], cached["labels"]
    images = data.images[sl]
    require(images.shape[1] == source.entry.in_chans,
            f"{spec.dataset} has {images.shape[1]}-channel images but {source.entry.name} expects "
            f"{source.entry.in_chans}; pick a dataset the entry was made for with --dataset")
    feats = extract_features(source.model, images, source.mean, source.std, device=spec.device,
                             precision=spec.precision, image_size=side)
    labels = data.labels[sl].clone()
    atomic_save({"features": feats, "labels": labels, "key": key}, path)
    return feats, labels


def labelled_features(source: FeatureSource, spec: EvalSpec, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`cached_features` of the labelled images only (unlabelled ones have label -1)."""
    feats, labels = cached_features(source, spec, split)
    keep = labels >= 0
    if not keep.any():
        fix = ("put its images in one sub-folder per class" if from_files(spec.dataset) else "pick a labelled split")
        raise RecipeError(f"split {split!r} of {spec.dataset} has no labels; {fix}")
    return feats[keep], labels[keep]
