"""Reading and writing ``weights_manifest.json``, the single source of truth of the zoo.

A zoo *entry* is an architecture x dataset with the paper's recipe (the default for
retraining). It holds zero or more weight *releases*: immutable sets of files (sha256,
size, bundled copy or Hub revision) with the recipe and data they were actually trained
with, their preprocessing, metrics (each with its command), provenance and, for
``--init`` chains, the release they started from. One release is the entry's default:
what the alias (``rr_resnet32_cifar10``) and the entry's timm name
(``resnet32_rr.cifar10``) load. Every release also has its own timm name,
``<arch>_rr.<tag>``.

The schema is ``rr_zoo/manifest.schema.json`` (JSON Schema, checked by the tests) and is
described field by field in ``docs/manifest.md``. Version 1 files (one set of weights per
entry) are read too, converted on read. Code reads entries through :class:`ZooEntry`;
this module is also the manifest's only writer (:func:`add_release`,
:func:`set_default_release`), and a published release's files and metrics never change.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rr_zoo.errors import ManifestError, ReleaseChangeError, UnknownModelError

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = PACKAGE_DIR / "weights_manifest.json"
SCHEMA_PATH = PACKAGE_DIR / "manifest.schema.json"
BUNDLED_DIR = PACKAGE_DIR / "_weights"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
STATUSES = ("published", "unpublished")
TAG_PATTERN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
RELEASE_FIELDS = ("files", "recipe", "preprocessing", "metrics", "provenance", "hub", "parent")


@dataclass(frozen=True)
class FileRecord:
    """One weight file of a release.

    Attributes:
        name: File name inside the Hub repo / export folder (``model.safetensors``).
        role: ``backbone`` or ``relation_head``.
        sha256: Hex digest the loader verifies before reading the file.
        size: Size in bytes.
        bundled: True if a copy ships inside the package (``rr_zoo/_weights/<entry>/<tag>/<name>``).
    """

    name: str
    role: str
    sha256: str
    size: int
    bundled: bool = False


@dataclass(frozen=True)
class Release:
    """One immutable set of weights of a zoo entry (see ``docs/manifest.md``).

    Attributes:
        tag: Short, stable name, unique within the architecture: ``<dataset>_e<epochs>_k<K>[_seed<N>]``
            (``cifar10_jpeg_e30_k4``); its timm name is ``<arch>_rr.<tag>``.
        files: The weight files.
        recipe: The recipe and data it was trained with (``dataset``, ``split``, ``epochs``, ``k``, ...).
        preprocessing: Input size, mean, std, interpolation, crop_pct the weights expect.
        metrics: Measurements, each with the command that reproduces it.
        provenance: Training command, code commit, versions, hardware, wall time, precision, ...
        hub: ``repo_id`` and pinned ``revision`` (None: bundled only).
        parent: timm name of the release its training started from (``--init``), or None.
        bundled_dir: Folder of its bundled copies inside the package.
    """

    tag: str
    files: tuple[FileRecord, ...]
    recipe: dict[str, Any]
    preprocessing: dict[str, Any]
    metrics: tuple[dict[str, Any], ...]
    provenance: dict[str, Any]
    hub: dict[str, Any]
    parent: str | None
    bundled_dir: Path

    def file(self, role: str = "backbone") -> FileRecord:
        """The file record with ``role``.

        Raises:
            ManifestError: the release lists no such file.
        """
        for record in self.files:
            if record.role == role:
                return record
        raise ManifestError(f"release {self.tag!r} lists no {role!r} file in weights_manifest.json")

    def summary(self) -> str:
        """What was trained, in one line: ``30 epochs, K=4, bf16, on cifar10_jpeg (train)``."""
        r = self.recipe
        precision = self.provenance.get("precision")
        return (f"{r['epochs']} epochs, K={r['k']}{f', {precision}' if precision else ''}, on {r['dataset']}"
                f" ({r.get('split', 'train')})")


@dataclass(frozen=True)
class ZooEntry:
    """A zoo entry as read from the manifest (see ``docs/manifest.md`` for every field).

    ``files``, ``metrics``, ``provenance`` and ``hub`` describe the entry's *selected*
    release: the default one, or the one named when the entry was looked up by a
    release's timm name (:meth:`Manifest.get`) or :meth:`with_release`.
    """

    name: str
    timm_name: str
    architecture: str
    dataset: str
    description: str
    in_chans: int
    num_features: int
    num_params: int
    recipe: dict[str, Any]
    preprocessing: dict[str, Any]
    hub_repo: str
    paper_results: tuple[dict[str, Any], ...]
    license: str
    paper_ids: tuple[str, ...]
    releases: dict[str, Release] = field(default_factory=dict)
    default_release: str | None = None
    source: dict[str, Any] | None = None
    selected: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def published(self) -> bool:
        """True when the entry has weights a user can load (at least one release)."""
        return bool(self.releases)

    @property
    def status(self) -> str:
        """``published`` or ``unpublished``."""
        return STATUSES[0] if self.published else STATUSES[1]

    @property
    def arch(self) -> str:
        """timm architecture name, e.g. ``resnet32_rr``."""
        return self.timm_name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """The entry's timm pretrained tag, e.g. ``cifar100`` (it loads the default release)."""
        return self.timm_name.split(".", 1)[1]

    @property
    def release(self) -> Release | None:
        """The selected release (the default unless another was asked for); None when unpublished."""
        tag = self.selected or self.default_release
        return self.releases.get(tag) if tag else None

    def release_name(self, tag: str) -> str:
        """timm name of one of this entry's releases: ``<arch>_rr.<tag>``."""
        return f"{self.arch}.{tag}"

    @property
    def weights_name(self) -> str:
        """The name that loads the selected weights: the release's timm name when one was picked, else the alias."""
        return self.release_name(self.selected) if self.selected else self.name

    def with_release(self, tag: str | None) -> ZooEntry:
        """This entry with ``tag`` selected (None: the default release).

        Raises:
            UnknownModelError: the entry has no such release; the message lists those it has.
        """
        if tag is None or tag == self.selected:
            return self
        if tag not in self.releases:
            have = ", ".join(self.releases) or "none yet"
            raise UnknownModelError(f"zoo entry {self.name!r} has no release {tag!r} (its releases: {have}); "
                                    "see `python -m rr_zoo list`")
        return dataclasses.replace(self, selected=tag)

    @property
    def files(self) -> tuple[FileRecord, ...]:
        """Files of the selected release (empty when unpublished)."""
        return self.release.files if self.release else ()

    @property
    def metrics(self) -> tuple[dict[str, Any], ...]:
        """Metrics of the selected release (empty when unpublished)."""
        return self.release.metrics if self.release else ()

    @property
    def provenance(self) -> dict[str, Any] | None:
        """Provenance of the selected release with its trained ``recipe`` (None when unpublished)."""
        release = self.release
        return None if release is None else {**release.provenance, "recipe": release.recipe}

    @property
    def hub(self) -> dict[str, Any]:
        """``repo_id`` and ``revision`` of the selected release (the entry's repo, no revision, when unpublished)."""
        return dict(self.release.hub) if self.release else {"repo_id": self.hub_repo, "revision": None}

    @property
    def weights_preprocessing(self) -> dict[str, Any]:
        """The preprocessing the selected release's weights expect (the entry's when unpublished)."""
        return dict(self.release.preprocessing) if self.release else dict(self.preprocessing)

    def file(self, role: str = "backbone") -> FileRecord:
        """The selected release's file record with ``role``.

        Raises:
            ManifestError: unpublished, or the release lists no such file.
        """
        if self.release is None:
            raise ManifestError(f"zoo entry {self.name!r} has no release, so no {role!r} file")
        return self.release.file(role)

    @property
    def bundled_dir(self) -> Path:
        """Folder where bundled copies of the selected release's files live inside the package."""
        return self.release.bundled_dir if self.release else BUNDLED_DIR / self.name


