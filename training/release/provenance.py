"""Where a set of weights came from: the command, code commit, library versions, hardware, wall time.

``pretrain`` stores :func:`environment` in every checkpoint (kept across resumes) and
accumulates the training wall time; ``export`` turns a checkpoint into the
provenance record that the model card and ``weights_manifest.json`` carry
(:func:`run_provenance`).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any

import torch

from training.flags import command_flags
from training.pretrain.checkpoint import TrainingCheckpoint
from training.pretrain.recipes import Recipe, RunOptions
from training.run_folders import LOG, read_log
from training.runtime.machine import cpu_model

REPO_ROOT = Path(__file__).resolve().parents[2]


def code_commit(root: Path = REPO_ROOT) -> str:
    """The checkout's git commit (``-dirty`` when tracked files differ from it), or "unknown"."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that determine the numbers."""
    import importlib.metadata as md

    versions = {"python": platform.python_version(), "torch": str(torch.__version__)}  # with its build (+cpu, +cu130)
    for name in ("torchvision", "timm", "safetensors", "numpy", "rr-zoo"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def hardware(device: str = "cpu", threads: int | None = None) -> str:
    """One line naming the processor (or GPU) and the threads used."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = cpu_model()
    return f"{cpu}, {os.cpu_count()} logical CPUs, {threads or torch.get_num_threads()} torch thread(s)"


def environment(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """What a checkpoint records about the machine and code that started the run."""
    return {"code_commit": code_commit(), "versions": library_versions(), "hardware": hardware(device, threads),
            "date": datetime.date.today().isoformat()}


def pretrain_command(recipe: dict[str, Any], options: dict[str, Any]) -> str:
    """The explicit ``python -m training pretrain`` command of a run: every recipe field as a flag,
    then the run options that differ from their defaults (those recorded: see ``RunOptions``).

    ``--out`` is left to the user (the default is ``runs/<entry>-s<seed>``).
    """
    argv = ["pretrain", *command_flags(Recipe, recipe, keep_defaults=True), *command_flags(RunOptions, options)]
    return "python -m training " + shlex.join(argv)


def wall_time_s(log_path: Path, up_to_step: int | None = None) -> float | None:
    """Training wall time: the sum of the per-epoch seconds in a run's log.jsonl (up to ``up_to_step``)."""
    rows = read_log(log_path, up_to_step)
    return round(sum(r.get("seconds", 0.0) for r in rows), 1) or None


def recipe_as_trained(ckpt: TrainingCheckpoint) -> dict[str, Any]:
    """The recipe of the run that gives these weights: the checkpoint's, except that one taken at an epoch end
    of a longer run (its ``--epochs`` is where the run will stop) is what ``--epochs <epochs done>`` gives."""
    recipe = dict(ckpt.recipe)
    if ckpt.step_in_epoch == 0 and 0 < ckpt.epoch < recipe.get("epochs", 0):
        recipe["epochs"] = ckpt.epoch
    return recipe


def run_segments(ckpt: TrainingCheckpoint) -> list[dict[str, Any]]:
    """How the steps up to the checkpoint ran, one record per start or resume of the run that trained any of
    them: steps ``from_step`` to ``to_step``, their ``train_seconds``, and device, threads, precision, compiled,
    the other tasks runnable when the segment started, and when it started. [] for runs from before this was
    recorded; a run resumed by this code from one that recorded none gets a first segment that says so."""
    segments = [dict(s) for s in ckpt.segments if s.get("from_step", 0) < ckpt.global_step]
    if segments and segments[0]["from_step"] > 0:  # resumed by this code from a run that recorded none
        segments.insert(0, {"from_step": 0, "train_seconds_at_start": 0.0,
                            "note": "not recorded (trained by code from before segments were recorded)"})
    for seg, nxt in zip(segments, [*segments[1:], None]):
        seg["to_step"] = nxt["from_step"] if nxt else ckpt.global_step
        end_seconds = nxt.get("train_seconds_at_start") if nxt else ckpt.train_seconds
        start_seconds = seg.pop("train_seconds_at_start", None)
        seg["train_seconds"] = (None if end_seconds is None or start_seconds is None
                                else round(end_seconds - start_seconds, 1))
    return segments


def run_provenance(ckpt: TrainingCheckpoint, run_dir: Path,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance record of a pretraining checkpoint (``overrides`` win, e.g. a hardware note).

    Args:
        ckpt: Loaded ``checkpoint.pt`` (:func:`training.pretrain.checkpoint.load_checkpoint`).
        run_dir: Its run folder (for log.jsonl).
        overrides: Fields to set explicitly.

    Returns:
        Dict with command, code_commit, versions, hardware, wall_time_s, date, recipe, precision, compiled
        (when every part of the run agrees), segments (how each start or resume ran), epochs_trained (a
        checkpoint from an epoch end of a longer run records ``--epochs`` as the epochs done); for a
        run started with ``--init`` also ``init`` (what it started from, its sha256, its epochs and its own
        provenance, nested) and ``epochs_added``, with ``epochs_trained`` counting the source's epochs too.
    """
    env = ckpt.environment
    options = ckpt.options or {}
    recipe = recipe_as_trained(ckpt)
    record = {
        "command": pretrain_command(recipe, options),
        "code_commit": env.get("code_commit", "unknown"),
        "versions": env.get("versions") or library_versions(),
        "hardware": env.get("hardware") or hardware(options.get("device", "cpu"), options.get("num_threads")),
        "wall_time_s": (round(ckpt.train_seconds, 1) if ckpt.train_seconds
                        else wall_time_s(run_dir / LOG, ckpt.global_step)),
        "date": env.get("date") or datetime.date.today().isoformat(),
        "recipe": {k: v for k, v in recipe.items() if k not in ("entry",)},
        "epochs_trained": ckpt.epoch,
        # the precision the run trained in (``auto`` is resolved before it is recorded; runs from
        # before ``auto`` existed record their explicit value, default fp32)
        "precision": options.get("precision", "fp32"),
    }
    segments = run_segments(ckpt)
    if segments:
        record["segments"] = segments
    compiled = {s["compiled"] for s in segments if "compiled" in s}
    if segments and len(compiled) == 1 and all("compiled" in s for s in segments):
        record["compiled"] = compiled.pop()  # every segment ran so
    elif not segments and options.get("compile") in ("on", "off"):  # how --compile auto resolved at the last start
        record["compiled"] = options["compile"] == "on"
    # mixed or partly unrecorded: left out, the segments say
    if ckpt.init:
        prior = ckpt.init.get("epochs")
        record.update(init=ckpt.init, epochs_added=ckpt.epoch,
                      epochs_trained=None if prior is None else prior + ckpt.epoch)
    record.update(overrides or {})
    return record
