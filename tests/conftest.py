"""Shared fixtures. Environment for huggingface_hub is set before anything imports it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HF_HOME = tempfile.mkdtemp(prefix="rr_zoo_test_hf_")
os.environ.setdefault("HF_HOME", _HF_HOME)
os.environ.setdefault("HF_HUB_CACHE", str(Path(_HF_HOME) / "hub"))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_HUB_OFFLINE", None)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Tests never reach the real Hub: huggingface_hub (and timm's hf-hub: path) read HF_ENDPOINT at
# import, so it is fixed here, before any import, to the port the local test Hub listens on.
HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def hubconf(repo_root: Path):
    """The checkout's hubconf.py, imported as torch.hub would (what torch.hub.list/help read)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf_under_test", repo_root / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real offline datasets); tests needing it skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
