"""Pretraining recipes: frozen dataclasses built from the manifest, overridable by flags.

``Recipe`` holds the method's hyperparameters (what the manifest records for an
entry); ``RunOptions`` holds how a run executes (device, precision, paths).
Both validate themselves on construction, so a bad value fails before any work. Their
fields declare the command-line flags, help texts and reproducing commands (``training.flags``):
a new field is one line here. The module imports no torch (the registries it validates against
are imported on construction), so the commands' ``--help`` answers at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rr_zoo.manifest import load_manifest
from training import run_folders
from training.flags import option
from training.help_choices import listed
from training.runtime.compile import COMPILE_CHOICES, MIN_STEPS, compiled_by_auto

LOSSES = ("focal", "bce")
OPTIMIZERS = ("adam",)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class RecipeError(ValueError):
    """An invalid recipe, run or evaluation option; the message names the field and the valid values."""


def require(cond: bool, message: str) -> None:
    """Raise :class:`RecipeError` with ``message`` unless ``cond``."""
    if not cond:
        raise RecipeError(message)


def dataset_names() -> list[str]:
    """Registered dataset keys (valid values of every ``dataset`` option)."""
    from training.data import DATASETS

    return sorted(DATASETS)


def require_device(device: str) -> None:
    """A device string the training code runs on: cpu, cuda or cuda:N."""
    require(device == "cpu" or device.startswith("cuda"),
            f"device={device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of one relational-reasoning pretraining run."""

    entry: str = option(help="zoo entry the run trains, e.g. rr_conv4_cifar10 (python -m rr_zoo list)")
    architecture: str = option(help="backbone", choices=listed("architectures"))
    dataset: str = option(help="pretraining dataset: a registered one, or folder:PATH for a folder of your own "
                               "images (image-folder:PATH and a plain folder path work too; class sub-folders "
                               "optional, used only to evaluate)", choices=listed("datasets"))
    split: str = option("train", "split of the dataset used for pretraining (labels ignored)")
    epochs: int = option(200, "passes over the split", unit="epochs")
    k: int = option(32, "augmented views per image (K)", unit="views")
    batch_size: int = option(64, "images per step, over all processes (M)", unit="images")
    aggregation: str = option("cat", "how the relation head combines two views' features",
                             choices=listed("aggregations"))
    loss: str = option("focal", "loss of the relation head", choices=LOSSES)
    focal_gamma: float = option(2.0, "focusing exponent (focal loss only)")
    focal_alpha: float = option(0.5, "weight of positive pairs, in [0, 1] (focal loss only)")
    optimizer: str = option("adam", "optimiser of backbone and head", choices=OPTIMIZERS, cli=False)
    lr: float = option(1e-3, "learning rate, backbone and head")
    weight_decay: float = option(0.0, "L2 weight decay")
    relation_hidden: int = option(256, "hidden units of the relation head", unit="units")
    seed: int = option(0, "seed of initialisation, data order and augmentation")
    init: str | None = option(None, "start from these weights instead of a random init: a published zoo entry, an "
                                    "export folder or a training checkpoint.pt (backbone and relation head, "
                                    "sha256-verified; a fresh optimiser)")
    image_size: int | None = option(None, "folder datasets: side the images are resized to (default: the entry's "
                                          "input side)", unit="pixels")
    mean: tuple[float, ...] | None = option(None, "folder datasets: normalisation mean per channel, in [0, 1] "
                                                  "(default: measured on the images)")
    std: tuple[float, ...] | None = option(None, "folder datasets: normalisation std per channel (default: "
                                                 "measured on the images)")

    # flag order of the recorded `python -m training pretrain` commands (commands already in the
    # manifest are regenerated identically); fields not listed follow in field order
    COMMAND_ORDER: ClassVar[tuple[str, ...]] = (
        "entry", "epochs", "k", "batch_size", "aggregation", "loss", "focal_gamma", "focal_alpha", "lr",
        "weight_decay", "seed", "dataset", "split", "architecture", "relation_hidden")

    def __post_init__(self) -> None:
        from rr_zoo.models import ARCHITECTURES
        from rr_zoo.relation import AGGREGATIONS
        from training.data import canonical_dataset_name, from_files

        require(self.architecture in ARCHITECTURES,
                f"architecture={self.architecture!r} is unknown; choose one of {sorted(ARCHITECTURES)}")
        object.__setattr__(self, "dataset", canonical_dataset_name(self.dataset))  # folder:/absolute/path
        splits = splits_of(self.dataset)
        require(self.split in splits, f"split={self.split!r} is not a split of {self.dataset}; choose one of {splits}")
        folder = from_files(self.dataset)
        for name in ("image_size", "mean", "std"):
            require(folder or getattr(self, name) is None,
                    f"{name} applies to folder datasets only (--dataset folder:PATH); {self.dataset} has its own")
        require(self.image_size is None or (isinstance(self.image_size, int) and self.image_size >= 8),
                f"image_size must be an integer >= 8 pixels, got {self.image_size}")
        if self.mean is not None or self.std is not None:
            channels = load_manifest().get(self.entry).in_chans
            for name, low in (("mean", 0.0), ("std", 1e-6)):
                value = getattr(self, name)
                require(value is None or (len(value) == channels and all(low <= v <= 1 for v in value)),
                        f"{name} needs {channels} value(s) in [{low:g}, 1] ({self.entry} has {channels} channel(s)), "
                        f"got {value}")
        if self.init is not None:
            require(bool(self.init.strip()), "init must name a zoo entry, an export folder or a checkpoint.pt")
            if Path(self.init).exists():  # a path: recorded absolute, so the record holds wherever it is read
                object.__setattr__(self, "init", str(Path(self.init).resolve()))
        require(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs}")
        require(isinstance(self.k, int) and self.k >= 2, f"k (views per image) must be an integer >= 2, got {self.k}")
        require(isinstance(self.batch_size, int) and self.batch_size >= 2,
                f"batch_size (images per step) must be an integer >= 2, got {self.batch_size}")
        require(self.aggregation in AGGREGATIONS,
                f"aggregation={self.aggregation!r} is unknown; choose one of {sorted(AGGREGATIONS)}")
        require(self.loss in LOSSES, f"loss={self.loss!r} is unknown; choose one of {LOSSES}")
        require(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        require(0.0 <= self.focal_alpha <= 1.0, f"focal_alpha must be in [0, 1], got {self.focal_alpha}")
        require(self.optimizer in OPTIMIZERS, f"optimizer={self.optimizer!r} is unknown; choose one of {OPTIMIZERS}")
        require(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(self.relation_hidden >= 1, f"relation_hidden must be >= 1, got {self.relation_hidden}")
        require(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed}")

    @property
    def pairs_per_step(self) -> int:
        """P = M·K·(K−1) relation pairs per step (half positive)."""
        return self.batch_size * self.k * (self.k - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) of every field."""
        return dataclasses.asdict(self)


RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))


def splits_of(dataset: str) -> tuple[str, ...]:
    """Splits of a dataset name (registered or ``folder:PATH``), its pretraining split first.

    Raises:
        RecipeError: an unknown name. (A folder that is missing, a file or empty raises DatasetNotFoundError.)
    """
    from training.data import DATASETS, dataset_splits

    try:
        return dataset_splits(dataset)
    except KeyError:
        raise RecipeError(f"dataset={dataset!r} is unknown; choose one of {sorted(DATASETS)}, or folder:PATH "
                          "for a folder of your own images") from None


def evaluation_split(dataset: str, asked: str = "test") -> str:
    """The labelled split accuracies are measured on: ``asked``, except that the default ``test`` means ``val``
    for a dataset that has a validation split and no test split (tiny-ImageNet, a folder with val/).

    Raises:
        RecipeError: an unknown dataset name.
    """
    splits = splits_of(dataset)
    return "val" if asked == "test" and "test" not in splits and "val" in splits else asked


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
    require(not unknown, f"unknown recipe field(s) {sorted(unknown)}; valid: {RECIPE_FIELDS}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "dataset" in given and "split" not in given:
        from training.data import from_files

        if from_files(given["dataset"]):  # a folder's own pretraining split ("all", or its train/)
            given["split"] = splits_of(given["dataset"])[0]
    base.update(given)
    return Recipe(entry=entry.name, architecture=base.pop("architecture", entry.architecture), **base)


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; none of this changes the method."""

    out: str = option(run_folders.DEFAULT, "run folder: checkpoint.pt, log.jsonl, curves.png", record=False)
    device: str = option("cpu", "cpu, cuda or cuda:N")
    precision: str = option("auto", "training precision. auto: bf16 autocast where the hardware multiplies bf16 "
                            "natively (CPU flags avx512_bf16/amx_bf16, CUDA compute capability >= 8.0), else fp32; "
                            "the run records and its command pins the precision used (training.runtime.precision). "
                            "fp16: CUDA only, with a grad scaler", choices=PRECISIONS)
    compile: str = option("auto", "torch.compile the backbone. auto: on CPU where it was measured to pay "
                          f"({compiled_by_auto()}), in runs of {MIN_STEPS}+ steps, with a C++ compiler on PATH; "
                          "eager elsewhere (training.runtime.compile)",
                          choices=COMPILE_CHOICES, record=False)
    channels_last: bool = option(True, "channels-last (NHWC) memory format for convolutions", record=False)
    grad_checkpointing: bool = option(
        False, "gradient checkpointing of the backbone: its activations are recomputed in backward (less memory, "
        "about one more backbone forward of compute). Exact: same loss and gradients; the recomputed forward "
        "would update BatchNorm running statistics a second time, the step restores them", record=False)
    data_root: str | None = option(None, "dataset folder (default: the dataset's own, see training.data)")
    resume: bool = option(False, "continue from <out>/checkpoint.pt", record=False)
    ckpt_every_steps: int = option(200, "also checkpoint every N steps (0: only at epoch ends)", unit="steps",
                                   record=False)
    keep_epochs: bool = option(False, "also keep each epoch's checkpoint as checkpoint-epoch<N>.pt (an earlier epoch "
                               "of a run that goes on can be exported and published)", record=False)
    steps_per_epoch: int | None = option(None, "cap steps per epoch (quick runs; default: full epochs)", unit="steps")
    knn_every: int = option(0, "online kNN accuracy every N epochs (0: off)", unit="epochs")
    knn_split: str = option("test", "labelled split of the online kNN accuracy (test: val where the dataset has "
                            "no test split)")
    num_threads: int | None = option(None, "torch CPU threads (default: torch's)", unit="threads", flag="--threads")
    progress: bool = option(True, "tqdm progress bar", record=False)
    sync_bn: bool = option(False, "SyncBatchNorm under torchrun/DDP", record=False)
    strict: bool = option(False, "folder datasets: refuse unreadable images instead of skipping them", record=False)
    extra: dict = field(default_factory=dict)

    COMMAND_ORDER: ClassVar[tuple[str, ...]] = ("num_threads",)  # as in the commands recorded so far

    def __post_init__(self) -> None:
        require(self.precision in PRECISIONS, f"precision={self.precision!r} is unknown; choose one of {PRECISIONS}")
        require_device(self.device)
        require(not (self.precision == "fp16" and self.device == "cpu"),
                "precision='fp16' needs a CUDA device (it uses a grad scaler); use 'bf16' on CPU")
        require(self.compile in COMPILE_CHOICES,
                f"compile={self.compile!r} is unknown; use one of {', '.join(COMPILE_CHOICES)}")
        require(self.ckpt_every_steps >= 0, f"ckpt_every_steps must be >= 0, got {self.ckpt_every_steps}")
        require(self.steps_per_epoch is None or self.steps_per_epoch >= 1,
                f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        require(self.knn_every >= 0, f"knn_every must be >= 0, got {self.knn_every}")
