"""Every front door gives bit-identical, hash-verified weights; every bad input is a clear error."""

from __future__ import annotations

import shutil

import pytest
import timm
import torch

import rr_zoo
from rr_zoo.errors import (
    CheckpointFormatError,
    UnknownModelError,
    UnpublishedWeightsError,
    WeightsHashError,
    WeightsNotFoundError,
)
from rr_zoo.manifest import load_manifest, read_manifest
from rr_zoo.models import build_backbone
from tests.conftest import HUB_PORT
from tests.hub_server import LocalHubServer
from tests.zoo_fixtures import activate, deactivate, publish_all

NAMES = rr_zoo.list_models()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoo")
    with LocalHubServer(tmp / "hub", port=HUB_PORT) as hub:
        published = publish_all(tmp, hub)
        old = activate(published)
        try:
            yield published
        finally:
            deactivate(old)


def _input(name: str) -> torch.Tensor:
    c, h, w = rr_zoo.get_entry(name).preprocessing["input_size"]
    return torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))


def _reference(zoo, name):
    entry = rr_zoo.get_entry(name)
    model = build_backbone(entry.architecture, in_chans=entry.in_chans).eval()
    model.load_state_dict(zoo.state_dicts[name])
    with torch.no_grad():
        return model(_input(name))


def _features(model, name):
    with torch.no_grad():
        return model(_input(name))


def _assert_frozen(model):
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_front_door_gives_identical_features(zoo, name, repo_root, tmp_path):
    ref = _reference(zoo, name)
    doors = {
        "timm": timm.create_model(name, pretrained=True),
        "timm_tag": timm.create_model(rr_zoo.get_entry(name).timm_name, pretrained=True),
        "rr_zoo": rr_zoo.create_model(name, pretrained=True),
        "local_file": rr_zoo.create_model(name, weights=zoo.exports[name] / "model.safetensors"),
        "local_folder": rr_zoo.create_model(name, weights=zoo.exports[name]),
        "timm_overlay": timm.create_model(name, pretrained=True,
                                          pretrained_cfg_overlay=dict(file=str(zoo.exports[name]))),
        "torch_hub": torch.hub.load(str(repo_root), name, source="local", trust_repo=True),
        "local_dir": timm.create_model(f"local-dir:{zoo.exports[name]}", pretrained=True),
        "hf_hub": timm.create_model(f"hf-hub:{rr_zoo.get_entry(name).hub['repo_id']}", pretrained=True),
    }
    for door, model in doors.items():
        _assert_frozen(model)
        assert torch.equal(_features(model, name), ref), door


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_config_comes_from_the_manifest(name):
    entry = rr_zoo.get_entry(name)
    model = timm.create_model(name)
    cfg = timm.data.resolve_data_config({}, model=model)
    assert cfg["input_size"] == tuple(entry.preprocessing["input_size"])
    assert cfg["mean"] == tuple(entry.preprocessing["mean"])
    assert cfg["std"] == tuple(entry.preprocessing["std"])
    assert cfg["interpolation"] == entry.preprocessing["interpolation"]
    from PIL import Image

    img = Image.new("RGB", (50, 40), (120, 30, 200))
    x = rr_zoo.get_transform(name)(img)
    assert tuple(x.shape) == tuple(entry.preprocessing["input_size"])


def test_trainable_and_linear_probe_options(zoo):
    name = "rr_conv4_cifar10"
    model = rr_zoo.create_model(name, pretrained=True, trainable=True)
    assert model.training and all(p.requires_grad for p in model.parameters())
    probe = timm.create_model(name, pretrained=True, num_classes=10)
    trainable = {n for n, p in probe.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert probe(_input(name)).shape == (2, 10)


def test_random_init_is_trainable():
    model = timm.create_model("rr_conv4_cifar10")
    assert model.training and all(p.requires_grad for p in model.parameters())


def _tampered(src, tmp_path, mode):
    dst = tmp_path / "bad"
    shutil.copytree(src, dst)
    f = dst / "model.safetensors"
    data = bytearray(f.read_bytes())
    if mode == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0xFF  # same size, different bytes
    f.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("mode", ["truncate", "flip"])
def test_tampered_file_rejected_on_every_path(zoo, tmp_path, mode, repo_root):
    name = "rr_conv4_cifar10"
    entry = rr_zoo.get_entry(name)
    bad = _tampered(zoo.exports[name], tmp_path, mode)
    bad_file = bad / "model.safetensors"
    loose = tmp_path / "loose.safetensors"
    shutil.copy(bad_file, loose)
    attempts = {
        "rr_zoo weights=file": lambda: rr_zoo.create_model(name, weights=loose),
        "rr_zoo weights=folder": lambda: rr_zoo.create_model(name, weights=bad),
        "timm overlay": lambda: timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(loose))),
        "local-dir": lambda: timm.create_model(f"local-dir:{bad}", pretrained=True),
        "torch.hub weights=": lambda: torch.hub.load(str(repo_root), name, source="local", weights=loose),
    }
    for door, attempt in attempts.items():
        with pytest.raises(WeightsHashError, match="expected") as info:
            attempt()
        assert str(bad_file.name) in str(info.value) or "loose" in str(info.value), door
    # the Hub cache: corrupt the cached blob, the next load must refuse it
    from rr_zoo.weights import download_from_hub

    cached = download_from_hub(entry.hub["repo_id"], "model.safetensors", entry.hub["revision"])
    good = cached.read_bytes()
    try:
        cached.resolve().write_bytes(bad_file.read_bytes())
        with pytest.raises(WeightsHashError, match="sha256|size"):
            rr_zoo.create_model(name, pretrained=True)
    finally:
        cached.resolve().write_bytes(good)


