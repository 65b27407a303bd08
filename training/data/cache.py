"""Decoded-image caches: uint8 arrays written once (atomically), memory-mapped on reload.

Caches live under ``$RR_CACHE_DIR`` (default ``~/.cache/rr_zoo``): ``decoded/`` holds the
images of formats that are slow to decode (JPEG, image folders), ``features/`` the
evaluation features. A cache file is named by the sha256 of a key that names its source
(path, size, modification time or file list), so a changed source gets a new file and a
deleted cache is rebuilt on the next load.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rr_zoo.atomic import atomic_write

CACHE_DIR_ENV = "RR_CACHE_DIR"


def cache_root() -> Path:
    """``$RR_CACHE_DIR``, or ``~/.cache/rr_zoo``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "rr_zoo")


def decoded_path(key: str) -> Path:
    """Cache file of the decoded array identified by ``key``."""
    return cache_root() / "decoded" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"


def cached_array(key: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """The array cached under ``key`` (read-only memory map); ``build()`` makes it on a miss."""
    path = decoded_path(key)
    if not path.is_file():
        atomic_save_npy(path, build())
    return np.load(path, mmap_mode="r")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` atomically (:func:`rr_zoo.atomic.atomic_write`)."""
    atomic_write(path, lambda fh: np.save(fh, array))


def readonly_tensor(array: np.ndarray) -> torch.Tensor:
    """A uint8 tensor sharing the memory of a read-only (memory-mapped) array, without copying.

    torch warns that it cannot write-protect the tensor; callers only read it (views are
    indexed and copied per batch), so the warning is silenced here and nowhere else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)
