"""Your own images (``--dataset folder:PATH``) and continued pretraining (``--init``), on real CIFAR-10 photos
written as a folder of mixed PNG / JPEG / WebP files of mixed sizes and modes, with a corrupt file and a note."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import rr_zoo
from training.__main__ import main as training_main
from training.data import DataRequest, get_dataset_spec, load_split
from training.data.formats.user_folder import FolderResolver, scan_folder
from training.data.stats import image_stats

N_IMAGES = 300
RUN = ["--k", "4", "--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "2", "--threads", "1", "--no-progress"]

UNPUBLISHED = next(name for name in rr_zoo.list_models() if not rr_zoo.get_entry(name).published)


def write_folder(root: Path, shared_data: Path, n: int = N_IMAGES, classes: bool = True,
                 junk: bool = True) -> dict[str, np.ndarray]:
    """The first ``n`` images of cifar10_4k as files: every third a lossless 32x32 PNG (returned by name), the
    others JPEG or a 48x40 grayscale WebP; with ``junk`` also a corrupt PNG, a .txt and a hidden file."""
    with np.load(shared_data / "cifar10_4k.npz") as d:
        images, labels, names = d["images"][:n], d["labels"][:n], [str(c) for c in d["classes"]]
    lossless = {}
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / names[label] if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(img)
        if i % 3 == 0:
            pil.save(folder / f"{i:04d}.png")
            lossless[(folder / f"{i:04d}.png").relative_to(root).as_posix()] = img
        elif i % 3 == 1:
            pil.save(folder / f"{i:04d}.jpg", quality=90)
        else:
            pil.resize((48, 40)).convert("L").save(folder / f"{i:04d}.webp")
    if not junk:
        return lossless
    broken = root / names[2] if classes else root
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (root / "notes.txt").write_text("where these photos come from")
    (root / ".DS_Store").write_bytes(b"\0")
    return lossless


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_data):
    """A folder of 300 real photos, and the decode cache, for this module."""
    root = tmp_path_factory.mktemp("folder")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RR_CACHE_DIR", str(root / "cache"))
        lossless = write_folder(root / "photos", shared_data)
        yield root, lossless


@pytest.fixture(scope="module")
def trained(workdir):
    """Pretrain from rr_conv4_cifar10 on the folder (a short run), then export it."""
    root, _ = workdir
    run, export = root / "run", root / "export"
    args = ["pretrain", "--entry", "rr_conv4_cifar10", "--init", "rr_conv4_cifar10", "--dataset",
            f"folder:{root / 'photos'}", "--out", str(run), *RUN]
    assert training_main(args) == 0
    assert training_main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(export)]) == 0
    return run, export


def _one_line_error(argv, capsys) -> str:
    assert training_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_folder_is_decoded_once_with_labels_splits_and_counts(workdir, capsys):
    root, lossless = workdir
    photos = root / "photos"
    request = DataRequest(image_size=32, channels=3)
    spec = get_dataset_spec(f"folder:{photos}", request)
    assert spec.name == f"folder:{photos.resolve()}" and spec.num_classes == 10
    assert spec.splits == ("all", "train", "test")
    assert spec.split_sizes["all"] == N_IMAGES  # the corrupt file skipped, the .txt and hidden file ignored
    assert spec.split_sizes["train"] + spec.split_sizes["test"] == N_IMAGES
    assert "20% test, seed 0" in spec.notes["split"] and spec.notes["skipped"] == "1 unreadable image(s)"
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image(s) (first: bird/broken.png), ignored 1 non-image file(s)" in err
    data = load_split(f"folder:{photos}", "all", request=request)
    assert data.images.shape == (N_IMAGES, 3, 32, 32) and data.images.dtype == torch.uint8
    files = FolderResolver().spec(str(photos), request).reader.images  # every listed file, in listing order
    names = scan_folder(photos).files
    assert len(names) == N_IMAGES + 1 and "bird/broken.png" in names and "notes.txt" not in names
    for rel, img in list(lossless.items())[:5]:  # lossless files come back pixel for pixel
        assert np.array_equal(files[names.index(rel)].numpy().transpose(1, 2, 0), img)
    assert data.classes[data.labels[0]] == Path(names[0]).parent.name
    assert spec.mean == image_stats(data.images)[0] and all(0.2 < s < 0.3 for s in spec.std)
    # the held-out split: 20% of each class, the same every time
    test = load_split(f"folder:{photos}", "test", request=request)
    counts = torch.bincount(test.labels, minlength=10)
    assert bool((counts >= 1).all())
    assert torch.equal(test.labels, load_split(str(photos), "test", request=request).labels)
    # every way of naming the folder is the same dataset; other sizes and channels are decoded on request
    assert get_dataset_spec(f"image-folder:{photos}", request) is spec
    gray = load_split(str(photos), "all", request=DataRequest(image_size=20, channels=1, mean=(0.5,), std=(0.25,)))
    assert gray.images.shape == (N_IMAGES, 1, 20, 20)


def test_cache_is_keyed_by_content(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    write_folder(tmp_path / "few", shared_data, n=12)
    request = DataRequest(image_size=32, channels=3)
    first = FolderResolver().spec(str(tmp_path / "few"), request).reader.images.clone()
    caches = sorted((tmp_path / "cache").rglob("*.npy"))
    stamps = [c.stat().st_mtime_ns for c in caches]
    FolderResolver().spec(str(tmp_path / "few"), request)  # a new process: the cache is reused
    assert [c.stat().st_mtime_ns for c in caches] == stamps
    changed = next((tmp_path / "few").rglob("0000.png"))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(changed)  # same name, new content: read again
    again = FolderResolver().spec(str(tmp_path / "few"), request).reader.images
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(caches) + 2
    assert not torch.equal(first, again) and int(again.sum()) < int(first.sum())


def test_a_folder_with_train_and_val_is_split_by_it(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    write_folder(tmp_path / "ds" / "train", shared_data, n=20)
    write_folder(tmp_path / "ds" / "val", shared_data, n=6)
    spec = get_dataset_spec(f"folder:{tmp_path / 'ds'}", DataRequest(image_size=32, channels=3))
    assert spec.pretrain_split == "train" and set(spec.splits) == {"train", "val", "test"}
    assert (spec.split_sizes["train"], spec.split_sizes["test"]) == (20, 6) and "val/ (as test)" in spec.notes["split"]


def _bad_inputs(tmp: Path, shared_data: Path) -> list[tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    (tmp / "text_only").mkdir()
    (tmp / "text_only" / "a.txt").write_text("x")
    write_folder(tmp / "one", shared_data, n=1, junk=False)
    write_folder(tmp / "corrupt", shared_data, n=12)
    (tmp / "file.jpg").write_bytes(b"x")
    base = ["pretrain", "--entry", "rr_conv4_cifar10", *RUN]
    photos = str(tmp / "photos")
    return [
        ([*base, "--dataset", f"folder:{tmp / 'empty'}"], "holds no images (no files)"),
        ([*base, "--dataset", f"folder:{tmp / 'text_only'}"], "none in a format PIL reads"),
        ([*base, "--dataset", f"folder:{tmp / 'file.jpg'}"], "is a file, not a folder"),
        ([*base, "--dataset", f"folder:{tmp / 'missing'}"], "no such folder"),
        ([*base, "--dataset", f"folder:{tmp / 'one'}"], "has 1 images, fewer than batch_size=16"),
        ([*base, "--dataset", str(tmp / "corrupt"), "--strict"],
         "1 of 13 images cannot be read (first: bird/broken.png)"),
        ([*base, "--dataset", "cifar10_4k", "--image-size", "64"], "image_size applies to folder datasets only"),
        ([*base, "--dataset", photos, "--mean", "0.5"], "mean needs 3 value(s)"),
        ([*base, "--dataset", photos, "--init", "rr_conv4_fashionmnist"], "in_chans 1 there, 3 here"),
        ([*base, "--dataset", photos, "--init", "rr_conv4_cifar10", "--aggregation", "sum"],
         "aggregation 'cat' there, 'sum' here"),
        ([*base, "--dataset", photos, "--init", "rr_conv4_cifar1O"], "neither an existing file or folder nor a zoo"),
        ([*base, "--dataset", photos, "--init", UNPUBLISHED], "no published weights"),
        ([*base, "--dataset", str(tmp / "unlabelled"), "--knn-every", "1"], "--knn-every needs labels"),
    ]


def test_bad_input_is_one_line_and_loses_nothing(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    write_folder(tmp_path / "photos", shared_data, n=20, junk=False)
    write_folder(tmp_path / "unlabelled", shared_data, n=20, classes=False, junk=False)
    out = tmp_path / "earlier_run"
    out.mkdir()
    (out / "log.jsonl").write_text('{"kind": "epoch"}\n')
    for argv, message in _bad_inputs(tmp_path, shared_data):
        assert message in _one_line_error([*argv, "--out", str(out)], capsys), argv
        assert sorted(p.name for p in out.iterdir()) == ["log.jsonl"]  # nothing written, nothing lost
        assert (out / "log.jsonl").read_text() == '{"kind": "epoch"}\n'


def test_pretrain_on_a_folder_from_a_zoo_entry_exports_its_own_normalisation(trained, workdir):
    """The run starts from the entry, and its export loads through timm with the folder's mean/std."""
    root, _ = workdir
    run, export = trained
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    spec = get_dataset_spec(f"folder:{root / 'photos'}", DataRequest(image_size=32, channels=3))
    assert ckpt["preprocessing"] == {"input_size": [3, 32, 32], "mean": list(spec.mean), "std": list(spec.std)}
    entry = rr_zoo.get_entry("rr_conv4_cifar10")
    assert tuple(spec.mean) != tuple(entry.preprocessing["mean"])  # the folder's own, measured
    assert ckpt["init"]["from"] == "rr_conv4_cifar10" and ckpt["init"]["epochs"] == 12
    assert ckpt["init"]["sha256"]["backbone"] == entry.file("backbone").sha256
    first_epoch = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert first_epoch["acc_pos"] > 70  # a random init starts near 50%: the run started from the entry
    assert ckpt["recipe"]["split"] == "all" and ckpt["dataset"] == f"folder:{(root / 'photos').resolve()}"

    config = json.loads((export / "config.json").read_text())
    prov = config["rr_zoo"]["provenance"]
    assert (prov["epochs_added"], prov["epochs_trained"], config["rr_zoo"]["epochs_trained"]) == (1, 13, 13)
    assert prov["init"]["provenance"]["command"] == entry.provenance["command"]
    assert "--init rr_conv4_cifar10" in prov["command"]
    assert "| started from | zoo entry `rr_conv4_cifar10` (12 epochs" in (export / "README.md").read_text()
    model = timm.create_model(f"local-dir:{export}")
    assert tuple(model.pretrained_cfg["mean"]) == spec.mean and tuple(model.pretrained_cfg["std"]) == spec.std
    assert tuple(timm.data.resolve_data_config({}, model=model)["mean"]) == spec.mean
    for transform in (rr_zoo.get_transform(f"local-dir:{export}"), rr_zoo.get_transform(str(export)),
                      rr_zoo.get_transform("rr_conv4_cifar10", weights=export)):
        x = transform(Image.fromarray(np.full((32, 32, 3), 128, np.uint8)))
        assert torch.allclose(x[:, 0, 0], (128 / 255 - torch.tensor(spec.mean)) / torch.tensor(spec.std), atol=1e-3)
    assert tuple(rr_zoo.create_model("rr_conv4_cifar10", weights=export).pretrained_cfg["mean"]) == spec.mean
    assert tuple(rr_zoo.get_transform("rr_conv4_cifar10").transforms[1].transforms[-1].mean.tolist()) != spec.mean


