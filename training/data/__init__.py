"""Dataset registry: every dataset decoded once into uint8 (N, C, H, W) tensors.

Each dataset registers a :class:`DatasetSpec` and a loader with :func:`register`;
``load_split(name, split, root)`` is the one way to get images. Decoded arrays are
cached as ``.npy`` files (memory-mapped on reload) under ``$RR_CACHE_DIR`` or
``~/.cache/rr_zoo/data``; writes are atomic.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looks; the message says what to put where."""


@dataclass(frozen=True)
class DatasetSpec:
    """Facts about a dataset (see the module docstring for how it is loaded)."""

    name: str                 # registry key
    image_size: int           # side in pixels
    channels: int             # 3, or 1 (grayscale kept as one channel)
    num_classes: int
    mean: tuple[float, ...]   # normalisation, [0, 1] units, per channel
    std: tuple[float, ...]
    splits: tuple[str, ...]
    pretrain_split: str
    description: str
    expected_files: str       # what must be under the root, and where to get it


@dataclass
class ImageData:
    """Decoded images and labels of one split."""

    images: torch.Tensor      # uint8 (N, C, H, W), CPU
    labels: torch.Tensor      # int64 (N,), -1 where unlabeled
    classes: list[str]


DATASETS: dict[str, DatasetSpec] = {}
_LOADERS: dict[str, Callable[[Path, str], ImageData]] = {}
_DEFAULT_ROOTS: dict[str, Callable[[], Path]] = {}


def register(spec: DatasetSpec, default_root: Callable[[], Path] | None = None):
    """Decorator registering ``loader(root, split) -> ImageData`` for ``spec``."""

    def decorator(loader: Callable[[Path, str], ImageData]):
        DATASETS[spec.name] = spec
        _LOADERS[spec.name] = loader
        if default_root is not None:
            _DEFAULT_ROOTS[spec.name] = default_root
        return loader

    return decorator


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of a registered dataset (unknown names list close matches)."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}{hint} Registered: {sorted(DATASETS)}")
    return DATASETS[name]


def default_root(name: str) -> Path:
    """Where a dataset is looked for when no root is given (``RR_DATA_ROOT`` or ./data)."""
    if name in _DEFAULT_ROOTS:
        return _DEFAULT_ROOTS[name]()
    return Path(os.environ.get("RR_DATA_ROOT", "data"))


def load_split(name: str, split: str, root: str | Path | None = None, download: bool = False,
               cache_dir: str | Path | None = None) -> ImageData:
    """Images and labels of one split.

    Args:
        name: Dataset registry key.
        split: One of the spec's splits.
        root: Dataset folder (default: :func:`default_root`).
        download: Let torchvision download the dataset first (needs internet).
        cache_dir: Unused by datasets that are read directly.

    Raises:
        DatasetNotFoundError: files missing; the message names them and the root.
    """
    spec = get_dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"{name} has no split {split!r}; choose one of {spec.splits}")
    root = Path(root) if root is not None else default_root(name)
    if download:
        _download(name, root)
    return _LOADERS[name](root, split)


def subset_indices(n: int, cap: int | None) -> torch.Tensor:
    """Indices of a fixed, seed-independent random subset of ``cap`` of ``n`` images (sorted; all if no cap).

    Several datasets are stored sorted by class, so "the first N" would hold one or two classes;
    every capped evaluation, monitor and quick run draws its images here instead.
    """
    if cap is None or cap >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:cap].sort().values


def _missing(spec: DatasetSpec, root: Path, path: Path) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{spec.name}: {path} not found. Expected under {root}: {spec.expected_files} "
        f"Point --data-root (or RR_DATA_ROOT) at the folder that holds it.")


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    makers = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "cifar100_20": tvd.CIFAR100,
              "stl10": tvd.STL10, "fashionmnist": tvd.FashionMNIST}
    if name not in makers:
        raise DatasetNotFoundError(f"{name} has no downloader; see its expected files: "
                                   f"{get_dataset_spec(name).expected_files}")
    makers[name](str(root), download=True)


def _cache_path(key: str, cache_dir: str | Path | None = None) -> Path:
    base = Path(cache_dir or os.environ.get("RR_CACHE_DIR") or Path.home() / ".cache" / "rr_zoo") / "data"
    return base / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """np.save to a temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent, suffix=".npy")
    os.close(fd)
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def readonly_tensor(arr: np.ndarray) -> torch.Tensor:
    """Tensor view of a read-only (memory-mapped) array; the training code never writes to it."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def _nhwc_to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_NORM = ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262))
CIFAR100_NORM = ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276))


