"""The model card (``README.md``) of an export folder, built with ``huggingface_hub``.

The metadata is a :class:`huggingface_hub.ModelCardData` (license, ``library_name: timm``, tags,
datasets, ``model-index`` of :class:`huggingface_hub.EvalResult`), so ``ModelCard.load(path)`` reads every
metric of the weights back. The card is made from the folder's ``config.json`` (:func:`model_card`), so
card and config describe the same weights: the data, epochs, K, views seen, precision and ``--init``
parent of the run that made them. The zoo entry's title and description are used only when the folder holds
that entry's published files (same sha256); a figure is linked only when it is in the folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from rr_zoo.manifest import ZooEntry
from rr_zoo.models import get_architecture
from training.run_folders import CURVES_PNG

TAGS = ("image-feature-extraction", "timm", "self-supervised", "relational-reasoning", "rr-zoo")
FOLDER_PREFIX = "folder:"  # how an export names a folder dataset: folder:<folder name>
PICTURES = (CURVES_PNG,)  # pictures a run folder contributes, shown first when present


def published_release(entry: ZooEntry, config: dict[str, Any]) -> str | None:
    """Tag of the entry's release whose backbone file the folder holds (same sha256), or None."""
    files = {f["role"]: f["sha256"] for f in config.get("rr_zoo", {}).get("files", [])}
    for tag, release in entry.releases.items():
        if files.get("backbone") and any(f.role == "backbone" and f.sha256 == files["backbone"] for f in release.files):
            return tag
    return None


def is_published_release(entry: ZooEntry, config: dict[str, Any]) -> bool:
    """True when the folder's backbone file is one of the entry's published releases (same sha256)."""
    return published_release(entry, config) is not None


def weights_tag(dataset: str) -> str:
    """timm-style pretrained tag of weights trained on ``dataset`` (``folder:photos`` -> ``folder_photos``)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in dataset.lower()).strip("_") or "data"


def _dataset_metadata(dataset: str) -> tuple[str, str]:
    """(type, name) of a dataset for an eval result: a folder is the Hub's ``imagefolder`` type, by its name."""
    if dataset.startswith(FOLDER_PREFIX):
        return "imagefolder", dataset
    return dataset, dataset


def eval_results(metrics: Iterable[dict[str, Any]]) -> list[EvalResult]:
    """The ``model-index`` results of the weights' own metrics.

    A bound (``baseline``: random init, supervised) measures other weights with the same backbone; it stays in
    the card's table and config.json but is not a result of these weights. Each metric's name starts with its
    protocol (``knn: weighted cosine 20-NN accuracy ...``): the Hub groups results by task type and dataset, so
    the protocol is kept with the metric.
    """
    results = []
    for m in metrics:
        if m.get("baseline"):
            continue
        dataset_type, dataset_name = _dataset_metadata(m["dataset"])
        results.append(EvalResult(
            task_type="image-classification" if m["task"] != "retrieval" else "image-feature-extraction",
            dataset_type=dataset_type, dataset_name=dataset_name,
            metric_type="precision" if m["task"] == "retrieval" else "accuracy", metric_value=m["value"],
            metric_name=f"{m['task']}: {m.get('note') or 'accuracy'}"))
    return results


def _views(n: int | None) -> str:
    return "not recorded" if not n else f"{n:,}"


def _parent(init: dict[str, Any]) -> str:
    digest = next(iter(init.get("sha256", {}).values()), None)
    sha = f", sha256 {digest}" if digest else ""
    return f"{init['kind']} `{init['from']}` ({init.get('epochs', 'unknown')} epochs{sha})"


def _training_rows(recipe: dict[str, Any], prov: dict[str, Any]) -> list[tuple[str, str]]:
    init = prov.get("init")
    epochs = prov.get("epochs_trained", recipe.get("epochs"))
    if init:
        before = init.get("epochs")
        epochs = (f"{epochs} in all: {before} before, {prov.get('epochs_added')} in this run" if epochs is not None
                  else f"{prov.get('epochs_added')} in this run, after the parent's (not recorded)")
        views = f"{_views(prov.get('views_seen'))} in all, {_views(prov.get('views_added'))} in this run"
    else:
        views = _views(prov.get("views_seen"))
    rows = [("data", f"`{recipe['dataset']}`, split `{recipe.get('split', 'train')}`"),
            ("epochs", str(epochs)),
            ("K (augmented views per image)", str(recipe.get("k", "n/a"))),
            ("batch", f"{recipe.get('batch_size', 'n/a')} images per step"),
            ("views seen (images x K)", views),
            ("precision", str(prov.get("precision", "not recorded"))),
            ("started from", _parent(init) if init else "random initialisation"),
            ("command", f"`{prov['command']}`" if prov.get("command") else "not recorded"),
            ("code commit", str(prov.get("code_commit", "not recorded"))),
            ("hardware", str(prov.get("hardware", "not recorded"))),
            ("training wall time", "not recorded" if prov.get("wall_time_s") is None else f"{prov['wall_time_s']} s")]
    return rows


def _metric_row(m: dict[str, Any]) -> str:
    std = f" ± {m['std']:.2f}" if m.get("std") is not None else ""
    bound = f" ({m['baseline'].replace('_', ' ')} bound, same backbone)" if m.get("baseline") else ""
    return f"| {m['task']}{bound} | {m['dataset']} | {m['value']:.2f}{std} | `{m['command']}` |"


