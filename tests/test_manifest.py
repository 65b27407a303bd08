"""The manifest is the single source of truth: schema, recomputed facts, generated views agree."""

from __future__ import annotations

import json

import jsonschema
import pytest
import timm
import torch

import rr_zoo
from rr_zoo.manifest import MANIFEST_PATH, SCHEMA_PATH, read_manifest
from rr_zoo.models import ARCHITECTURES, build_backbone
from rr_zoo.weights import sha256_file

MANIFEST = read_manifest()
NAMES = MANIFEST.names()
NORMALISATION = {  # method.md table
    "cifar10": ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
    "stl10": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2764, 0.2689, 0.2816)),  # measured: python -m training.data.stats
    "slimagenet64": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}
PAPER_K = {("resnet32", "tinyimagenet"): 16, ("resnet32", "slimagenet64"): 16, ("resnet34", "stl10"): 25}


def test_manifest_follows_schema():
    jsonschema.validate(json.loads(MANIFEST_PATH.read_text()), json.loads(SCHEMA_PATH.read_text()))


def test_root_manifest_is_the_package_manifest(repo_root):
    assert (repo_root / "weights_manifest.json").resolve() == MANIFEST_PATH.resolve()


def test_papers_grid_is_listed():
    grid = {(a, d) for a in ("conv4", "resnet8", "resnet32", "resnet56") for d in ("cifar10", "cifar100")}
    grid |= {("resnet32", "tinyimagenet"), ("resnet32", "slimagenet64"), ("resnet34", "stl10")}
    present = {(e.architecture, e.dataset) for e in MANIFEST.entries.values()}
    assert grid <= present
    assert {"rr_resnet56_cifar10_e500", "rr_resnet56_cifar100_e500"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_entry_facts_are_recomputed(name):
    entry = MANIFEST.get(name)
    assert name == f"rr_{entry.architecture}_{entry.timm_name.split('.', 1)[1]}"
    assert entry.timm_name.startswith(f"{entry.architecture}_rr.")
    model = build_backbone(entry.architecture, in_chans=entry.in_chans)
    assert entry.num_params == sum(p.numel() for p in model.parameters())
    assert entry.num_features == model.num_features == ARCHITECTURES[entry.architecture].num_features
    assert model(torch.randn(1, *entry.preprocessing["input_size"])).shape == (1, entry.num_features)


@pytest.mark.parametrize("name", NAMES)
def test_paper_recipes_and_normalisation(name):
    entry = MANIFEST.get(name)
    if entry.dataset in NORMALISATION:
        mean, std = NORMALISATION[entry.dataset]
        assert tuple(entry.preprocessing["mean"]) == mean and tuple(entry.preprocessing["std"]) == std
        r = entry.recipe
        assert r["k"] == PAPER_K.get((entry.architecture, entry.dataset), 32)
        assert r["epochs"] == {"stl10": 300}.get(entry.dataset, 500 if name.endswith("_e500") else 200)
        assert (r["batch_size"], r["lr"], r["aggregation"], r["focal_gamma"], r["focal_alpha"]) == (
            64, 1e-3, "cat", 2.0, 0.5)
    else:  # datasets the paper did not use record how their constants were computed
        assert "computed_by" in entry.preprocessing


@pytest.mark.parametrize("name", NAMES)
def test_published_entries_are_complete(name):
    entry = MANIFEST.get(name)
    if not entry.published:
        assert entry.hub["revision"] is None or len(entry.hub["revision"]) == 40
        return
    assert entry.provenance and entry.metrics
    assert all(m["command"].startswith("python -m training") for m in entry.metrics)
    for record in entry.files:  # bundled copies present and unchanged
        if record.bundled:
            path = entry.bundled_dir / record.name
            assert path.is_file(), path
            assert path.stat().st_size == record.size and sha256_file(path) == record.sha256


def test_timm_lists_every_entry():
    assert set(timm.list_models("rr_*")) == set(NAMES)
    assert {m.split(".")[0] for m in timm.list_models("*_rr*", pretrained=True) if "." in m} <= {
        f"{a}_rr" for a in ARCHITECTURES}
    assert set(timm.list_models("rr_*", pretrained=True)) == set(MANIFEST.names(published_only=True))


def test_hubconf_entries_equal_the_registry(hubconf):
    # what torch.hub.list reports: public callables of hubconf
    entries = {n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")}
    assert entries == set(rr_zoo.list_models())
    assert {"torch", "timm", "safetensors", "huggingface_hub"} <= set(hubconf.dependencies)


def test_hubconf_help_and_local_load(repo_root, hubconf):
    assert "relational reasoning" in hubconf.rr_resnet32_cifar100.__doc__
    model = torch.hub.load(str(repo_root), "rr_resnet32_cifar100", source="local", pretrained=False)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_readme_tables_match_manifest(repo_root):
    from rr_zoo.docs import results_table, zoo_table

    readme = (repo_root / "README.md").read_text()
    assert zoo_table() in readme, "README zoo table is stale: run `python -m rr_zoo.docs --write`"
    assert results_table() in readme, "README results table is stale: run `python -m rr_zoo.docs --write`"


def test_each_published_entry_s_command_pins_its_precision(repo_root):
    """The training docs point at the commands, and each command pins the precision its provenance records."""
    docs = " ".join((repo_root / "docs" / "training.md").read_text().split())
    assert "Each published entry's command says which precision it was trained in." in docs
    for name in MANIFEST.names(published_only=True):
        assert f"--precision {MANIFEST.get(name).provenance['precision']}" in MANIFEST.get(name).provenance["command"]


def test_results_table_lists_every_published_number_with_its_command():
    from rr_zoo.docs import results_table

    table = results_table()
    for name in MANIFEST.names(published_only=True):
        entry = MANIFEST.get(name)
        assert f"| `{name}` |" in table and entry.provenance["command"] in table
        for m in entry.metrics:
            if m["dataset"] == entry.provenance["recipe"]["dataset"] and m["task"] in ("linear", "knn", "retrieval"):
                assert m["command"] in table and f"{m['value']:.2f}" in table


BUNDLED = [n for n in MANIFEST.names(published_only=True) if any(f.bundled for f in MANIFEST.get(n).files)]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_entry_loads_offline_everywhere(name, repo_root, monkeypatch):
    """A fresh install has these weights: timm, torch.hub (local) and rr_zoo agree, with no network."""
    from safetensors.torch import load_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any download attempt fails
    entry = MANIFEST.get(name)
    backbone_file = next(f for f in entry.files if f.role == "backbone")
    reference = build_backbone(entry.architecture, in_chans=entry.in_chans).eval()
    reference.load_state_dict(load_file(entry.bundled_dir / backbone_file.name))
    x = torch.randn(3, *entry.preprocessing["input_size"], generator=torch.Generator().manual_seed(0))
    models = {"timm": timm.create_model(name, pretrained=True),
              "hub": torch.hub.load(str(repo_root), name, source="local"),
              "rr_zoo": rr_zoo.create_model(name, pretrained=True)}
    with torch.no_grad():
        expected = reference(x)
        for how, model in models.items():
            assert not any(p.requires_grad for p in model.parameters()), how
            assert torch.equal(model(x), expected), how
