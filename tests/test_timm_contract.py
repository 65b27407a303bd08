"""timm's model contract, parametrized over every registered rr model.

timm's own ``tests/test_models.py`` runs separately (``python -m tests.timm_suite``); these
tests pin what downstream users hit first: FX / export / TorchScript, ``in_chans``
adaptation of pretrained weights, frozen really being frozen, the keyword set timm's
``train.py`` passes, and fine-tuning with timm's optimizer factory.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import timm
import timm.optim
import torch

import rr_zoo
from rr_zoo.errors import InputShapeError
from rr_zoo.manifest import load_manifest
from rr_zoo.models.base import FrozenBatchNorm2d

ENTRIES = sorted(load_manifest().entries)
PUBLISHED = load_manifest().names(published_only=True)
ARCH_MODELS = sorted(timm.list_models("*_rr"))


def _input(name: str, batch: int = 2, in_chans: int | None = None) -> torch.Tensor:
    c, h, w = timm.get_pretrained_cfg_value(name, "input_size")
    torch.manual_seed(0)
    return torch.randn(batch, in_chans or c, h, w)


def _train_py_kwargs(in_chans: int, set_flags: bool, drop_path: bool = True) -> dict:
    """The keyword set timm's train.py passes to create_model (v1.0.x, `create_model(args.model, ...)`).

    Unset options are None (create_model prunes them); ``--drop`` defaults to 0.0 and is always passed.
    """
    return dict(
        pretrained=False, in_chans=in_chans, num_classes=7 if set_flags else None,
        drop_rate=0.2 if set_flags else 0.0, drop_path_rate=0.1 if set_flags and drop_path else None,
        drop_block_rate=0.1 if set_flags else None, global_pool="avg" if set_flags else None,
        bn_momentum=0.05 if set_flags else None, bn_eps=1e-4 if set_flags else None,
        scriptable=None, checkpoint_path=None,
    )


# ----------------------------------------------------------------------------- tracing / export
@pytest.mark.parametrize("name", ENTRIES + ARCH_MODELS)
def test_fx_trace_equals_eager(name):
    model = timm.create_model(name).eval()
    x = _input(name)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", ["rr_conv4_cifar10", "rr_resnet34_stl10"])
def test_input_check_survives_timm_fx_feature_extraction(name):
    """timm's FX tracer records the input check as a leaf call: the traced model still validates."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = timm.create_model(name).eval()
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())
    _, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    fx_model = create_feature_extractor(model, return_nodes=[eval_nodes[-1]], tracer_kwargs=tracer_kwargs)
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(next(iter(fx_model(x).values())), model(x))
        with pytest.raises(InputShapeError, match="expects input of shape"):
            fx_model(x[:, :1])


@pytest.mark.parametrize("name", ENTRIES)
def test_torch_export_equals_eager(name):
    model = timm.create_model(name).eval()
    x = _input(name)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize("name", ENTRIES)
def test_torchscript_equals_eager(name):
    with timm.layers.set_layer_config(scriptable=True):
        model = timm.create_model(name).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated, still supported
        scripted = torch.jit.script(model)
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rr_conv4_cifar10"])
def test_torch_compile_keeps_the_input_check(name):
    model = timm.create_model(name, pretrained=True)
    compiled = torch.compile(model)
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
        with pytest.raises(InputShapeError):
            compiled(x[0])


# ----------------------------------------------------------------------------- timm model API
@pytest.mark.parametrize("name", ENTRIES)
def test_device_dtype_and_head_hidden_size(name):
    model = timm.create_model(name, device="meta", dtype=torch.float64)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    model = timm.create_model(name).eval()
    x = _input(name)
    fmap = model.forward_features(x)
    assert tuple(fmap.shape[-2:]) == tuple(model.pretrained_cfg["pool_size"])
    assert model.forward_head(fmap, pre_logits=True).shape[1] == model.head_hidden_size == model.num_features


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax", "catavgmax", "fast", ""])
@pytest.mark.parametrize("name", ["rr_conv4_cifar10", "rr_resnet8_cifar10"])
def test_global_pool_types(name, pool):
    model = timm.create_model(name, global_pool=pool).eval()
    x = _input(name)
    out = model(x)
    if pool == "":
        assert out.ndim == 4 and tuple(out.shape[-2:]) == tuple(model.pretrained_cfg["pool_size"])
    else:
        assert out.shape == (2, model.head_hidden_size)
    assert model.head_hidden_size == model.num_features * (2 if pool == "catavgmax" else 1)
    model.reset_classifier(5, "avg")
    assert model(x).shape == (2, 5)
    model.reset_classifier(0, "")
    assert model(x).ndim == 4
    model.reset_classifier(0)  # keeps the current pool ('')
    assert model(x).ndim == 4


