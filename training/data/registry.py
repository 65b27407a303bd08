"""The dataset registry, where datasets live, and the one way to load a split.

Where data lives is one setting: ``--data-root DIR`` on every command, else the
``RR_DATA_DIR`` environment variable, else ``~/.cache/rr_zoo/data``. Each dataset sits
under it in the layout its spec's ``expected_files`` names (torchvision's layout where
torchvision has a downloader).

Maintainers' fallback: when no ``--data-root`` is given and a dataset is not under the
data folder, the offline data pack is tried — ``$RR_SHARED_DATA``, else ``shared/data``
beside the checkout (``<checkout>/../shared/data``), if present. It holds the datasets of
the offline machines (``cifar10_4k``, ``cifar10_jpeg``); users never need it.

Datasets whose facts come from their files: a name with a registered prefix (``folder:PATH``,
see :func:`register_resolver`) is resolved into a :class:`DatasetSpec` when a run names it, from
the files and the run's :class:`DataRequest` (image side, channels, normalisation); a plain path
to an existing folder means ``folder:PATH``. They are not added to :data:`DATASETS`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

DATA_DIR_ENV = "RR_DATA_DIR"
OFFLINE_PACK_ENV = "RR_SHARED_DATA"
_CHECKOUT = Path(__file__).resolve().parents[2]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looks; the message says what to put where."""


class DatasetError(ValueError):
    """A dataset that cannot be used as asked (unreadable images under ``strict``, ...); the message says why."""


@dataclass
class ImageData:
    """Decoded images and labels of one split."""

    images: torch.Tensor      # uint8 (N, C, H, W), CPU
    labels: torch.Tensor      # int64 (N,), -1 where unlabeled
    classes: list[str]


class Reader(Protocol):
    """Reads one split of a dataset stored in one on-disk format (``training.data.formats``)."""

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData: ...


@dataclass(frozen=True)
class DatasetSpec:
    """Every fact about one dataset; build with keywords and :func:`register` it."""

    name: str                            # registry key
    description: str
    image_size: int                      # side in pixels (images are square)
    channels: int                        # 3, or 1 (grayscale kept as one channel)
    num_classes: int
    mean: tuple[float, ...]              # normalisation, [0, 1] units, per channel
    std: tuple[float, ...]
    splits: tuple[str, ...]
    pretrain_split: str                  # the split pretraining uses by default (labels ignored)
    split_sizes: Mapping[str, int]       # images per split (published sizes; used when not on disk)
    cutout_area: float                   # fine-tuning cutout: erased square's share of the image area
    reader: Reader                       # how the files are read (one reader per on-disk format)
    expected_files: str                  # what must be under the data root
    how_to_get: str                      # where the files come from
    torchvision_name: str | None = None  # torchvision.datasets class that downloads it (load_split(download=True))
    notes: Mapping[str, str] = field(default_factory=dict)  # where a constant came from, caveats

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as timm's ``input_size``."""
        return (self.channels, self.image_size, self.image_size)


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset to the registry (after checking its facts agree with each other)."""
    DATASETS[check_spec(spec).name] = spec
    return spec


def check_spec(spec: DatasetSpec) -> DatasetSpec:
    """``spec`` if its facts agree with each other, else ValueError naming each disagreement."""
    problems = []
    if len(spec.mean) != spec.channels or len(spec.std) != spec.channels:
        problems.append(f"mean/std need {spec.channels} values")
    if spec.pretrain_split not in spec.splits:
        problems.append(f"pretrain_split {spec.pretrain_split!r} is not one of {spec.splits}")
    if set(spec.split_sizes) != set(spec.splits):
        problems.append(f"split_sizes has {sorted(spec.split_sizes)}, splits are {sorted(spec.splits)}")
    if not 0 < spec.cutout_area < 1:
        problems.append(f"cutout_area must be in (0, 1), got {spec.cutout_area}")
    if problems:
        raise ValueError(f"dataset spec {spec.name!r}: " + "; ".join(problems))
    return spec


# ----------------------------------------------------------------------------- datasets built from their files
@dataclass(frozen=True)
class DataRequest:
    """What a run needs of a dataset whose facts come from its files (``folder:PATH``).

    Registered datasets have facts of their own and ignore it.
    """

    image_size: int                            # side the images are resized to, pixels
    channels: int                              # 3 (RGB) or 1 (grayscale)
    mean: tuple[float, ...] | None = None      # normalisation ([0, 1] units); None: measured on the images
    std: tuple[float, ...] | None = None
    strict: bool = False                       # refuse unreadable images instead of skipping them
    progress: bool = field(default=False, compare=False)  # progress bar while decoding


class Resolver(Protocol):
    """Turns the part of a dataset name after its prefix (a path) into a spec, from the files."""

    def canonical(self, arg: str) -> str:
        """The canonical form of ``arg`` (an absolute path)."""
        ...

    def splits(self, arg: str) -> tuple[str, ...]:
        """The dataset's splits, its pretraining split first (cheap: no image is decoded)."""
        ...

    def split_sizes(self, arg: str) -> dict[str, int]:
        """Image files per split (cheap: no image is decoded; unreadable ones are still counted)."""
        ...

    def spec(self, arg: str, request: DataRequest) -> DatasetSpec:
        """The full spec: the images decoded (cached) at the request's size, normalisation measured."""
        ...


