"""Small generated stand-ins for datasets that cannot be had here, in their real on-disk formats."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_fake_cifar100(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """cifar-100-python/{train,test,meta} pickles as torchvision writes them; returns what was written."""
    rng = _rng(seed)
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        coarse = [f // 5 for f in fine]
        with open(base / split, "wb") as fh:
            pickle.dump({"data": data, "fine_labels": fine, "coarse_labels": coarse, "filenames": []}, fh)
        written[split] = (data.reshape(n, 3, 32, 32), fine, coarse)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)],
                     "coarse_label_names": [f"coarse{i}" for i in range(20)]}, fh)
    return written


def make_fake_stl10(root: Path, n: dict | None = None, seed: int = 0) -> dict:
    """stl10_binary/*.bin (column-major 3x96x96 images, 1-based uint8 labels)."""
    n = n or {"train": 6, "test": 4, "unlabeled": 5}
    rng = _rng(seed)
    base = root / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, count in n.items():
        nchw = rng.integers(0, 256, (count, 3, 96, 96), dtype=np.uint8)
        nchw.transpose(0, 1, 3, 2).tofile(base / f"{split}_X.bin")  # stored column-major
        labels = None
        if split != "unlabeled":
            labels = rng.integers(1, 11, count).astype(np.uint8)
            labels.tofile(base / f"{split}_y.bin")
        written[split] = (nchw, labels)
    (base / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    return written


def make_fake_image_folder(folder: Path, classes: int = 3, per_class: int = 2, size: int = 64, seed: int = 0) -> dict:
    """``folder/<class>/<i>.png`` (lossless, so pixel values round-trip)."""
    rng = _rng(seed)
    written = {}
    for c in range(classes):
        (folder / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            path = folder / f"n{c:08d}" / f"{i}.png"
            Image.fromarray(arr).save(path)
            written[path] = (arr, c)
    return written


def make_fake_tiny_imagenet(root: Path, layout: str, wnids: tuple[str, ...] = ("n03", "n01", "n02"),
                            per_class: int = 2, val_per_class: int = 1, seed: int = 0) -> dict:
    """``root/tiny-imagenet-200`` in the ``official`` zip layout or the ``imagefolder`` layout (PNG files named
    ``.JPEG`` so pixels round-trip; PIL reads by content). ``wnids.txt`` deliberately not sorted.

    Returns {split: [(array HWC, label), ...]} in the order the loader must yield them.
    """
    rng = _rng(seed)
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    written: dict[str, list] = {"train": [], "val": []}
    annotations = []
    for label, wnid in enumerate(wnids):
        train_dir = base / "train" / wnid / ("images" if layout == "official" else "")
        train_dir.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(arr).save(train_dir / f"{wnid}_{i}.JPEG", format="PNG")
            written["train"].append((arr, label))
        for i in range(val_per_class):
            arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            name = f"val_{label * val_per_class + i}.JPEG"
            folder = base / "val" / ("images" if layout == "official" else wnid)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(folder / name, format="PNG")
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63")
            written["val"].append((arr, label, name))
    if layout == "official":
        (base / "val" / "val_annotations.txt").write_text("\n".join(reversed(annotations)) + "\n")
    written["val"] = [(arr, label) for arr, label, _ in sorted(written["val"], key=lambda t: (t[1], t[2]))]
    return written


def make_fake_fashionmnist(root: Path, n_train: int = 12, n_test: int = 5, seed: int = 0, gz: bool = True) -> dict:
    """FashionMNIST/raw/*-ubyte[.gz] in the idx format."""
    rng = _rng(seed)
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr, magic in (("images-idx3", images, 0x0803), ("labels-idx1", labels, 0x0801)):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
            payload = header + arr.tobytes()
            path = raw / f"{prefix}-{kind}-ubyte"
            if gz:
                path = path.with_name(path.name + ".gz")
                payload = gzip.compress(payload)
            path.write_bytes(payload)
        written[prefix] = (images, labels)
    return written