@pytest.mark.parametrize("name", ENTRIES)
def test_forward_intermediates_and_getter_features(name):
    model = timm.create_model(name).eval()
    x = _input(name)
    final, inter = model.forward_intermediates(x)
    torch.testing.assert_close(final, model.forward_features(x))
    assert [t.shape[1] for t in inter] == [f["num_chs"] for f in model.feature_info]
    getter = timm.create_model(name, features_only=True, feature_cls="getter").eval()
    getter.model.load_state_dict(model.state_dict())
    for a, b in zip(getter(x), inter):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["rr_conv4_cifar10", "rr_resnet8_cifar10", "rr_resnet34_stl10"])
def test_grad_checkpointing_gives_the_same_gradients(name):
    x = _input(name)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=3).train()
        model.set_grad_checkpointing(checkpointing)
        model(x).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["rr_resnet32_cifar10", "rr_resnet34_stl10"])
def test_drop_path_is_stochastic_depth_in_resnet_blocks(name):
    model = timm.create_model(name, drop_path_rate=0.3)
    rates = [blk.drop_path.drop_prob for stage in ("layer1", "layer2", "layer3", "layer4")
             for blk in getattr(model, stage).children() if hasattr(blk, "drop_path")
             and hasattr(blk.drop_path, "drop_prob")]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.3)  # timm's linear rule, last block = rate
    x = _input(name)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_conv4_refuses_drop_path_with_a_reason():
    with pytest.raises(ValueError, match="no residual blocks"):
        timm.create_model("rr_conv4_cifar10", drop_path_rate=0.1)


def test_unknown_kwarg_is_a_type_error():
    with pytest.raises(TypeError):
        timm.create_model("rr_conv4_cifar10", not_a_model_arg=1)


# ----------------------------------------------------------------------------- train.py keyword set
@pytest.mark.parametrize("set_flags", [False, True])
@pytest.mark.parametrize("name", ENTRIES)
def test_train_py_keyword_set_is_accepted(name, set_flags):
    arch = load_manifest().get(name).architecture
    in_chans = timm.get_pretrained_cfg_value(name, "input_size")[0]
    model = timm.create_model(name, **_train_py_kwargs(in_chans, set_flags, drop_path=arch != "conv4"))
    model.train()
    out = model(_input(name))
    assert out.shape == (2, 7 if set_flags else model.num_features)
    if set_flags:
        assert model.drop_rate == 0.2
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and all(m.momentum == 0.05 and m.eps == 1e-4 for m in bns)


# ----------------------------------------------------------------------------- pretrained: in_chans, frozen, fine-tune
@pytest.mark.parametrize("name", PUBLISHED)
def test_in_chans_adaptation_of_pretrained_weights(name):
    base = timm.create_model(name, pretrained=True)
    first_conv = base.pretrained_cfg["first_conv"]
    w = base.get_submodule(first_conv).weight
    other = 1 if w.shape[1] == 3 else 3
    model = timm.create_model(name, pretrained=True, in_chans=other)
    adapted = model.get_submodule(first_conv).weight
    expected = w.sum(1, keepdim=True) if other == 1 else w.repeat(1, 3, 1, 1) / 3
    torch.testing.assert_close(adapted, expected)
    x = _input(name, in_chans=other)
    assert model(x).shape == (2, model.num_features)
    # timm's contract case: in_chans=1 + a new classifier
    assert timm.create_model(name, pretrained=True, in_chans=1, num_classes=5)(_input(name, in_chans=1)).shape == (2, 5)


@pytest.mark.parametrize("num_classes", [0, 4])
@pytest.mark.parametrize("name", PUBLISHED)
def test_frozen_model_state_dict_unchanged_by_train_and_forward(name, num_classes):
    model = timm.create_model(name, pretrained=True, num_classes=num_classes)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == ({"fc.weight", "fc.bias"} if num_classes else set())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(_input(name, batch=8) * 3 + 1)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # same keys and bit-identical features as the unfrozen model in eval mode
    plain = timm.create_model(name, pretrained=True, trainable=True, num_classes=num_classes).eval()
    plain.load_state_dict(after)
    x = _input(name)
    with torch.no_grad():
        assert torch.equal(model.eval().forward_head(model.forward_features(x), pre_logits=True),
                           plain.forward_head(plain.forward_features(x), pre_logits=True))


@pytest.mark.parametrize("name", ENTRIES)
def test_trainable_model_changes_every_parameter_with_timm_optimizer(name):
    entry = load_manifest().get(name)
    model = timm.create_model(name, pretrained=entry.published, trainable=True, num_classes=3)
    assert all(p.requires_grad for p in model.parameters())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    optimizer = timm.optim.create_optimizer_v2(model, opt="adamw", lr=1e-2, weight_decay=0.05)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, y = _input(name, batch=4), torch.tensor([0, 1, 2, 0])
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged


