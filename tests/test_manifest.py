"""The manifest is the single source of truth: schema, recomputed facts, generated views agree."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest
import timm
import torch

import rr_zoo
from rr_zoo.manifest import BUNDLED_DIR, MANIFEST_PATH, SCHEMA_PATH, read_manifest, release_tag
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


RELEASES = MANIFEST.release_names()  # every release's timm name, <arch>_rr.<tag>


@pytest.mark.parametrize("name", NAMES)
def test_published_entries_are_complete(name):
    entry = MANIFEST.get(name)
    if not entry.published:
        assert entry.default_release is None and entry.release is None and entry.hub["revision"] is None
        return
    assert entry.default_release in entry.releases
    for tag, release in entry.releases.items():
        assert release.provenance and release.metrics and release.recipe["dataset"]
        for m in release.metrics:  # each number's command names the release it measured (or a bound's own run)
            assert m["command"].startswith("python -m training"), m
            assert m.get("baseline") or f"--entry {entry.release_name(tag)} " in m["command"], m


@pytest.mark.parametrize("name", RELEASES)
def test_every_release_has_its_files(name):
    entry = MANIFEST.get(name)
    release = entry.release
    assert entry.selected == release.tag and name == f"{entry.arch}.{release.tag}"
    assert release.bundled_dir == BUNDLED_DIR / entry.name / release.tag
    for record in release.files:  # bundled copies present and unchanged; others pinned on the Hub
        if record.bundled:
            path = release.bundled_dir / record.name
            assert path.is_file(), path
            assert path.stat().st_size == record.size and sha256_file(path) == record.sha256
        else:
            assert release.hub["revision"] and len(release.hub["revision"]) == 40


def test_release_files_are_distinct_weights():
    """A release is a set of weights: two releases never hold the same backbone file."""
    digests = [(n, MANIFEST.get(n).file("backbone").sha256) for n in RELEASES]
    assert len({d for _, d in digests}) == len(digests), digests


def test_timm_lists_every_entry_and_release():
    assert set(timm.list_models("rr_*")) == set(NAMES)
    assert {m.split(".")[0] for m in timm.list_models("*_rr*", pretrained=True) if "." in m} <= {
        f"{a}_rr" for a in ARCHITECTURES}
    assert set(timm.list_models("rr_*", pretrained=True)) == set(MANIFEST.names(published_only=True))
    pretrained = set(timm.list_pretrained("*_rr.*"))
    assert set(RELEASES) <= pretrained
    assert {MANIFEST.get(n).timm_name for n in MANIFEST.names(published_only=True)} <= pretrained
    assert set(rr_zoo.list_releases()) == set(RELEASES)


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
    from rr_zoo.docs import results_table, seeds_table, transfer_table, zoo_table

    readme = (repo_root / "README.md").read_text()
    assert zoo_table() in readme, "README zoo table is stale: run `python -m rr_zoo.docs --write`"
    assert results_table(default_only=True) in readme, "README results table is stale: python -m rr_zoo.docs --write"
    every = (repo_root / "docs" / "results.md").read_text()
    assert results_table() in every, "docs/results.md table is stale: run `python -m rr_zoo.docs --write`"
    assert transfer_table(default_only=True) in readme and transfer_table() in every, \
        "transfer tables are stale: run `python -m rr_zoo.docs --write`"
    assert seeds_table() in readme and seeds_table() in every, "seeds tables are stale: python -m rr_zoo.docs --write"


def test_each_published_entry_s_command_pins_its_precision(repo_root):
    """The training docs point at the commands, and each command pins the precision its provenance records."""
    docs = " ".join((repo_root / "docs" / "training.md").read_text().split())
    assert "Each published entry's command says which precision it was trained in." in docs
    for name in MANIFEST.names(published_only=True):
        assert f"--precision {MANIFEST.get(name).provenance['precision']}" in MANIFEST.get(name).provenance["command"]


def test_results_table_lists_every_published_number_with_its_command():
    from rr_zoo.docs import results_table, zoo_table

    table = results_table()
    for name in RELEASES:
        entry = MANIFEST.get(name)
        assert f"| `{name}`" in table and entry.provenance["command"] in table
        for m in entry.metrics:
            if m["dataset"] == entry.provenance["recipe"]["dataset"] and m["task"] in ("linear", "knn", "retrieval"):
                assert m["command"] in table and f"{m['value']:.2f}" in table
    zoo = zoo_table()
    for name in MANIFEST.names(published_only=True):
        entry = MANIFEST.get(name)
        assert f"`{entry.release_name(entry.default_release)}`*" in zoo


BUNDLED = [n for n in RELEASES if any(f.bundled for f in MANIFEST.get(n).files)]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_release_loads_offline_everywhere(name, repo_root, monkeypatch):
    """A fresh install has these weights: timm (by the release's own name), torch.hub (local, release=) and
    rr_zoo agree with the file, sha256-verified, with no network; the alias loads the default release."""
    from safetensors.torch import load_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any download attempt fails
    entry = MANIFEST.get(name)
    tag = entry.release.tag
    record = entry.file("backbone")
    path = entry.bundled_dir / record.name
    assert sha256_file(path) == record.sha256
    reference = build_backbone(entry.architecture, in_chans=entry.in_chans).eval()
    reference.load_state_dict(load_file(path))
    x = torch.randn(3, *entry.preprocessing["input_size"], generator=torch.Generator().manual_seed(0))
    models = {"timm": timm.create_model(name, pretrained=True),
              "hub": torch.hub.load(str(repo_root), entry.name, source="local", release=tag),
              "rr_zoo": rr_zoo.create_model(entry.name, release=tag),
              "rr_zoo by name": rr_zoo.create_model(name, pretrained=True)}
    if tag == entry.default_release:
        models |= {"alias": timm.create_model(entry.name, pretrained=True),
                   "entry timm name": timm.create_model(entry.timm_name, pretrained=True),
                   "hub default": torch.hub.load(str(repo_root), entry.name, source="local")}
    with torch.no_grad():
        expected = reference(x)
        for how, model in models.items():
            assert not any(p.requires_grad for p in model.parameters()), how
            assert torch.equal(model(x), expected), how


@pytest.mark.parametrize("name", MANIFEST.names(published_only=True))
def test_alias_is_the_default_release(name, hubconf):
    entry = MANIFEST.get(name)
    assert f"loads its default release, {entry.default_release}" in getattr(hubconf, name).__doc__
    assert f"default release {entry.release_name(entry.default_release)}" in timm.models.get_pretrained_cfg(
        entry.timm_name).description
    default = MANIFEST.get(entry.release_name(entry.default_release))
    assert entry.files == default.files and entry.metrics == default.metrics
    cfgs = {n: timm.models.get_pretrained_cfg(n) for n in (entry.name, entry.timm_name, default.weights_name)}
    assert len({(c.hf_hub_id, c.mean, c.std, c.input_size) for c in cfgs.values()}) == 1
    assert entry.release_name(entry.default_release) in cfgs[entry.name].description


def test_list_shows_releases_and_the_default(capsys):
    from rr_zoo.__main__ import main

    assert main(["list", "--published"]) == 0
    out = capsys.readouterr().out
    for name in RELEASES:
        entry = MANIFEST.get(name)
        line = next(ln for ln in out.splitlines() if f" {name} " in ln)
        assert entry.release.summary() in line
        assert ("default" in line) == (entry.release.tag == entry.default_release)


# ----------------------------------------------------------------------------- versions and the one writer
def test_version_1_manifest_is_read_as_one_release_per_published_entry(repo_root):
    old = json.loads((repo_root / "tests" / "manifest_v1.json").read_text())
    manifest = read_manifest(repo_root / "tests" / "manifest_v1.json")
    assert old["schema_version"] == 1 and manifest.schema_version == 1
    assert set(manifest.names()) == set(old["entries"])
    for name, raw in old["entries"].items():
        entry = manifest.get(name)
        if raw["status"] != "published":
            assert not entry.published
            continue
        assert len(entry.releases) == 1 and entry.release.tag == release_tag(raw["provenance"]["recipe"])
        assert [dataclasses.asdict(f) for f in entry.files] == raw["files"]
        assert list(entry.metrics) == raw["metrics"] and entry.provenance == raw["provenance"]
        assert entry.bundled_dir == BUNDLED_DIR / name  # version 1 kept one flat folder per entry
        assert entry.recipe == raw["recipe"]


def _release(sha: str, metrics: list | None = None) -> dict:
    recipe = dict(MANIFEST.get("rr_conv4_cifar10").release.recipe)
    return {"files": [{"name": "model.safetensors", "role": "backbone", "sha256": sha, "size": 10}],
            "recipe": recipe, "preprocessing": MANIFEST.get("rr_conv4_cifar10").preprocessing,
            "metrics": metrics or [], "provenance": {"command": "python -m training pretrain", "code_commit": "x",
                                                     "versions": {}, "hardware": "x", "wall_time_s": 1.0,
                                                     "date": "2026-01-01"},
            "hub": {"repo_id": "rr-zoo/rr_conv4_cifar10", "revision": None}, "parent": None}


def test_the_writer_never_changes_a_release(tmp_path):
    from rr_zoo.errors import ReleaseChangeError
    from rr_zoo.manifest import add_metrics, add_release, set_default_release

    path = tmp_path / "manifest.json"
    path.write_text(MANIFEST_PATH.read_text())
    name = "rr_conv4_cifar10"
    old_default = MANIFEST.get(name).default_release
    metric = {"task": "knn", "dataset": "cifar10_jpeg", "value": 50.0, "std": None, "seeds": [0],
              "command": "python -m training evaluate knn --entry conv4_rr.cifar10_jpeg_e1_k2"}
    entry = add_release(name, "cifar10_jpeg_e1_k2", _release("a" * 64, [metric]), path=path)
    assert entry.default_release == old_default and entry.release.tag == "cifar10_jpeg_e1_k2"
    with pytest.raises(ReleaseChangeError, match=r"is published with other files \(model.safetensors sha256 "
                                                 r"aaaaaaaaaaaa...\); a release never changes"):
        add_release(name, "cifar10_jpeg_e1_k2", _release("b" * 64), path=path)
    with pytest.raises(ReleaseChangeError, match="is published with other files"):
        add_release(name, old_default, _release("b" * 64), path=path)
    with pytest.raises(ReleaseChangeError, match="a published metric never changes"):
        add_metrics(name, "cifar10_jpeg_e1_k2", [{**metric, "value": 51.0}], path=path)
    linear = {**metric, "task": "linear", "value": 40.0}
    entry = add_metrics(name, "cifar10_jpeg_e1_k2", [metric, linear], path=path)  # same knn again: no change
    assert [m["task"] for m in entry.metrics] == ["knn", "linear"]
    with pytest.raises(ReleaseChangeError, match="a published metric never changes"):
        add_metrics(name, old_default, [{**MANIFEST.get(name).metrics[0], "value": 1.0}], path=path)
    assert set_default_release(name, "cifar10_jpeg_e1_k2", path=path).default_release == "cifar10_jpeg_e1_k2"
    with pytest.raises(rr_zoo.UnknownModelError, match="has no release 'nope'"):
        set_default_release(name, "nope", path=path)
    with pytest.raises(rr_zoo.ManifestError, match="used twice"):  # a tag that is another entry's timm name
        add_release(name, "cifar100", _release("c" * 64), path=path)
    written = json.loads(path.read_text())
    jsonschema.validate(written, json.loads(SCHEMA_PATH.read_text()))
    untouched = json.loads(MANIFEST_PATH.read_text())["entries"][name]["releases"][old_default]
    assert written["entries"][name]["releases"][old_default] == untouched


def test_publish_finds_the_parent_release_of_an_init_run():
    from training.release.publish import parent_release

    for name in RELEASES:
        digest = MANIFEST.get(name).file("backbone").sha256
        assert parent_release({"init": {"sha256": {"backbone": digest}}}) == name
    assert parent_release({"init": {"sha256": {"checkpoint": "0" * 64}}}) is None and parent_release({}) is None


@pytest.mark.parametrize("name", RELEASES)
def test_each_metric_says_how_its_images_were_fed(name):
    """A bf16 or resized evaluation records it (``input``), as its command says; fp32 at the stored side does not."""
    for m in MANIFEST.get(name).metrics:
        fed = m.get("input")
        bf16 = "--precision bf16" in m["command"]
        assert (fed is not None and fed["precision"] == "bf16") == bf16, m["command"]
        if fed is not None:
            resized = fed["resize"] != "none"
            assert resized == (fed["side"] != fed["dataset_side"]) and resized == ("; images " in m.get("note", ""))


def test_release_tag_names_a_nonzero_seed():
    recipe = dict(MANIFEST.get("rr_conv4_cifar10").release.recipe)
    assert release_tag({**recipe, "seed": 0}) == "cifar10_jpeg_e12_k16"
    assert release_tag({**recipe, "seed": 1}) == "cifar10_jpeg_e12_k16_seed1"


@pytest.mark.parametrize(("delta", "verdict"), [(-0.5, "within 1 pt"), (1.0, "within 1 pt"),
                                                (-2.5, "not within 1 pt")])
def test_seeds_table_reports_the_spread_of_pretraining_seeds(tmp_path, delta, verdict):
    from rr_zoo.docs import seeds_table
    from rr_zoo.manifest import add_release

    entry = MANIFEST.get("rr_conv4_cifar10")
    data = json.loads(MANIFEST_PATH.read_text())
    for raw in data["entries"].values():  # one release per entry: no seed comparison to start from
        raw["releases"] = {t: r for t, r in raw["releases"].items() if t == raw["default_release"]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert seeds_table(read_manifest(path)) == "Every release so far comes from one pretraining seed."
    first = {m["task"]: m["value"] for m in entry.metrics if m["task"] in ("linear", "knn") and not m.get("baseline")}
    second = round(first["linear"] + delta, 2)
    release = _release("d" * 64, [{"task": task, "dataset": "cifar10_jpeg", "value": value, "std": None, "seeds": [0],
                                   "command": f"python -m training evaluate {task}"}
                                  for task, value in (("linear", second), ("knn", first["knn"] + 0.5))])
    release["recipe"].update(seed=1, entry=entry.name, image_size=None)  # fields newer releases record: no matter
    same_run = {k: entry.provenance[k] for k in ("epochs_trained", "precision")}
    release["provenance"].update(same_run)
    tag = release_tag(release["recipe"])
    add_release(entry.name, tag, release, path=path)
    other = _release("e" * 64)  # another recipe: not part of the seed comparison
    other["recipe"] = {**other["recipe"], "epochs": 3, "seed": 2}
    other["provenance"].update(same_run)
    add_release(entry.name, release_tag(other["recipe"]), other, path=path)
    shorter = _release("f" * 64)  # same recipe and seed, fewer epochs trained (an earlier checkpoint): left out
    shorter["recipe"]["seed"] = 3
    shorter["provenance"].update(same_run, epochs_trained=1)
    add_release(entry.name, "cifar10_jpeg_early_seed3", shorter, path=path)
    table = seeds_table(read_manifest(path))
    rows = [line for line in table.splitlines() if line.startswith("| `rr_conv4_cifar10`")]
    commit = entry.provenance["code_commit"][:7]
    assert [row.split(" | ")[2:5] for row in rows] == [["0", f"`conv4_rr.{entry.default_release}`", commit],
                                                       ["1", f"`conv4_rr.{tag}`", "x"]]
    assert rows[1].endswith(f"| {second:.2f} | {first['knn'] + 0.5:.2f} |")
    assert f"spread (largest minus smallest) linear {abs(delta):.2f} pt, kNN 0.50 pt: {verdict}." in table
    assert (f"- `conv4_rr.{tag}`: pretraining: `python -m training pretrain`; "
            "linear: `python -m training evaluate linear`; knn: `python -m training evaluate knn`") in table


def test_a_metric_whose_input_record_disagrees_with_its_command_is_refused(tmp_path):
    from rr_zoo.manifest import add_metrics

    path = tmp_path / "manifest.json"
    path.write_text(MANIFEST_PATH.read_text())
    entry = MANIFEST.get("rr_conv4_cifar10")
    metric = {"task": "knn", "dataset": "fashionmnist", "value": 50.0, "std": None, "seeds": [0],
              "command": "python -m training evaluate knn --entry x --dataset fashionmnist --precision bf16"}
    with pytest.raises(rr_zoo.ManifestError, match="records images fed in fp32; its result file was written by "
                                                   "other code: run the command again"):
        add_metrics(entry.name, entry.default_release, [metric], path=path)
    fed = {"dataset_side": 28, "side": 32, "resize": "28x28 -> 32x32", "precision": "bf16"}
    added = add_metrics(entry.name, entry.default_release, [{**metric, "input": fed}], path=path)
    assert added.metrics[-1]["value"] == 50.0
