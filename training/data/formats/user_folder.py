"""A folder of the user's own images (``--dataset folder:PATH``): any format PIL reads, mixed sizes and
colour modes, class sub-folders optional.

Its facts (images, classes, splits, normalisation) come from the files, so its :class:`DatasetSpec` is
built when a run names it (:class:`FolderResolver`, registered for ``folder:`` in ``specs.py``).

Layout, read from the folder itself:

- ``PATH/<class>/**/<image>``: labelled by the first-level folder; images directly in ``PATH`` are
  unlabelled (label -1). Labels are only used by evaluation: pretraining needs none.
- ``PATH/train/`` + ``PATH/test/`` (or ``PATH/val/``), each laid out as above: those are the splits
  (``test`` reads ``val/`` when there is no ``test/``); pretraining uses ``train``. Otherwise the
  splits are ``all`` (every image; pretraining's) and ``train``/``test``, a fixed split of each class
  (20% test, seed 0) for evaluation.

Each image is converted to the run's channels (RGB, or L for 1-channel entries; EXIF orientation
applied, first frame of an animation) and resized as the entry's evaluation transform does (shorter
side to the run's side, bilinear, then a centre crop), decoded once into a uint8 cache keyed by the
files' relative paths, sizes and modification times (a changed, added or removed file is read again).
Files whose extension PIL does not know are ignored, and so are hidden files and folders (``.name``);
images PIL cannot decode are skipped and counted, or refused with ``strict``. Normalisation is
measured on the pretraining split unless the request gives it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.data.cache import atomic_save_npy, decoded_path, readonly_tensor
from training.data.registry import (
    DataRequest,
    DatasetError,
    DatasetNotFoundError,
    DatasetSpec,
    ImageData,
    check_spec,
)
from training.data.stats import image_stats

SPLIT_FOLDERS = ("train", "val", "test")
TEST_SHARE = 0.2      # share of each class in the held-out split of a folder without train/ + test/
SPLIT_SEED = 0
CACHE_VERSION = "user-folder-v1"  # change when decoding changes: every cache is then rebuilt


def image_extensions() -> frozenset[str]:
    """File extensions PIL can open (lower case, with the dot)."""
    from PIL import Image

    return frozenset(ext.lower() for ext in Image.registered_extensions())


@dataclass(frozen=True)
class FolderScan:
    """What listing a folder tells (no image decoded)."""

    root: Path                                  # absolute
    files: tuple[str, ...]                      # image files, relative posix paths, sorted
    labels: tuple[int, ...]                     # index into ``classes`` per file, -1 unlabelled
    classes: tuple[str, ...]
    split_files: dict[str, tuple[int, ...]] = field(compare=False)  # split -> indices into ``files``
    ignored: int                                # files that are not images (by extension)
    signature: str                              # sha256 of relative paths, sizes, modification times
    split_note: str                             # how the splits were made, in words


def _walk(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return found


def scan_folder(path: str | Path) -> FolderScan:
    """List a folder of images (see the module docstring for the layout).

    Raises:
        DatasetNotFoundError: the folder does not exist, is a file, or holds no image file.
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise DatasetNotFoundError(f"folder:{path}: no such folder; pass the folder that holds your images")
    if not root.is_dir():
        raise DatasetNotFoundError(f"folder:{path} is a file, not a folder; pass the folder that holds the images "
                                   f"(e.g. folder:{root.parent})")
    extensions = image_extensions()
    subdirs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    split_layout = "train" in subdirs and bool({"test", "val"} & subdirs)
    tops = [s for s in SPLIT_FOLDERS if s in subdirs] if split_layout else [""]
    entries: list[tuple[str, str | None, str]] = []  # (relative path, class, split folder)
    ignored, digest = 0, hashlib.sha256()
    for top in tops:
        for f in sorted(_walk(root / top)):
            if f.suffix.lower() not in extensions:
                ignored += 1
                continue
            inner = f.relative_to(root / top).parts
            rel = f.relative_to(root).as_posix()
            entries.append((rel, inner[0] if len(inner) > 1 else None, top))
            stat = f.stat()
            digest.update(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    if not entries:
        what = f"{ignored} file(s), none in a format PIL reads" if ignored else "no files"
        raise DatasetNotFoundError(f"folder:{path} holds no images ({what}); put image files (.jpg, .png, ...) "
                                   "in it, optionally in one sub-folder per class")
    classes = tuple(sorted({c for _, c, _ in entries if c is not None}))
    index = {c: i for i, c in enumerate(classes)}
    labels = tuple(-1 if c is None else index[c] for _, c, _ in entries)
    if split_layout:
        split_files = {s: tuple(i for i, (_, _, top) in enumerate(entries) if top == s) for s in tops}
        if "test" not in split_files:
            split_files["test"] = split_files["val"]
        note = ("the folder's own split: train/ and " + ("test/" if "test" in tops else "val/ (as test)"))
    else:
        train, test = _seeded_split(labels)
        split_files = {"all": tuple(range(len(entries))), "train": train, "test": test}
        note = (f"a fixed split of each class of the folder's images ({TEST_SHARE:.0%} test, seed {SPLIT_SEED}): "
                "the folder has no train/ + test/ (or val/) sub-folders")
    return FolderScan(root, tuple(e[0] for e in entries), labels, classes, split_files, ignored,
                      digest.hexdigest(), note)


def _seeded_split(labels: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train, test) indices: TEST_SHARE of each class (and of the unlabelled images) held out, seeded."""
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    by_label = torch.tensor(labels)
    test: list[int] = []
    for label in sorted(set(labels)):
        members = torch.nonzero(by_label == label).flatten()
        n_test = max(1, round(TEST_SHARE * len(members))) if len(members) >= 2 else 0
        test += members[torch.randperm(len(members), generator=gen)[:n_test]].tolist()
    held = set(test)
    return tuple(i for i in range(len(labels)) if i not in held), tuple(sorted(held))


def decode_image(path: Path, side: int, channels: int) -> np.ndarray:
    """One image as uint8 (channels, side, side): converted, shorter side resized to ``side``, centre-cropped."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's palette-transparency and decompression-bomb warnings
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = side / min(w, h)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    if size != (w, h):
        img = img.resize(size, Image.BILINEAR)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    array = np.asarray(img.crop((left, top, left + side, top + side)))
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _unreadable() -> tuple[type[BaseException], ...]:
    from PIL import Image

    return OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError


def decode_folder(scan: FolderScan, side: int, channels: int, progress: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, C, side, side), readable (N,) bool) of every listed file, decoded once and cached.

    Unreadable files are left black and marked False. The cache is keyed by the scan's signature,
    so a changed file is decoded again; reloads are memory-mapped.
    """
    key = f"{CACHE_VERSION}|{side}|{channels}|{scan.signature}"
    images_path, ok_path = decoded_path(key + "|images"), decoded_path(key + "|readable")
    if not (images_path.is_file() and ok_path.is_file()):
        from tqdm import tqdm

        images = np.zeros((len(scan.files), channels, side, side), dtype=np.uint8)
        readable = np.zeros(len(scan.files), dtype=bool)
        errors = _unreadable()
        for i, rel in enumerate(tqdm(scan.files, desc=f"decoding {scan.root.name}", unit="image",
                                     disable=not progress, leave=False, dynamic_ncols=True)):
            try:
                images[i] = decode_image(scan.root / rel, side, channels)
                readable[i] = True
            except errors:
                continue
        atomic_save_npy(images_path, images)
        atomic_save_npy(ok_path, readable)
    return np.load(images_path, mmap_mode="r"), np.load(ok_path)


@dataclass(frozen=True, eq=False)
class FolderImages:
    """Reader of a decoded folder: every split is a set of indices into one cached array."""

    images: torch.Tensor                  # uint8 (N, C, H, W), memory-mapped, every listed file
    labels: torch.Tensor                  # int64 (N,)
    classes: list[str]
    split_index: dict[str, torch.Tensor]  # split -> indices of its readable images

    def __call__(self, spec: DatasetSpec, root: Path, split: str) -> ImageData:
        idx = self.split_index[split]
        if len(idx) == self.images.shape[0]:  # the whole array: no copy
            return ImageData(self.images, self.labels, self.classes)
        return ImageData(self.images[idx], self.labels[idx], self.classes)


class FolderResolver:
    """Builds the :class:`DatasetSpec` of ``folder:PATH`` for a run (memoised per files and request)."""

    def __init__(self) -> None:
        self._specs: dict[tuple, DatasetSpec] = {}

    def canonical(self, arg: str) -> str:
        return str(Path(arg).expanduser().resolve())

    def splits(self, arg: str) -> tuple[str, ...]:
        scan = scan_folder(arg)
        first = "all" if "all" in scan.split_files else "train"
        return (first, *(s for s in scan.split_files if s != first))

    def split_sizes(self, arg: str) -> dict[str, int]:
        return {split: len(idx) for split, idx in scan_folder(arg).split_files.items()}

    def spec(self, arg: str, request: DataRequest) -> DatasetSpec:
        scan = scan_folder(arg)
        key = (scan.root, scan.signature, request)
        if key not in self._specs:
            self._specs[key] = self._build(scan, request)
        return self._specs[key]

    def _build(self, scan: FolderScan, request: DataRequest) -> DatasetSpec:
        name = f"folder:{scan.root}"
        images, readable = decode_folder(scan, request.image_size, request.channels, request.progress)
        bad = [scan.files[i] for i in np.flatnonzero(~readable)]
        if bad and request.strict:
            raise DatasetError(f"{name}: {len(bad)} of {len(scan.files)} images cannot be read (first: {bad[0]}); "
                               "--strict refuses them: fix or remove them, or leave out --strict to skip them")
        if len(bad) == len(scan.files):
            raise DatasetError(f"{name}: none of its {len(bad)} image files can be read (first: {bad[0]}); "
                               "check that they are images")
        ok = torch.from_numpy(readable)
        split_index = {s: torch.tensor(idx, dtype=torch.int64) for s, idx in scan.split_files.items()}
        split_index = {s: idx[ok[idx]] if len(idx) else idx for s, idx in split_index.items()}
        pretrain_split = "all" if "all" in split_index else "train"
        reader = FolderImages(readonly_tensor(images), torch.tensor(scan.labels, dtype=torch.int64),
                              list(scan.classes), split_index)
        mean, std = request.mean, request.std
        if mean is None or std is None:
            idx = split_index[pretrain_split]
            measured = image_stats(reader.images if len(idx) == len(scan.files) else reader.images[idx])
            mean, std = mean or measured[0], std or measured[1]
        if bad or scan.ignored:
            print(f"{name}: {len(scan.files) - len(bad)} images; skipped {len(bad)} unreadable image(s)"
                  + (f" (first: {bad[0]})" if bad else "") + f", ignored {scan.ignored} non-image file(s)",
                  file=sys.stderr, flush=True)
        splits = (pretrain_split, *(s for s in split_index if s != pretrain_split))
        return check_spec(DatasetSpec(
            name=name, description=f"your images in {scan.root}",
            image_size=request.image_size, channels=request.channels, num_classes=len(scan.classes),
            mean=tuple(mean), std=tuple(std), splits=splits, pretrain_split=pretrain_split,
            split_sizes={s: len(split_index[s]) for s in splits}, cutout_area=0.25, reader=reader,
            expected_files="image files (any format PIL reads) in the folder, optionally in one sub-folder per "
                           "class, optionally under train/ + test/ (or val/).",
            how_to_get="your own images",
            notes={"split": scan.split_note, "labels": f"{len(scan.classes)} class sub-folder(s)",
                   "skipped": f"{len(bad)} unreadable image(s)", "ignored": f"{scan.ignored} non-image file(s)",
                   "mean/std": "given" if request.mean and request.std else "measured on the pretraining split"},
        ))