# ----------------------------------------------------------------------------- torch.hub
def test_hub_entry_points_have_real_signatures_and_honest_docs(hubconf):
    assert "PIL" in hubconf.dependencies
    for name in ENTRIES:
        fn = getattr(hubconf, name)
        params = inspect.signature(fn).parameters
        assert list(params)[:4] == ["pretrained", "trainable", "weights", "sha256"]
        assert params["pretrained"].default is True
        if load_manifest().get(name).published:
            assert "Published" in fn.__doc__
        else:
            assert "Unpublished" in fn.__doc__ and "pretrained=False" in fn.__doc__


@pytest.mark.parametrize("kwargs", [dict(num_classes=10), dict(global_pool="", num_classes=0),
                                    dict(drop_rate=0.1, in_chans=1), dict(features_only=True)])
def test_torch_hub_local_accepts_timm_kwargs(repo_root, kwargs):
    name = "rr_conv4_cifar10"
    hub = torch.hub.load(str(repo_root), name, source="local", trust_repo=True, **kwargs)
    ref = timm.create_model(name, pretrained=True, **kwargs)
    x = _input(name, in_chans=kwargs.get("in_chans"))
    hub.eval(), ref.eval()
    with torch.no_grad():
        out_hub, out_ref = hub(x), ref(x)
    if isinstance(out_ref, list):
        for a, b in zip(out_hub, out_ref):
            torch.testing.assert_close(a, b)
    elif kwargs.get("num_classes"):
        assert out_hub.shape == out_ref.shape  # new random classifier on each side
    else:
        torch.testing.assert_close(out_hub, out_ref)


def test_rr_zoo_create_model_is_timm_create_model():
    a = rr_zoo.create_model("rr_conv4_cifar10", pretrained=True)
    b = timm.create_model("rr_conv4_cifar10", pretrained=True)
    x = _input("rr_conv4_cifar10")
    torch.testing.assert_close(a(x), b(x))


# ----------------------------------------------------------------------------- launcher for timm's scripts
def test_launcher_runs_a_script_with_the_zoo_registered(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text("import sys, timm\n"
                      "assert __name__ == '__main__'\n"
                      "model = timm.create_model(sys.argv[1], pretrained=True, num_classes=2)\n"
                      "print('ok', sys.argv[1:], sum(p.requires_grad for p in model.parameters()))\n")
    out = subprocess.run([sys.executable, "-m", "rr_zoo.launch", str(script), "rr_conv4_cifar10", "--flag"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ok ['rr_conv4_cifar10', '--flag'] 2"  # only fc.weight / fc.bias train
    bad = subprocess.run([sys.executable, "-m", "rr_zoo.launch", str(tmp_path / "nope.py")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a file" in bad.stderr and "Traceback" not in bad.stderr


def test_loose_file_is_judged_by_its_own_record_not_its_folders_backbone(tmp_path):
    """A file beside an export's config.json that the config does not list is the user's own file: it loads
    as what it is (no hash to check), never against the folder's backbone record; a listed file is verified."""
    from safetensors.torch import save_file

    from rr_zoo.errors import WeightsHashError
    from rr_zoo.export_format import write_export_folder
    from rr_zoo.relation import RelationHead

    entry = load_manifest().get("rr_conv4_cifar10")
    model = timm.create_model("rr_conv4_cifar10")
    folder = write_export_folder(tmp_path / "export", entry, model.state_dict(), RelationHead(128).state_dict())
    other = folder / "other.safetensors"
    torch.manual_seed(1)
    other_model = timm.create_model("rr_conv4_cifar10").eval()
    save_file(other_model.state_dict(), str(other))
    cfg = dict(architecture="conv4_rr", file=str(other), input_size=(3, 32, 32), first_conv="layer1.conv",
               num_classes=0, classifier="fc")
    x = _input("rr_conv4_cifar10")
    loose = timm.create_model("conv4_rr", pretrained=True, pretrained_cfg=cfg)
    torch.testing.assert_close(loose(x), other_model(x))
    listed_cfg = {**cfg, "file": str(folder / "model.safetensors")}
    listed = timm.create_model("conv4_rr", pretrained=True, pretrained_cfg=listed_cfg)
    torch.testing.assert_close(listed(x), model.eval()(x))
    (folder / "model.safetensors").write_bytes(other.read_bytes())
    with pytest.raises(WeightsHashError, match="no longer matches its record"):
        timm.create_model("conv4_rr", pretrained=True, pretrained_cfg=listed_cfg)
