"""Build a fully 'published' copy of the zoo for tests: seeded random weights for every entry,
exported folders, a local Hub server holding them, and a manifest pointing at that server."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rr_zoo.export_format import write_export_folder
from rr_zoo.manifest import MANIFEST_PATH, ZooEntry, load_manifest, read_manifest
from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead, relation_input_features


def random_weights(entry: ZooEntry, seed: int = 0):
    """Seeded backbone + head state dicts with non-trivial BN statistics."""
    torch.manual_seed(seed)
    model = build_backbone(entry.architecture, in_chans=entry.in_chans)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    head = RelationHead(relation_input_features(entry.num_features, entry.recipe["aggregation"]))
    return model.state_dict(), head.state_dict()


@dataclass
class PublishedZoo:
    """Where the test zoo lives."""

    manifest_path: Path
    exports: dict[str, Path]
    state_dicts: dict[str, dict[str, torch.Tensor]]
    endpoint: str


def publish_all(tmp: Path, hub, names: list[str] | None = None) -> PublishedZoo:
    """Export every entry, commit each folder to ``hub`` and write a manifest marking them published."""
    data = json.loads(MANIFEST_PATH.read_text())
    manifest = read_manifest(MANIFEST_PATH)
    exports, sds = {}, {}
    for name in names or manifest.names():
        entry = manifest.get(name)
        backbone, head = random_weights(entry, seed=len(exports))
        folder = write_export_folder(tmp / "exports" / name, entry, backbone, head)
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        sha = hub.add_commit(entry.hub["repo_id"], files, message=f"test export of {name}")
        config = json.loads((folder / "config.json").read_text())
        raw = data["entries"][name]
        # one release: under the package's default tag where there is one (so its timm name loads it), else a
        # tag of its own
        tag = raw["default_release"] or f"{entry.tag}_test"
        raw["releases"] = {tag: {
            "files": config["rr_zoo"]["files"], "recipe": raw["recipe"], "preprocessing": raw["preprocessing"],
            "metrics": [], "hub": {"repo_id": entry.hub_repo, "revision": sha}, "parent": None,
            "provenance": {"command": "tests/zoo_fixtures.py (random weights)", "code_commit": "test",
                           "versions": {}, "hardware": "test", "wall_time_s": 0.0, "date": "2026-01-01"}}}
        raw["default_release"] = tag
        exports[name], sds[name] = folder, backbone
    path = tmp / "weights_manifest.json"
    path.write_text(json.dumps(data, indent=2))
    return PublishedZoo(path, exports, sds, hub.endpoint)


def activate(zoo: PublishedZoo) -> dict[str, str | None]:
    """Point rr_zoo at the test manifest and Hub; returns the old environment for :func:`deactivate`."""
    old = {k: os.environ.get(k) for k in ("RR_ZOO_MANIFEST", "HF_ENDPOINT")}
    os.environ["RR_ZOO_MANIFEST"] = str(zoo.manifest_path)
    os.environ["HF_ENDPOINT"] = zoo.endpoint
    load_manifest.cache_clear()
    return old


def deactivate(old: dict[str, str | None]) -> None:
    """Undo :func:`activate`."""
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    load_manifest.cache_clear()
