"""Pretraining: recipe validation, a real short run, bit-identical resume after SIGKILL, DDP (gloo)."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import rr_zoo
from training.__main__ import main as training_main
from training.pretrain.recipes import Recipe, RecipeError, RunOptions, recipe_for_entry

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "cifar10_4k", "--k", "3", "--batch-size", "8", "--epochs", "2", "--steps-per-epoch", "3",
        "--no-progress", "--threads", "1"]


@pytest.mark.parametrize("name", rr_zoo.list_models())
def test_every_entry_has_a_valid_recipe(name):
    recipe = recipe_for_entry(name)
    entry = rr_zoo.get_entry(name)
    assert (recipe.architecture, recipe.dataset, recipe.k, recipe.epochs) == (
        entry.architecture, entry.dataset, entry.recipe["k"], entry.recipe["epochs"])
    assert recipe.pairs_per_step == recipe.batch_size * recipe.k * (recipe.k - 1)


@pytest.mark.parametrize("override,match", [
    (dict(k=1), "k .*>= 2"), (dict(aggregation="concat"), "aggregation='concat' is unknown"),
    (dict(lr=-1.0), "lr must be"), (dict(epochs=0), "epochs"), (dict(dataset="imagenet"), "dataset='imagenet'"),
    (dict(split="validation"), "split='validation'"), (dict(focal_alpha=2.0), "focal_alpha"),
    (dict(architecture="resnet33"), "architecture='resnet33'"), (dict(batch_size=1), "batch_size"),
])
def test_invalid_recipe_values_are_rejected(override, match):
    with pytest.raises(RecipeError, match=match):
        recipe_for_entry("rr_conv4_cifar10", **override)


def test_unknown_recipe_field_and_bad_options_are_rejected():
    with pytest.raises(RecipeError, match="unknown recipe field"):
        recipe_for_entry("rr_conv4_cifar10", momentum=0.9)
    with pytest.raises(RecipeError, match="fp16"):
        RunOptions(precision="fp16", device="cpu")
    with pytest.raises(RecipeError, match="precision"):
        RunOptions(precision="int8")
    with pytest.raises(RecipeError, match="device"):
        RunOptions(device="tpu")


def test_cli_rejects_bad_values_before_work(capsys):
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--aggregation", "prod"]) == 2
    assert "aggregation='prod' is unknown" in capsys.readouterr().err
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar1O"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_help_on_every_command(capsys):
    from training.cli import COMMANDS
    for name in COMMANDS:
        with pytest.raises(SystemExit) as info:
            training_main([name, "--help"])
        assert info.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_short_real_run_learns(tmp_path, shared_data):
    """Conv-4 on real CIFAR-10 images: loss falls, pair accuracy rises, files written."""
    out = tmp_path / "run"
    args = ["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_4k", "--k", "4", "--batch-size", "32",
            "--epochs", "3", "--steps-per-epoch", "8", "--no-progress", "--out", str(out)]
    assert training_main(args) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["loss"] < rows[0]["loss"]
    acc = [(r["acc_pos"] + r["acc_neg"]) / 2 for r in rows]
    assert acc[-1] > acc[0]
    assert (out / "checkpoint.pt").is_file() and (out / "curves.png").stat().st_size > 1000
    for key in ("views_per_s", "peak_rss_mib", "acc_pos", "acc_neg"):
        assert rows[-1][key] > 0


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    return {**{f"b.{k}": v for k, v in ckpt["backbone"].items()}, **{f"r.{k}": v for k, v in ckpt["relation"].items()}}


def _run(out: Path, extra=()):
    cmd = [sys.executable, "-m", "training", "pretrain", "--entry", "rr_conv4_cifar10", *TINY,
           "--ckpt-every-steps", "1", "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, shared_data):
    long = ["--steps-per-epoch", "40"]  # 80 steps: a wide window to kill it in, however fast a step is
    reference = _run(tmp_path / "ref", extra=long)
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    victim = _run(tmp_path / "killed", extra=long)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until a mid-epoch checkpoint (epoch 0, step >= 1) exists
        if ckpt.is_file():
            try:
                state = torch.load(ckpt, weights_only=True)
                if state["global_step"] >= 2:
                    break
            except Exception:  # pragma: no cover - replaced while reading is impossible (atomic), but be safe
                pass
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    killed_at = torch.load(ckpt, weights_only=True)["global_step"]
    assert killed_at < 80, "run finished before it could be killed"
    resumed = _run(tmp_path / "killed", extra=[*long, "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    ref, got = _final_state(tmp_path / "ref"), _final_state(tmp_path / "killed")
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    ref_log = [json.loads(x) for x in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    got_log = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in ref_log] == [r["loss"] for r in got_log]
    from training.pretrain.checkpoint import load_checkpoint
    from training.release.provenance import run_provenance

    segments = run_provenance(load_checkpoint(tmp_path / "killed" / "checkpoint.pt"), tmp_path / "killed")["segments"]
    assert [(s["from_step"], s["to_step"], s["threads"]) for s in segments] == [(0, killed_at, 1), (killed_at, 80, 1)]
    assert all(s["train_seconds"] > 0 and s["precision"] in ("fp32", "bf16") and s["code_commit"] for s in segments)


def test_sigint_saves_and_exits_cleanly(tmp_path, shared_data):
    proc = _run(tmp_path / "int", extra=["--steps-per-epoch", "200", "--epochs", "1"])
    ckpt = tmp_path / "int" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    state = torch.load(ckpt, weights_only=True)
    assert state["saved_because"] == "signal" and state["epoch"] == 0


def test_resume_refuses_a_different_recipe(tmp_path, capsys, shared_data):
    out = tmp_path / "r"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--k", "4", "--out", str(out),
                          "--resume"]) == 2
    assert "different recipe" in capsys.readouterr().err


def test_a_finished_run_is_extended_with_resume_and_more_epochs(tmp_path, shared_data):
    """--resume --epochs N continues a finished run: the same weights as one run of N epochs."""
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--out", str(straight)]) == 0
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--epochs", "1",
                          "--out", str(extended)]) == 0
    assert torch.load(extended / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--out", str(extended),
                          "--resume"]) == 0
    ref, got = _final_state(straight), _final_state(extended)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert torch.load(extended / "checkpoint.pt", weights_only=True)["recipe"]["epochs"] == 2


def test_dry_run_prints_an_estimate(capsys):
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dry-run", "--threads", "1",
                          "--k", "4"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["steps"] == (50_000 // 64) * 200 and est["cpu_seconds_per_step"] > 0
    assert est["flops_per_step"] == est["flops_per_view"] * 64 * 4 + est["flops_per_pair"] * 64 * 4 * 3
    assert est["gpu_hours_estimate"] > 0 and est["measured"] and est["derived"]


def test_ddp_gloo_matches_single_process(tmp_path):
    """2 processes (gloo) on a global batch == one process running both halves, losses averaged."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "tests.ddp_worker", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    assert abs(ddp["loss"] - single["loss"]) < 1e-5
    for k in single["grads"]:
        torch.testing.assert_close(ddp["grads"][k], single["grads"][k], atol=1e-5, rtol=1e-4)