# ----------------------------------------------------------------------------- reading
def release_tag(recipe: dict[str, Any]) -> str:
    """The suggested tag of weights trained with ``recipe``: ``<dataset>_e<epochs>_k<K>`` (``cifar10_jpeg_e30_k4``),
    with ``_seed<N>`` when the pretraining seed is not 0 (``cifar10_jpeg_e12_k16_seed1``).

    A folder dataset (``folder:PATH``) is named by its folder's name.
    """
    dataset = str(recipe["dataset"])
    if dataset.startswith("folder:"):
        dataset = Path(dataset.split(":", 1)[1].rstrip("/\\")).name or "folder"
    dataset = re.sub(r"[^a-z0-9]+", "_", dataset.lower()).strip("_") or "data"
    seed = int(recipe.get("seed") or 0)
    return f"{dataset}_e{int(recipe['epochs'])}_k{int(recipe['k'])}" + (f"_seed{seed}" if seed else "")


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 manifest (one set of weights per entry) as version 2: the weights become one release."""
    out = {"schema_version": SCHEMA_VERSION, "entries": {}}
    for name, old in data.get("entries", {}).items():
        entry = {k: v for k, v in old.items() if k not in ("status", "files", "metrics", "provenance", "hub")}
        hub = dict(old.get("hub") or {})
        entry["hub"] = {"repo_id": hub.get("repo_id", f"rr-zoo/{name}")}
        entry["releases"], entry["default_release"] = {}, None
        if old.get("status") == "published":
            provenance = dict(old.get("provenance") or {})
            recipe = provenance.pop("recipe", None) or old["recipe"]
            tag = release_tag(recipe)
            entry["releases"][tag] = {
                "files": old.get("files", []), "recipe": recipe, "preprocessing": old["preprocessing"],
                "metrics": old.get("metrics", []), "provenance": provenance, "hub": hub, "parent": None,
                "_bundled_dir": str(BUNDLED_DIR / name),  # version 1 bundled one set of files per entry
            }
            entry["default_release"] = tag
        out["entries"][name] = entry
    return out


def _release_from_dict(entry_name: str, tag: str, data: dict[str, Any]) -> Release:
    return Release(
        tag=tag,
        files=tuple(FileRecord(**f) for f in data["files"]),
        recipe=dict(data["recipe"]),
        preprocessing=dict(data["preprocessing"]),
        metrics=tuple(data.get("metrics", [])),
        provenance=dict(data.get("provenance") or {}),
        hub=dict(data["hub"]),
        parent=data.get("parent"),
        bundled_dir=Path(data["_bundled_dir"]) if "_bundled_dir" in data else BUNDLED_DIR / entry_name / tag,
    )


def _entry_from_dict(name: str, data: dict[str, Any]) -> ZooEntry:
    try:
        pre = data["preprocessing"]
        releases = {tag: _release_from_dict(name, tag, r) for tag, r in data.get("releases", {}).items()}
        entry = ZooEntry(
            name=name,
            timm_name=data["timm_name"],
            architecture=data["architecture"],
            dataset=data["dataset"],
            description=data["description"],
            in_chans=int(pre["input_size"][0]),
            num_features=int(data["num_features"]),
            num_params=int(data["num_params"]),
            recipe=dict(data["recipe"]),
            preprocessing=dict(pre),
            hub_repo=data["hub"]["repo_id"],
            paper_results=tuple(data.get("paper_results", [])),
            license=data["license"],
            paper_ids=tuple(data["paper_ids"]),
            releases=releases,
            default_release=data.get("default_release"),
            source=data.get("source"),
            raw=data,
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ManifestError(f"weights_manifest.json entry {name!r} is malformed: {exc!r}") from exc
    for tag in releases:
        if not TAG_PATTERN.match(tag):
            raise ManifestError(f"entry {name!r}: release tag {tag!r} must be lower-case words joined by '_'")
    if releases and entry.default_release not in releases:
        raise ManifestError(f"entry {name!r}: default_release {entry.default_release!r} is not one of its releases "
                            f"({', '.join(releases)})")
    if not releases and entry.default_release is not None:
        raise ManifestError(f"entry {name!r} has a default_release but no releases")
    return entry


@dataclass(frozen=True)
class Manifest:
    """All zoo entries, keyed by alias (``rr_<arch>_<dataset>``)."""

    entries: dict[str, ZooEntry]
    path: Path
    schema_version: int

    def names(self, published_only: bool = False) -> list[str]:
        """Sorted entry aliases, optionally only those with published weights."""
        return sorted(n for n, e in self.entries.items() if e.published or not published_only)

    def release_names(self) -> list[str]:
        """timm names of every release (``resnet32_rr.cifar10_jpeg_e30_k4``), sorted."""
        return sorted(e.release_name(t) for e in self.entries.values() for t in e.releases)

    def get(self, name: str) -> ZooEntry:
        """Find an entry by alias (``rr_resnet32_cifar100``), timm name (``resnet32_rr.cifar100``) or the timm name
        of one of its releases (``resnet32_rr.cifar10_jpeg_e30_k4``: the entry with that release selected).

        Raises:
            UnknownModelError: no such entry or release; the message lists close matches.
        """
        if name in self.entries:
            return self.entries[name]
        for entry in self.entries.values():
            if entry.timm_name == name:
                return entry
            arch, _, tag = name.partition(".")
            if arch == entry.arch and tag in entry.releases:
                return entry.with_release(tag)
        candidates = list(self.entries) + [e.timm_name for e in self.entries.values()] + self.release_names()
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UnknownModelError(f"{name!r} is not a zoo entry or release; {hint}See rr_zoo.list_models() and "
                                "`python -m rr_zoo list`.")


def _check_names(entries: dict[str, ZooEntry]) -> None:
    """Every timm name (entry tags and release tags) is unique within its architecture."""
    seen: dict[str, str] = {}
    for entry in entries.values():
        for timm_name, owner in [(entry.timm_name, f"entry {entry.name!r}")] + [
                (entry.release_name(t), f"release {t!r} of {entry.name!r}") for t in entry.releases]:
            if timm_name in seen and seen[timm_name] != owner:
                raise ManifestError(f"timm name {timm_name!r} is used twice: by {seen[timm_name]} and {owner}")
            seen[timm_name] = owner


def parse_manifest(data: dict[str, Any], path: Path) -> Manifest:
    """Build a :class:`Manifest` from parsed JSON of any readable schema version (version 1 is converted).

    Raises:
        ManifestError: an unknown schema version, or a malformed entry.
    """
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise ManifestError(f"{path}: schema_version {version!r} is not one this rr-zoo reads "
                            f"({', '.join(map(str, READABLE_VERSIONS))}); upgrade rr-zoo")
    if version == 1:
        data = _upgrade_v1(data)
    entries = {name: _entry_from_dict(name, e) for name, e in data.get("entries", {}).items()}
    _check_names(entries)
    return Manifest(entries=entries, path=path, schema_version=int(version))


def read_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read and minimally check a manifest file (no caching).

    Args:
        path: Manifest file; defaults to the one shipped in the package.

    Returns:
        The parsed :class:`Manifest` (``schema_version`` says what the file holds; version 1 is converted).

    Raises:
        ManifestError: the file is missing, not JSON, of an unknown version, or an entry is malformed.
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    return parse_manifest(_read_json(path), path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"manifest not found at {path}; reinstall rr-zoo") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc


@functools.lru_cache(maxsize=1)
def load_manifest() -> Manifest:
    """The manifest in use, read once per process.

    The package's own file, unless ``RR_ZOO_MANIFEST`` names another one (a
    maintainer trying an entry before it lands; the test suite). Entry names
    must match the package's, since timm registration happens at import.
    """
    return read_manifest(manifest_path())


def manifest_path() -> Path:
    """The manifest file in use: ``RR_ZOO_MANIFEST`` if set, else the package's."""
    return Path(os.environ.get("RR_ZOO_MANIFEST") or MANIFEST_PATH)


