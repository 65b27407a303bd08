"""Evaluation protocols (paper): a registry of protocol name -> runner."""

from training.evaluate import finetune as _finetune  # noqa: F401  (registers finetune, semisup)
from training.evaluate.protocols import PROTOCOLS, EvalSpec, run_protocol

__all__ = ["PROTOCOLS", "EvalSpec", "run_protocol"]