RESOLVERS: dict[str, tuple[str, Resolver]] = {}  # name prefix -> (canonical prefix, resolver)
DIRECTORY_PREFIX = "folder:"  # what a plain path to an existing folder means


def register_resolver(prefix: str, resolver: Resolver, aliases: tuple[str, ...] = ()) -> None:
    """Datasets named ``<prefix>ARG`` (or ``<alias>ARG``) are built by ``resolver`` from their files."""
    for name in (prefix, *aliases):
        RESOLVERS[name] = (prefix, resolver)


def _resolver(name: str) -> tuple[str, Resolver, str] | None:
    """(canonical prefix, resolver, argument) of a name built from files; None for a registered or unknown one."""
    for prefix, (canonical, resolver) in RESOLVERS.items():
        if name.startswith(prefix):
            return canonical, resolver, name[len(prefix):]
    if name not in DATASETS and DIRECTORY_PREFIX in RESOLVERS and (os.sep in name or Path(name).is_dir()):
        return DIRECTORY_PREFIX, RESOLVERS[DIRECTORY_PREFIX][1], name
    return None


def dataset_shape(name: str, split: str, request: DataRequest | None = None) -> tuple[int, int, int]:
    """(image side, channels, images in ``split``) without reading images: what a dry run needs.

    A registered dataset answers from its spec; one built from files (``folder:PATH``) lists its files and
    takes side and channels from ``request`` (what the run would decode them to).

    Raises:
        DatasetError: a dataset built from files asked for without a request.
        KeyError: an unknown split.
    """
    found = _resolver(name)
    if found is None:
        spec = get_dataset_spec(name)
        sizes = spec.split_sizes
        side, channels = spec.image_size, spec.channels
    else:
        if request is None:
            raise DatasetError(f"{name}: give the run's image size and channels (a DataRequest) to size it")
        sizes = found[1].split_sizes(found[2])
        side, channels = request.image_size, request.channels
    if split not in sizes:
        raise KeyError(f"{name} has no split {split!r}; its splits: {', '.join(sizes)}")
    return side, channels, int(sizes[split])


def from_files(name: str) -> bool:
    """True for a dataset whose spec is built from its files when a run names it (``folder:PATH``)."""
    return _resolver(name) is not None


def canonical_dataset_name(name: str) -> str:
    """``folder:/absolute/path`` for every way of naming a folder; other names unchanged."""
    found = _resolver(name)
    return name if found is None else found[0] + found[1].canonical(found[2])


def dataset_splits(name: str) -> tuple[str, ...]:
    """Splits of a registered dataset or of one built from files (cheap), the pretraining split first.

    Raises:
        KeyError: an unknown name (the message lists close matches).
        DatasetNotFoundError: a folder that does not exist, is a file, or holds no images.
    """
    found = _resolver(name)
    if found is not None:
        return found[1].splits(found[2])
    spec = get_dataset_spec(name)
    return (spec.pretrain_split, *(s for s in spec.splits if s != spec.pretrain_split))