def test_torchrun_pretrain_end_to_end(tmp_path, shared_data):
    """The real loop under torchrun (2 CPU processes, gloo): rank-0 log and checkpoint with both RNG states."""
    out = tmp_path / "ddp_run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
           "-m", "training", "pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # written once (rank 0), not once per process
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]["aug"]) == 2 and ckpt["epoch"] == 2
    assert not torch.equal(ckpt["rng"]["aug"][0], ckpt["rng"]["aug"][1])  # ranks draw different views


def test_recipe_is_frozen():
    r = recipe_for_entry("rr_conv4_cifar10")
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        r.k = 4  # type: ignore[misc]
    assert isinstance(r, Recipe)


def test_online_knn_is_logged(tmp_path, shared_data):
    out = tmp_path / "knn"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg", "--k", "2",
                          "--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "2", "--knn-every", "1",
                          "--no-progress", "--out", str(out)]) == 0
    row = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert 5.0 < row["knn_acc"] < 100.0


def test_compiled_step_matches_eager():
    """Parity of --compile: loss to 1e-5, every gradient to 0.5 % (relative norm), BatchNorm statistics to 1e-5.

    Measured against a float64 step: eager fp32 gradients are within 3e-6, compiled ones within 1.5e-3 in
    Conv-4's first two blocks (inductor's fused BatchNorm backward), 3e-6 elsewhere.
    """
    from training.method.step import build_model, relation_loss

    recipe = recipe_for_entry("rr_conv4_cifar10", k=3, batch_size=8)
    torch.manual_seed(0)
    eager = build_model(recipe, 3)
    compiled = build_model(recipe, 3)
    compiled.load_state_dict(eager.state_dict())
    compiled.backbone.compile()
    views = torch.randn(24, 3, 32, 32)
    results = []
    for model in (eager, compiled):
        loss, _ = relation_loss(model, views, recipe)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()},
                        {n: b.clone() for n, b in model.named_buffers()}))
    (loss_e, grads_e, bufs_e), (loss_c, grads_c, bufs_c) = results
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
    for name, grad in grads_e.items():  # relative error of each gradient (compiled: up to ~0.2 % in layer 1)
        assert (grads_c[name] - grad).norm() <= 5e-3 * grad.norm() + 1e-7, name
    for name, buf in bufs_e.items():  # BatchNorm running statistics
        torch.testing.assert_close(bufs_c[name], buf, rtol=1e-5, atol=1e-6, msg=name)


