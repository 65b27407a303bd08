"""Model cards of export folders (``training/release/model_card.py``): built with huggingface_hub, read back by
``ModelCard.load``, describing the weights in the folder. A folder dataset's card: tests/test_folder_data.py."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

import rr_zoo
from training.pretrain.checkpoint import TrainingCheckpoint
from training.release.export import export_checkpoint, portable

PUBLISHED = [name for name in rr_zoo.list_models() if rr_zoo.get_entry(name).published]
RECORDED = ("command", "code_commit", "versions", "hardware", "wall_time_s", "date")  # what a checkpoint cannot hold


def _published_checkpoint(name: str, path) -> TrainingCheckpoint:
    """A checkpoint holding an entry's published files, with the recipe and epochs its provenance records."""
    entry = rr_zoo.get_entry(name)
    prov = entry.provenance
    ckpt = TrainingCheckpoint(
        entry=name, architecture=entry.architecture, dataset=prov["recipe"]["dataset"], in_chans=entry.in_chans,
        recipe={"entry": name, **prov["recipe"]}, backbone=load_file(entry.bundled_dir / "model.safetensors"),
        relation=load_file(entry.bundled_dir / "relation_head.safetensors"), epoch=prov["epochs_trained"],
        options={"precision": prov["precision"]})
    ckpt.save(path)
    return ckpt


@pytest.mark.parametrize("name", PUBLISHED)
def test_export_of_a_published_release_carries_its_card(name, tmp_path):
    entry = rr_zoo.get_entry(name)
    _published_checkpoint(name, tmp_path / "run" / "checkpoint.pt")
    out = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "export", metrics=list(entry.metrics),
                            provenance={k: entry.provenance[k] for k in RECORDED})
    config = json.loads((out / "config.json").read_text())
    assert {f["sha256"] for f in config["rr_zoo"]["files"]} == {f.sha256 for f in entry.files}
    assert config["pretrained_cfg"]["tag"] == entry.tag

    card = ModelCard.load(out / "README.md")
    recipe = entry.provenance["recipe"]
    assert (card.data.license, card.data.library_name) == (entry.license, "timm")
    release = entry.release_name(entry.default_release)
    assert card.data.datasets == [recipe["dataset"]] and card.data.model_name == release
    own = [m for m in entry.metrics if not m.get("baseline")]
    assert own, f"{name} is published without a metric of its own"
    found = sorted((r.metric_name.split(":")[0], r.dataset_name, r.metric_value) for r in card.data.eval_results)
    assert found == sorted((m["task"], m["dataset"], m["value"]) for m in own)
    text = card.text
    for m in entry.metrics:  # the bounds too, in the table, each with its command
        assert f"`{m['command']}`" in text
    assert entry.description in text and f'timm.create_model("{release}", pretrained=True)' in text
    assert f"It is the entry's default release: `{name}`" in text
    assert f'timm.create_model("hf-hub:{entry.hub["repo_id"]}", pretrained=True)' in text
    assert f"| precision | {entry.provenance['precision']} |" in text and entry.provenance["command"] in text
    assert f"| K (augmented views per image) | {recipe['k']} |" in text
    assert "curves.png" not in text  # no such file in the folder: not linked
    assert "<owner>" not in text and "| started from | random initialisation |" in text


def test_an_export_names_its_repository_only_when_told(tmp_path):
    """Weights that are not a published release: no zoo alias, no Hub line; --repo-id adds it."""
    name = PUBLISHED[0]
    ckpt = _published_checkpoint(name, tmp_path / "run" / "checkpoint.pt")
    ckpt.backbone = {k: v + 1 if v.is_floating_point() else v for k, v in ckpt.backbone.items()}
    ckpt.save(tmp_path / "run" / "checkpoint.pt")
    (tmp_path / "run" / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # the run folder's plot: linked
    plain = ModelCard.load(export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "plain") / "README.md")
    assert "hf-hub:" not in plain.text and f'"{name}", pretrained=True' not in plain.text
    assert rr_zoo.get_entry(name).description not in plain.text and "![curves.png](curves.png)" in plain.text
    assert plain.data.eval_results is None and plain.data.model_name is None
    named = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "named", repo_id="someone/my-rr-model")
    text = (named / "README.md").read_text()
    assert 'timm.create_model("hf-hub:someone/my-rr-model", pretrained=True)' in text
    assert json.loads((named / "config.json").read_text())["rr_zoo"]["repo_id"] == "someone/my-rr-model"
    state = rr_zoo.create_model(name, weights=named).state_dict()
    assert all(torch.equal(state[k], v) for k, v in ckpt.backbone.items() if k in state)


def test_portable_names_paths_by_their_names():
    names = {"/home/me/my photos": "my photos"}
    command = "python -m training pretrain --dataset 'folder:/home/me/my photos' --init /runs/a/checkpoint.pt"
    assert portable(command, names) == "python -m training pretrain --dataset 'folder:my photos' --init checkpoint.pt"
    record = {"dataset": "folder:/data/photos", "runs": ["--data-root=/srv/data", "n/a", "https://x.org/a"], "k": 4}
    assert portable(record) == {"dataset": "folder:photos", "runs": ["--data-root=data", "n/a", "https://x.org/a"],
                                "k": 4}


def test_the_card_of_an_earlier_release_names_it_and_the_default(tmp_path):
    entry = rr_zoo.get_entry("rr_resnet32_cifar10")
    older = next(tag for tag in entry.releases if tag != entry.default_release)
    release = entry.releases[older]
    ckpt = TrainingCheckpoint(
        entry=entry.name, architecture=entry.architecture, dataset=release.recipe["dataset"], in_chans=entry.in_chans,
        recipe={"entry": entry.name, **release.recipe}, backbone=load_file(release.bundled_dir / "model.safetensors"),
        relation=load_file(release.bundled_dir / "relation_head.safetensors"), epoch=release.recipe["epochs"],
        options={"precision": release.provenance["precision"]})
    ckpt.save(tmp_path / "run" / "checkpoint.pt")
    out = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "export", metrics=list(release.metrics))
    card = ModelCard.load(out / "README.md")
    assert card.data.model_name == entry.release_name(older)
    assert f'timm.create_model("{entry.release_name(older)}", pretrained=True)' in card.text
    assert f"The entry's default release is `{entry.release_name(entry.default_release)}`" in card.text