def _absolute_paths(value) -> list[str]:
    """Strings in a JSON value (or a text) that hold an absolute path (URLs aside)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    return re.findall(r"(?:^|[\s'\"=:(])/(?!/)\S*", value) if isinstance(value, str) else []


def test_the_card_of_a_folder_run_describes_that_run(trained, workdir):
    """The export of weights pretrained on a folder: its card parses with huggingface_hub, lists every metric of
    the weights as an eval result, and card and config.json name the run's data, epochs, K, views, precision and
    parent, with no absolute path, no placeholder and nothing of the zoo entry's published release."""
    from huggingface_hub import ModelCard

    root, _ = workdir
    run, _ = trained
    evals, out = root / "card_eval", root / "card_export"
    for protocol in ("knn", "retrieval"):
        assert training_main(["evaluate", protocol, "--weights", str(run / "checkpoint.pt"), "--dataset",
                              str(root / "photos"), "--out", str(evals)]) == 0
    results = sorted(evals.glob("*.json"))
    assert training_main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out),
                          "--metrics", *map(str, results)]) == 0
    config = json.loads((out / "config.json").read_text())
    section, text = config["rr_zoo"], (out / "README.md").read_text()
    metrics = section["metrics"]
    assert [m["task"] for m in metrics] == ["knn", "retrieval"]
    assert all(m["dataset"] == "folder:photos" for m in metrics)

    card = ModelCard.load(out / "README.md")
    assert (card.data.license, card.data.library_name, card.data.datasets) == ("mit", "timm", None)
    assert "relational-reasoning" in card.data.tags and card.data.model_name == "conv4_rr.folder_photos"
    found = {(r.metric_name.split(":")[0], r.dataset_type, r.dataset_name, r.metric_value)
             for r in card.data.eval_results}
    assert found == {(m["task"], "imagefolder", "folder:photos", m["value"]) for m in metrics}
    for m in metrics:
        assert m["command"] in text and "--weights checkpoint.pt --dataset folder:photos" in m["command"]

    entry = rr_zoo.get_entry("rr_conv4_cifar10")
    prov, ckpt = section["provenance"], torch.load(run / "checkpoint.pt", weights_only=True)
    views = ckpt["global_step"] * 16 * 4
    published = entry.provenance["recipe"]  # the parent: whole epochs of a registered dataset
    images = get_dataset_spec(published["dataset"]).split_sizes[published["split"]]
    parent_views = (entry.provenance["epochs_trained"] * (images // published["batch_size"]) * published["batch_size"]
                    * published["k"])
    assert (prov["views_added"], prov["views_seen"]) == (views, parent_views + views)
    assert (section["recipe"]["dataset"], prov["recipe"]["dataset"]) == ("folder:photos", "folder:photos")
    assert "--dataset folder:photos" in prov["command"] and prov["precision"] in ("fp32", "bf16")
    assert config["pretrained_cfg"]["tag"] == "folder_photos"
    assert text.startswith("---\n") and "# Conv-4 (8-16-32-64 channels) pretrained by relational reasoning on " \
        "`folder:photos`" in text
    for row in ("| data | `folder:photos`, split `all` |", "| epochs | 13 in all: 12 before, 1 in this run |",
                "| K (augmented views per image) | 4 |", f"| precision | {prov['precision']} |",
                f"| views seen (images x K) | {parent_views + views:,} in all, {views:,} in this run |",
                f"| started from | zoo entry `rr_conv4_cifar10` (12 epochs, sha256 {entry.file().sha256})"):
        assert row in text, row
    assert entry.description not in text and "hf-hub:" not in text and f'"{entry.name}", pretrained=True' not in text
    assert not re.search(r"<[a-z_]+>", text), "a placeholder in the card"
    assert _absolute_paths(config) == [] and _absolute_paths(text) == [] and str(root) not in text
    assert "![curves.png](curves.png)" in text and (out / "curves.png").is_file()
    model = timm.create_model(f"local-dir:{out}", pretrained=True)  # the card's own line loads these weights
    assert torch.equal(model.state_dict()["layer1.conv.weight"], ckpt["backbone"]["layer1.conv.weight"])


def test_continuing_from_a_checkpoint_and_an_export_records_the_chain(trained, workdir):
    root, _ = workdir
    run, export = trained
    photos = f"folder:{root / 'photos'}"
    for source, kind in ((run / "checkpoint.pt", "training checkpoint"), (export, "export folder")):
        out = root / f"again_{kind.split()[0]}"
        assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--init", str(source), "--dataset", photos,
                              "--out", str(out), *RUN]) == 0
        ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
        assert ckpt["init"]["kind"] == kind and ckpt["init"]["epochs"] == 13
        assert ckpt["init"]["provenance"]["init"]["from"] == "rr_conv4_cifar10"  # the chain, nested
    from rr_zoo.weights import sha256_file

    first = torch.load(root / "again_training" / "checkpoint.pt", weights_only=True)["init"]
    assert first["sha256"] == {"checkpoint": sha256_file(run / "checkpoint.pt")}


