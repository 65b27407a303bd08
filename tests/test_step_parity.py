"""Speed and memory options of the training step that must not change what it computes.

- ``--precision auto``: resolved from the hardware, never recorded as ``auto``; one bf16-autocast step
  on real images agrees with fp32 as closely as bf16 itself allows.
- ``--grad-checkpointing``: loss, gradients, BatchNorm statistics and the updated weights equal the
  plain step's.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from training.method.step import autocast_context, build_model, relation_loss, train_step
from training.pretrain.augment import make_views
from training.pretrain.inputs import augment_config
from training.pretrain.recipes import RunOptions, recipe_for_entry
from training.runtime.precision import native_bf16, resolve_precision

ARCHS = ("conv4", "resnet8")


# ----------------------------------------------------------------------------- precision: which one
def test_auto_is_the_default_and_resolves_to_a_concrete_precision():
    assert RunOptions().precision == "auto"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    for explicit in ("fp32", "bf16", "fp16"):
        assert resolve_precision(explicit, "cpu") == explicit


def test_auto_follows_the_cpu_flags(tmp_path):
    without = tmp_path / "cpuinfo_avx2"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f\n\nprocessor\t: 1\n")
    supported, why = native_bf16("cpu", cpuinfo=without)
    assert not supported and "avx512_bf16" in why
    with_bf16 = tmp_path / "cpuinfo_bf16"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    supported, why = native_bf16("cpu", cpuinfo=with_bf16)
    onednn = torch.backends.mkldnn.is_available() and getattr(
        torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)()
    assert supported == onednn, why


def test_a_run_records_the_precision_it_used_and_its_command_pins_it(tmp_path, shared_data):
    from training.__main__ import main as training_main
    from training.pretrain.checkpoint import load_checkpoint
    from training.release.provenance import pretrain_command, run_provenance

    out = tmp_path / "run"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_4k", "--k", "3",
                          "--batch-size", "8", "--epochs", "1", "--steps-per-epoch", "2", "--no-progress",
                          "--threads", "1", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out / "checkpoint.pt")
    used = resolve_precision("auto", "cpu")
    assert ckpt.options["precision"] == used
    assert f"--precision {used}" in pretrain_command(ckpt.recipe, ckpt.options)
    assert run_provenance(ckpt, out)["precision"] == used
    assert run_provenance(ckpt, out)["compiled"] is False  # 2 steps: too few for --compile auto to compile
    # a resumed run with auto keeps the precision its checkpoint recorded, whatever auto says here
    from training.pretrain.loop import run_precision

    ckpt.options = {**ckpt.options, "precision": "fp32" if used == "bf16" else "bf16"}
    ckpt.save(out / "checkpoint.pt")
    assert run_precision(RunOptions(resume=True), "cpu", out / "checkpoint.pt")[0] == ckpt.options["precision"]
    assert run_precision(RunOptions(), "cpu", out / "checkpoint.pt")[0] == used


# ----------------------------------------------------------------------------- bf16 vs fp32, one step
def _real_views(shared_data, arch: str, m: int, k: int):
    recipe = recipe_for_entry(f"rr_{arch}_cifar10", dataset="cifar10_4k", k=k, batch_size=m)
    images = torch.from_numpy(np.load(shared_data / "cifar10_4k.npz")["images"][:m]).permute(0, 3, 1, 2)
    views = make_views(images.contiguous(), k, augment_config(recipe), generator=torch.Generator().manual_seed(0))
    return recipe, views


def _loss_and_grads(model, views, recipe, precision):
    model.zero_grad(set_to_none=True)
    with autocast_context("cpu", precision):
        loss, _ = relation_loss(model, views, recipe)
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _relative_errors(ref: dict, other: dict) -> dict[str, float]:
    return {n: ((other[n] - g).norm() / g.norm()).item() for n, g in ref.items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_step_agrees_with_fp32_within_bf16_tolerance(arch, shared_data):
    """One step on real CIFAR-10 views: bf16 autocast vs fp32.

    "Within bf16 tolerance" is measured, not guessed: the reference for how far a bf16 result may
    be from fp32 is the change caused by merely *storing* the views and weights in bf16 (rounding
    them, then computing in fp32). At initialisation the step's gradient is a small difference of
    large, nearly cancelling terms (positives and negatives score alike), so that rounding alone
    moves some tensors' gradients by 10-30 %; autocast must not do much worse than it.
    """
    recipe, views = _real_views(shared_data, arch, m=16, k=4)
    model = build_model(recipe, 3)
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.bfloat16().float())
    loss32, grads32 = _loss_and_grads(copy.deepcopy(model), views, recipe, "fp32")
    loss16, grads16 = _loss_and_grads(copy.deepcopy(model), views, recipe, "bf16")
    loss_r, grads_r = _loss_and_grads(rounded, views.bfloat16().float(), recipe, "fp32")

    assert abs(loss16 - loss32) / loss32 < 5e-3
    # the relation head's first bias feeds a BatchNorm: its gradient is 0 up to rounding (~1e-8), no signal
    largest = max(g.norm().item() for g in grads32.values())
    signal = [n for n, g in grads32.items() if g.norm().item() > 1e-5 * largest]
    assert set(grads32) - set(signal) == {"head.linear1.bias"}
    err16, err_r = _relative_errors(grads32, grads16), _relative_errors(grads32, grads_r)
    bound = 2 * max(err_r[n] for n in signal) + 0.02
    worst = max(signal, key=err16.get)
    assert err16[worst] <= bound, (worst, err16[worst], bound)
    flat32 = torch.cat([grads32[n].flatten() for n in signal])
    flat16 = torch.cat([grads16[n].flatten() for n in signal])
    assert torch.nn.functional.cosine_similarity(flat32, flat16, dim=0) > 0.99


# ----------------------------------------------------------------------------- gradient checkpointing
@pytest.mark.parametrize("arch", ARCHS)
def test_grad_checkpointing_step_equals_the_plain_step(arch):
    recipe = recipe_for_entry(f"rr_{arch}_cifar10", k=3, batch_size=4)
    plain = build_model(recipe, 3)
    ckpt = copy.deepcopy(plain)
    ckpt.backbone.set_grad_checkpointing(True)
    views = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    results = []
    for model in (plain, ckpt):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss, _ = train_step(model, optimizer, views, recipe, "fp32")
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((loss, grads, model.state_dict()))
    (loss_p, grads_p, state_p), (loss_c, grads_c, state_c) = results
    assert loss_c == loss_p
    for name in grads_p:
        torch.testing.assert_close(grads_c[name], grads_p[name], rtol=1e-6, atol=1e-8)
    # weights after the optimiser step, and BatchNorm running statistics (the recomputed forward's
    # second update is undone), including num_batches_tracked
    for name in state_p:
        torch.testing.assert_close(state_c[name], state_p[name], rtol=1e-6, atol=1e-8, msg=name)
    assert int(state_c[next(n for n in state_c if n.endswith("num_batches_tracked"))]) == 1


def test_grad_checkpointing_is_a_run_option():
    assert RunOptions().grad_checkpointing is False
    assert RunOptions(grad_checkpointing=True).grad_checkpointing is True


@pytest.mark.slow
def test_short_bf16_run_tracks_fp32(tmp_path, shared_data):
    """A short real run (Conv-4, real CIFAR-10): bf16's loss curve and online kNN follow fp32's.

    docs/training.md's numbers come from the same command at --epochs 4 --steps-per-epoch 75 --k 16 --batch-size 64.
    """
    import json

    from training.__main__ import main as training_main

    logs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg", "--k", "8",
                              "--batch-size", "32", "--epochs", "2", "--steps-per-epoch", "30", "--knn-every", "1",
                              "--threads", "1", "--no-progress", "--precision", precision, "--out", str(out)]) == 0
        logs[precision] = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    for r32, r16 in zip(logs["fp32"], logs["bf16"]):
        assert abs(r16["loss"] - r32["loss"]) / r32["loss"] < 0.01
        assert abs(r16["knn_acc"] - r32["knn_acc"]) < 2.0
