"""Evaluation protocols, export and publish, on a short real Conv-4 run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import ModelCard

import rr_zoo
from training.__main__ import main as training_main

SMALL = ["--dataset", "cifar10_jpeg", "--max-train", "600", "--max-test", "200"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_4k", "--k", "4",
                          "--batch-size", "32", "--epochs", "2", "--steps-per-epoch", "4", "--no-progress",
                          "--out", str(out)]) == 0
    return out


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path.parent / "rr_cache"))


def _evaluate(protocol, run_dir, tmp_path, *extra):
    out = tmp_path / "eval"
    code = training_main(["evaluate", protocol, "--weights", str(run_dir / "checkpoint.pt"), "--out", str(out),
                          *SMALL, *extra])
    assert code == 0
    dataset = extra[extra.index("--dataset") + 1] if "--dataset" in extra else "cifar10_jpeg"
    return json.loads((out / f"{protocol}_{dataset}.json").read_text()), out


def test_linear_on_cached_features(run_dir, tmp_path, capsys):
    result, _ = _evaluate("linear", run_dir, tmp_path, "--epochs", "5", "--seeds", "0", "1")
    assert 10.0 < result["value"] <= 100.0 and result["std"] is not None
    assert len(result["runs"]) == 2 and result["runs"][0]["n_train"] == 600
    assert "| linear | cifar10_jpeg |" in capsys.readouterr().out
    cache = list((tmp_path.parent / "rr_cache" / "features").glob("*.pt"))
    assert len(cache) == 2  # train + test, computed once for both seeds


def test_knn_and_retrieval(run_dir, tmp_path):
    knn, _ = _evaluate("knn", run_dir, tmp_path)
    assert 0.0 <= knn["value"] <= 100.0
    retrieval, out = _evaluate("retrieval", run_dir, tmp_path)
    run = retrieval["runs"][0]
    assert run["k"] == 10 and 0.0 <= run["mAP"] <= 100.0
    assert Path(run["png"]).stat().st_size > 5000


def test_embedding_png(run_dir, tmp_path):
    result, _ = _evaluate("embedding", run_dir, tmp_path)
    assert Path(result["runs"][0]["png"]).stat().st_size > 5000


def test_random_init_bound_is_worse_than_trained(run_dir, tmp_path):
    trained, _ = _evaluate("knn", run_dir, tmp_path)
    code = training_main(["evaluate", "knn", "--entry", "rr_conv4_cifar10", "--weights", "random",
                          "--out", str(tmp_path / "rand"), *SMALL])
    assert code == 0
    rand = json.loads((tmp_path / "rand" / "knn_cifar10_jpeg_random_init.json").read_text())
    assert rand["source"].startswith("random init")


def test_finetune_and_semisup_run(run_dir, tmp_path):
    result, _ = _evaluate("finetune", run_dir, tmp_path, "--epochs", "1")
    assert 0.0 <= result["value"] <= 100.0
    semi, _ = _evaluate("semisup", run_dir, tmp_path, "--epochs", "1")
    fractions = semi["runs"][0]["fractions"]
    assert list(fractions) == ["1%", "10%", "25%", "50%", "100%"]
    assert fractions["1%"]["n_train"] < fractions["100%"]["n_train"]


def test_finetune_resizes_each_image_once_as_a_batch_would(monkeypatch):
    import training.evaluate.finetune as ft
    from training.evaluate.features import resize_images

    monkeypatch.setattr(ft, "RESIZE_CHUNK", 3)
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(10)
    idx = torch.tensor([7, 1, 4, 9, 0, 5, 2])
    same = ft._at_side(images, labels, idx, 8)
    assert same[0] is images and same[1] is labels and same[2] is idx  # no copy at the stored side
    resized, resized_labels, pool = ft._at_side(images, labels, idx, 12)
    batch = torch.tensor([4, 0, 6])
    assert torch.equal(resized[pool[batch]], resize_images(images[idx[batch]], 12))
    assert torch.equal(resized_labels[pool[batch]], labels[idx[batch]])
    assert ft._at_side(images, labels, idx[:0], 12)[0].shape == (0, 3, 12, 12)


def test_grain_and_transfer_validate_datasets(run_dir, tmp_path, capsys):
    for protocol, message in (("grain", "cifar100_20"), ("transfer", "other than the pretraining one")):
        assert training_main(["evaluate", protocol, "--weights", str(run_dir / "checkpoint.pt"),
                              "--out", str(tmp_path / "eval"), *SMALL]) == 2
        assert message in capsys.readouterr().err


def test_export_then_load_everywhere(run_dir, tmp_path):
    out = tmp_path / "export"
    assert training_main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "relation_head.safetensors", "config.json", "README.md", "log.jsonl",
            "curves.png"} <= names
    card = (out / "README.md").read_text()
    meta = ModelCard.load(out / "README.md").data
    assert (meta.license, meta.library_name, meta.datasets) == ("mit", "timm", ["cifar10_4k"])
    assert 'timm.create_model("local-dir:" + folder, pretrained=True)' in card
    assert "hf-hub:" not in card and "<owner>" not in card  # no repository id given: no Hub line
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    ref = rr_zoo.models.build_backbone("conv4").eval()
    ref.load_state_dict(ckpt["backbone"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref(x)
        for model in (timm.create_model(f"local-dir:{out}", pretrained=True),
                      rr_zoo.create_model("rr_conv4_cifar10", weights=out)):
            assert torch.equal(model(x), expected)


def test_evaluate_reads_the_entry_of_an_export_folder(run_dir, tmp_path):
    out = tmp_path / "export"
    assert training_main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(out)]) == 0
    assert training_main(["evaluate", "knn", "--weights", str(out), "--out", str(tmp_path / "eval"), *SMALL]) == 0
    result = json.loads((tmp_path / "eval" / "knn_cifar10_jpeg.json").read_text())
    assert result["entry"] == "rr_conv4_cifar10" and "--entry" not in result["metric"]["command"]
    from_checkpoint, _ = _evaluate("knn", run_dir, tmp_path / "ckpt")
    assert result["value"] == from_checkpoint["value"]


def test_publish_to_local_hub_then_load(run_dir, tmp_path, monkeypatch):
    import shutil

    from rr_zoo.manifest import MANIFEST_PATH, load_manifest
    from tests.conftest import HUB_PORT
    from tests.hub_server import LocalHubServer

    out = tmp_path / "export"
    assert training_main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(out)]) == 0
    manifest = tmp_path / "manifest.json"
    shutil.copy(MANIFEST_PATH, manifest)
    with LocalHubServer(tmp_path / "hub", port=HUB_PORT) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "test-token")
        monkeypatch.setenv("RR_ZOO_MANIFEST", str(manifest))
        load_manifest.cache_clear()
        try:
            before = json.loads(manifest.read_text())["entries"]["rr_conv4_cifar10"]
            old_tag = before["default_release"]
            assert training_main(["publish", str(out), "--tag", "cifar10_4k_e2_k4", "--default", "--repo-id",
                                  "rr-zoo/rr_conv4_cifar10", "--manifest", str(manifest)]) == 0
            entry = json.loads(manifest.read_text())["entries"]["rr_conv4_cifar10"]
            release = entry["releases"]["cifar10_4k_e2_k4"]
            assert entry["default_release"] == "cifar10_4k_e2_k4"
            assert release["hub"]["revision"] == hub.head("rr-zoo/rr_conv4_cifar10")
            assert release["recipe"]["dataset"] == "cifar10_4k" and release["recipe"]["epochs"] == 2
            assert entry["releases"][old_tag] == before["releases"][old_tag]  # the earlier release is untouched
            model = timm.create_model("rr_conv4_cifar10", pretrained=True)  # the alias: the new default
            ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
            ref = rr_zoo.models.build_backbone("conv4").eval()
            ref.load_state_dict(ckpt["backbone"])
            x = torch.randn(2, 3, 32, 32)
            with torch.no_grad():
                assert torch.equal(model(x), ref(x))
            # publishing other weights under a published tag is refused, in one line, and changes nothing
            written = manifest.read_text()
            assert training_main(["publish", str(out), "--tag", old_tag, "--manifest", str(manifest)]) == 2
            assert manifest.read_text() == written
            # metrics evaluated after publishing are added to the release; a different value is refused
            knn, _ = _evaluate("knn", run_dir, tmp_path)
            metric_file = tmp_path / "eval" / "knn_cifar10_jpeg.json"
            assert training_main(["publish", "--entry", "rr_conv4_cifar10", "--tag", "cifar10_4k_e2_k4", "--metrics",
                                  str(metric_file), "--manifest", str(manifest)]) == 0
            metrics = json.loads(manifest.read_text())["entries"]["rr_conv4_cifar10"]["releases"][
                "cifar10_4k_e2_k4"]["metrics"]
            assert metrics == [knn["metric"]]
            changed = tmp_path / "changed.json"
            changed.write_text(json.dumps({"metric": {**knn["metric"], "value": knn["metric"]["value"] + 1}}))
            assert training_main(["publish", "--entry", "rr_conv4_cifar10", "--tag", "cifar10_4k_e2_k4", "--metrics",
                                  str(changed), "--manifest", str(manifest)]) == 2
        finally:
            load_manifest.cache_clear()


def test_supervised_bound_checkpoint_is_evaluable(tmp_path, shared_data):
    out = tmp_path / "sup"
    assert training_main(["supervised", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg",
                          "--epochs", "1", "--max-train", "256", "--out", str(out)]) == 0
    result, _ = _evaluate_ckpt(out / "checkpoint.pt", tmp_path)
    assert 0.0 <= result["value"] <= 100.0


def _evaluate_ckpt(ckpt, tmp_path):
    out = tmp_path / "eval_sup"
    assert training_main(["evaluate", "knn", "--weights", str(ckpt), "--out", str(out), *SMALL]) == 0
    return json.loads((out / "knn_cifar10_jpeg_supervised.json").read_text()), out


def test_check_compares_with_the_manifest(run_dir, tmp_path, capsys):
    import dataclasses

    from training.evaluate.run import check_against_manifest

    entry = rr_zoo.get_entry("rr_conv4_cifar10")
    release = dataclasses.replace(entry.release, metrics=({"task": "knn", "dataset": "cifar10_jpeg", "value": 50.0,
                                                           "command": "python -m training evaluate knn"},))
    fake = dataclasses.replace(entry, releases={**entry.releases, release.tag: release})
    assert check_against_manifest(fake, "knn", "cifar10_jpeg", 50.3, 0.5) == 0
    assert check_against_manifest(fake, "knn", "cifar10_jpeg", 51.0, 0.5) == 1
    assert check_against_manifest(fake, "linear", "cifar10_jpeg", 50.0, 0.5) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_finetune_augmentation_identity_and_cutout():
    from training.evaluate.finetune import affine_cutout

    x = torch.rand(200, 3, 32, 32)
    out = affine_cutout(x, torch.Generator().manual_seed(0), cutout_area=0.25)
    unchanged = [torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1)) for i in range(200)]
    assert 0.1 < sum(unchanged) / 200 < 0.45  # ~0.5 (no affine) x 0.5 (no cutout) = 0.25
    zero_fraction = (out == 0).float().mean((1, 2, 3))
    erased = zero_fraction > 0.2
    assert 0.3 < erased.float().mean() < 0.7 and zero_fraction.max() <= 0.26 + 0.2


def _rerun(command: str, out: Path) -> dict:
    """Run a recorded ``python -m training ...`` command in-process (with its own --out)."""
    import shlex

    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "training"], command
    assert training_main([*argv[3:], "--out", str(out)]) == 0
    return json.loads(next(out.glob("*.json")).read_text())


def test_recorded_command_reproduces_the_value(run_dir, tmp_path):
    result, _ = _evaluate("linear", run_dir, tmp_path, "--epochs", "3")
    metric = result["metric"]
    assert metric["task"] == "linear" and metric["dataset"] == "cifar10_jpeg" and metric["seeds"] == [0]
    assert "baseline" not in metric and metric["value"] == round(result["value"], 2)
    again = _rerun(metric["command"], tmp_path / "again")
    assert again["metric"]["value"] == metric["value"]


def test_bounds_are_marked_as_baselines(run_dir, tmp_path):
    code = training_main(["evaluate", "knn", "--entry", "rr_conv4_cifar10", "--weights", "random",
                          "--out", str(tmp_path / "rand"), *SMALL])
    assert code == 0
    rand = json.loads((tmp_path / "rand" / "knn_cifar10_jpeg_random_init.json").read_text())
    assert rand["metric"]["baseline"] == "random_init"
    sup = tmp_path / "sup"
    assert training_main(["supervised", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg",
                          "--epochs", "1", "--max-train", "128", "--out", str(sup)]) == 0
    result, _ = _evaluate_ckpt(sup / "checkpoint.pt", tmp_path)
    assert result["metric"]["baseline"] == "supervised"
    train_cmd, eval_cmd = result["metric"]["command"].split(" && ")  # the bound is trained by its own command
    assert train_cmd.startswith("python -m training supervised --entry rr_conv4_cifar10") and "--epochs 1" in train_cmd
    assert eval_cmd.startswith("python -m training evaluate knn --weights")


def test_export_records_provenance_that_reruns(run_dir, tmp_path):
    from training.__main__ import build_parser
    from training.cli import recipe_from_args

    out = tmp_path / "export"
    knn, _ = _evaluate("knn", run_dir, tmp_path)
    metrics_file = tmp_path / "eval" / "knn_cifar10_jpeg.json"
    figure = tmp_path / "tsne_demo.png"
    figure.write_bytes((run_dir / "curves.png").read_bytes())
    assert training_main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(out),
                          "--metrics", str(metrics_file), "--figures", str(figure)]) == 0
    assert (out / "tsne_demo.png").read_bytes() == figure.read_bytes()
    section = json.loads((out / "config.json").read_text())["rr_zoo"]
    prov = section["provenance"]
    metric = knn["metric"]  # copied, the checkpoint named by its file name (an export holds no absolute path)
    assert str(run_dir) in metric["command"]
    assert section["metrics"] == [{**metric, "command": metric["command"].replace(str(run_dir) + "/", "")}]
    assert prov["code_commit"] and prov["versions"]["torch"] == torch.__version__ and prov["hardware"]
    assert prov["wall_time_s"] > 0 and prov["epochs_trained"] == 2
    args = build_parser().parse_args(prov["command"].split()[3:])
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert recipe_from_args(args).to_dict() == ckpt["recipe"]  # the command re-creates the exact recipe
    card = (out / "README.md").read_text()
    assert prov["command"] in card and section["metrics"][0]["command"] in card
    assert "![tsne_demo.png](tsne_demo.png)" in card
    (result,) = ModelCard.load(out / "README.md").data.eval_results
    assert (result.metric_name.split(":")[0], result.dataset_name, result.metric_value) == \
        ("knn", "cifar10_jpeg", knn["metric"]["value"])


def test_check_uses_the_published_metric(run_dir, tmp_path, monkeypatch):
    from rr_zoo.manifest import MANIFEST_PATH, load_manifest

    knn, _ = _evaluate("knn", run_dir, tmp_path)
    data = json.loads(Path(MANIFEST_PATH).read_text())
    manifest = tmp_path / "manifest.json"
    base = ["evaluate", "knn", "--entry", "rr_conv4_cifar10", "--weights", str(run_dir / "checkpoint.pt"),
            "--max-train", "600", "--max-test", "200", "--out", str(tmp_path / "check"), "--check"]
    monkeypatch.setenv("RR_ZOO_MANIFEST", str(manifest))
    try:
        for offset, expected_code in ((0.3, 0), (2.0, 1)):
            metric = {**knn["metric"], "value": knn["metric"]["value"] + offset}
            entry = data["entries"]["rr_conv4_cifar10"]
            entry["releases"][entry["default_release"]]["metrics"] = [
                {**metric, "value": 0.0, "baseline": "random_init"}, metric]
            manifest.write_text(json.dumps(data))
            load_manifest.cache_clear()
            assert training_main(base) == expected_code  # dataset and seeds come from the published metric
    finally:
        load_manifest.cache_clear()


def test_fast_linear_classifier_matches_autograd_adam():
    """train_linear writes out the gradient and Adam step; it must equal nn.Linear + cross-entropy + Adam."""
    import torch.nn.functional as F

    from training.evaluate.linear import train_linear

    def reference(x, y, classes, epochs, batch, lr, seed):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        clf = torch.nn.Linear(x.shape[1], classes)
        opt = torch.optim.Adam(clf.parameters(), lr=lr)
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0], generator=gen)
            for start in range(0, x.shape[0], batch):
                idx = perm[start:start + batch]
                opt.zero_grad()
                F.cross_entropy(clf(x[idx]), y[idx]).backward()
                opt.step()
        return clf

    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(700, 16, generator=gen), torch.randint(0, 5, (700,), generator=gen)
    ours, ref = train_linear(x, y, 5, 4, 128, 1e-2, 1), reference(x, y, 5, 4, 128, 1e-2, 1)
    torch.testing.assert_close(ours.weight, ref.weight, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours.bias, ref.bias, atol=1e-6, rtol=1e-5)
    assert not torch.equal(ours.weight, torch.nn.Linear(16, 5).weight)


def test_export_is_byte_reproducible(run_dir, tmp_path):
    """Exporting the same checkpoint twice gives the same weight files (same sha256 in the manifest)."""
    for name in ("a", "b"):
        assert training_main(["export", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out",
                              str(tmp_path / name)]) == 0
    for f in ("model.safetensors", "relation_head.safetensors"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_export_of_an_epoch_end_checkpoint_of_a_longer_run(run_dir, tmp_path):
    """A checkpoint kept at the end of epoch 2 of a run aiming at 5 epochs is what `--epochs 2` gives."""
    from training.__main__ import build_parser
    from training.cli import recipe_from_args

    run = tmp_path / "run"
    run.mkdir()
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    ckpt["recipe"] = {**ckpt["recipe"], "epochs": 5}  # as a run started with --epochs 5 saves it after epoch 2
    torch.save(ckpt, run / "checkpoint-epoch2.pt")
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    later = {**rows[-1], "epoch": 3, "global_step": rows[-1]["global_step"] + 4}
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, later]))
    out = tmp_path / "export"
    assert training_main(["export", "--checkpoint", str(run / "checkpoint-epoch2.pt"), "--out", str(out)]) == 0
    section = json.loads((out / "config.json").read_text())["rr_zoo"]
    prov = section["provenance"]
    assert prov["epochs_trained"] == 2 and prov["recipe"]["epochs"] == 2 and section["recipe"]["epochs"] == 2
    assert "--epochs 2" in prov["command"]
    args = build_parser().parse_args(prov["command"].split()[3:])
    assert recipe_from_args(args).to_dict() == {**ckpt["recipe"], "epochs": 2}
    exported = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert exported == rows and (out / "curves.png").stat().st_size > 5000  # the later epoch's row left out
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # a run that has not drawn its curves
    again = tmp_path / "again"
    assert training_main(["export", "--checkpoint", str(run / "checkpoint-epoch2.pt"), "--out", str(again)]) == 0
    assert (again / "curves.png").stat().st_size > 5000
    (run / "curves.png").write_bytes((again / "curves.png").read_bytes())  # the run's own plot: copied when whole
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "epo\n')  # being written
    assert training_main(["export", "--checkpoint", str(run / "checkpoint-epoch2.pt"),
                          "--out", str(tmp_path / "w")]) == 0
    assert [json.loads(line) for line in (tmp_path / "w" / "log.jsonl").read_text().splitlines()] == rows
    (run / "log.jsonl").write_text("not json\n" + "".join(json.dumps(r) + "\n" for r in rows))
    assert training_main(["export", "--checkpoint", str(run / "checkpoint-epoch2.pt"),
                          "--out", str(tmp_path / "x")]) == 2


def test_keep_epochs_then_publish_an_earlier_epoch(tmp_path, shared_data):
    run = tmp_path / "run"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_4k", "--k", "3",
                          "--batch-size", "16", "--epochs", "2", "--steps-per-epoch", "2", "--keep-epochs",
                          "--no-progress", "--out", str(run)]) == 0
    first = torch.load(run / "checkpoint-epoch1.pt", weights_only=True)
    last = torch.load(run / "checkpoint.pt", weights_only=True)
    assert (first["epoch"], first["global_step"], last["epoch"]) == (1, 2, 2)
    kept = torch.load(run / "checkpoint-epoch2.pt", weights_only=True)
    assert all(torch.equal(kept["backbone"][k], v) for k, v in last["backbone"].items())  # the last epoch's copy
    out = tmp_path / "export"
    assert training_main(["export", "--checkpoint", str(run / "checkpoint-epoch1.pt"), "--out", str(out)]) == 0
    prov = json.loads((out / "config.json").read_text())["rr_zoo"]["provenance"]
    assert "--epochs 1 " in prov["command"] and "--steps-per-epoch 2" in prov["command"]
    assert "--keep-epochs" not in prov["command"] and prov["views_seen"] == 2 * 16 * 3
    assert len((out / "log.jsonl").read_text().splitlines()) == 1


def test_read_log_cuts_at_a_step_and_skips_only_a_half_written_last_line(tmp_path):
    from training.release.provenance import wall_time_s
    from training.run_folders import RunLogError, parse_log, read_log

    rows = [{"kind": "epoch", "epoch": e, "global_step": 10 * e, "seconds": 100.0 * e} for e in (1, 2, 3)]
    log = tmp_path / "log.jsonl"
    assert read_log(log) == [] and wall_time_s(log) is None
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "ep')
    assert read_log(log) == rows and read_log(log, up_to_step=20) == rows[:2]
    assert wall_time_s(log) == 600.0 and wall_time_s(log, up_to_step=20) == 300.0
    log.write_text(json.dumps(rows[0]) + "\n{oops\n" + json.dumps(rows[1]) + "\n")
    with pytest.raises(RunLogError, match=r"log.jsonl: line 2 is not JSON \('\{oops'\)"):
        read_log(log)
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "ep'
    assert parse_log(text, "given") == rows and parse_log(text, "given", up_to_step=10) == rows[:1]
    with pytest.raises(RunLogError, match=r"^given: line 1 is not JSON"):
        parse_log("{oops\n" + text, "given")


def test_segments_of_a_run_resumed_from_one_that_recorded_none():
    from types import SimpleNamespace

    from training.release.provenance import run_segments

    ckpt = SimpleNamespace(global_step=30, train_seconds=90.0, segments=[
        {"from_step": 10, "train_seconds_at_start": 40.0, "threads": 2},
        {"from_step": 25, "train_seconds_at_start": 70.0, "threads": 1},
        {"from_step": 30, "train_seconds_at_start": 90.0, "threads": 2}])  # started at the checkpoint: no steps
    segments = run_segments(ckpt)
    assert [(s["from_step"], s["to_step"], s["train_seconds"], s.get("threads")) for s in segments] == [
        (0, 10, 40.0, None), (10, 25, 30.0, 2), (25, 30, 20.0, 1)]
    assert segments[0]["note"].startswith("not recorded")
    assert run_segments(SimpleNamespace(global_step=5, train_seconds=1.0, segments=[])) == []
