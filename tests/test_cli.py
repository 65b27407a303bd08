"""Both command lines explain themselves: every wrong input ends in one line naming the fix, status != 0,
no traceback; ``--help`` answers without importing torch; the demo shows what the features are for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rr_zoo
from rr_zoo.__main__ import main as zoo_main
from training.__main__ import main as training_main

REPO = Path(__file__).resolve().parents[1]
RANDOM = ["--entry", "rr_conv4_cifar10", "--weights", "random"]
UNPUBLISHED = next(name for name in rr_zoo.list_models() if not rr_zoo.get_entry(name).published)


def _one_line_error(main, argv, capsys) -> str:
    """Run a CLI in-process; assert a non-zero status and exactly one line on stderr; return that line."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code not in (0, None), f"{argv} succeeded"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def not_a_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "model.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    return path


TRAINING_BAD_INPUTS = [
    ([], "required: COMMAND"),
    (["trian"], "invalid choice"),
    (["pretrain"], "--entry"),
    (["pretrain", "--entry", "rr_conv4_cifar1O"], "did you mean"),
    (["pretrain", "--entry", "rr_conv4_cifar10", "--k", "1"], "k (views per image) must be"),
    (["pretrain", "--entry", "rr_conv4_cifar10", "--k", "four"], "invalid int value"),
    (["pretrain", "--entry", "rr_conv4_cifar10", "--dataset", "no_such_dataset"], "choose one of"),
    (["pretrain", "--entry", "rr_conv4_cifar10", "--aggregation", "prod"], "aggregation='prod' is unknown"),
    (["pretrain", "--entry", "rr_conv4_cifar10", "--precision", "fp16"], "use 'bf16' on CPU"),
    (["evaluate"], "protocol"),
    (["evaluate", "linaer"], "invalid choice"),
    (["evaluate", "grain"], "--entry NAME"),
    (["evaluate", "grain", *RANDOM, "--dataset", "cifar10_jpeg"], "--dataset cifar100_20"),
    (["evaluate", "transfer", *RANDOM, "--dataset", "cifar10_jpeg"], "other than the pretraining one"),
    (["evaluate", "linear", *RANDOM, "--dataset", "no_such_dataset"], "dataset='no_such_dataset' is unknown"),
    (["evaluate", "knn", *RANDOM, "--knn-k", "0"], "knn_k must be >= 1"),
    (["evaluate", "linear", "--entry", "rr_conv4_cifar10", "--weights", "no_such_file.pt"], "no such file"),
    (["evaluate", "linear", "--entry", UNPUBLISHED], "no published weights"),
    (["evaluate", "linear", "--check"], "pass --entry NAME"),
    (["evaluate", "linear", "--entry", "rr_conv4_cifar10", "--check", "--dataset", "stl10"], "no published linear"),
    (["ksweep", "--entry", "rr_conv4_cifar10", "--ks", "1", "2"], "must be an integer >= 2"),
    (["ksweep", "--entry", "rr_conv4_cifar10", "--views-budget", "0"], "--views-budget must be positive"),
    (["export", "--checkpoint", "no_such_file.pt", "--out", "unused"], "no such file"),
    (["export"], "required"),
    (["publish", "no_such_folder"], "not an export folder"),
    (["benchmark", "--original-repo", "nowhere", "--archs", "resnet33"], "choose from"),
    (["benchmark"], "--original-repo"),
    (["supervised", "--entry", "rr_conv4_cifar10", "--dataset", "no_such_dataset", "--out", "unused"],
     "dataset='no_such_dataset' is unknown"),
    (["supervised", "--entry", "rr_conv4_cifar10", "--epochs", "0", "--out", "unused"], "epochs must be >= 1"),
    (["data", "cifar11"], "unknown dataset"),
    (["data", "--download"], "--download needs the datasets"),
]