def test_evaluate_on_a_folder_states_its_split(trained, workdir):
    root, _ = workdir
    run, _ = trained
    out = root / "eval"
    assert training_main(["evaluate", "knn", "--weights", str(run / "checkpoint.pt"), "--dataset",
                          str(root / "photos"), "--out", str(out)]) == 0
    result = json.loads((out / "knn_folder_photos.json").read_text())
    assert "a fixed split of each class" in result["split"] and result["dataset"].startswith("folder:/")
    assert result["runs"][0]["value"] > 15  # 10 classes; the features are not random
    assert f"--dataset {result['dataset']}" in result["metric"]["command"]


def test_evaluating_an_unlabelled_folder_says_how_to_label_it(tmp_path, shared_data, monkeypatch, capsys):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    write_folder(tmp_path / "flat", shared_data, n=10, classes=False, junk=False)
    err = _one_line_error(["evaluate", "knn", "--entry", "rr_conv4_cifar10", "--dataset", f"folder:{tmp_path / 'flat'}",
                           "--out", str(tmp_path / "eval")], capsys)
    assert "has no labels; put its images in one sub-folder per class" in err


def test_dry_run_on_a_folder_lists_it_without_decoding(workdir, capsys, monkeypatch):
    root, _ = workdir
    monkeypatch.setattr("training.data.formats.user_folder.decode_image",
                        lambda *a, **k: pytest.fail("the dry run decoded an image"))
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", f"folder:{root / 'photos'}",
                          "--batch-size", "16", "--k", "4", "--epochs", "2", "--dry-run", "--threads", "1"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    photos = sum(1 for p in (root / "photos").rglob("*") if p.suffix in {".png", ".jpg", ".webp", ".bmp"})
    assert est["images"] == photos and est["steps"] == (photos // 16) * 2  # the broken .png is counted too
    assert "no image decoded" in est["images_source"]
    err = _one_line_error(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", f"folder:{root / 'photos'}",
                           "--batch-size", "4096", "--dry-run"], capsys)
    assert "fewer than batch_size=4096" in err
