"""``python -m training <command>``: pretrain, evaluate, export, publish, benchmark.

Commands live in a registry (``COMMANDS``); each module adds its own parser.
"""

from __future__ import annotations

import argparse
import sys

from training.recipes import RecipeError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    from training.cli import COMMANDS

    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors in user input print one clear line and exit with status 2."""
    from rr_zoo.errors import RRZooError
    from training.data import DatasetNotFoundError

    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (RecipeError, RRZooError, DatasetNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