def test_bundled_weights_are_verified(zoo, tmp_path, monkeypatch):
    import json

    import rr_zoo.manifest as manifest_mod

    name = "rr_conv4_cifar10"
    data = json.loads(zoo.manifest_path.read_text())
    for f in data["entries"][name]["files"]:
        f["bundled"] = True
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("RR_ZOO_MANIFEST", str(path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be needed
    monkeypatch.setattr(manifest_mod, "BUNDLED_DIR", tmp_path / "bundled")
    load_manifest.cache_clear()
    try:
        shutil.copytree(zoo.exports[name], tmp_path / "bundled" / name)
        assert torch.equal(_features(rr_zoo.create_model(name, pretrained=True), name), _reference(zoo, name))
        target = tmp_path / "bundled" / name / "model.safetensors"
        target.write_bytes(target.read_bytes()[:-10])
        with pytest.raises(WeightsHashError):
            rr_zoo.create_model(name, pretrained=True)
    finally:
        monkeypatch.undo()
        load_manifest.cache_clear()


def test_offline_mode_uses_the_cache(zoo, monkeypatch):
    import huggingface_hub.constants as hf_constants

    name = "rr_resnet8_cifar10"
    rr_zoo.create_model(name, pretrained=True)  # fills the cache
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert torch.equal(_features(rr_zoo.create_model(name, pretrained=True), name), _reference(zoo, name))


def test_download_command_prefetches(zoo, capsys):
    from rr_zoo.__main__ import main

    assert main(["download", "rr_conv4_cifar100", "rr_resnet8_cifar100"]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok (") == 4


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="rr_resnet32_cifar100"):
        rr_zoo.create_model("rr_resnet33_cifar100")


@pytest.fixture
def package_manifest(monkeypatch):
    """The package's own manifest, even while the module's published test zoo is active."""
    from rr_zoo.manifest import MANIFEST_PATH

    monkeypatch.setenv("RR_ZOO_MANIFEST", str(MANIFEST_PATH))
    load_manifest.cache_clear()
    yield
    monkeypatch.undo()
    load_manifest.cache_clear()


def test_unpublished_entry_says_how_to_get_weights(package_manifest):
    assert not read_manifest().get("rr_resnet56_cifar10_e500").published
    with pytest.raises(UnpublishedWeightsError, match="python -m training pretrain"):
        timm.create_model("rr_resnet56_cifar10_e500", pretrained=True)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        rr_zoo.create_model("rr_conv4_cifar10", weights=tmp_path / "nope.safetensors")


def test_file_without_known_hash_is_refused(tmp_path, package_manifest):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file(build_backbone("resnet56").state_dict(), str(f))
    with pytest.raises(WeightsHashError, match="no expected sha256"):
        rr_zoo.create_model("rr_resnet56_cifar10_e500", weights=f)
    from rr_zoo.weights import sha256_file

    model = rr_zoo.create_model("rr_resnet56_cifar10_e500", weights=f, sha256=sha256_file(f))
    assert model.num_features == 64


def test_wrong_architecture_weights_are_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    from rr_zoo.weights import sha256_file

    f = tmp_path / "w.safetensors"
    save_file(build_backbone("resnet8").state_dict(), str(f))
    with pytest.raises(CheckpointFormatError, match="do not"):
        rr_zoo.create_model("rr_resnet32_cifar10", weights=f, sha256=sha256_file(f))


def test_pickle_files_are_not_loaded(tmp_path):
    from rr_zoo.weights import sha256_file

    f = tmp_path / "w.pth"
    torch.save(build_backbone("conv4").state_dict(), f)
    with pytest.raises(WeightsHashError, match="safetensors"):
        rr_zoo.create_model("rr_conv4_cifar10", weights=f, sha256=sha256_file(f))


def test_relation_head_loads_and_scores(zoo):
    name = "rr_conv4_cifar10"
    head = rr_zoo.create_relation_head(name, pretrained=True)
    model = rr_zoo.create_model(name, pretrained=True)
    x = _input(name)
    score = rr_zoo.relation_score(model, head, x, x)
    assert score.shape == (2,) and torch.all((score >= 0) & (score <= 1))
