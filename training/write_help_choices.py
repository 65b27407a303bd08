"""``python -m training.write_help_choices``: write ``training/help_choices.json`` from the registries."""

from __future__ import annotations

import json
import sys
from typing import Any

from training.help_choices import FILE


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


def main(argv: list[str] | None = None) -> int:
    """Write ``help_choices.json`` from the registries (``--check``: only say whether it is up to date)."""
    import argparse

    from rr_zoo.atomic import atomic_write

    parser = argparse.ArgumentParser(prog="python -m training.write_help_choices", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the registries")
    args = parser.parse_args(argv)
    text = json.dumps(from_registries(), indent=2) + "\n"
    if args.check:
        same = FILE.is_file() and FILE.read_text() == text
        print(f"{FILE.name}: {'up to date' if same else 'out of date; run python -m training.write_help_choices'}")
        return 0 if same else 1
    atomic_write(FILE, text)
    print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