# ----------------------------------------------------------------------------- shared offline data
@register(DatasetSpec("cifar10_4k", 32, 3, 10, *CIFAR10_NORM, ("train",), "train",
                      "First 4,000 CIFAR-10 training images, lossless (shared/data)",
                      "cifar10_4k.npz (in ../shared/data)."), default_root=lambda: _shared_root())
def _load_cifar10_4k(root: Path, split: str) -> ImageData:
    path = root / "cifar10_4k.npz"
    if not path.is_file():
        raise _missing(DATASETS["cifar10_4k"], root, path)
    with np.load(path) as d:
        return ImageData(_nhwc_to_tensor(d["images"]), torch.from_numpy(d["labels"].astype(np.int64)),
                         [str(c) for c in d["classes"]])


@register(DatasetSpec("cifar10_jpeg", 32, 3, 10, *CIFAR10_NORM, ("train", "test"), "train",
                      "All of CIFAR-10 as small JPEGs (lossy; shared/data)",
                      "cifar10_jpeg.npz (in ../shared/data)."), default_root=lambda: _shared_root())
def _load_cifar10_jpeg(root: Path, split: str) -> ImageData:
    from PIL import Image

    path = root / "cifar10_jpeg.npz"
    if not path.is_file():
        raise _missing(DATASETS["cifar10_jpeg"], root, path)
    stat = path.stat()
    cache = _cache_path(f"cifar10_jpeg|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}")
    with np.load(path) as d:
        labels = torch.from_numpy(d[f"{split}_labels"].astype(np.int64))
        classes = [str(c) for c in d["classes"]]
        if not cache.is_file():
            jpeg, offsets = d[f"{split}_jpeg"], d[f"{split}_offsets"]
            images = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes()))
                                          .convert("RGB")) for i in range(len(offsets) - 1)])
            atomic_save_npy(cache, images.transpose(0, 3, 1, 2).copy())
    images = torch.from_numpy(np.load(cache, mmap_mode="r").copy())
    return ImageData(images, labels, classes)


def _shared_root() -> Path:
    return Path(os.environ.get("RR_SHARED_DATA", SHARED_DATA))


# ----------------------------------------------------------------------------- CIFAR (torchvision format)
def _read_pickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


def _cifar(name: str, folder: str, files: dict[str, list[str]], label_key: str, meta: tuple[str, str]):
    def loader(root: Path, split: str) -> ImageData:
        base = root / folder
        images, labels = [], []
        for f in files[split]:
            if not (base / f).is_file():
                raise _missing(DATASETS[name], root, base / f)
            d = _read_pickle(base / f)
            images.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(d[label_key])
        classes = _read_pickle(base / meta[0])[meta[1]]
        return ImageData(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64),
                         list(classes))

    return loader


_C10 = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_C100 = {"train": ["train"], "test": ["test"]}
register(DatasetSpec("cifar10", 32, 3, 10, *CIFAR10_NORM, ("train", "test"), "train", "CIFAR-10",
                     "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (torchvision format; "
                     "torchvision.datasets.CIFAR10(root, download=True) writes it)."))(
    _cifar("cifar10", "cifar-10-batches-py", _C10, "labels", ("batches.meta", "label_names")))
register(DatasetSpec("cifar100", 32, 3, 100, *CIFAR100_NORM, ("train", "test"), "train", "CIFAR-100 (fine labels)",
                     "cifar-100-python/{train,test,meta} (torchvision format; "
                     "torchvision.datasets.CIFAR100(root, download=True) writes it)."))(
    _cifar("cifar100", "cifar-100-python", _C100, "fine_labels", ("meta", "fine_label_names")))
register(DatasetSpec("cifar100_20", 32, 3, 20, *CIFAR100_NORM, ("train", "test"), "train",
                     "CIFAR-100 images with the 20 coarse (super-class) labels",
                     "cifar-100-python/{train,test,meta} (same files as cifar100)."))(
    _cifar("cifar100_20", "cifar-100-python", _C100, "coarse_labels", ("meta", "coarse_label_names")))


# ----------------------------------------------------------------------------- STL-10 (binary format)
STL10_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_STL_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"),
              "unlabeled": ("unlabeled_X.bin", None)}


