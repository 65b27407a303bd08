"""``python -m training export``: checkpoint -> Hub-ready folder (weights, config.json, model card, logs)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from rr_zoo.export_format import EXPORT_METADATA, write_export_folder
from rr_zoo.manifest import ZooEntry, load_manifest
from training.pretrain.checkpoint import TrainingCheckpoint, load_checkpoint
from training.release.model_card import model_card, weights_tag
from training.release.provenance import recipe_as_trained, run_provenance
from training.run_folders import CURVES_PNG, LOG, parse_log

_ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s'\"=])|(?<=folder:))/[^\s'\"]*")


def portable(value: Any, names: dict[str, str] | None = None) -> Any:
    """``value`` (str, or dicts and lists of them) with every absolute path replaced by its last component.

    An export folder is shared: it names a folder dataset, a checkpoint or a data root by its name
    (``folder:/home/me/photos`` -> ``folder:photos``), never by where it lay on the machine that made it.
    ``names`` maps known paths (which may hold spaces) to their replacement; other absolute paths are found
    as words starting with ``/`` (after a space, a quote, ``=`` or ``folder:``).
    """
    names = names or {}
    if isinstance(value, str):
        for path in sorted(names, key=len, reverse=True):
            value = value.replace(path, names[path])
        return _ABSOLUTE_PATH.sub(lambda m: PurePosixPath(m.group()).name or m.group(), value)
    if isinstance(value, dict):
        return {k: portable(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, names) for v in value]
    return value


def _known_paths(ckpt: TrainingCheckpoint, checkpoint: Path) -> dict[str, str]:
    """Absolute paths a checkpoint's records hold, each mapped to its name."""
    from training.data import canonical_dataset_name, from_files

    paths = [str(checkpoint.resolve()), str(checkpoint.resolve().parent)]
    if from_files(ckpt.dataset):
        paths.append(canonical_dataset_name(ckpt.dataset).split(":", 1)[1])
    source = (ckpt.init or {}).get("from")
    if source and Path(source).is_absolute():
        paths.append(source)
    return {p: Path(p).name or p for p in paths if Path(p).is_absolute()}


