"""Evaluation protocols of the paper over a small registry (``protocols``), one module per family.

- ``protocols``: :class:`EvalSpec`, the registry, :func:`run_protocol` (one protocol, one seed).
- ``source``: the weights under evaluation (:class:`FeatureSource`: zoo entry, file, checkpoint, random init).
- ``feature_cache``: frozen-backbone features computed once and cached.
- ``linear`` (linear, transfer, grain), ``knn`` (knn, retrieval), ``figures`` (embedding, retrieval grid),
  ``finetune`` (finetune, semisup).
- ``run``: a protocol over seeds -> mean ± std, the reproducing command, the results JSON, ``--check``;
  importing it registers every protocol family.

``EvalSpec`` comes without torch (command-line help builds its flags); the registry and its
functions import the protocol families (and torch) on first use.
"""

from __future__ import annotations

from typing import Any

from training.evaluate.protocols import EvalSpec

_REGISTRY = ("PROTOCOLS", "get_protocol", "run_protocol")
__all__ = ["PROTOCOLS", "EvalSpec", "get_protocol", "run_protocol"]


def __getattr__(name: str) -> Any:
    """The registry, filled with every protocol family on first use."""
    if name not in _REGISTRY:
        raise AttributeError(f"module 'training.evaluate' has no attribute {name!r}")
    from training.evaluate import protocols, run  # noqa: F401  (run imports every family: they register)

    return getattr(protocols, name)
