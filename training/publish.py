"""``python -m training publish``: upload an export folder to the Hub and record it in the manifest.

With ``--repo-id`` the folder is uploaded with huggingface_hub (``create_repo`` +
``upload_folder``) and the new Hub commit sha becomes the entry's pinned
revision. With ``--bundle`` the weights are also copied into the package
(``rr_zoo/_weights/<entry>/``) so the entry loads offline on a fresh install.
Either way the entry's files (sha256, size), metrics and provenance are written
to ``weights_manifest.json`` and its status becomes ``published``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from rr_zoo.atomic import atomic_write
from rr_zoo.export_format import read_export_config
from rr_zoo.manifest import MANIFEST_PATH, load_manifest
from rr_zoo.weights import hub_endpoint, verify_file


def upload_folder(folder: Path, repo_id: str, message: str, token: str | None = None) -> str:
    """Create the Hub repo if needed, upload the folder, return the commit sha."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_endpoint(), token=token or os.environ.get("HF_TOKEN"))
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=message)
    return info.oid


def publish(folder: str | Path, repo_id: str | None = None, bundle: bool = False,
            manifest_path: str | Path | None = None, token: str | None = None) -> dict[str, Any]:
    """Publish an export folder and update the manifest entry it belongs to.

    Args:
        folder: Folder written by ``python -m training export``.
        repo_id: Hub repo (``org/name``) to upload to; None skips the upload.
        bundle: Copy the weight files into the package as well.
        manifest_path: Manifest to update (default: the one in use).
        token: Hub token (default: ``HF_TOKEN``).

    Returns:
        The updated manifest entry (dict).
    """
    folder = Path(folder)
    config = read_export_config(folder)
    section = config.section
    files = [dataclasses.asdict(f) for f in config.files]
    if not files or config.entry is None:
        raise ValueError(f"{config.path} lists no files or entry; re-export with `python -m training export`")
    for f in config.files:  # never publish a folder that does not match its own record
        verify_file(folder / f.name, f.sha256, f.size, what=str(folder))
    entry = load_manifest().get(config.entry)
    path = Path(manifest_path or os.environ.get("RR_ZOO_MANIFEST") or MANIFEST_PATH)
    data = json.loads(path.read_text())
    raw = data["entries"][entry.name]
    if repo_id:
        raw["hub"] = {"repo_id": repo_id, "revision": upload_folder(folder, repo_id, f"publish {entry.name}", token)}
    if bundle:
        dest = entry.bundled_dir
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(folder / f["name"], dest / f["name"])
    raw["files"] = [{**f, "bundled": bool(bundle)} for f in files]
    raw["status"] = "published"
    if section.get("metrics"):
        raw["metrics"] = section["metrics"]
    if section.get("provenance"):
        raw["provenance"] = section["provenance"]
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    load_manifest.cache_clear()
    return raw