def views_seen(provenance: dict[str, Any]) -> int | None:
    """Views (images x K) the weights described by a provenance record were trained on, in all; None if unknown.

    Read from the record (``views_seen``); for older records, reckoned from the epochs, K, batch size and the
    size of a registered dataset's split when the run's command took whole epochs (no ``--steps-per-epoch``).
    """
    if provenance.get("views_seen") is not None:
        return int(provenance["views_seen"])
    recipe, epochs = provenance.get("recipe") or {}, provenance.get("epochs_trained")
    if provenance.get("init") or not epochs or "--steps-per-epoch" in provenance.get("command", "--steps-per-epoch"):
        return None
    from training.data import dataset_shape, from_files

    try:
        if from_files(recipe["dataset"]):
            return None
        images = dataset_shape(recipe["dataset"], recipe["split"])[2]
        return epochs * (images // recipe["batch_size"]) * recipe["batch_size"] * recipe["k"]
    except (KeyError, TypeError, ValueError):
        return None


def _views_record(ckpt: TrainingCheckpoint) -> dict[str, int | None]:
    """``views_seen`` (in all) and, for an ``--init`` run, ``views_added`` (this run) of a checkpoint."""
    k, batch = ckpt.recipe.get("k"), ckpt.recipe.get("batch_size")
    views = ckpt.global_step * batch * k if ckpt.global_step and k and batch else None
    if not ckpt.init:
        return {"views_seen": views}
    parent = views_seen(ckpt.init.get("provenance") or {})
    return {"views_seen": None if views is None or parent is None else parent + views, "views_added": views}


def make_sample_figures(ckpt: TrainingCheckpoint, entry: ZooEntry, out_dir: str | Path,
                        data_root: str | Path | None = None) -> list[Path]:
    """The relation-score heatmap and retrieval grid of a checkpoint's weights (``rr_zoo.viz``, as in the README).

    Images come from the checkpoint's dataset (``training.data.load_split``): its test split gives the
    heatmap images and retrieval queries, its train split the gallery (one split serves both when the
    dataset has only one). Writes ``relation_scores.png`` and ``retrieval.png`` into ``out_dir``.
    """
    from rr_zoo import viz
    from rr_zoo.models import build_backbone
    from rr_zoo.relation import RelationHead, relation_input_features
    from training.data import DataRequest, from_files, get_dataset_spec, load_split

    if not ckpt.relation:
        raise ValueError("the checkpoint has no relation head (a supervised run?): no relation-score figure to draw")
    pre, folder = ckpt.preprocessing, {}
    if pre and from_files(ckpt.dataset):  # a folder dataset is read as the run read it
        folder["request"] = DataRequest(image_size=int(pre["input_size"][-1]), channels=ckpt.in_chans,
                                        mean=tuple(pre["mean"]), std=tuple(pre["std"]))
    splits = get_dataset_spec(ckpt.dataset, **folder).splits
    train_split = "train" if "train" in splits else splits[0]
    test_split = next((s for s in ("test", "val") if s in splits), train_split)
    train = load_split(ckpt.dataset, train_split, root=data_root, **folder)
    test = train if test_split == train_split else load_split(ckpt.dataset, test_split, root=data_root, **folder)
    backbone = build_backbone(ckpt.architecture, in_chans=ckpt.in_chans)
    backbone.load_state_dict(ckpt.backbone)
    aggregation = ckpt.recipe.get("aggregation", entry.recipe["aggregation"])
    head = RelationHead(relation_input_features(backbone.num_features, aggregation),
                        hidden=ckpt.recipe.get("relation_hidden", 256))
    head.load_state_dict(ckpt.relation)
    paths = viz.entry_figures(entry.name, backbone.eval(), head.eval(), train, test, out_dir,
                              aggregation=aggregation, label=f"{entry.name}\n(epoch {ckpt.epoch})")
    return [paths["relation"], paths["retrieval"]]


def export_checkpoint(checkpoint: str | Path, out: str | Path, entry_name: str | None = None,
                      metrics: list[dict[str, Any]] | None = None, provenance: dict[str, Any] | None = None,
                      figures: list[str | Path] | None = None, sample_figures: bool = False,
                      data_root: str | Path | None = None, repo_id: str | None = None) -> Path:
    """Write an export folder from a pretraining checkpoint.

    The folder describes the weights it holds: config.json and the model card (:mod:`training.release.model_card`)
    carry the run's recipe, data, epochs, views seen, precision and ``--init`` parent, with every absolute
    path replaced by its name (:func:`portable`).

    Args:
        checkpoint: ``checkpoint.pt`` written by ``python -m training pretrain``.
        out: Destination folder (written atomically).
        entry_name: Zoo entry (default: the checkpoint's).
        metrics: Evaluated metrics to put in the card and config (each with its command).
        provenance: Provenance fields to set explicitly; the rest (command, code commit, versions,
            hardware, wall time, recipe) is taken from the checkpoint and its run folder.
        figures: PNG files (e.g. t-SNE, retrieval grid) to include and show in the card.
        sample_figures: Also draw the relation-score heatmap and retrieval grid of these weights
            (:func:`make_sample_figures`, images from the checkpoint's dataset under ``data_root``).
        data_root: Data folder for ``sample_figures``.
        repo_id: Hub repository (``org/name``) the folder will be published to, when known: the card shows
            its ``hf-hub:`` line and config.json records it.

    Returns:
        The folder.
    """
    ckpt = load_checkpoint(checkpoint)
    entry = load_manifest().get(entry_name or ckpt.entry)
    if ckpt.architecture != entry.architecture:
        raise ValueError(f"checkpoint is a {ckpt.architecture} but {entry.name} is a {entry.architecture}")
    run_dir = Path(checkpoint).parent
    names = _known_paths(ckpt, Path(checkpoint))
    provenance = portable({**run_provenance(ckpt, run_dir), **_views_record(ckpt), **(provenance or {})}, names)
    recipe, metrics = portable(recipe_as_trained(ckpt), names), portable(metrics or [], names)
    figures = [Path(f) for f in figures or []]
    if sample_figures:
        drawn = tempfile.TemporaryDirectory()  # deleted when this function returns
        figures += make_sample_figures(ckpt, entry, drawn.name, data_root)
    if len({f.name for f in figures}) != len(figures):
        raise ValueError(f"figures with the same file name: {sorted(f.name for f in figures)}")
    for f in figures:
        if f.suffix != ".png" or not f.is_file():
            raise FileNotFoundError(f"figure {f} is not a PNG file; pass the PNGs written by `evaluate`")
    extra_files = {f.name: f.read_bytes() for f in figures}
    extra_files.update(_run_logs(run_dir, ckpt.global_step))
    backbone = {k: v.contiguous() for k, v in ckpt.backbone.items()}
    relation = {k: v.contiguous() for k, v in ckpt.relation.items()}
    published = entry.published and _safetensors_sha256(backbone) == entry.file("backbone").sha256
    extra_config = {"recipe": recipe, "metrics": metrics,
                    "epochs_trained": provenance.get("epochs_trained", ckpt.epoch), "provenance": provenance}
    if repo_id:
        extra_config["repo_id"] = repo_id
    return write_export_folder(out, entry, backbone, relation, extra_files=extra_files, extra_config=extra_config,
                               preprocessing=ckpt.preprocessing,
                               tag=entry.tag if published else weights_tag(recipe["dataset"]),
                               card=lambda config: str(model_card(entry, config, extra_files, repo_id)))


def _run_logs(run_dir: Path, global_step: int) -> dict[str, bytes]:
    """log.jsonl and curves.png of the run up to ``global_step``: a checkpoint kept from an earlier epoch of a
    run that went on gets the log rows of its own epochs, and its curves drawn from them (drawn too when the
    run has not drawn them yet: it draws them when it finishes)."""
    log = run_dir / LOG
    if not log.is_file():  # no log to cut: the run's plot as it is, if any
        return {CURVES_PNG: (run_dir / CURVES_PNG).read_bytes()} if (run_dir / CURVES_PNG).is_file() else {}
    text = log.read_bytes()
    decoded = text.decode()
    rows = parse_log(decoded, log)
    kept = [row for row in rows if row.get("global_step", 0) <= global_step]
    lines = sum(1 for line in decoded.splitlines() if line.strip())
    whole = len(kept) == len(rows) == lines  # every row kept, and no half-written last line left out
    if whole and (run_dir / CURVES_PNG).is_file():
        return {LOG: text, CURVES_PNG: (run_dir / CURVES_PNG).read_bytes()}
    from training.pretrain.loop import plot_training_curves

    files = {LOG: "".join(json.dumps(row) + "\n" for row in kept).encode()}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / LOG).write_bytes(files[LOG])
        if plot_training_curves(Path(tmp) / LOG, Path(tmp) / CURVES_PNG) is not None:
            files[CURVES_PNG] = (Path(tmp) / CURVES_PNG).read_bytes()
    return files


def _safetensors_sha256(state: dict[str, Any]) -> str:
    """sha256 of the safetensors file ``write_export_folder`` writes for ``state``."""
    import hashlib

    from safetensors.torch import save

    return hashlib.sha256(save(state, metadata=EXPORT_METADATA)).hexdigest()


def export_metrics_from(path: str | Path | None) -> list[dict[str, Any]]:
    """Metrics list from a JSON file written by ``python -m training evaluate`` (or [] for None)."""
    if path is None:
        return []
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return data
    if "metric" in data:  # written by `python -m training evaluate`
        return [data["metric"]]
    if "metrics" in data:
        return data["metrics"]
    raise ValueError(f"{path}: not an evaluate result (no 'metric') nor a list of metrics")

