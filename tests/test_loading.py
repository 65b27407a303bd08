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
    pinned = rr_zoo.weights.sha256_file(zoo.exports[name] / "model.safetensors")
    loose = tmp_path / "loose.safetensors"
    shutil.copy(bad_file, loose)
    export_fix = f"no longer matches its record in {bad / 'config.json'} (rr_zoo.files, role backbone)"
    attempts = {  # (door, what the message must say)
        "rr_zoo weights=folder": (lambda: rr_zoo.create_model(name, weights=bad), export_fix),
        "rr_zoo weights=file in folder": (lambda: rr_zoo.create_model(name, weights=bad_file), export_fix),
        "timm overlay, file in folder": (
            lambda: timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(bad_file))),
            export_fix),
        "local-dir": (lambda: timm.create_model(f"local-dir:{bad}", pretrained=True), export_fix),
        "torch.hub weights=folder": (lambda: torch.hub.load(str(repo_root), name, source="local", weights=bad),
                                     export_fix),
        "pinned loose file": (lambda: rr_zoo.create_model(name, weights=loose, sha256=pinned), "you pinned"),
        "pinned, timm overlay": (lambda: timm.create_model(name, pretrained=True, sha256=pinned,
                                                           pretrained_cfg_overlay=dict(file=str(loose))), "you pinned"),
    }
    for door, (attempt, fix) in attempts.items():
        with pytest.raises(WeightsHashError, match="expected") as info:
            attempt()
        message = str(info.value)
        assert fix in message and "download" not in message, door
        assert bad_file.name in message or "loose" in message, door
    # the Hub cache: corrupt the cached blob, the next load must refuse it and say how to download it again
    from rr_zoo.weights import download_from_hub

    cached = download_from_hub(entry.hub["repo_id"], "model.safetensors", entry.hub["revision"])
    good = cached.read_bytes()
    try:
        cached.resolve().write_bytes(bad_file.read_bytes())
        with pytest.raises(WeightsHashError, match=f"download it again with `python -m rr_zoo download {name}`"):
            rr_zoo.create_model(name, pretrained=True)
    finally:
        cached.resolve().write_bytes(good)


def test_download_command_replaces_a_damaged_cached_copy(zoo, capsys):
    from rr_zoo.__main__ import main
    from rr_zoo.weights import download_from_hub, sha256_file

    name = "rr_resnet8_cifar10"
    entry = rr_zoo.get_entry(name)
    cached = download_from_hub(entry.hub["repo_id"], "model.safetensors", entry.hub["revision"])
    cached.resolve().write_bytes(cached.read_bytes()[:-7])
    with pytest.raises(WeightsHashError):
        rr_zoo.create_model(name, pretrained=True)
    assert main(["download", name]) == 0
    assert sha256_file(download_from_hub(entry.hub["repo_id"], "model.safetensors", entry.hub["revision"])) == \
        entry.file("backbone").sha256
    assert torch.equal(_features(rr_zoo.create_model(name, pretrained=True), name), _reference(zoo, name))


