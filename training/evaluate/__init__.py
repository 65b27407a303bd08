"""Evaluation protocols of the paper over a small registry (``protocols``), one module per family.

- ``protocols``: :class:`EvalSpec`, the registry, :func:`run_protocol` (one protocol, one seed).
- ``source``: the weights under evaluation (:class:`FeatureSource`: zoo entry, file, checkpoint, random init).
- ``feature_cache``: frozen-backbone features computed once and cached.
- ``linear`` (linear, transfer, grain), ``knn`` (knn, retrieval), ``figures`` (embedding, retrieval grid),
  ``finetune`` (finetune, semisup).
- ``run``: a protocol over seeds -> mean ± std, the reproducing command, the results JSON, ``--check``.
"""

from training.evaluate import figures, finetune, knn, linear  # noqa: F401  (register their protocols)
from training.evaluate.protocols import PROTOCOLS, EvalSpec, get_protocol, run_protocol

__all__ = ["PROTOCOLS", "EvalSpec", "get_protocol", "run_protocol"]