# ----------------------------------------------------------------------------- writing (the only writer)
def metric_input_key(metric: dict[str, Any]) -> tuple[int | None, str]:
    """How a metric's images were fed: (side when resized, else None; precision); (None, "fp32") without ``input``."""
    fed = metric.get("input") or {}
    return (fed.get("side") if fed.get("resize", "none") != "none" else None), fed.get("precision", "fp32")


def _metric_key(metric: dict[str, Any]) -> tuple[Any, ...]:
    return metric["task"], metric["dataset"], metric.get("baseline"), *metric_input_key(metric)


def _metric_label(metric: dict[str, Any]) -> str:
    bound = f" ({metric['baseline']} bound)" if metric.get("baseline") else ""
    std = f" ± {metric['std']}" if metric.get("std") is not None else ""
    side, precision = metric_input_key(metric)
    fed = f" ({precision}{f', at {side}x{side}' if side else ''})" if (side, precision) != (None, "fp32") else ""
    return f"{metric['task']}{bound} on {metric['dataset']}{fed} = {metric['value']}{std}"


def _same_metric(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("value", "std", "command", "seeds"))


def _check_metric_input(where: str, metric: dict[str, Any]) -> None:
    """A metric's ``input`` record agrees with its command's ``--precision`` (written by the same evaluation)."""
    said = re.search(r"--precision\s+(\w+)", metric.get("command", ""))
    recorded = (metric.get("input") or {}).get("precision", "fp32")
    if (said.group(1) if said else "fp32") != recorded:
        raise ManifestError(
            f"{where}: {_metric_label(metric)} has command `{metric.get('command')}` but records images fed in "
            f"{recorded}; its result file was written by other code: run the command again and publish its JSON")


