"""``python -m training curves``: online kNN accuracy vs views seen, from run and export folders."""

from __future__ import annotations

import json

import pytest

from training.__main__ import main as training_main


def test_curves_from_a_run_folder_and_an_export_folder(tmp_path, shared_data, capsys):
    run = tmp_path / "run"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg", "--k", "3",
                          "--batch-size", "8", "--epochs", "2", "--steps-per-epoch", "2", "--knn-every", "1",
                          "--threads", "1", "--no-progress", "--out", str(run)]) == 0
    export = tmp_path / "export"  # what `export` writes that the plot reads: config.json provenance + log.jsonl
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"rr_zoo": {"entry": "x", "provenance": {
        "precision": "bf16", "recipe": {"architecture": "resnet8", "dataset": "cifar10_jpeg", "k": 8,
                                        "batch_size": 64}}}}))
    (export / "log.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"kind": "epoch", "epoch": 1, "global_step": 781},
        {"kind": "epoch", "epoch": 2, "global_step": 1562, "knn_acc": 49.1})) + "\n")
    out = tmp_path / "fig" / "curves.png"
    assert training_main(["curves", str(run), str(export), "--out", str(out)]) == 0
    points = json.loads(out.with_suffix(".json").read_text())["curves"]
    assert out.stat().st_size > 5000
    assert points[0]["views"] == [2 * 8 * 3, 4 * 8 * 3] and len(points[0]["knn_acc"]) == 2  # global_step·M·K
    assert points[1]["views"] == [1562 * 64 * 8] and points[1]["knn_acc"] == [49.1]
    assert points[1]["label"] == "resnet8 (K=8, bf16)"
    assert "resnet8 (K=8, bf16)" in capsys.readouterr().out


def _fake_export(folder, dataset, steps_acc):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"rr_zoo": {"entry": "x", "provenance": {
        "precision": "bf16", "recipe": {"architecture": "resnet32", "dataset": dataset, "k": 4, "batch_size": 64}}}}))
    (folder / "log.jsonl").write_text("".join(json.dumps({"kind": "epoch", "global_step": s, "knn_acc": a}) + "\n"
                                              for s, a in steps_acc))


def test_curves_of_two_datasets_name_the_dataset(tmp_path):
    _fake_export(tmp_path / "a", "cifar10_jpeg", [(781, 40.0), (1562, 45.0)])
    _fake_export(tmp_path / "b", "tinyimagenet", [(1562, 5.0)])
    out = tmp_path / "both.png"
    assert training_main(["curves", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    labels = [c["label"] for c in json.loads(out.with_suffix(".json").read_text())["curves"]]
    assert labels == ["resnet32 (K=4, bf16), cifar10_jpeg", "resnet32 (K=4, bf16), tinyimagenet"]


def test_curves_redrawn_from_an_earlier_figure_s_json(tmp_path, capsys):
    _fake_export(tmp_path / "a", "cifar10_jpeg", [(781, 40.0), (1562, 45.0)])
    first = tmp_path / "first.png"
    assert training_main(["curves", str(tmp_path / "a"), "--out", str(first)]) == 0
    _fake_export(tmp_path / "b", "tinyimagenet", [(1562, 5.0)])
    both = tmp_path / "both.png"  # the first figure's folder is no longer needed: its JSON holds the points
    assert training_main(["curves", str(first.with_suffix(".json")), str(tmp_path / "b"), "--out", str(both)]) == 0
    again = json.loads(both.with_suffix(".json").read_text())["curves"]
    before = json.loads(first.with_suffix(".json").read_text())["curves"][0]
    assert (again[0]["views"], again[0]["knn_acc"]) == (before["views"], before["knn_acc"])
    assert [c["label"] for c in again] == ["resnet32 (K=4, bf16), cifar10_jpeg", "resnet32 (K=4, bf16), tinyimagenet"]
    redrawn = tmp_path / "redrawn.png"  # labels that already name the dataset are kept as they are
    assert training_main(["curves", str(both.with_suffix(".json")), "--out", str(redrawn)]) == 0
    assert [c["label"] for c in json.loads(redrawn.with_suffix(".json").read_text())["curves"]] == \
        [c["label"] for c in again]
    (tmp_path / "other.json").write_text('{"points": []}')
    assert training_main(["curves", str(tmp_path / "other.json"), "--out", str(redrawn)]) == 2
    assert "not the JSON" in capsys.readouterr().err


@pytest.mark.parametrize("make,message", [
    (lambda d: None, "no log.jsonl"),
    (lambda d: (d / "log.jsonl").write_text("{}\n"), "neither config.json"),
    (lambda d: ((d / "log.jsonl").write_text('{"kind": "epoch", "global_step": 1}\n'),
                (d / "config.json").write_text('{"rr_zoo": {"recipe": {"k": 2, "batch_size": 4}}}')), "no knn_acc"),
])
def test_curves_errors_name_the_fix(tmp_path, capsys, make, message):
    folder = tmp_path / "f"
    folder.mkdir()
    make(folder)
    assert training_main(["curves", str(folder), "--out", str(tmp_path / "o.png")]) == 2
    assert message in capsys.readouterr().err
