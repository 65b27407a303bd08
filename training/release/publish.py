"""``python -m training publish``: add an export folder to the manifest as a release of its entry.

A release is immutable: its tag, files (sha256, size), the recipe and data it was
trained with, preprocessing, metrics with their commands and provenance. With
``--repo-id`` the folder is uploaded with huggingface_hub (``create_repo`` +
``upload_folder``) and the new Hub commit sha pins the release. With ``--bundle`` its
weight files are copied into the package (``rr_zoo/_weights/<entry>/<tag>/``) so it
loads offline on a fresh install. The manifest is written by :mod:`rr_zoo.manifest`
alone (:func:`~rr_zoo.manifest.add_release`), which refuses to change a published
release's files or metrics; metrics a release does not have yet (evaluations run after
publishing) are added with ``--metrics``, or by publishing the same folder again.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from rr_zoo.errors import ReleaseChangeError
from rr_zoo.export_format import read_export_config
from rr_zoo.manifest import ZooEntry, add_release, load_manifest, read_manifest, release_tag
from rr_zoo.weights import hub_endpoint, sha256_file, verified_export_file

PUBLISHED_TRAINING_FIELDS = ("command", "code_commit", "versions", "hardware", "wall_time_s", "date")


def upload_folder(folder: Path, repo_id: str, message: str, token: str | None = None) -> str:
    """Create the Hub repo if needed, upload the folder, return the commit sha."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_endpoint(), token=token or os.environ.get("HF_TOKEN"))
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=message)
    return info.oid


def parent_release(provenance: dict[str, Any], manifest_path: str | Path | None = None) -> str | None:
    """timm name of the published release a run started from (``--init``), found by its backbone's sha256."""
    digest = ((provenance.get("init") or {}).get("sha256") or {}).get("backbone")
    if not digest:
        return None
    manifest = read_manifest(manifest_path) if manifest_path else load_manifest()
    for entry in manifest.entries.values():
        for tag, release in entry.releases.items():
            if any(f.role == "backbone" and f.sha256 == digest for f in release.files):
                return entry.release_name(tag)
    return None


def release_from_export(folder: str | Path, manifest_path: str | Path | None = None) -> tuple[ZooEntry, dict]:
    """The entry an export folder belongs to and the release record it makes (files verified first).

    Raises:
        CheckpointFormatError / WeightsHashError: not an export folder, or a file that differs from its record.
    """
    folder = Path(folder)
    config = read_export_config(folder)
    if not config.files or config.entry is None:
        raise ReleaseChangeError(f"{config.path} lists no files or entry; re-export with `python -m training export`")
    for f in config.files:  # never publish a folder that does not match its own record
        verified_export_file(folder, f.role)
    manifest = read_manifest(manifest_path) if manifest_path else load_manifest()
    entry = manifest.get(config.entry)
    section = config.section
    provenance = dict(section.get("provenance") or {})
    recipe = dict(section.get("recipe") or provenance.get("recipe") or {})
    if not recipe:
        raise ReleaseChangeError(f"{config.path} records no training recipe (rr_zoo.recipe); re-export the checkpoint "
                                 "with `python -m training export`")
    provenance.pop("recipe", None)
    provenance.setdefault("epochs_trained", section.get("epochs_trained", recipe.get("epochs")))
    release = {
        "files": [dataclasses.asdict(f) for f in config.files],
        "recipe": recipe,
        "preprocessing": {**entry.preprocessing, **config.preprocessing},
        "metrics": list(section.get("metrics") or []),
        "provenance": provenance,
        "hub": {"repo_id": entry.hub_repo, "revision": None},
        "parent": parent_release(provenance, manifest_path),
    }
    return entry, release


def publish(folder: str | Path, tag: str | None = None, repo_id: str | None = None, bundle: bool = False,
            make_default: bool = False, metrics: list[dict[str, Any]] | None = None,
            manifest_path: str | Path | None = None, token: str | None = None) -> ZooEntry:
    """Publish an export folder as a release of its entry (or add metrics to that release).

    Args:
        folder: Folder written by ``python -m training export``.
        tag: Release tag; default ``<dataset>_e<epochs>_k<K>[_seed<N>]`` from the folder's recipe.
        repo_id: Hub repo (``org/name``) to upload to; None skips the upload.
        bundle: Copy the weight files into the package (``rr_zoo/_weights/<entry>/<tag>/``).
        make_default: Make the release the entry's default (the first release of an entry always is).
        metrics: Further metrics (evaluate results) to record with the release.
        manifest_path: Manifest to update (default: the one in use).
        token: Hub token (default: ``HF_TOKEN``).

    Returns:
        The entry as written, with the release selected.

    Raises:
        ReleaseChangeError: the tag is published with other files, or a metric it has would change.
    """
    entry, release = release_from_export(folder, manifest_path)
    tag = tag or release_tag(release["recipe"])
    release["metrics"] += list(metrics or [])
    existing = entry.releases.get(tag)
    if existing is not None and {(f.name, f.sha256) for f in existing.files} != {
            (f["name"], f["sha256"]) for f in release["files"]}:
        raise ReleaseChangeError(f"release {tag!r} of {entry.name} is published with other files; a release never "
                                 "changes: publish these weights under a new tag (--tag NEW_TAG)")
    if repo_id and not (existing is not None and existing.hub.get("revision")):
        release["hub"] = {"repo_id": repo_id,
                          "revision": upload_folder(Path(folder), repo_id, f"{entry.name} release {tag}", token)}
    if bundle:
        dest = entry.with_release(tag).bundled_dir if existing is not None else _bundled_dir(entry, tag)
        _bundle(Path(folder), release["files"], dest)
        for f in release["files"]:
            f["bundled"] = True
    return add_release(entry.name, tag, release, make_default=make_default, path=manifest_path)


def _bundled_dir(entry: ZooEntry, tag: str) -> Path:
    from rr_zoo import manifest

    return manifest.BUNDLED_DIR / entry.name / tag


def _bundle(folder: Path, files: list[dict[str, Any]], dest: Path) -> None:
    """Copy the weight files into ``dest``; a file already there must be the same bytes (never replaced)."""
    for f in files:
        target = dest / f["name"]
        if target.exists():
            if sha256_file(target) != f["sha256"]:
                raise ReleaseChangeError(f"{target} exists with other bytes; a bundled release never changes")
            continue
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = dest / f["name"]
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(folder / f["name"], tmp)
            os.replace(tmp, target)