@pytest.mark.parametrize("argv,fix", TRAINING_BAD_INPUTS, ids=[" ".join(a) or "(none)" for a, _ in TRAINING_BAD_INPUTS])
def test_training_cli_bad_inputs_are_one_line(argv, fix, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a failed command might write lands in the checkout
    assert fix in _one_line_error(training_main, argv, capsys)


def test_data_says_where_each_dataset_goes(capsys):
    assert training_main(["data", "cifar10", "--data-root", "some/folder"]) == 0
    out = capsys.readouterr().out
    assert "looked for in: some/folder" in out and "python -m training data cifar10 --download" in out


def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(not_a_checkpoint, capsys):
    assert "model.pt" in _one_line_error(training_main, ["evaluate", "knn", "--weights", str(not_a_checkpoint)], capsys)


ZOO_BAD_INPUTS = [
    ([], "required: COMMAND"),
    (["dmeo"], "invalid choice"),
    (["list", "rr_resnet99_*"], "no zoo entry matches"),
    (["download", "rr_resnet33_cifar100"], "not a zoo entry"),
    (["download", UNPUBLISHED], "unpublished"),
    (["convert", "no_such_file.tar", "--entry", "rr_conv4_cifar10", "--out", "unused"], "no checkpoint at"),
    (["convert", "no_such_file.tar"], "--entry"),
    (["demo", "--entry", "rr_conv4_cifar1O"], "not a zoo entry"),
    (["demo", "--image", "no_such_file.png"], "no such file"),
    (["demo", "--entry", "rr_conv4_fashionmnist"], "colour entry"),
    (["demo", "--show", "three"], "invalid int value"),
]


@pytest.mark.parametrize("argv,fix", ZOO_BAD_INPUTS, ids=[" ".join(a) or "(none)" for a, _ in ZOO_BAD_INPUTS])
def test_zoo_cli_bad_inputs_are_one_line(argv, fix, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fix in _one_line_error(zoo_main, argv, capsys)


def test_demo_refuses_a_file_that_is_not_an_image(tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    assert "not an image" in _one_line_error(zoo_main, ["demo", "--image", str(tmp_path / "notes.png")], capsys)


HEAVY = {"torch", "timm", "numpy"}


def _imported_by(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime ARGV`` from the checkout; return it and the modules it imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    return run, {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time")}


@pytest.mark.parametrize("cli", ["training", "rr_zoo"])
def test_help_lists_every_command_without_importing_torch(cli):
    run, imported = _imported_by(["-m", cli, "--help"])
    assert run.returncode == 0
    assert not imported & HEAVY, "--help must not import torch, timm or numpy"
    if cli == "training":
        from training.cli import COMMANDS

        assert all(f"    {name}" in run.stdout for name in COMMANDS)
    else:
        assert all(f"    {name}" in run.stdout for name in ("list", "download", "convert", "demo"))


def _subcommands() -> list[list[str]]:
    from training.cli import COMMANDS
    from training.help_choices import recorded

    zoo = [["-m", "rr_zoo", name, "--help"] for name in ("list", "download", "convert", "demo")]
    training = [["-m", "training", name, "--help"] for name in COMMANDS]
    protocols = [["-m", "training", "evaluate", name, "--help"] for name in recorded()["protocols"]]
    # the console script `rr_zoo` (pyproject [project.scripts]) runs rr_zoo.__main__:main
    script = [["-c", "import sys; from rr_zoo.__main__ import main; sys.exit(main())", "list", "--help"]]
    return zoo + training + protocols + script


def _help_id(argv: list[str]) -> str:
    return " ".join("rr_zoo-script" if a.startswith("import") else a for a in argv if a not in ("-m", "-c", "--help"))


@pytest.mark.parametrize("argv", _subcommands(), ids=_help_id)
def test_every_subcommand_help_answers_without_importing_torch(argv):
    """What makes each --help answer in well under a second (timed by benchmarks.help_time, not here)."""
    run, imported = _imported_by(argv)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout
    assert not imported & HEAVY, f"{' '.join(argv)} imported {sorted(imported & HEAVY)}"


def test_the_console_script_is_the_light_entry_module():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"rr_zoo": "rr_zoo.__main__:main"}


def test_help_choices_are_the_registries():
    """help_choices.json (what --help lists) holds what the registries hold."""
    from training.help_choices import recorded
    from training.write_help_choices import from_registries

    assert recorded() == from_registries(), "help_choices.json is stale: run python -m training.write_help_choices"


def test_a_real_process_prints_no_traceback():
    run = subprocess.run([sys.executable, "-m", "training", "evaluate", "grain"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_demo_shows_what_the_features_are_for(capsys):
    assert zoo_main(["demo", "--show", "1"]) == 0
    out = capsys.readouterr().out
    knn = next(line for line in out.splitlines() if "Leave-one-out" in line)
    ours, random_init = (float(part.split("%")[0].split()[-1]) for part in knn.split(": ", 1)[1].split(", ")[:2])
    assert "chance 10%" in knn and ours > random_init + 10
    assert "same photo" in out or "one photo" in out
    assert "photo 0 (airplane) ->" in out