def test_compile_help_and_readme_say_what_auto_compiles(repo_root):
    from training.pretrain.recipes import RunOptions
    from training.runtime.compile import CPU_COMPILE_GAIN, compile_pays_on_cpu, compiled_by_auto

    said = compiled_by_auto()  # "conv4 in fp32 and bf16, resnet8 in fp32"
    parsed = {part.split(" in ")[0]: set(part.split(" in ")[1].split(" and ")) for part in said.split(", ")}
    for arch, gains in CPU_COMPILE_GAIN.items():
        for precision in gains:
            assert (precision in parsed.get(arch, ())) == compile_pays_on_cpu(arch, precision), (arch, precision)
    help_text = next(f for f in dataclasses.fields(RunOptions) if f.name == "compile").metadata["help"]
    assert f"({said})" in help_text
    assert f"; `auto` compiles {said})." in " ".join((repo_root / "docs" / "training.md").read_text().split())


def test_compile_auto_follows_what_was_measured(monkeypatch):
    from training.runtime import compile as comp

    assert comp.resolve_compile("auto", "conv4", "fp32", "cpu", 5000)[0] == (comp.cpp_compiler() is not None)
    assert not comp.resolve_compile("auto", "conv4", "fp32", "cpu", 10)[0]  # short run: compiling costs more
    assert not comp.resolve_compile("auto", "resnet32", "bf16", "cpu", 5000)[0]  # measured slower
    assert not comp.resolve_compile("auto", "conv4", "fp32", "cuda", 5000)[0]
    assert not comp.resolve_compile("auto", "conv4", "fp32", "cpu", 5000, grad_checkpointing=True)[0]
    assert comp.resolve_compile("on", "resnet32", "bf16", "cpu", 1) == (True, "--compile on")
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    compiled, why = comp.resolve_compile("auto", "conv4", "fp32", "cpu", 5000)
    assert not compiled and "no C++ compiler" in why
    with pytest.raises(RecipeError, match="compile='yes' is unknown"):
        RunOptions(compile="yes")


def test_run_logs_its_compile_choice(tmp_path, shared_data):
    out = tmp_path / "c"
    assert training_main(["pretrain", "--entry", "rr_conv4_cifar10", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["options"]["compile"] == "off"  # 3 steps: eager


def test_k_sweep_plan_spends_the_same_views():
    from training.studies.ksweep import plan_k

    for k in (2, 4, 8, 16):
        plan = plan_k(k, views_budget=800_000, batch_size=64, n_images=50_000)
        assert plan.steps_per_epoch <= 50_000 // 64
        assert abs(plan.views(64) - 800_000) <= plan.epochs * 64 * k
    assert plan_k(2, 800_000, 64, 50_000).epochs == 9  # 6250 steps > 8 x 781


def test_k_sweep_runs_resumes_and_plots(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["ksweep", "--entry", "rr_conv4_cifar10", "--dataset", "cifar10_jpeg", "--batch-size", "8",
            "--ks", "2", "4", "--views-budget", "128", "--eval-epochs", "2", "--threads", "1",
            "--eval-max-train", "300", "--eval-max-test", "100",
            "--out", str(tmp_path / "sweep")]
    assert training_main(argv) == 0
    summary = json.loads((tmp_path / "sweep" / "ksweep.json").read_text())
    assert [r["k"] for r in summary["rows"]] == [2, 4] and all(r["views"] == 128 for r in summary["rows"])
    assert all(0.0 < r["linear"] <= 100.0 for r in summary["rows"])
    assert (tmp_path / "sweep" / "ksweep.png").stat().st_size > 3000
    stamp = (tmp_path / "sweep" / "k2" / "checkpoint.pt").stat().st_mtime_ns
    assert training_main(argv) == 0  # finished runs are not retrained
    assert (tmp_path / "sweep" / "k2" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert training_main([*argv[:-2], "--ks", "1", "--out", str(tmp_path / "bad")]) == 2


@pytest.mark.parametrize("sweep", ["ksweep_conv4_cifar10_jpeg", "ksweep_resnet32_tinyimagenet"])
def test_results_doc_k_sweep_table_matches_its_json(repo_root, sweep):
    from training.studies.ksweep import format_k_sweep

    summary = json.loads((repo_root / "docs" / "results" / f"{sweep}.json").read_text())
    assert format_k_sweep(summary) in (repo_root / "docs" / "results.md").read_text()
