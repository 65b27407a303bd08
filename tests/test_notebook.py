"""examples/quickstart.ipynb runs top to bottom, offline, in the test venv's Python; git holds it without outputs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
TIMEOUT_S = 300  # per cell; the whole notebook takes ~30 s offline on 1 busy CPU core


def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"cells {dirty} of {NOTEBOOK.name} hold outputs or execution counts; clear them "
                       "(Jupyter: Edit > Clear All Outputs, or `jupyter nbconvert --clear-output --inplace`)")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_notebook_runs_offline(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # a kernel spec pinned to this interpreter (the venv's), whatever kernels the machine has installed
    spec_dir = tmp_path / "kernels" / "rr-zoo-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rr-zoo test venv", "language": "python"}))
    # offline: the notebook skips the CIFAR-10 download and uses the bundled images; weights are bundled
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import matplotlib

    monkeypatch.setenv("MPLCONFIGDIR", matplotlib.get_configdir())  # keep the font cache across the HOME change
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no CIFAR-10 downloaded by an earlier run is found
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    km = KernelManager(kernel_name="rr-zoo-test",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    client = nbclient.NotebookClient(nb, km=km, timeout=TIMEOUT_S, kernel_name="rr-zoo-test",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell's traceback) if a cell fails
    elapsed = time.perf_counter() - start
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "torch.hub and timm give identical features" in text
    assert "images bundled with rr_zoo" in text, "offline, the notebook should fall back to the bundled images"
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images >= 4, f"expected the notebook's figures (samples, retrieval, relation, t-SNE), got {images}"
    assert elapsed < 120, f"the notebook took {elapsed:.0f} s; it promises a user about a minute"
