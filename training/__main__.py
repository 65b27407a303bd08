"""``python -m training <command>``: train, evaluate and publish the zoo's backbones.

Commands live in a registry (``training.cli.COMMANDS``; ``python -m training --help`` lists them).
A command's flags are built only when that command runs or shows its help, so the top-level help
imports no torch. Wrong user input ends in one line on stderr that names the fix, and status 2.
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every registered command; with ``only``, the flags of that command alone."""
    from training.cli import COMMANDS
    from training.flags import CliParser

    parser = CliParser(prog="python -m training",
                       description="Train, evaluate and publish relational-reasoning backbones of the zoo.",
                       epilog="`python -m training COMMAND --help` shows a command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            add(command)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean wrong input (bad value, unknown name, missing file); their messages name the fix."""
    from rr_zoo.errors import RRZooError
    from training.data import DatasetError, DatasetNotFoundError
    from training.pretrain.checkpoint import CheckpointError
    from training.pretrain.recipes import RecipeError
    from training.run_folders import RunLogError

    return (RecipeError, RRZooError, CheckpointError, DatasetNotFoundError, DatasetError, RunLogError,
            FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors in user input print one clear line and exit with status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(only=command).parse_args(argv)
    errors = user_errors()
    try:
        return int(args.fn(args) or 0)
    except errors as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2


def exit_now(status: int) -> None:
    """Flush the standard streams and end the process without interpreter teardown.

    Used after ``pretrain --dry-run``, which has nothing left to close: with the CUDA build of torch,
    the teardown (static destructors of the CUDA libraries it loaded) pages in about 100-130 MiB
    of library memory and would be the dry run's peak.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    status = main()
    from training import cli

    if cli.SKIP_TEARDOWN:
        exit_now(status)
    sys.exit(status)
