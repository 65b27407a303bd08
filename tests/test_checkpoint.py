"""The training checkpoint schema: round trip, v1 files as written before the schema, unknown versions refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.__main__ import main as training_main
from training.pretrain.checkpoint import FORMAT, CheckpointError, TrainingCheckpoint, atomic_save, load_checkpoint


def _v1_pretrain_dict() -> dict:
    """The 20-key dict ``pretrain.save`` wrote before the schema existed (format v1)."""
    return {
        "format": "rr_zoo.pretrain.v1", "entry": "rr_conv4_cifar10", "architecture": "conv4",
        "dataset": "cifar10_4k", "in_chans": 3, "recipe": {"entry": "rr_conv4_cifar10", "k": 3},
        "options": {"out": "runs/x", "device": "cpu"},
        "backbone": {"w": torch.ones(2)}, "relation": {"v": torch.zeros(1)},
        "optimizer": {"state": {}, "param_groups": []}, "scaler": None,
        "epoch": 1, "step_in_epoch": 2, "global_step": 5,
        "accumulator": {"loss_sum": 1.5, "steps": 2}, "rng": {"aug": [torch.zeros(3, dtype=torch.uint8)],
                                                              "torch": torch.get_rng_state()},
        "saved_because": "steps", "world_size": 1, "environment": {"code_commit": "abc"}, "train_seconds": 12.5,
    }


def test_round_trip_keeps_every_field(tmp_path):
    ckpt = TrainingCheckpoint.from_dict(_v1_pretrain_dict())
    ckpt.save(tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    for f in dataclasses.fields(TrainingCheckpoint):
        a, b = getattr(ckpt, f.name), getattr(back, f.name)
        assert str(a) == str(b), f.name
    assert back.resumable and back.to_dict()["format"] == FORMAT


def test_v1_files_written_before_the_schema_load(tmp_path):
    atomic_save(_v1_pretrain_dict(), tmp_path / "pre.pt")
    ckpt = load_checkpoint(tmp_path / "pre.pt")
    assert (ckpt.epoch, ckpt.step_in_epoch, ckpt.global_step, ckpt.train_seconds) == (1, 2, 5, 12.5)
    assert ckpt.environment == {"code_commit": "abc"} and ckpt.resumable
    # the schema writes the same keys, plus the optional ones added since (None when absent)
    assert set(ckpt.to_dict()) == set(_v1_pretrain_dict()) | {"preprocessing", "init", "segments"}
    supervised = {"format": "rr_zoo.pretrain.v1", "entry": "rr_conv4_cifar10", "architecture": "conv4",
                  "dataset": "cifar10_4k", "in_chans": 3, "recipe": {"loss": "supervised"},
                  "backbone": {}, "relation": {}, "epoch": 3, "step_in_epoch": 0, "global_step": 0}
    atomic_save(supervised, tmp_path / "sup.pt")
    sup = load_checkpoint(tmp_path / "sup.pt")
    assert sup.epoch == 3 and not sup.resumable and sup.environment == {} and sup.train_seconds == 0.0


def test_unknown_versions_and_foreign_files_are_refused(tmp_path, capsys):
    atomic_save({**_v1_pretrain_dict(), "format": "rr_zoo.pretrain.v9"}, tmp_path / "v9.pt")
    with pytest.raises(CheckpointError, match="'rr_zoo.pretrain.v9'.*rr_zoo.pretrain.v1"):
        load_checkpoint(tmp_path / "v9.pt")
    assert training_main(["export", "--checkpoint", str(tmp_path / "v9.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "rr_zoo.pretrain.v9" in capsys.readouterr().err
    atomic_save({"backbone": {}, "relation": {}}, tmp_path / "orig.tar")
    with pytest.raises(CheckpointError, match="no 'format' key"):
        load_checkpoint(tmp_path / "orig.tar")
    incomplete = _v1_pretrain_dict()
    del incomplete["backbone"]
    atomic_save(incomplete, tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match="lacks \\['backbone'\\]"):
        load_checkpoint(tmp_path / "half.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
