"""The names that ``--help`` lists, read from ``help_choices.json`` so that no help imports torch.

The names belong to registries that import torch: architectures (``rr_zoo.models``), aggregations
(``rr_zoo.relation``), datasets (``training.data``) and evaluation protocols with their one-line
summaries (``training.evaluate``). The JSON is written from them by
``python -m training.write_help_choices`` and a test fails when it differs from them. Help only shows
these names: every value is still checked against the registry itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILE = Path(__file__).resolve().with_name("help_choices.json")
KINDS = ("architectures", "aggregations", "datasets", "protocols")


@functools.cache
def recorded() -> dict[str, Any]:
    """The names as ``help_choices.json`` records them."""
    return json.loads(FILE.read_text())


def listed(kind: str) -> Callable[[], list[str]]:
    """A function returning the recorded names of ``kind`` (an :func:`~training.flags.option`'s ``choices``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    return lambda: list(recorded()[kind])
