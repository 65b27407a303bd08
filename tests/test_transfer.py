"""Evaluation across resolutions (transfer) and the bf16 evaluation path."""

from __future__ import annotations

import json

import pytest
import torch

from rr_zoo.models import build_backbone
from tests.fakes import make_fake_tiny_imagenet
from training.__main__ import main as training_main
from training.evaluate.features import extract_features, resize_images
from training.pretrain.augment import normalize

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "rr_cache"))


def test_resize_images_keeps_flat_images_flat_and_same_sides_untouched():
    flat = torch.full((2, 3, 64, 64), 200, dtype=torch.uint8)
    small = resize_images(flat, 32)
    assert small.shape == (2, 3, 32, 32) and small.dtype == torch.uint8 and bool((small == 200).all())
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert resize_images(images, 32) is images and resize_images(images, None) is images
    assert resize_images(images, 64).shape == (2, 3, 64, 64)
    ramp = torch.arange(64, dtype=torch.float32).mul(4).expand(1, 3, 64, 64).to(torch.uint8)  # 0, 4, ..., 252
    half = resize_images(ramp, 32).float()
    expected = torch.arange(32, dtype=torch.float32).mul(8).add(2)  # mean of each pair of columns
    assert (half[0, 0, 5, 1:-1] - expected[1:-1]).abs().max() <= 1


def test_fp32_features_are_the_reference_path_and_bf16_agrees():
    torch.manual_seed(0)
    model = build_backbone("resnet8").eval()
    images = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():  # the same batches as the extraction below
        reference = torch.cat([model(normalize(images[i:i + 10], MEAN, STD)) for i in range(0, 24, 10)])
    fp32 = extract_features(model, images, MEAN, STD, batch_size=10)
    assert torch.equal(fp32, reference)
    bf16 = extract_features(model, images, MEAN, STD, batch_size=10, precision="bf16")
    cos = torch.nn.functional.cosine_similarity(bf16, reference, dim=1)
    assert bf16.dtype == torch.float32 and float(cos.min()) > 0.99
    with pytest.raises(ValueError, match="fp32 or bf16"):
        extract_features(model, images, MEAN, STD, precision="fp16")


def test_extraction_leaves_a_training_backbone_as_it_was():
    model = build_backbone("resnet8").to(memory_format=torch.channels_last).train()
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    extract_features(model, images, MEAN, STD, precision="bf16", image_size=16)
    conv = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert model.training and conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def _transfer(tmp_path, *extra):
    out = tmp_path / "eval"
    assert training_main(["evaluate", "transfer", "--entry", "rr_conv4_cifar10", "--weights", "random",
                          "--dataset", "tinyimagenet", "--data-root", str(tmp_path), "--epochs", "2",
                          "--out", str(out), *extra]) == 0
    return json.loads((out / "transfer_tinyimagenet_random_init.json").read_text())


def test_transfer_to_another_resolution_says_how_images_were_resized(tmp_path):
    make_fake_tiny_imagenet(tmp_path, "official", per_class=3)
    result = _transfer(tmp_path, "--precision", "bf16")
    assert result["input"] == {"dataset_side": 64, "side": 32, "precision": "bf16",
                               "resize": "64x64 -> 32x32, bilinear, antialiased"}
    metric = result["metric"]
    assert "images 64x64 -> 32x32, bilinear, antialiased" in metric["note"]
    assert "--precision bf16" in metric["command"] and "--image-size" not in metric["command"]
    assert metric["input"] == result["input"]
    native = _transfer(tmp_path, "--image-size", "64")
    assert native["input"]["resize"] == "none" and native["input"]["side"] == 64
    assert "--image-size 64" in native["metric"]["command"] and "input" not in native["metric"]  # fp32, not resized
    features = list((tmp_path / "rr_cache" / "features").glob("*.pt"))
    assert len(features) == 4  # train + val at 32 (bf16) and at 64 (fp32): separate cache entries


def test_bad_evaluation_precision_or_side_is_one_line(tmp_path, capsys):
    for flag, value, message in (("--precision", "fp16", "precision must be one of fp32, bf16"),
                                 ("--image-size", "4", "conv4 takes images of at least 8x8"),
                                 ("--image-size", "0", "image_size must be a positive")):
        code = training_main(["evaluate", "linear", "--entry", "rr_conv4_cifar10", "--weights", "random",
                              "--dataset", "cifar10_jpeg", flag, value, "--out", str(tmp_path)])
        assert code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_supervised_bound_in_bf16_records_its_precision(tmp_path, shared_data):
    out = tmp_path / "sup"
    assert training_main(["supervised", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg", "--epochs", "1",
                          "--max-train", "128", "--precision", "bf16", "--out", str(out)]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["recipe"]["precision"] == "bf16"
    ev = tmp_path / "ev"
    assert training_main(["evaluate", "knn", "--weights", str(out / "checkpoint.pt"), "--dataset", "cifar10_jpeg",
                          "--max-train", "300", "--max-test", "100", "--precision", "bf16", "--out", str(ev)]) == 0
    command = json.loads((ev / "knn_cifar10_jpeg_supervised.json").read_text())["metric"]["command"]
    supervised, evaluate = command.split(" && ")
    assert "--precision bf16" in supervised and "--precision bf16" in evaluate


def test_published_transfer_rows_show_resize_bound_and_commands(tmp_path):
    import shutil

    import jsonschema

    from rr_zoo.docs import transfer_table
    from rr_zoo.manifest import MANIFEST_PATH, SCHEMA_PATH, read_manifest

    make_fake_tiny_imagenet(tmp_path, "official", per_class=3)
    bound = _transfer(tmp_path, "--precision", "bf16")
    out = tmp_path / "rr"
    assert training_main(["evaluate", "transfer", "--entry", "rr_conv4_cifar10", "--dataset", "tinyimagenet",
                          "--data-root", str(tmp_path), "--epochs", "2", "--precision", "bf16",
                          "--out", str(out)]) == 0
    manifest = tmp_path / "manifest.json"
    shutil.copy(MANIFEST_PATH, manifest)
    tag = read_manifest(manifest).get("rr_conv4_cifar10").default_release
    assert training_main(["publish", "--entry", "rr_conv4_cifar10", "--tag", tag, "--manifest", str(manifest),
                          "--metrics", str(out / "transfer_tinyimagenet.json"),
                          str(tmp_path / "eval" / "transfer_tinyimagenet_random_init.json")]) == 0
    jsonschema.validate(json.loads(manifest.read_text()), json.loads(SCHEMA_PATH.read_text()))
    rr = json.loads((out / "transfer_tinyimagenet.json").read_text())["metric"]
    table = transfer_table(manifest=read_manifest(manifest))
    row = next(line for line in table.splitlines() if line.startswith(f"| `conv4_rr.{tag}`"))
    assert f"| cifar10_jpeg | tinyimagenet | 64x64 -> 32x32, bilinear, antialiased | {rr['value']:.2f} |" in row
    assert row.endswith(f"| {bound['metric']['value']:.2f} | not in the paper |")
    assert rr["command"] in table and bound["metric"]["command"] in table
