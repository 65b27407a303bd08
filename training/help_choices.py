"""The names that ``--help`` lists, read from ``help_choices.json`` so that no help imports torch.

The names belong to registries that import torch: architectures (``rr_zoo.models``), aggregations
(``rr_zoo.relation``), datasets (``training.data``) and evaluation protocols with their one-line
summaries (``training.evaluate``). The JSON is written from them by
``python -m training.help_choices`` and a test fails when it differs from them. Help only shows
these names: every value is still checked against the registry itself.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILE = Path(__file__).resolve().with_name("help_choices.json")
KINDS = ("architectures", "aggregations", "datasets", "protocols")


def from_registries() -> dict[str, Any]:
    """The names as the registries hold them now (imports torch)."""
    from rr_zoo.models import ARCHITECTURES
    from rr_zoo.relation import AGGREGATIONS
    from training.data import DATASETS
    from training.evaluate import PROTOCOLS

    return {
        "architectures": sorted(ARCHITECTURES),
        "aggregations": list(AGGREGATIONS),
        "datasets": sorted(DATASETS),
        "protocols": {name: PROTOCOLS[name].summary for name in sorted(PROTOCOLS)},
    }


@functools.cache
def recorded() -> dict[str, Any]:
    """The names as ``help_choices.json`` records them."""
    return json.loads(FILE.read_text())


def listed(kind: str) -> Callable[[], list[str]]:
    """A function returning the recorded names of ``kind`` (an :func:`~training.flags.option`'s ``choices``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    return lambda: list(recorded()[kind])


def main(argv: list[str] | None = None) -> int:
    """Write ``help_choices.json`` from the registries (``--check``: only say whether it is up to date)."""
    import argparse

    from rr_zoo.atomic import atomic_write

    parser = argparse.ArgumentParser(prog="python -m training.help_choices", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the registries")
    args = parser.parse_args(argv)
    text = json.dumps(from_registries(), indent=2) + "\n"
    if args.check:
        same = FILE.is_file() and FILE.read_text() == text
        print(f"{FILE.name}: {'up to date' if same else 'out of date; run python -m training.help_choices'}")
        return 0 if same else 1
    atomic_write(FILE, text)
    print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
