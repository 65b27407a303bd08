"""``import rr_zoo`` is light, and the zoo is registered with timm whichever of rr_zoo and timm comes first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rr_zoo.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ("import json, sys, timm; print(json.dumps({'names': timm.list_models('rr_*'), "
          "'watching': [type(f).__name__ for f in sys.meta_path if 'rr_zoo' in type(f).__module__]}))")
ORDERS = {
    "rr_zoo then timm": "import rr_zoo, timm",
    "timm then rr_zoo": "import timm, rr_zoo",
    "rr_zoo's backbones import timm first": "import rr_zoo.models, timm",
}


def _python(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.mark.parametrize("code", ORDERS.values(), ids=ORDERS.keys())
def test_every_entry_is_registered_whatever_is_imported_first(code):
    got = json.loads(_python(f"{code}; {REPORT}").splitlines()[-1])
    assert set(load_manifest().entries) <= set(got["names"])
    assert got["watching"] == [], "the import watcher stays installed after the registration"


def test_import_rr_zoo_imports_neither_torch_nor_timm():
    code = "import sys, rr_zoo; print(sorted(m for m in ('torch', 'timm', 'numpy') if m in sys.modules))"
    assert _python(code).strip() == "[]"
