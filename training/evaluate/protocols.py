"""The evaluation protocols of the paper: what to evaluate on (:class:`EvalSpec`) and a registry.

One module per protocol family registers its runners with :func:`protocol`: ``linear`` (linear,
transfer, grain), ``knn`` (knn, retrieval), ``figures`` (embedding), ``finetune`` (finetune,
semisup). A runner takes a :class:`~training.evaluate.source.FeatureSource` and an ``EvalSpec``
and returns a result dict (``value`` in %, plus details; ``png`` for a figure).
``training.evaluate.run`` runs a protocol over seeds and writes the results.

Adding a protocol: a function decorated with ``@protocol("name")`` in one of those modules (or a
new module imported by ``training/evaluate/__init__.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from training import run_folders
from training.flags import option
from training.help_choices import listed
from training.pretrain.recipes import RecipeError, require, require_device

if TYPE_CHECKING:
    from rr_zoo.manifest import ZooEntry
    from training.evaluate.source import FeatureSource

EVAL_PRECISIONS = ("fp32", "bf16")  # fp32: the reference path; bf16: autocast, channels-last
LINEAR_EPOCHS = 100     # the paper's linear protocol: classifier epochs on frozen features
FINETUNE_EPOCHS = 20    # the paper's fine-tuning protocol (also the supervised bound's default)


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate on and how (defaults: the paper's protocols); validated on construction."""

    dataset: str = option(help="evaluation dataset: a registered one, or folder:PATH, a folder of your images in "
                               "one sub-folder per class (its train/ + test/ or val/, else a fixed seeded split)",
                          choices=listed("datasets"))
    out: str = option(run_folders.EVAL_ROOT, "folder for the JSON results and PNG figures", record=False)
    data_root: str | None = option(None, "dataset folder (default: the dataset's own, see training.data)")
    seed: int = option(0, "seed of the classifier (and of a random init)", cli=False)
    train_split: str = option("train", "labelled split the classifier is trained on")
    test_split: str = option("test", "split the accuracy is measured on (test: val where the dataset has no "
                                     "test split)")
    epochs: int | None = option(None, f"classifier epochs (default: the protocol's; linear {LINEAR_EPOCHS}, "
                                      f"fine-tuning {FINETUNE_EPOCHS})", unit="epochs")
    batch_size: int = option(128, "images (or feature rows) per step", unit="images")
    lr: float = option(1e-3, "learning rate of the linear classifier / of the fine-tuned backbone")
    head_lr: float = option(1e-4, "fine-tuning: learning rate of the classifier")
    weight_decay: float = option(1e-5, "fine-tuning: weight decay")
    knn_k: int = option(20, "kNN: neighbours that vote", unit="neighbours")
    knn_temperature: float = option(0.07, "kNN: temperature of the cosine-similarity weights")
    retrieval_k: int = option(10, "retrieval: neighbours per query (precision@k)", unit="neighbours")
    label_fractions: tuple[float, ...] = option((0.01, 0.1, 0.25, 0.5, 1.0), "semisup: fractions of the labels used")
    max_train: int | None = option(None, "cap training images, a fixed random subset (quick runs)", unit="images")
    max_test: int | None = option(None, "cap test images, a fixed random subset (quick runs)", unit="images")
    image_size: int | None = option(None, "side the images are resized to, bilinear and antialiased (default: the "
                                          "side the weights were trained at; transfer between resolutions)",
                                    unit="pixels")
    precision: str = option("fp32", "network passes in fp32 (the reference), or in bf16 autocast, channels-last "
                                    "(faster where the hardware has bf16 units: benchmarks/README.md)",
                            choices=EVAL_PRECISIONS)
    device: str = option("cpu", "cpu, cuda or cuda:N", record=False)
    cache_dir: str | None = option(None, "feature cache folder (default: $RR_CACHE_DIR or ~/.cache/rr_zoo)",
                                   record=False)
    extra: dict = field(default_factory=dict)

    # flag order of the recorded `python -m training evaluate` commands (after --dataset and --seeds)
    COMMAND_ORDER: ClassVar[tuple[str, ...]] = ("epochs", "max_train", "max_test", "data_root", "image_size",
                                                "precision")

    def __post_init__(self) -> None:
        from training.data import canonical_dataset_name
        from training.pretrain.recipes import evaluation_split, splits_of

        object.__setattr__(self, "dataset", canonical_dataset_name(self.dataset))  # folder:/absolute/path
        splits = splits_of(self.dataset)
        object.__setattr__(self, "test_split", evaluation_split(self.dataset, self.test_split))
        for name in ("train_split", "test_split"):
            split = getattr(self, name)
            require(split in splits, f"{name}={split!r} is not a split of {self.dataset}; choose one of {splits}")
        require(self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("lr", "head_lr", "knn_temperature"):
            require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("knn_k", "retrieval_k"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(len(self.label_fractions) >= 1 and all(0 < f <= 1 for f in self.label_fractions),
                f"label_fractions must be in (0, 1], got {self.label_fractions}")
        require(self.precision in EVAL_PRECISIONS,
                f"precision must be one of {', '.join(EVAL_PRECISIONS)}, got {self.precision!r}")
        require(self.image_size is None or self.image_size >= 1,
                f"image_size must be a positive number of pixels, got {self.image_size}")
        for name in ("max_train", "max_test"):
            require(getattr(self, name) is None or getattr(self, name) >= 1,
                    f"{name} must be >= 1, got {getattr(self, name)}")
        require_device(self.device)


Runner = Callable[["FeatureSource", EvalSpec], dict[str, Any]]
Check = Callable[[EvalSpec, "ZooEntry"], None]


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: its runner and what it needs."""

    name: str
    run: Runner
    summary: str                # first line of the runner's docstring
    epochs: int | None = None   # default training epochs (None: nothing is trained)
    dataset: str | None = None  # the dataset it evaluates on unless told (grain), None: the weights'
    check: Check | None = None  # raises RecipeError for a spec it cannot evaluate, before any work


PROTOCOLS: dict[str, Protocol] = {}


def protocol(name: str, *, epochs: int | None = None, dataset: str | None = None, check: Check | None = None):
    """Register the decorated runner as protocol ``name`` (see :class:`Protocol` for the arguments)."""

    def decorator(fn: Runner) -> Runner:
        summary = (fn.__doc__ or name).strip().splitlines()[0]
        PROTOCOLS[name] = Protocol(name, fn, summary, epochs, dataset, check)
        return fn

    return decorator


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name`` (an unknown name lists the valid ones)."""
    if name not in PROTOCOLS:
        raise RecipeError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def run_protocol(name: str, source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """Run one protocol on one seed (``spec.epochs`` None: the protocol's default)."""
    proto = get_protocol(name)
    if proto.check is not None:
        proto.check(spec, source.entry)
    evaluation_side(source, spec)  # an --image-size the network cannot take fails before any work
    if spec.epochs is None and proto.epochs is not None:
        spec = dataclasses.replace(spec, epochs=proto.epochs)
    t0 = time.perf_counter()
    result = proto.run(source, spec)
    result.update(protocol=name, dataset=spec.dataset, source=source.label, seed=spec.seed,
                  input=input_record(source, spec), seconds=round(time.perf_counter() - t0, 2))
    return result


def evaluation_side(source: FeatureSource, spec: EvalSpec) -> int:
    """Side the evaluation images are fed at: ``--image-size``, else the side the weights were trained at.

    Raises:
        RecipeError: ``--image-size`` below the smallest side the network takes.
    """
    side = spec.image_size or int((source.input_size or source.entry.preprocessing["input_size"])[-1])
    smallest = int(getattr(source.model, "min_input_size", 1))
    require(side >= smallest, f"--image-size {side}: {source.entry.architecture} takes images of at least "
                              f"{smallest}x{smallest}; pass --image-size {smallest} or more")
    return side


def input_record(source: FeatureSource, spec: EvalSpec) -> dict[str, Any]:
    """How the images reached the network: the dataset's side, the side fed, the resize and the precision."""
    from training.data import get_dataset_spec

    stored = int(get_dataset_spec(spec.dataset, source.data_request()).input_size[-1])
    side = evaluation_side(source, spec)
    resize = "none" if side == stored else f"{stored}x{stored} -> {side}x{side}, bilinear, antialiased"
    return {"dataset_side": stored, "side": side, "resize": resize, "precision": spec.precision}
