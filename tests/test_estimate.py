"""``pretrain --dry-run``: the FLOPs it derives from two tiny counts equal a full count of the real step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import training.bench.estimate
import training.method.step
from training.bench.estimate import count_step_flops, markdown_table, step_flops
from training.method.step import build_model, relation_loss
from training.pretrain.recipes import recipe_for_entry

REPO_ROOT = Path(__file__).resolve().parents[1]


def _full_count(recipe, size: int = 32) -> int:
    """FlopCounterMode over one real forward + backward of the step at the recipe's own M and K."""
    model = build_model(recipe, 3)
    views = torch.randn(recipe.batch_size * recipe.k, 3, size, size, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        loss, _ = relation_loss(model, views, recipe)
        loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("entry,aggregation,m,k", [
    ("rr_conv4_cifar10", "cat", 6, 5), ("rr_resnet8_cifar10", "cat", 4, 6), ("rr_conv4_cifar10", "max", 5, 4),
])
def test_scaled_flops_equal_a_full_count(entry, aggregation, m, k):
    recipe = recipe_for_entry(entry, batch_size=m, k=k, aggregation=aggregation)
    assert step_flops(recipe, 3, 32).at(m, k) == _full_count(recipe)


def test_meta_count_equals_a_count_on_real_tensors():
    recipe = recipe_for_entry("rr_resnet8_cifar10", batch_size=2, k=3)
    try:
        on_meta = count_step_flops(recipe, 2, 3, 3, 32)
    except (RuntimeError, NotImplementedError) as exc:
        pytest.skip(f"the step does not run on meta tensors ({exc}); step_flops counts on the CPU instead")
    assert on_meta == count_step_flops(recipe, 2, 3, 3, 32, device="cpu")


def test_grad_checkpointing_counts_the_recomputed_forward():
    recipe = recipe_for_entry("rr_resnet8_cifar10")
    plain, ckpt = step_flops(recipe, 3, 32), step_flops(recipe, 3, 32, grad_checkpointing=True)
    assert ckpt.per_pair == plain.per_pair and plain.per_view < ckpt.per_view < 1.5 * plain.per_view


def test_dry_run_process_prints_its_whole_estimate_and_exits_0(tmp_path):
    """The dry run ends with ``os._exit`` (no interpreter teardown): its piped output must still be complete."""
    cmd = [sys.executable, "-m", "training", "pretrain", "--entry", "rr_conv4_cifar10", "--dry-run", "--threads", "1",
           "--k", "4", "--batch-size", "8"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = json.loads(proc.stdout)
    assert printed["recipe"]["k"] == 4 and printed["estimate"]["view_shape"] == [3, 32, 32]
    assert printed["estimate"]["cpu_seconds_per_step"] > 0
    assert ("warning:" in proc.stderr) == (printed["estimate"]["warning"] is not None)  # a busy machine is named


def test_other_runnable_tasks_reads_proc_loadavg(tmp_path):
    from training.runtime.machine import other_runnable_tasks

    loadavg = tmp_path / "loadavg"
    loadavg.write_text("2.10 1.50 1.20 3/120 4242\n")
    assert other_runnable_tasks(samples=2, interval_s=0, loadavg=loadavg) == 2.0  # the reader itself left out
    loadavg.write_text("0.00 0.00 0.00 1/80 4242\n")
    assert other_runnable_tasks(samples=1, loadavg=loadavg) == 0.0
    assert other_runnable_tasks(loadavg=tmp_path / "missing") is None


def test_dry_run_removes_its_gradient_dropping_hooks():
    """The timed backbone pass drops each weight gradient once written; its hooks are gone afterwards."""
    from training.pretrain.recipes import RunOptions

    seen = []
    original = training.method.step.build_model

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training.method.step, "build_model", spy)
        training.bench.estimate.estimate_wall_time(recipe_for_entry("rr_conv4_cifar10", batch_size=4, k=2),
                                             RunOptions(num_threads=1))
    params = list(seen[-1].backbone.parameters())
    assert params and all(not p._post_accumulate_grad_hooks for p in params)


def test_benchmarks_readme_dry_run_table_is_generated_from_its_json():
    result = json.loads((REPO_ROOT / "benchmarks/results/dry_run_cpu.json").read_text())
    readme = (REPO_ROOT / "benchmarks" / "README.md").read_text()
    block = readme.split("<!-- table:dry-run:begin -->\n", 1)[1].split("\n<!-- table:dry-run:end -->", 1)[0]
    assert block == markdown_table(result), (
        "benchmarks/README.md's dry-run table is stale: python -m benchmarks.tables --write")


def test_benchmark_results_record_the_machine_and_its_load_at_start_and_end(tmp_path):
    import json

    from training.bench.record import machine_record, write_result

    machine = machine_record(threads=3)
    assert machine["threads"] == 3 and machine["cores"] >= 1 and "torch" in machine
    assert machine["other_runnable_tasks"] is None or machine["other_runnable_tasks"] >= 0
    out = write_result(tmp_path / "deep" / "r.json", {"command": "python -m benchmarks.x", "machine": machine})
    written = json.loads(out.read_text())
    assert written["machine"]["threads"] == 3 and "other_runnable_tasks_at_end" in written["machine"]
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_dry_run_check_pairs_each_estimate_with_a_real_run(tmp_path):
    """benchmarks/dry_run_check.py: a dry run and a short real run of the same recipe, in fresh processes."""
    from benchmarks.dry_run_check import main

    out = tmp_path / "check.json"
    assert main(["--case", "rr_conv4_cifar10", "--dataset cifar10_4k --k 2 --batch-size 8", "1",
                 "--rounds", "1", "--steps", "2", "--out", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert row["entry"] == "rr_conv4_cifar10" and row["threads"] == 1
    assert len(row["estimates_s"]) == len(row["measured_s"]) == 1
    assert row["measured_over_estimate"] == pytest.approx(row["measured_s"][0] / row["estimates_s"][0])
    assert 0.02 < row["measured_over_estimate"] < 50  # both are seconds per step of the same recipe


def test_step_share_times_the_step_and_the_backbone_alone_in_one_process(tmp_path):
    """benchmarks/step_share.py: our step and its backbone-only ceiling, alternated on the same views."""
    from benchmarks.step_share import main

    out = tmp_path / "share.json"
    assert main(["--entry", "rr_conv4_cifar10", "--dataset", "cifar10_4k", "--ks", "2", "--m", "8", "--threads", "1",
                 "--precisions", "fp32", "--reps", "2", "--out", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert (row["k"], row["m"], row["precision"], row["image_size"]) == (2, 8, "fp32", 32)
    assert len(row["views_per_s"]["step"]) == len(row["views_per_s"]["backbone"]) == 2
    med = row["median_views_per_s"]
    assert row["share"] == pytest.approx(med["step"] / med["backbone"])
    assert 0 < row["share"] < 5  # the step does the backbone's work and more; a tiny step is noisy