def _merge_metrics(where: str, have: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``have`` plus those of ``new`` it does not measure yet; a different value for a measured one is refused, and
    so is a new one whose ``input`` record disagrees with its command."""
    merged = list(have)
    index = {_metric_key(m): m for m in have}
    for metric in new:
        _check_metric_input(where, metric)
        old = index.get(_metric_key(metric))
        if old is None:
            merged.append(metric)
            index[_metric_key(metric)] = metric
        elif not _same_metric(old, metric):
            raise ReleaseChangeError(
                f"{where} already has {_metric_label(old)} (`{old['command']}`); a published metric never changes "
                f"(refused: {_metric_label(metric)}). Publish the new weights as a new release (--tag NEW_TAG)")
    return merged


def _write(data: dict[str, Any], path: Path) -> Manifest:
    """Check ``data`` as a whole (entries, names, defaults) and write it atomically; returns what was written."""
    from rr_zoo.atomic import atomic_write

    manifest = parse_manifest(data, path)
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if path.resolve() == manifest_path().resolve():
        load_manifest.cache_clear()
    return manifest


def _load_for_writing(path: str | os.PathLike | None) -> tuple[dict[str, Any], Path]:
    path = Path(path) if path is not None else manifest_path()
    data = _read_json(path)
    if data.get("schema_version") == 1:
        data = _upgrade_v1(data)
        for entry in data["entries"].values():  # a version-2 file bundles per release
            for release in entry["releases"].values():
                release.pop("_bundled_dir", None)
    parse_manifest(data, path)
    return data, path


def _release_for_json(release: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(release[k]) for k in RELEASE_FIELDS if k in release}
    out.setdefault("parent", None)
    return out


def add_release(entry_name: str, tag: str, release: dict[str, Any], make_default: bool = False,
                path: str | os.PathLike | None = None) -> ZooEntry:
    """Add a release to an entry, or metrics to an existing release; the only way the manifest gains weights.

    A new ``tag`` is added (and becomes the default if the entry has none, or with
    ``make_default``). An existing ``tag`` takes only metrics it does not have yet
    (evaluations run after publishing); its files, recipe, preprocessing, provenance and
    Hub revision never change, and a metric it already has never changes value.

    Args:
        entry_name: Entry alias.
        tag: Release tag (lower-case words joined by ``_``; unique within the architecture).
        release: ``files``, ``recipe``, ``preprocessing``, ``metrics``, ``provenance``, ``hub``, ``parent``.
        make_default: Make it the entry's default release.
        path: Manifest file (default: the one in use).

    Returns:
        The entry as written, with the release selected.

    Raises:
        ReleaseChangeError: the release exists and ``release`` would change its files, Hub revision or a metric.
        ManifestError: a malformed tag or release, or a timm name already taken.
        UnknownModelError: no such entry.
    """
    data, path = _load_for_writing(path)
    if entry_name not in data["entries"]:
        parse_manifest(data, path).get(entry_name)  # raises with close matches
        raise UnknownModelError(f"{entry_name!r} is not a zoo entry alias; pass rr_<arch>_<dataset>")
    if not TAG_PATTERN.match(tag):
        raise ManifestError(f"release tag {tag!r}: use lower-case letters and digits in words joined by '_' "
                            "(e.g. cifar10_jpeg_e30_k4)")
    raw = data["entries"][entry_name]
    releases = raw.setdefault("releases", {})
    where = f"release {tag!r} of {entry_name}"
    if tag in releases:
        old = releases[tag]
        if _file_facts(old["files"]) != _file_facts(release["files"]):
            raise ReleaseChangeError(
                f"{where} is published with other files ({_file_summary(old['files'])}); a release never changes: "
                f"publish these weights under a new tag (--tag NEW_TAG)")
        old_rev, new_rev = (old.get("hub") or {}).get("revision"), (release.get("hub") or {}).get("revision")
        if old_rev and new_rev and old_rev != new_rev:
            raise ReleaseChangeError(f"{where} is pinned to Hub revision {old_rev}, not {new_rev}; a release never "
                                     "changes: publish under a new tag (--tag NEW_TAG)")
        if new_rev and not old_rev:
            old["hub"] = dict(release["hub"])
        bundled = {f["name"] for f in release["files"] if f.get("bundled")}
        for f in old["files"]:
            f["bundled"] = bool(f.get("bundled")) or f["name"] in bundled
        old["metrics"] = _merge_metrics(where, old.get("metrics", []), release.get("metrics", []))
    else:
        releases[tag] = _release_for_json({**release, "metrics": _merge_metrics(where, [], release.get("metrics",
                                                                                                       []))})
    if make_default or raw.get("default_release") is None:
        raw["default_release"] = tag
    return _write(data, path).get(entry_name).with_release(tag)


def set_default_release(entry_name: str, tag: str, path: str | os.PathLike | None = None) -> ZooEntry:
    """Make ``tag`` the default release of an entry (what its alias and entry timm name load).

    Raises:
        UnknownModelError: no such entry or release.
    """
    data, path = _load_for_writing(path)
    entry = parse_manifest(data, path).get(entry_name).with_release(tag)
    data["entries"][entry.name]["default_release"] = tag
    return _write(data, path).get(entry.name)


def _file_facts(files: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(f["name"], f["role"], f["sha256"], f["size"]) for f in files}


def _file_summary(files: list[dict[str, Any]]) -> str:
    return ", ".join(f"{f['name']} sha256 {f['sha256'][:12]}..." for f in files)


def add_metrics(entry_name: str, tag: str, metrics: list[dict[str, Any]],
                path: str | os.PathLike | None = None) -> ZooEntry:
    """Add metrics a published release does not have yet (a metric it has never changes).

    Raises:
        ReleaseChangeError: a metric the release already has, with another value or command.
        UnknownModelError: no such entry or release.
    """
    data, path = _load_for_writing(path)
    entry = parse_manifest(data, path).get(entry_name).with_release(tag)
    raw = data["entries"][entry.name]["releases"][tag]
    raw["metrics"] = _merge_metrics(f"release {tag!r} of {entry.name}", raw.get("metrics", []), metrics)
    return _write(data, path).get(entry.name).with_release(tag)
