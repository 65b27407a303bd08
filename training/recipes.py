"""Pretraining recipes: frozen dataclasses built from the manifest, overridable by flags.

``Recipe`` holds the method's hyperparameters (what the manifest records for an
entry); ``RunOptions`` holds how a run executes (device, precision, paths).
Both validate themselves on construction, so a bad value fails before any work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rr_zoo.manifest import load_manifest
from rr_zoo.models import ARCHITECTURES
from rr_zoo.relation import AGGREGATIONS

LOSSES = ("focal", "bce")
OPTIMIZERS = ("adam",)
PRECISIONS = ("fp32", "bf16", "fp16")


class RecipeError(ValueError):
    """An invalid recipe or run option; the message names the field and the valid values."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise RecipeError(message)


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of one relational-reasoning pretraining run."""

    entry: str                    # zoo entry the run trains (manifest alias)
    architecture: str             # backbone registry key
    dataset: str                  # dataset registry key
    split: str = "train"          # split used for pretraining (labels ignored)
    epochs: int = 200             # passes over the split
    k: int = 32                   # augmented views per image
    batch_size: int = 64          # images per step, over all processes (M)
    aggregation: str = "cat"      # cat | sum | mean | max
    loss: str = "focal"           # focal | bce
    focal_gamma: float = 2.0      # focusing exponent (focal only)
    focal_alpha: float = 0.5      # weight of positives (focal only)
    optimizer: str = "adam"
    lr: float = 1e-3              # learning rate, backbone and head
    weight_decay: float = 0.0
    relation_hidden: int = 256    # hidden units of the relation head
    seed: int = 0

    def __post_init__(self) -> None:
        from training.data import DATASETS

        _check(self.architecture in ARCHITECTURES,
               f"architecture={self.architecture!r} is unknown; choose one of {sorted(ARCHITECTURES)}")
        _check(self.dataset in DATASETS, f"dataset={self.dataset!r} is unknown; choose one of {sorted(DATASETS)}")
        splits = DATASETS[self.dataset].splits
        _check(self.split in splits, f"split={self.split!r} is not a split of {self.dataset}; choose one of {splits}")
        _check(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs}")
        _check(isinstance(self.k, int) and self.k >= 2, f"k (views per image) must be an integer >= 2, got {self.k}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 2,
               f"batch_size (images per step) must be an integer >= 2, got {self.batch_size}")
        _check(self.aggregation in AGGREGATIONS,
               f"aggregation={self.aggregation!r} is unknown; choose one of {sorted(AGGREGATIONS)}")
        _check(self.loss in LOSSES, f"loss={self.loss!r} is unknown; choose one of {LOSSES}")
        _check(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        _check(0.0 <= self.focal_alpha <= 1.0, f"focal_alpha must be in [0, 1], got {self.focal_alpha}")
        _check(self.optimizer in OPTIMIZERS, f"optimizer={self.optimizer!r} is unknown; choose one of {OPTIMIZERS}")
        _check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.relation_hidden >= 1, f"relation_hidden must be >= 1, got {self.relation_hidden}")
        _check(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed}")

    @property
    def pairs_per_step(self) -> int:
        """P = M·K·(K−1) relation pairs per step (half positive)."""
        return self.batch_size * self.k * (self.k - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) of every field."""
        return dataclasses.asdict(self)


RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))


def recipe_for_entry(entry_name: str, **overrides: Any) -> Recipe:
    """The manifest recipe of an entry, with overrides applied.

    Args:
        entry_name: Zoo entry alias (or timm name).
        **overrides: Recipe fields to change; None values are ignored.

    Returns:
        The validated :class:`Recipe`.

    Raises:
        RecipeError: an unknown field or an invalid value.
    """
    entry = load_manifest().get(entry_name)
    base = {k: v for k, v in entry.recipe.items() if k in RECIPE_FIELDS}
    base["seed"] = entry.recipe.get("seeds", [0])[0]
    unknown = set(overrides) - set(RECIPE_FIELDS)
    _check(not unknown, f"unknown recipe field(s) {sorted(unknown)}; valid: {RECIPE_FIELDS}")
    base.update({k: v for k, v in overrides.items() if v is not None})
    return Recipe(entry=entry.name, architecture=base.pop("architecture", entry.architecture), **base)


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; none of this changes the method."""

    out: str = "runs/default"              # run folder: checkpoints, log.jsonl, curves.png
    device: str = "cpu"                    # cpu | cuda | cuda:N
    precision: str = "fp32"                # fp32 | bf16 | fp16 (fp16: CUDA only, with a grad scaler)
    compile: bool = False                  # torch.compile the backbone
    channels_last: bool = True             # NHWC memory format for convolutions
    data_root: str | None = None           # dataset root (None: registry default)
    resume: bool = False                   # continue from out/checkpoint.pt
    ckpt_every_steps: int = 200            # also checkpoint every N steps (0: only at epoch ends)
    steps_per_epoch: int | None = None     # cap steps per epoch (quick runs); None: full epoch
    knn_every: int = 0                     # online kNN accuracy every N epochs (0: off)
    knn_split: str = "test"                # labelled split for online kNN
    num_threads: int | None = None         # torch CPU threads (None: torch default)
    progress: bool = True                  # tqdm progress bar
    sync_bn: bool = False                  # SyncBatchNorm under DDP
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.precision in PRECISIONS, f"precision={self.precision!r} is unknown; choose one of {PRECISIONS}")
        _check(self.device == "cpu" or self.device.startswith("cuda"),
               f"device={self.device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
        _check(not (self.precision == "fp16" and self.device == "cpu"),
               "precision='fp16' needs a CUDA device (it uses a grad scaler); use 'bf16' on CPU")
        _check(self.ckpt_every_steps >= 0, f"ckpt_every_steps must be >= 0, got {self.ckpt_every_steps}")
        _check(self.steps_per_epoch is None or self.steps_per_epoch >= 1,
               f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        _check(self.knn_every >= 0, f"knn_every must be >= 0, got {self.knn_every}")
