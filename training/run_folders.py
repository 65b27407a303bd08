"""Where the commands write by default: every run folder's name, relative to the working directory; the
names of a run folder's files, and the one parser of its ``log.jsonl`` (:func:`read_log` for the file,
:func:`parse_log` for its text already read).

Imports nothing heavy (the defaults appear in ``--help``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUNS = "runs"
PRETRAIN = f"{RUNS}/<entry>-s<seed>"          # python -m training pretrain (as help shows it)
EVAL_ROOT = f"{RUNS}/eval"                    # python -m training evaluate
EVAL = f"{EVAL_ROOT}/<entry>"
KSWEEP = f"{RUNS}/ksweep"                     # python -m training ksweep
KNN_CURVES_PNG = f"{RUNS}/knn_vs_views.png"   # python -m training curves
DEFAULT = f"{RUNS}/default"                   # RunOptions built in Python without an out folder


def pretrain_dir(entry: str, seed: int) -> str:
    """``runs/<entry>-s<seed>``: the run folder of ``python -m training pretrain``."""
    return PRETRAIN.replace("<entry>", entry).replace("<seed>", str(seed))


def eval_dir(entry: str) -> str:
    """``runs/eval/<entry>``: where ``python -m training evaluate`` writes for an entry."""
    return EVAL.replace("<entry>", entry)

# the files of a run folder
CHECKPOINT = "checkpoint.pt"
EPOCH_CHECKPOINT = "checkpoint-epoch{epoch}.pt"  # pretrain --keep-epochs: the checkpoint of each epoch end
LOG = "log.jsonl"
CURVES_PNG = "curves.png"
SUMMARY = "summary.json"


class RunLogError(ValueError):
    """A run's ``log.jsonl`` that cannot be read (a line other than the last is not JSON)."""


def read_log(path: str | Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl`` (the file read, then :func:`parse_log`).

    A half-written last line (the run is appending it) is left out; any other line that is not JSON
    is an error.

    Args:
        path: The log file.
        up_to_step: Keep only rows logged at or before this ``global_step`` (an epoch checkpoint of a run
            that went on).

    Returns:
        The rows, in order ([] when the file does not exist).

    Raises:
        RunLogError: a line other than the last is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        return []
    return parse_log(path.read_text(), path, up_to_step)


def parse_log(text: str, source: str | Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of a ``log.jsonl`` already read into ``text`` (:func:`read_log` for a file).

    Args:
        text: The file's contents.
        source: The file the text came from, for the error message.
        up_to_step: Keep only rows logged at or before this ``global_step``.

    Returns:
        The rows, in order; a half-written last line is left out.

    Raises:
        RunLogError: a line other than the last is not JSON.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                continue
            raise RunLogError(f"{source}: line {i + 1} is not JSON ({line[:60]!r}); is this a pretraining "
                              f"{LOG}?") from None
        if up_to_step is None or row.get("global_step", 0) <= up_to_step:
            rows.append(row)
    return rows
