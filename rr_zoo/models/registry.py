"""Backbone registry: architecture name -> builder.

Every backbone family registers its architectures here with
:func:`register_architecture`; nothing else in the package switches on names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from rr_zoo.errors import UnknownArchitectureError


@dataclass(frozen=True)
class Architecture:
    """One backbone architecture.

    Attributes:
        name: Registry key, e.g. ``"resnet32"``.
        builder: Callable returning the backbone; accepts ``num_classes`` and ``in_chans``.
        num_features: Width of the pooled feature vector.
        description: One line for docs and model cards.
        first_conv: Name of the input convolution (timm's ``first_conv``, adapted for ``in_chans``).
    """

    name: str
    builder: Callable[..., nn.Module]
    num_features: int
    description: str
    first_conv: str = "conv1"


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(name: str, num_features: int, description: str, first_conv: str = "conv1"):
    """Decorator registering a backbone builder under ``name``.

    Args:
        name: Architecture key used by the manifest (``architecture`` field).
        num_features: Pooled feature size the builder produces.
        description: One-line human description.
        first_conv: Module name of the input convolution.

    Returns:
        The decorator, which returns the builder unchanged.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        ARCHITECTURES[name] = Architecture(name, builder, num_features, description, first_conv)
        return builder

    return decorator


def get_architecture(name: str) -> Architecture:
    """Look up a registered architecture.

    Args:
        name: Architecture key, e.g. ``"conv4"``.

    Returns:
        The :class:`Architecture` record.

    Raises:
        UnknownArchitectureError: ``name`` is not registered (lists close matches).
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        close = difflib.get_close_matches(name, ARCHITECTURES, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownArchitectureError(
            f"{name!r} is not a known architecture{hint} Known: {sorted(ARCHITECTURES)}"
        ) from None


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a randomly initialised backbone by architecture name.

    Args:
        name: Architecture key.
        **kwargs: Forwarded to the builder (``num_classes``, ``in_chans``).

    Returns:
        The backbone module.
    """
    return get_architecture(name).builder(**kwargs)
