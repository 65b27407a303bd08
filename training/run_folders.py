"""Where the commands write by default: every run folder's name, relative to the working directory.

Imports nothing heavy (the defaults appear in ``--help``).
"""

from __future__ import annotations

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