def dataset_label(name: str) -> str:
    """A file-name-safe label of a dataset (``folder_<folder name>`` for a folder)."""
    found = _resolver(name)
    if found is None:
        return name
    base = Path(found[1].canonical(found[2])).name or "root"
    return found[0].rstrip(":").replace("-", "_") + "_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


def get_dataset_spec(name: str, request: DataRequest | None = None) -> DatasetSpec:
    """The spec of a registered dataset, or of one built from its files (``folder:PATH``) for ``request``.

    Raises:
        KeyError: an unknown name (close matches listed).
        DatasetError: a dataset built from files asked for without a request (the command does not support it).
    """
    found = _resolver(name)
    if found is not None:
        if request is None:
            raise DatasetError(f"{name}: this command does not support folder datasets yet (they are read at a "
                               "run's image size); pretrain (without --dry-run) and evaluate linear/knn/retrieval do")
        return found[1].spec(found[2], request)
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}{hint} Registered: {sorted(DATASETS)}; "
                       "or folder:PATH for a folder of your own images")
    return DATASETS[name]


# ----------------------------------------------------------------------------- where data lives
def data_dir() -> Path:
    """The data folder when no ``--data-root`` is given: ``$RR_DATA_DIR``, else ``~/.cache/rr_zoo/data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "rr_zoo" / "data")


def offline_pack() -> Path | None:
    """The maintainers' offline data pack (``$RR_SHARED_DATA``, else ``../shared/data``), if present."""
    path = Path(os.environ.get(OFFLINE_PACK_ENV) or _CHECKOUT.parent / "shared" / "data")
    return path if path.is_dir() else None


def search_roots(root: str | Path | None = None) -> list[Path]:
    """Folders a dataset is looked for in, in order: ``root`` alone if given, else the data folder
    and then the offline pack."""
    if root is not None:
        return [Path(root)]
    roots = [data_dir()]
    pack = offline_pack()
    if pack is not None and pack.resolve() != roots[0].resolve():
        roots.append(pack)
    return roots


def missing(spec: DatasetSpec, root: Path, path: Path) -> DatasetNotFoundError:
    """The error a reader raises when a file is absent: what to put where, and how to get it."""
    return DatasetNotFoundError(
        f"{spec.name}: {path} not found. Expected under {root}: {spec.expected_files} "
        f"How to get it: {spec.how_to_get} "
        f"Point --data-root (or {DATA_DIR_ENV}) at the folder that holds it.")


# ----------------------------------------------------------------------------- loading
def load_split(name: str, split: str, root: str | Path | None = None, download: bool = False,
               request: DataRequest | None = None) -> ImageData:
    """Images and labels of one split.

    Args:
        name: Dataset registry key, or a name built from files (``folder:PATH``).
        split: One of the spec's splits.
        root: Data folder (``--data-root``); default: :func:`search_roots`. (A folder dataset is its own root.)
        download: Let torchvision download the dataset into the data folder first (needs internet).
        request: Image size, channels, ... of the run (datasets built from files only; see :class:`DataRequest`).

    Raises:
        DatasetNotFoundError: files missing; the message names them, the folder and how to get them.
    """
    spec = get_dataset_spec(name, request)
    if split not in spec.splits:
        raise ValueError(f"{name} has no split {split!r}; choose one of {spec.splits}")
    found = _resolver(name)
    if found is not None:
        return spec.reader(spec, Path(found[1].canonical(found[2])), split)
    roots = search_roots(root)
    if download:
        _download(spec, roots[0])
    first_error: DatasetNotFoundError | None = None
    for folder in roots:
        try:
            return spec.reader(spec, folder, split)
        except DatasetNotFoundError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def subset_indices(n: int, cap: int | None) -> torch.Tensor:
    """Indices of a fixed, seed-independent random subset of ``cap`` of ``n`` images (sorted; all if no cap).

    Several datasets are stored sorted by class, so "the first N" would hold one or two classes;
    every capped evaluation, monitor and quick run draws its images here instead.
    """
    if cap is None or cap >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:cap].sort().values


def _download(spec: DatasetSpec, root: Path) -> None:
    if spec.torchvision_name is None:
        raise DatasetNotFoundError(f"{spec.name} has no downloader. {spec.how_to_get}")
    import torchvision.datasets as tvd

    maker: Callable[..., object] = getattr(tvd, spec.torchvision_name)
    maker(str(root), download=True)
