"""Deployment (docs/deploy.md): ONNX export with a dynamic batch run by onnxruntime, and torch.export save/load,
for every registered architecture; and the page's code blocks, run as written."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

import rr_zoo
from rr_zoo.models import ARCHITECTURES
from rr_zoo.timm_models import freeze

DOC = "docs/deploy.md"


def _feature_extractor(arch: str) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """The frozen feature extractor of an architecture's first entry (published weights when it has any;
    otherwise a seeded random init with non-trivial BatchNorm statistics), and its input size."""
    entries = [rr_zoo.get_entry(n) for n in rr_zoo.list_models()]
    entry = min((e for e in entries if e.architecture == arch), key=lambda e: (not e.published, e.name))
    if entry.published:
        return rr_zoo.create_model(entry.name, pretrained=True), tuple(entry.preprocessing["input_size"])
    torch.manual_seed(0)
    model = rr_zoo.create_model(entry.name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return freeze(model), tuple(entry.preprocessing["input_size"])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_onnx_matches_pytorch(arch, tmp_path):
    model, (c, h, w) = _feature_extractor(arch)
    path = tmp_path / f"{arch}.onnx"
    torch.onnx.export(model, (torch.randn(2, c, h, w),), str(path), input_names=["images"],
                      output_names=["features"], dynamic_shapes={"x": {0: "batch"}}, dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # a named dynamic axis, not the example's 2
    for n in (1, 5):
        images = torch.rand(n, c, h, w)
        (features,) = session.run(["features"], {"images": images.numpy()})
        with torch.no_grad():
            expected = model(images)
        assert features.shape == (n, model.num_features)
        torch.testing.assert_close(torch.from_numpy(features), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_torch_export_round_trip(arch, tmp_path):
    model, (c, h, w) = _feature_extractor(arch)
    program = torch.export.export(model, (torch.randn(2, c, h, w),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, tmp_path / f"{arch}.pt2")
    loaded = torch.export.load(tmp_path / f"{arch}.pt2").module()
    for n in (1, 3):
        images = torch.rand(n, c, h, w)
        with torch.no_grad():
            assert torch.equal(loaded(images), model(images))
    with pytest.raises(Exception, match=r"(?i)shape|size|dim"):
        loaded(torch.rand(2, c + 1, h, w))  # the wrong channels fail in the loaded program too


def test_deploy_page_runs_as_written(repo_root, tmp_path, monkeypatch):
    """Every python block of docs/deploy.md, in order, in one namespace (files written in a scratch folder)."""
    blocks = re.findall(r"```python\n(.*?)```", (repo_root / DOC).read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, DOC, "exec"), namespace)
    assert namespace["features"].shape == (5, 64) and (tmp_path / "rr_conv4_cifar10.onnx").is_file()
    readme = (repo_root / "README.md").read_text()
    assert f"]({DOC})" in readme, "README links the deploy page"
    assert np.isfinite(np.asarray(namespace["features"])).all()
