"""One evaluation as a user asks for it: a protocol over seeds, its statistics, command and results file.

:func:`evaluate` is what ``python -m training evaluate`` runs: it picks the dataset (the protocol's,
the published metric's, or the one the weights were trained on), runs the protocol once per seed,
writes ``<out>/<protocol>_<dataset>[_<bound>].json`` with mean ± std and a manifest metric record
whose command reproduces it; :meth:`EvaluationResult.check` compares it with the manifest (``--check``).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rr_zoo.manifest import ZooEntry, load_manifest
from training import run_folders
from training.data import dataset_label, from_files, get_dataset_spec
from training.evaluate import figures, finetune, knn, linear  # noqa: F401  (register their protocols)
from training.evaluate.protocols import EvalSpec, get_protocol, run_protocol
from training.evaluate.source import load_backbone
from training.flags import command_flags
from training.pretrain.checkpoint import atomic_write_text, load_checkpoint
from training.pretrain.recipes import RecipeError


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of :func:`evaluate` (``to_dict()`` is the results JSON)."""

    protocol: str
    entry: str                    # zoo entry name
    source: str                   # which weights, in words
    dataset: str
    seeds: list[int]
    runs: list[dict[str, Any]]    # one protocol result per seed
    value: float | None           # mean over seeds, % (None: a figure-only protocol)
    std: float | None             # over seeds (None: one seed)
    metric: dict[str, Any] | None  # manifest / model-card record with the reproducing command
    path: Path                    # the results JSON
    split: str | None = None      # how a folder dataset's train/test split was made, in words

    def to_dict(self) -> dict[str, Any]:
        """The results JSON written to :attr:`path`."""
        summary = {"protocol": self.protocol, "entry": self.entry, "source": self.source, "dataset": self.dataset,
                   "seeds": self.seeds, "runs": self.runs, "value": self.value, "std": self.std}
        if self.runs and self.runs[0].get("input"):
            summary["input"] = self.runs[0]["input"]  # how the images were resized, in what precision
        if self.split is not None:
            summary["split"] = self.split
        if self.metric is not None:
            summary["metric"] = self.metric
        return summary

    @property
    def figures(self) -> list[str]:
        """PNG files the runs wrote."""
        return [r["png"] for r in self.runs if r.get("png")]

    def check(self, tolerance: float = 0.5) -> int:
        """Compare with the entry's published metric (prints one line); 0 if within ``tolerance`` points, else 1."""
        return check_against_manifest(load_manifest().get(self.entry), self.protocol, self.dataset, self.value,
                                      tolerance)

    def table(self) -> str:
        """A one-row Markdown table of the result."""
        std = f" ± {self.std:.2f}" if self.std is not None else ""
        value = f"{self.value:.2f}{std}" if self.value is not None else "(figure only)"
        return ("| protocol | dataset | source | seeds | accuracy (%) |\n|---|---|---|---|---|\n"
                f"| {self.protocol} | {self.dataset} | {self.source} | {len(self.seeds)} | {value} |")