def _usage(entry: ZooEntry, published: bool, repo_id: str | None, same_preprocessing: bool) -> str:
    features = f"frozen {entry.num_features}-d feature extractor"
    lines = ["import timm, rr_zoo  # importing rr_zoo registers its architectures with timm"]
    if published:
        lines.append(f'model = timm.create_model("{entry.weights_name}", pretrained=True)  # {features}')
    if repo_id:
        lines.append(f'model = timm.create_model("hf-hub:{repo_id}", pretrained=True)')
    lines += ['folder = "."  # the folder holding this README, model.safetensors and config.json',
              f'model = timm.create_model("local-dir:" + folder, pretrained=True)  # {features}',
              f'model = rr_zoo.create_model("{entry.name}", weights=folder)  # the same weights',
              f'transform = rr_zoo.get_transform("{entry.name}"{"" if same_preprocessing else ", weights=folder"})'
              "  # the preprocessing below"]
    return "\n".join(lines)


def model_card(entry: ZooEntry, config: dict[str, Any], files: Iterable[str] = (),
               repo_id: str | None = None) -> ModelCard:
    """The model card of an export folder, from its ``config.json``.

    Args:
        entry: The zoo entry whose architecture and relation head the weights have.
        config: The folder's parsed ``config.json`` (recipe, metrics, provenance, preprocessing, files).
        files: Names of the other files in the folder; the PNGs among them are shown (``curves.png`` first).
        repo_id: The Hub repository the folder is published to, when known (its ``hf-hub:`` line is shown).

    Returns:
        The card; ``str(card)`` is the README.md text, and ``ModelCard.load`` of it gives the same metadata.
    """
    section = config.get("rr_zoo", {})
    recipe, prov = section.get("recipe") or {}, section.get("provenance") or {}
    metrics = section.get("metrics") or []
    tag = published_release(entry, config)
    published = tag is not None
    if published:
        entry = entry.with_release(tag)
    if published and repo_id is None:
        repo_id = entry.hub.get("repo_id")
    cfg = config.get("pretrained_cfg", {})
    dataset = recipe.get("dataset", entry.dataset)
    model_name = (entry.release_name(tag) if published
                  else (repo_id or f"{entry.arch}.{cfg.get('tag') or weights_tag(dataset)}"))
    results = eval_results(metrics)
    data = ModelCardData(
        license=entry.license, library_name="timm", tags=list(TAGS),
        datasets=None if dataset.startswith(FOLDER_PREFIX) else [dataset],
        base_model=_hub_base_model((prov.get("init") or {}).get("from")),
        model_name=model_name if results else None, eval_results=results or None)

    arch = get_architecture(entry.architecture)
    if published:
        default = (f"It is the entry's default release: `{entry.name}` and `{entry.timm_name}` load it."
                   if tag == entry.default_release else
                   f"The entry's default release is `{entry.release_name(entry.default_release)}` (what `{entry.name}` "
                   f"loads); this one loads by its own name.")
        title = f"{entry.release_name(tag)}"
        about = (f"{entry.description} Release `{tag}` of the zoo entry `{entry.name}`: "
                 f"{entry.releases[tag].summary()}. {default}")
    else:
        title = f"{arch.description} pretrained by relational reasoning on `{dataset}`"
        about = (f"These weights were trained by the run described below (its data, epochs, K and precision); "
                 f"they are not the published weights of the zoo entry `{entry.name}`, whose architecture, "
                 f"relation head and default preprocessing they share.")
    pre = {k: cfg.get(k, v) for k, v in entry.preprocessing.items()}
    same_pre = all(list(pre[k]) == list(entry.preprocessing[k]) for k in ("input_size", "mean", "std"))
    pictures = [name for name in PICTURES if name in files]
    pictures += sorted(name for name in files if name.endswith(".png") and name not in PICTURES)
    images = "".join(f"\n![{name}]({name})\n" for name in pictures)
    table = "\n".join(f"| {k} | {v} |" for k, v in _training_rows(recipe, prov))
    rows = "\n".join(_metric_row(m) for m in metrics) or "| – | – | – | not evaluated yet |"
    paper = "\n".join(f"- {p['task']} on {p['dataset']}: {p['value']} ({p['source']})" for p in entry.paper_results)
    body = f"""# {title}

{about}

Self-supervised relational reasoning (Patacchiola & Storkey, NeurIPS 2020, {', '.join(entry.paper_ids)}):
the backbone ({arch.description}, {entry.num_params:,} parameters) learns by telling apart pairs of
augmented views of the same image from pairs of different images, scored by a relation head (included as
`relation_head.safetensors`).

## Use

```python
{_usage(entry, published, repo_id, same_pre)}
```

Preprocessing: input {tuple(pre['input_size'])}, mean {tuple(pre['mean'])}, std {tuple(pre['std'])},
{pre.get('interpolation', 'bilinear')} interpolation, crop_pct {pre.get('crop_pct', 1.0)}.

## Training (these weights)

| | |
|---|---|
{table}

Recipe as run (`rr_zoo.recipe` and `rr_zoo.provenance` in config.json hold it, and the whole `--init` chain):

```json
{json.dumps(recipe, indent=2)}
```

## Results (each reproduced by the command beside it)

| protocol | dataset | value (%) | command |
|---|---|---|---|
{rows}

The paper's results for this backbone on {entry.dataset} (its recipe, not these weights):
{paper or '- (not reported in the paper)'}
{images}"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _hub_base_model(name: str | None) -> str | None:
    """The Hub repository of a parent that is a zoo entry published on the Hub (pinned revision), else None."""
    if not name:
        return None
    from rr_zoo.manifest import load_manifest

    try:
        parent = load_manifest().get(name)
    except KeyError:
        return None
    hub = parent.hub or {}
    return hub.get("repo_id") if parent.published and hub.get("revision") else None
