"""Reading ``weights_manifest.json``, the single source of truth of the zoo.

The schema is ``rr_zoo/manifest.schema.json`` (JSON Schema, checked by the tests)
and is described field by field in ``docs/manifest.md``. Code reads entries through
:class:`ZooEntry`; nothing else in the package hard-codes entry facts.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rr_zoo.errors import ManifestError, UnknownModelError

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = PACKAGE_DIR / "weights_manifest.json"
SCHEMA_PATH = PACKAGE_DIR / "manifest.schema.json"
BUNDLED_DIR = PACKAGE_DIR / "_weights"
STATUSES = ("published", "unpublished")


@dataclass(frozen=True)
class FileRecord:
    """One weight file of an entry.

    Attributes:
        name: File name inside the Hub repo / export folder (``model.safetensors``).
        role: ``backbone`` or ``relation_head``.
        sha256: Hex digest the loader verifies before reading the file.
        size: Size in bytes.
        bundled: True if a copy ships inside the package (``rr_zoo/_weights/<entry>/<name>``).
    """

    name: str
    role: str
    sha256: str
    size: int
    bundled: bool = False


@dataclass(frozen=True)
class ZooEntry:
    """A zoo entry as read from the manifest (see ``docs/manifest.md`` for every field)."""

    name: str
    timm_name: str
    architecture: str
    dataset: str
    status: str
    description: str
    in_chans: int
    num_features: int
    num_params: int
    recipe: dict[str, Any]
    preprocessing: dict[str, Any]
    files: tuple[FileRecord, ...]
    hub: dict[str, Any]
    metrics: tuple[dict[str, Any], ...]
    paper_results: tuple[dict[str, Any], ...]
    license: str
    paper_ids: tuple[str, ...]
    provenance: dict[str, Any] | None
    source: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def published(self) -> bool:
        """True when the entry has weights a user can load."""
        return self.status == "published"

    @property
    def arch(self) -> str:
        """timm architecture name, e.g. ``resnet32_rr``."""
        return self.timm_name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """timm pretrained tag, e.g. ``cifar100``."""
        return self.timm_name.split(".", 1)[1]

    def file(self, role: str = "backbone") -> FileRecord:
        """Return the file record with ``role``.

        Raises:
            ManifestError: the entry lists no such file.
        """
        for record in self.files:
            if record.role == role:
                return record
        raise ManifestError(f"zoo entry {self.name!r} lists no {role!r} file in weights_manifest.json")

    @property
    def bundled_dir(self) -> Path:
        """Folder where bundled copies of this entry's files live inside the package."""
        return BUNDLED_DIR / self.name


def _entry_from_dict(name: str, data: dict[str, Any]) -> ZooEntry:
    try:
        pre = data["preprocessing"]
        return ZooEntry(
            name=name,
            timm_name=data["timm_name"],
            architecture=data["architecture"],
            dataset=data["dataset"],
            status=data["status"],
            description=data["description"],
            in_chans=int(pre["input_size"][0]),
            num_features=int(data["num_features"]),
            num_params=int(data["num_params"]),
            recipe=dict(data["recipe"]),
            preprocessing=dict(pre),
            files=tuple(FileRecord(**f) for f in data.get("files", [])),
            hub=dict(data["hub"]),
            metrics=tuple(data.get("metrics", [])),
            paper_results=tuple(data.get("paper_results", [])),
            license=data["license"],
            paper_ids=tuple(data["paper_ids"]),
            provenance=data.get("provenance"),
            source=data.get("source"),
            raw=data,
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ManifestError(f"weights_manifest.json entry {name!r} is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class Manifest:
    """All zoo entries, keyed by alias (``rr_<arch>_<dataset>``)."""

    entries: dict[str, ZooEntry]
    path: Path
    schema_version: int

    def names(self, published_only: bool = False) -> list[str]:
        """Sorted entry aliases, optionally only those with published weights."""
        return sorted(n for n, e in self.entries.items() if e.published or not published_only)

    def get(self, name: str) -> ZooEntry:
        """Find an entry by alias (``rr_resnet32_cifar100``) or timm name (``resnet32_rr.cifar100``).

        Raises:
            UnknownModelError: no such entry; the message lists close matches.
        """
        if name in self.entries:
            return self.entries[name]
        for entry in self.entries.values():
            if entry.timm_name == name:
                return entry
        candidates = list(self.entries) + [e.timm_name for e in self.entries.values()]
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UnknownModelError(f"{name!r} is not a zoo entry; {hint}See rr_zoo.list_models().")


def read_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read and minimally check a manifest file (no caching).

    Args:
        path: Manifest file; defaults to the one shipped in the package.

    Returns:
        The parsed :class:`Manifest`.

    Raises:
        ManifestError: the file is missing, not JSON, or an entry is malformed.
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"manifest not found at {path}; reinstall rr-zoo") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    entries = {name: _entry_from_dict(name, e) for name, e in data.get("entries", {}).items()}
    for entry in entries.values():
        if entry.status not in STATUSES:
            raise ManifestError(f"entry {entry.name!r} has status {entry.status!r}; expected one of {STATUSES}")
    return Manifest(entries=entries, path=path, schema_version=int(data.get("schema_version", 0)))


@functools.lru_cache(maxsize=1)
def load_manifest() -> Manifest:
    """The manifest in use, read once per process.

    The package's own file, unless ``RR_ZOO_MANIFEST`` names another one (a
    maintainer trying an entry before it lands; the test suite). Entry names
    must match the package's, since timm registration happens at import.
    """
    return read_manifest(os.environ.get("RR_ZOO_MANIFEST") or None)
