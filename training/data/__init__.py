"""Datasets: every dataset decoded once into uint8 (N, C, H, W) tensors.

- ``registry``: :class:`DatasetSpec` (every fact about a dataset), the registry, where data
  lives (``--data-root`` > ``$RR_DATA_DIR`` > ``~/.cache/rr_zoo/data``, then the maintainers'
  offline pack) and :func:`load_split`, the one way to get images.
- ``specs``: the registered datasets, one ``DatasetSpec`` each, and the ``folder:PATH`` resolver
  (a folder of the user's own images, built from its files at the run's image size).
- ``formats/``: one reader per on-disk format.
- ``cache``: decoded arrays cached under ``$RR_CACHE_DIR`` (default ``~/.cache/rr_zoo``), atomic writes.
- ``stats``: ``python -m training.data.stats NAME`` recomputes a dataset's mean/std.

Adding a dataset: one ``register(DatasetSpec(...))`` in ``specs.py`` (plus a reader in
``formats/`` if its on-disk format is new).
"""

from training.data import specs as _specs  # noqa: F401  (registers the datasets)
from training.data.registry import (
    DATA_DIR_ENV,
    DATASETS,
    DataRequest,
    DatasetError,
    DatasetNotFoundError,
    DatasetSpec,
    ImageData,
    canonical_dataset_name,
    data_dir,
    dataset_label,
    dataset_shape,
    dataset_splits,
    from_files,
    get_dataset_spec,
    load_split,
    offline_pack,
    register,
    search_roots,
    subset_indices,
)

__all__ = ["DATASETS", "DATA_DIR_ENV", "DataRequest", "DatasetError", "DatasetNotFoundError", "DatasetSpec",
           "ImageData", "canonical_dataset_name", "data_dir", "dataset_label", "dataset_shape",
           "dataset_splits", "from_files",
           "get_dataset_spec", "load_split", "offline_pack", "register", "search_roots", "subset_indices"]