def evaluate(protocol: str, entry: str | None = None, weights: str | None = None, seeds: list[int] | None = None,
             options: dict[str, Any] | None = None, check: bool = False) -> EvaluationResult:
    """Run a protocol once per seed and write the results JSON.

    Args:
        protocol: Registered protocol name.
        entry: Zoo entry (architecture, preprocessing; its published weights unless ``weights``).
        weights: None, ``"random"``, a training checkpoint ``.pt``, or a safetensors file / export folder.
        seeds: Classifier (and random-init) seeds; default 0, or with ``check`` the published ones.
        options: :class:`EvalSpec` fields as given on the command line (``dataset`` and ``out`` may be
            None: the protocol's / published / trained-on dataset, and ``runs/eval/<entry>``).
        check: Evaluate as the entry's published metric for this protocol (and dataset) was: its
            seeds and dataset unless given (compare with :meth:`EvaluationResult.check`).

    Raises:
        RecipeError: an invalid option, protocol, or ``check`` without a published metric to compare with.
    """
    options = dict(options or {})
    proto = get_protocol(protocol)
    published = published_metric(entry, protocol, options.get("dataset")) if check else None
    seeds = list(seeds or (published or {}).get("seeds") or [0])
    source = load_backbone(entry, weights, seed=seeds[0])
    dataset = (options.get("dataset") or proto.dataset or (published or {}).get("dataset") or source.trained_on)
    out = options.get("out") or run_folders.eval_dir(source.entry.name)
    spec = EvalSpec(**{**options, "dataset": dataset, "out": out, "seed": seeds[0]})
    dataset = spec.dataset  # canonical: folder:/absolute/path
    split = get_dataset_spec(dataset, source.data_request()).notes.get("split") if from_files(dataset) else None
    results = []
    for seed in seeds:
        if weights == "random" and seed != seeds[0]:  # only a random init depends on the seed
            source = load_backbone(entry, weights, seed=seed)
        results.append(run_protocol(protocol, source, dataclasses.replace(spec, seed=seed)))
    values = [r["value"] for r in results if r.get("value") is not None]
    value = statistics.mean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else None
    metric = None
    if values:
        command = evaluate_command(protocol, entry, weights, dataset, seeds, options)
        if source.baseline == "supervised":  # the bound's checkpoint is made by its own command: record both
            command = supervised_command(source.entry.name, weights, options.get("data_root")) + " && " + command
        metric = {"task": protocol, "dataset": dataset, "value": round(value, 2),
                  "std": None if std is None else round(std, 2), "seeds": seeds, "command": command, "unit": "%"}
        if results[0].get("metric_name"):
            metric["note"] = results[0]["metric_name"]
        fed = results[0].get("input") or {}
        if fed.get("resize", "none") != "none":
            metric["note"] = f"{metric.get('note', protocol)}; images {fed['resize']}"
        if fed.get("resize", "none") != "none" or fed.get("precision", "fp32") != "fp32":
            metric["input"] = fed  # as fed: resized, or in bf16 (fp32 at the stored side says nothing)
        if source.baseline:
            metric["baseline"] = source.baseline
    suffix = f"_{source.baseline}" if source.baseline else ""  # bounds never overwrite the entry's result
    path = Path(out) / f"{protocol}_{dataset_label(dataset)}{suffix}.json"
    result = EvaluationResult(protocol, source.entry.name, source.label, dataset, seeds, results, value, std,
                              metric, path, split)
    atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def evaluate_command(protocol: str, entry: str | None, weights: str | None, dataset: str, seeds: list[int],
                     options: dict[str, Any]) -> str:
    """The ``python -m training evaluate`` command that reproduces an evaluation (``--out`` left out)."""
    argv = ["evaluate", protocol]
    if entry and weights is None:  # published weights: name the release, which never changes (the default may move)
        zoo_entry = load_manifest().get(entry)
        entry = zoo_entry.release_name(zoo_entry.release.tag) if zoo_entry.published else entry
    if entry:
        argv += ["--entry", entry]
    if weights:
        argv += ["--weights", weights]
    argv += ["--dataset", dataset, "--seeds", *map(str, seeds)]
    argv += command_flags(EvalSpec, options, skip=("dataset", "seed"))
    return "python -m training " + shlex.join(argv)


def supervised_command(entry: str, checkpoint: str, data_root: str | None) -> str:
    """The ``python -m training supervised`` command that trained a supervised-bound checkpoint."""
    r = load_checkpoint(checkpoint).recipe
    argv = ["supervised", "--entry", entry, "--dataset", r["dataset"], "--epochs", str(r["epochs"]),
            "--seed", str(r["seed"]), "--out", str(Path(checkpoint).parent)]
    if r.get("precision", "fp32") != "fp32":
        argv += ["--precision", r["precision"]]
    if data_root is not None:
        argv += ["--data-root", data_root]
    return "python -m training " + shlex.join(argv)


def own_metrics(entry: ZooEntry, protocol: str, dataset: str | None = None) -> list[dict]:
    """The entry's published metrics of a protocol (on a dataset, if given), bounds excluded."""
    return [m for m in entry.metrics if m["task"] == protocol and not m.get("baseline")
            and (dataset is None or m["dataset"] == dataset)]


def published_metric(entry: str | None, protocol: str, dataset: str | None = None) -> dict[str, Any]:
    """For ``--check``: the entry's published metric for this protocol (and dataset, if given)."""
    if not entry:
        raise RecipeError("--check compares with a zoo entry's published metric: pass --entry NAME")
    zoo_entry = load_manifest().get(entry)
    found = own_metrics(zoo_entry, protocol, dataset)
    if not found:
        on = f" on {dataset}" if dataset else ""
        have = sorted({f"{m['task']} on {m['dataset']}" for m in zoo_entry.metrics if not m.get("baseline")})
        raise RecipeError(f"--check: {zoo_entry.name} has no published {protocol} metric{on}; "
                          f"it has: {', '.join(have) or 'none'}")
    return found[0]


def check_against_manifest(entry: ZooEntry, protocol: str, dataset: str, value: float | None,
                           tolerance: float) -> int:
    """Print the measured value next to the published one; 0 if within ``tolerance`` points, else 1."""
    published = own_metrics(entry, protocol, dataset)
    if not published or value is None:
        print(f"--check: {entry.name} has no published {protocol} metric on {dataset}")
        return 1
    expected = published[0]["value"]
    ok = abs(value - expected) <= tolerance
    verdict = "OK" if ok else "MISMATCH"
    print(f"--check: measured {value:.2f}, manifest {expected:.2f} ({published[0]['command']}), "
          f"tolerance ±{tolerance}: {verdict}")
    return 0 if ok else 1
