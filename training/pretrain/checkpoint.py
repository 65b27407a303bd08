"""The training checkpoint: a typed, versioned schema, written atomically (survives a kill at any instant).

``checkpoint.pt`` is a ``torch.save``d dict (read back with ``weights_only=True``) whose keys are
the fields of :class:`TrainingCheckpoint` plus ``"format"``. ``python -m training pretrain`` writes
complete ones (everything a bit-identical resume needs); ``python -m training supervised`` writes
the weights-only subset, with ``recipe["loss"] == "supervised"``. Every reader goes through
:func:`load_checkpoint`, so a layout change is one new format version and one upgrade function in
``_UPGRADES``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rr_zoo.atomic import atomic_write

FORMAT = "rr_zoo.pretrain.v1"
# format version -> function turning a dict of that version into the current layout
_UPGRADES: dict[str, Any] = {FORMAT: lambda d: d}


class CheckpointError(ValueError):
    """A file that is not a training checkpoint this code can read; the message names its format."""


@dataclass
class TrainingCheckpoint:
    """Everything a training run saves: identity, weights, and (pretraining) the state to resume from."""

    entry: str                              # zoo entry the run trains
    architecture: str                       # backbone registry key
    dataset: str                            # training dataset registry key
    in_chans: int                           # image channels the backbone was built for
    recipe: dict[str, Any]                  # Recipe.to_dict() (supervised: its own fields, loss="supervised")
    backbone: dict[str, torch.Tensor]       # backbone state dict (pooled features, no classifier)
    relation: dict[str, torch.Tensor]       # relation-head state dict ({} for supervised)
    epoch: int                              # completed epochs
    step_in_epoch: int = 0                  # steps done in the current epoch
    global_step: int = 0
    options: dict[str, Any] | None = None   # RunOptions of the run (without ``extra``)
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None    # fp16 grad-scaler state
    accumulator: dict[str, float] | None = None  # running sums of the current epoch's log
    rng: dict[str, Any] | None = None       # {"aug": [generator state per rank], "torch": CPU RNG state}
    saved_because: str | None = None        # "epoch", "steps" or "signal"
    world_size: int = 1
    environment: dict[str, Any] = field(default_factory=dict)  # provenance of the run's start
    train_seconds: float = 0.0              # wall time of training steps, summed over resumes
    preprocessing: dict[str, Any] | None = None  # {"input_size", "mean", "std"} the weights were trained with
    init: dict[str, Any] | None = None      # what `pretrain --init` started from (pretrain.init; None: random init)
    segments: list[dict[str, Any]] = field(default_factory=list)  # per start or resume (loop._start_segment)

    @property
    def resumable(self) -> bool:
        """True when the file holds optimiser, RNG and data position (a pretraining checkpoint)."""
        return self.optimizer is not None and self.rng is not None and self.accumulator is not None

    def to_dict(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes (current format)."""
        return {"format": FORMAT, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "checkpoint") -> TrainingCheckpoint:
        """Read a saved dict of any known format version.

        Raises:
            CheckpointError: not a checkpoint dict, an unknown format version, or a required field missing.
        """
        if not isinstance(data, dict) or "format" not in data:
            raise CheckpointError(f"{source} is not a training checkpoint (no 'format' key); "
                                  "checkpoints are written by `python -m training pretrain` or `supervised`")
        version = data["format"]
        if version not in _UPGRADES:
            raise CheckpointError(f"{source} has format {version!r}, which this code cannot read (it reads "
                                  f"{', '.join(sorted(_UPGRADES))}); use the rr-zoo version that wrote it")
        data = _UPGRADES[version](dict(data))
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        absent = [n for n in required if n not in data]
        if absent:
            raise CheckpointError(f"{source} ({version}) lacks {absent}; it is incomplete or not a training checkpoint")
        return cls(**{k: v for k, v in data.items() if k in names and v is not None or k in required})

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to ``path``."""
        return atomic_save(self.to_dict(), path)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically (:func:`rr_zoo.atomic.atomic_write`): readers never see a partial file."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (:func:`rr_zoo.atomic.atomic_write`)."""
    return atomic_write(path, text)


def load_checkpoint(path: str | os.PathLike) -> TrainingCheckpoint:
    """Read a training checkpoint (``weights_only=True``: no pickled code runs) of any known format.

    Raises:
        FileNotFoundError: there is no checkpoint at ``path``.
        CheckpointError: the file is not a training checkpoint this code can read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one with `python -m training pretrain` "
                                "(or pass the checkpoint.pt of a run folder)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for files it cannot unpickle safely
        raise CheckpointError(f"{path} is not a readable training checkpoint ({type(exc).__name__}: {exc})") from exc
    return TrainingCheckpoint.from_dict(data, source=str(path))
