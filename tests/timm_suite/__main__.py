"""``python -m tests.timm_suite [pytest args]``: timm's ``tests/test_models.py`` on the rr models.

Downloads timm's source distribution at the installed version from the package
registry (``pip download --no-deps --no-binary :all: timm==VERSION``), extracts
``tests/test_models.py`` into a work folder (cached under ``$RR_CACHE_DIR`` or
``~/.cache/rr_zoo``), puts ``narrow_conftest.py`` beside it as ``conftest.py``, and
runs pytest there. Nothing of timm's is copied into the project. Exit status is pytest's.
"""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import timm

HERE = Path(__file__).resolve().parent
MARKERS = ("base", "cfg", "cfg_nonstd", "forward", "backward", "torchscript", "features", "fxforward",
           "fxbackward", "timeout(seconds): per-test time limit (pytest-timeout)")


def fetch_test_file(version: str, work: Path) -> Path:
    """timm's ``tests/test_models.py`` of ``version``, from its sdist (downloaded once)."""
    target = work / "test_models.py"
    if target.is_file():
        return target
    sdist_dir = work / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    sdists = list(sdist_dir.glob(f"timm-{version}.tar.gz"))
    if not sdists:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"timm=={version}", "-d", str(sdist_dir)], check=True)
        sdists = list(sdist_dir.glob(f"timm-{version}.tar.gz"))
    if not sdists:
        raise SystemExit(f"pip download gave no timm-{version}.tar.gz in {sdist_dir}")
    with tarfile.open(sdists[0]) as tar:
        member = tar.getmember(f"timm-{version}/tests/test_models.py")
        data = tar.extractfile(member).read()
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def main(argv: list) -> int:
    version = timm.__version__
    cache = Path(os.environ.get("RR_CACHE_DIR", Path.home() / ".cache" / "rr_zoo"))
    work = cache / "timm-tests" / version
    work.mkdir(parents=True, exist_ok=True)
    test_file = fetch_test_file(version, work)
    shutil.copyfile(HERE / "narrow_conftest.py", work / "conftest.py")
    (work / "pytest.ini").write_text("[pytest]\nmarkers =\n" + "".join(f"    {m}\n" for m in MARKERS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    print(f"timm {version}: running {test_file} on the rr_zoo models", flush=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(work),
           "-c", str(work / "pytest.ini"), str(test_file), *argv]
    return subprocess.run(cmd, cwd=work, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
