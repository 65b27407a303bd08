"""``python -m training export``: checkpoint -> Hub-ready folder (weights, config.json, model card, logs)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rr_zoo.export_format import write_export_folder
from rr_zoo.manifest import ZooEntry, load_manifest
from training.checkpoint import TrainingCheckpoint, load_checkpoint
from training.provenance import run_provenance


def _yaml_list(items: list[str]) -> str:
    return "".join(f"\n- {i}" for i in items)


def model_card(entry: ZooEntry, recipe: dict[str, Any], metrics: list[dict[str, Any]],
               provenance: dict[str, Any], figures: tuple[str, ...] = (),
               preprocessing: dict[str, Any] | None = None) -> str:
    """Model card (README.md) with Hub YAML metadata, usage, recipe, metrics with their commands.

    ``preprocessing``: what the weights were trained with, when it differs from the entry's (a folder dataset).
    """
    pre = {**entry.preprocessing, **(preprocessing or {})}
    usage = (f'`rr_zoo.get_transform("{entry.name}")`' if pre == entry.preprocessing
             else f'`rr_zoo.get_transform("{entry.name}", weights=PATH)`, PATH: this folder; '
                  f'`timm.create_model("local-dir:PATH")` uses it too')
    chain = provenance.get("init")
    continued = ""
    if chain:
        digest = next(iter(chain.get("sha256", {}).values()), "n/a")
        continued = (f"\nContinued pretraining: started from the {chain['kind']} `{chain['from']}` (sha256 {digest}, "
                     f"{chain.get('epochs', 'n/a')} epochs), then {provenance.get('epochs_added')} more epochs here "
                     f"({provenance.get('epochs_trained', 'n/a')} in all); `provenance.init` in config.json has "
                     "the whole chain.\n")
    index = ""
    if metrics:
        results = "".join(
            f"\n      - task:\n          type: image-classification\n          name: {m['task']}"
            f"\n        dataset:\n          name: {m['dataset']}\n          type: {m['dataset']}"
            f"\n        metrics:\n          - type: accuracy\n            value: {m['value']}"
            f"\n            name: {m['task']} accuracy ({m['dataset']})"
            for m in metrics if not m.get("baseline"))
        index = f"\nmodel-index:\n  - name: {entry.name}\n    results:{results}"
    def fmt(m: dict[str, Any]) -> str:
        std = f" ± {m['std']:.2f}" if m.get("std") is not None else ""
        bound = f" ({m['baseline'].replace('_', ' ')} bound, same backbone)" if m.get("baseline") else ""
        task = m["task"] + bound
        return f"| {task} | {m['dataset']} | {m['value']:.2f}{std} | `{m['command']}` |"

    images = "".join(f"\n![{name}]({name})\n" for name in ("curves.png", *figures))
    rows = "\n".join(fmt(m) for m in metrics) or "| – | – | – | not evaluated yet |"
    paper = "\n".join(f"- {p['task']} on {p['dataset']}: {p['value']} ({p['source']})" for p in entry.paper_results)
    return f"""---
license: {entry.license}
library_name: timm
tags:{_yaml_list(["image-feature-extraction", "timm", "self-supervised", "relational-reasoning", "rr-zoo"])}
datasets:{_yaml_list([recipe['dataset']])}{index}
---
# {entry.name} (`{entry.timm_name}`)

{entry.description}

Self-supervised relational reasoning (Patacchiola & Storkey, NeurIPS 2020, {', '.join(entry.paper_ids)}):
the backbone learns by telling apart pairs of augmented views of the same image from pairs of
different images, scored by a relation head (included as `relation_head.safetensors`).

## Use

```python
import timm, rr_zoo  # rr_zoo registers the zoo with timm
model = timm.create_model("{entry.name}", pretrained=True)   # frozen {entry.num_features}-d feature extractor
# or: torch.hub.load("<owner>/rr-zoo", "{entry.name}")
# or, from this folder: timm.create_model("local-dir:PATH") / timm.create_model("hf-hub:{entry.hub['repo_id']}")
```

Preprocessing: input {tuple(pre['input_size'])}, mean {tuple(pre['mean'])},
std {tuple(pre['std'])} ({usage}).

## Training recipe (these weights)

```json
{json.dumps(recipe, indent=2)}
```

Provenance: `{provenance.get('command', 'n/a')}` — code commit {provenance.get('code_commit', 'n/a')},
hardware {provenance.get('hardware', 'n/a')}, wall time {provenance.get('wall_time_s', 'n/a')} s.
{continued}
## Results (each reproduced by the command beside it)

| protocol | dataset | accuracy (%) | command |
|---|---|---|---|
{rows}

Paper, same backbone and dataset (paper-scale recipe):
{paper or '- (not reported in the paper)'}
{images}"""


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
                      data_root: str | Path | None = None) -> Path:
    """Write an export folder from a pretraining checkpoint.

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

    Returns:
        The folder.
    """
    ckpt = load_checkpoint(checkpoint)
    entry = load_manifest().get(entry_name or ckpt.entry)
    if ckpt.architecture != entry.architecture:
        raise ValueError(f"checkpoint is a {ckpt.architecture} but {entry.name} is a {entry.architecture}")
    run_dir = Path(checkpoint).parent
    provenance = run_provenance(ckpt, run_dir, provenance)
    figures = [Path(f) for f in figures or []]
    if sample_figures:
        drawn = tempfile.TemporaryDirectory()  # deleted when this function returns
        figures += make_sample_figures(ckpt, entry, drawn.name, data_root)
    if len({f.name for f in figures}) != len(figures):
        raise ValueError(f"figures with the same file name: {sorted(f.name for f in figures)}")
    for f in figures:
        if f.suffix != ".png" or not f.is_file():
            raise FileNotFoundError(f"figure {f} is not a PNG file; pass the PNGs written by `evaluate`")
    card = model_card(entry, ckpt.recipe, metrics or [], provenance, tuple(f.name for f in figures),
                      ckpt.preprocessing)
    extra_files = {"README.md": card.encode(), **{f.name: f.read_bytes() for f in figures}}
    for name in ("log.jsonl", "curves.png"):
        if (run_dir / name).is_file():
            extra_files[name] = (run_dir / name).read_bytes()
    backbone = {k: v.contiguous() for k, v in ckpt.backbone.items()}
    relation = {k: v.contiguous() for k, v in ckpt.relation.items()}
    return write_export_folder(out, entry, backbone, relation, extra_files=extra_files,
                               extra_config={"recipe": ckpt.recipe, "metrics": metrics or [],
                                             "epochs_trained": provenance.get("epochs_trained", ckpt.epoch),
                                             "provenance": provenance},
                               preprocessing=ckpt.preprocessing)


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

