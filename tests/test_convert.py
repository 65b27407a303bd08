"""Original .tar checkpoints convert to safetensors that give identical features."""

from __future__ import annotations

import json

import pytest
import torch

import rr_zoo
from rr_zoo.convert import convert_checkpoint
from rr_zoo.errors import CheckpointFormatError
from rr_zoo.manifest import read_manifest
from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead


def save_like_the_original(path, arch="resnet56", seed=0):
    """What the original code writes: a dict of backbone, relation and optimizer state dicts."""
    torch.manual_seed(seed)
    backbone = build_backbone(arch)
    head = RelationHead(128)
    # one training step so weights, BN statistics and the optimizer state are non-trivial
    opt = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=1e-3)
    k, m = 2, 4
    z = backbone(torch.randn(k * m, 3, 32, 32))
    logits, targets = head.forward_views(z, k)
    rr_zoo.focal_loss(logits, targets).backward()
    opt.step()
    torch.save({"backbone": backbone.state_dict(), "relation": head.state_dict(),
                "optimizer": opt.state_dict()}, path)
    return backbone.eval(), head.eval()


@pytest.mark.parametrize("entry_name", ["rr_resnet56_cifar10_e500", "rr_resnet56_cifar100_e500"])
def test_converted_checkpoint_gives_identical_features(tmp_path, entry_name):
    backbone, head = save_like_the_original(tmp_path / "ckpt.tar")
    out = convert_checkpoint(tmp_path / "ckpt.tar", read_manifest().get(entry_name), tmp_path / "export")
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "relation_head.safetensors", "config.json"}
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet56_rr" and config["num_features"] == 64
    model = rr_zoo.create_model(entry_name, weights=out)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), backbone(x))
    loaded_head = rr_zoo.create_relation_head(entry_name, weights=out)
    pairs = torch.randn(5, 128)
    with torch.no_grad():
        assert torch.equal(loaded_head(pairs), head(pairs))


def test_cli_convert(tmp_path, capsys):
    from rr_zoo.__main__ import main

    save_like_the_original(tmp_path / "ckpt.tar")
    assert main(["convert", str(tmp_path / "ckpt.tar"), "--entry", "rr_resnet56_cifar10_e500",
                 "--out", str(tmp_path / "out")]) == 0
    assert "model.safetensors" in capsys.readouterr().out


def test_wrong_checkpoints_are_clear_errors(tmp_path):
    entry = read_manifest().get("rr_resnet56_cifar10_e500")
    torch.save({"model": {}}, tmp_path / "a.tar")
    with pytest.raises(CheckpointFormatError, match="expected keys 'backbone' and 'relation'"):
        convert_checkpoint(tmp_path / "a.tar", entry, tmp_path / "o")
    (tmp_path / "b.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="cannot read"):
        convert_checkpoint(tmp_path / "b.tar", entry, tmp_path / "o")
    save_like_the_original(tmp_path / "c.tar", arch="resnet8")
    with pytest.raises(CheckpointFormatError, match="do not match"):
        convert_checkpoint(tmp_path / "c.tar", entry, tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing half-written