def test_bundled_weights_are_verified(zoo, tmp_path, monkeypatch):
    import json

    import rr_zoo.manifest as manifest_mod

    name = "rr_conv4_cifar10"
    data = json.loads(zoo.manifest_path.read_text())
    tag = data["entries"][name]["default_release"]
    for f in data["entries"][name]["releases"][tag]["files"]:
        f["bundled"] = True
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("RR_ZOO_MANIFEST", str(path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be needed
    monkeypatch.setattr(manifest_mod, "BUNDLED_DIR", tmp_path / "bundled")
    load_manifest.cache_clear()
    try:
        shutil.copytree(zoo.exports[name], tmp_path / "bundled" / name / tag)
        assert torch.equal(_features(rr_zoo.create_model(name, pretrained=True), name), _reference(zoo, name))
        target = tmp_path / "bundled" / name / tag / "model.safetensors"
        target.write_bytes(target.read_bytes()[:-10])
        with pytest.raises(WeightsHashError, match="bundled with rr-zoo is damaged: reinstall"):
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


def test_a_safetensors_file_loads_without_a_hash_and_can_be_pinned(tmp_path, package_manifest):
    from safetensors.torch import save_file

    from rr_zoo.weights import sha256_file

    f = tmp_path / "w.safetensors"
    state = build_backbone("resnet56").state_dict()
    save_file(state, str(f))
    for sha256 in (None, sha256_file(f)):
        model = rr_zoo.create_model("rr_resnet56_cifar10_e500", weights=f, sha256=sha256, trainable=True)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(WeightsHashError, match="not the file you pinned"):
        rr_zoo.create_model("rr_resnet56_cifar10_e500", weights=f, sha256="0" * 64)


def test_wrong_architecture_weights_are_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file(build_backbone("resnet8").state_dict(), str(f))
    with pytest.raises(CheckpointFormatError, match="do not fit 'rr_resnet32_cifar10': .*missing from the weights "
                                                    r"\(layer1.1.bn1.bias"):
        rr_zoo.create_model("rr_resnet32_cifar10", weights=f)


def test_pickle_files_are_not_loaded(tmp_path):
    from rr_zoo.weights import sha256_file

    f = tmp_path / "w.pth"
    torch.save(build_backbone("conv4").state_dict(), f)
    with pytest.raises(WeightsHashError, match="safetensors"):
        rr_zoo.create_model("rr_conv4_cifar10", weights=f, sha256=sha256_file(f))


# ----------------------------------------------------------------------------- the user's own weights, whole
FINE_TUNED = "rr_resnet32_cifar10"


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """A user's fine-tuned ``trainable=True, num_classes=10`` model saved with safetensors (one SGD step, so
    every tensor differs from a fresh init, running statistics included)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = rr_zoo.create_model(FINE_TUNED, trainable=True, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    torch.nn.functional.cross_entropy(model(_input(FINE_TUNED)), torch.tensor([1, 7])).backward()
    optimizer.step()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("ft") / "ft.safetensors"
    save_file(state, str(path))
    return path, state


def _assert_whole(model, state, door=""):
    loaded = model.state_dict()
    assert loaded.keys() == state.keys(), door
    differ = [k for k in state if not torch.equal(loaded[k], state[k])]
    assert not differ, (door, differ)


def test_fine_tuned_classifier_loads_whole(fine_tuned, repo_root):
    path, state = fine_tuned
    assert {"fc.weight", "fc.bias"} <= state.keys() and len(state) == 200
    doors = {
        "rr_zoo": rr_zoo.create_model(FINE_TUNED, weights=path, num_classes=10, trainable=True),
        "rr_zoo frozen": rr_zoo.create_model(FINE_TUNED, weights=path, num_classes=10),
        "timm overlay": timm.create_model(FINE_TUNED, pretrained=True, num_classes=10, trainable=True,
                                          pretrained_cfg_overlay=dict(file=str(path))),
        "timm tag overlay": timm.create_model(rr_zoo.get_entry(FINE_TUNED).timm_name, pretrained=True,
                                              num_classes=10, pretrained_cfg_overlay=dict(file=str(path))),
        "torch.hub": torch.hub.load(str(repo_root), FINE_TUNED, source="local", weights=path, num_classes=10),
    }
    for door, model in doors.items():
        _assert_whole(model, state, door)
        assert model.pretrained_cfg["num_classes"] == 10, door


@pytest.mark.parametrize("num_classes", [None, 0, 5])
def test_a_classifier_in_the_file_needs_its_num_classes(fine_tuned, num_classes):
    path, _ = fine_tuned
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with pytest.raises(CheckpointFormatError, match=r"hold a 10-class classifier \(fc.bias, fc.weight\) and "
                       rf"'{FINE_TUNED}' was built with num_classes={num_classes or 0}: pass num_classes=10"):
        rr_zoo.create_model(FINE_TUNED, weights=path, **kwargs)


def test_features_only_of_a_fine_tuned_file(fine_tuned):
    path, state = fine_tuned
    with pytest.raises(CheckpointFormatError, match="pass num_classes=10"):
        rr_zoo.create_model(FINE_TUNED, weights=path, features_only=True)
    model = rr_zoo.create_model(FINE_TUNED, weights=path, features_only=True, num_classes=10)
    loaded = model.state_dict()
    assert loaded and all(torch.equal(loaded[k], state[k]) for k in loaded)


def test_backbone_weights_with_a_new_head_keep_every_file_key(fine_tuned, tmp_path):
    from safetensors.torch import save_file

    _, state = fine_tuned
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    f = tmp_path / "backbone.safetensors"
    save_file(backbone, str(f))
    torch.manual_seed(3)
    model = rr_zoo.create_model(FINE_TUNED, weights=f, num_classes=4, trainable=True)
    torch.manual_seed(3)
    fresh = rr_zoo.create_model(FINE_TUNED, num_classes=4)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in backbone.items())
    assert torch.equal(loaded["fc.weight"], fresh.state_dict()["fc.weight"])  # the model's own init: no fc in file
    assert model.pretrained_cfg["num_classes"] == 0


def test_extra_or_missing_keys_are_named(fine_tuned, tmp_path):
    from safetensors.torch import save_file

    _, state = fine_tuned
    extra = tmp_path / "extra.safetensors"
    save_file({**state, "adapter.weight": torch.zeros(3)}, str(extra))
    with pytest.raises(CheckpointFormatError, match=r"1 key\(s\) the model has no place for \(adapter.weight\)"):
        rr_zoo.create_model(FINE_TUNED, weights=extra, num_classes=10)
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in state.items() if k != "layer3.4.bn2.running_var"}, str(missing))
    with pytest.raises(CheckpointFormatError, match=r"missing from the weights \(layer3.4.bn2.running_var\)"):
        rr_zoo.create_model(FINE_TUNED, weights=missing, num_classes=10)


def test_a_damaged_own_file_says_what_is_wrong(fine_tuned, tmp_path):
    path, _ = fine_tuned
    truncated = tmp_path / "ft.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsHashError, match="is not a readable safetensors file") as info:
        rr_zoo.create_model(FINE_TUNED, weights=truncated, num_classes=10)
    assert "download" not in str(info.value) and "published" not in str(info.value)


@pytest.mark.parametrize("suffix,fix", [(".pt", "export it first (`python -m training export --checkpoint "),
                                        (".tar", "convert it first (`python -m rr_zoo convert ")])
def test_a_pickle_checkpoint_says_export_or_convert_it(tmp_path, suffix, fix):
    f = tmp_path / f"checkpoint{suffix}"
    torch.save({"backbone": build_backbone("resnet32").state_dict(), "epoch": 3}, f)
    for attempt in (lambda: rr_zoo.create_model(FINE_TUNED, weights=f),
                    lambda: timm.create_model(FINE_TUNED, pretrained=True, pretrained_cfg_overlay=dict(file=str(f)))):
        with pytest.raises(WeightsHashError, match="is a PyTorch pickle") as info:
            attempt()
        assert fix in str(info.value) and "corrupt" not in str(info.value)


def test_export_folder_errors_name_the_file_and_the_record(zoo, tmp_path):
    name = "rr_conv4_cifar10"
    folder = tmp_path / "export"
    shutil.copytree(zoo.exports[name], folder)
    with pytest.raises(CheckpointFormatError, match="is the relation_head file of its export folder"):
        rr_zoo.create_model(name, weights=folder / "relation_head.safetensors")
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"config.json lists model.safetensors \(backbone\)"):
        rr_zoo.create_model(name, weights=folder)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(CheckpointFormatError, match="not an export folder"):
        rr_zoo.create_model(name, weights=plain)


def test_relation_head_loads_and_scores(zoo):
    name = "rr_conv4_cifar10"
    head = rr_zoo.create_relation_head(name, pretrained=True)
    model = rr_zoo.create_model(name, pretrained=True)
    x = _input(name)
    score = rr_zoo.relation_score(model, head, x, x)
    assert score.shape == (2,) and torch.all((score >= 0) & (score <= 1))
