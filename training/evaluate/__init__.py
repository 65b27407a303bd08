"""Evaluation protocols (paper): a registry of protocol name -> runner."""

from training.evaluate.protocols import PROTOCOLS, EvalSpec, run_protocol

__all__ = ["PROTOCOLS", "EvalSpec", "run_protocol"]