def _stl_part(root: Path, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    base = root / "stl10_binary"
    x_name, y_name = _STL_FILES[part]
    if not (base / x_name).is_file():
        raise _missing(DATASETS["stl10"], root, base / x_name)
    # column-major 3x96x96 per image: memory-map and transpose lazily (the 2.7 GB unlabeled split stays on disk)
    raw = np.memmap(base / x_name, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96)
    images = readonly_tensor(raw).transpose(2, 3) if raw.size else torch.empty(0, 3, 96, 96, dtype=torch.uint8)
    if y_name is None:
        labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
    else:
        labels = torch.from_numpy(np.fromfile(base / y_name, dtype=np.uint8).astype(np.int64) - 1)  # 1-based
    return images, labels


@register(DatasetSpec("stl10", 96, 3, 10, *STL10_NORM, ("unlabeled", "train", "test", "train+unlabeled"),
                      "unlabeled", "STL-10 (100k unlabeled + 5k train + 8k test, 96x96)",
                      "stl10_binary/{unlabeled_X.bin,train_X.bin,train_y.bin,test_X.bin,test_y.bin,class_names.txt} "
                      "(torchvision.datasets.STL10(root, download=True) writes it)."))
def _load_stl10(root: Path, split: str) -> ImageData:
    parts = split.split("+")
    loaded = [_stl_part(root, p) for p in parts]
    if len(loaded) == 1:
        images, labels = loaded[0]
    else:  # one copy of the combined split (memmaps are not concatenated lazily)
        images = torch.cat([x for x, _ in loaded])
        labels = torch.cat([y for _, y in loaded])
    names = root / "stl10_binary" / "class_names.txt"
    classes = names.read_text().split() if names.is_file() else [str(i) for i in range(10)]
    return ImageData(images, labels, classes)


# ----------------------------------------------------------------------------- ImageFolder datasets
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def load_image_folder(folder: Path, size: int, cache_key: str) -> ImageData:
    """Decode an ImageFolder tree (``<folder>/<class>/<image>``) once into a cached uint8 array.

    The cache is keyed by the folder, the sorted file list and their sizes, so adding or changing
    files invalidates it. Reloads are memory-mapped.
    """
    from PIL import Image

    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).rglob("*"))
             if f.suffix.lower() in IMAGE_EXTENSIONS]
    signature = hashlib.sha256("".join(f"{f}|{f.stat().st_size}" for f, _ in files).encode()).hexdigest()
    cache = _cache_path(f"{cache_key}|{folder.resolve()}|{signature}")
    labels = torch.tensor([c for _, c in files], dtype=torch.int64)
    if not cache.is_file():
        arr = np.empty((len(files), 3, size, size), dtype=np.uint8)
        for i, (f, _) in enumerate(files):
            img = Image.open(f).convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            arr[i] = np.asarray(img).transpose(2, 0, 1)
        atomic_save_npy(cache, arr)
    return ImageData(readonly_tensor(np.load(cache, mmap_mode="r")), labels, classes)


TINY_NORM = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _image_folder_loader(name: str, base: str, size: int):
    def loader(root: Path, split: str) -> ImageData:
        folder = root / base / split
        if not folder.is_dir():
            raise _missing(DATASETS[name], root, folder)
        return load_image_folder(folder, size, name)

    return loader


register(DatasetSpec("tinyimagenet", 64, 3, 200, *TINY_NORM, ("train", "val"), "train", "Tiny ImageNet 200 (64x64)",
                     "tiny-imagenet-200/{train,val}/<wnid>/*.JPEG in ImageFolder layout (validation images "
                     "sorted into class folders; ../shared/data/scripts/build_tiny_imagenet.py writes it)."))(
    _image_folder_loader("tinyimagenet", "tiny-imagenet-200", 64))
register(DatasetSpec("slimagenet64", 64, 3, 1000, *TINY_NORM, ("train", "test"), "train",
                     "SlimageNet64 (Antoniou et al. 2020): 1000 ImageNet classes, 64x64",
                     "SlimageNet64/{train,test}/<class>/<image> in ImageFolder layout, as the original code "
                     "reads it (download: https://zenodo.org/record/3672132, uncompress into SlimageNet64/)."))(
    _image_folder_loader("slimagenet64", "SlimageNet64", 64))


# ----------------------------------------------------------------------------- Fashion-MNIST (idx format)
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
# computed from the 60,000 training images: python -m training.data.stats fashionmnist
FASHION_NORM = ((0.2860,), (0.3530,))


def _read_idx(path: Path) -> np.ndarray:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@register(DatasetSpec("fashionmnist", 28, 1, 10, *FASHION_NORM, ("train", "test"), "train",
                      "Fashion-MNIST (28x28 grayscale, kept one-channel)",
                      "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (torchvision format; "
                      "../shared/data/scripts/install_fashion_mnist.sh ROOT writes it)."))
def _load_fashionmnist(root: Path, split: str) -> ImageData:
    prefix = "train" if split == "train" else "t10k"
    raw = root / "FashionMNIST" / "raw"
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        candidates = [raw / f"{prefix}-{kind}-ubyte", raw / f"{prefix}-{kind}-ubyte.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise _missing(DATASETS["fashionmnist"], root, candidates[0])
        arrays.append(_read_idx(path))
    images, labels = arrays
    return ImageData(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                     list(FASHION_CLASSES))
