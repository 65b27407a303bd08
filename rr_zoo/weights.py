"""Find, verify and load weight files. safetensors only; sha256 checked before reading.

Sources, in order: an explicit local file or export folder, the copy bundled in
the package, then the Hugging Face Hub at the manifest's pinned revision
(through huggingface_hub's cache; ``HF_HUB_OFFLINE=1`` is honoured).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from rr_zoo.errors import CheckpointFormatError, UnpublishedWeightsError, WeightsHashError, WeightsNotFoundError
from rr_zoo.export_format import CONFIG_FILE, filename, read_export_config
from rr_zoo.manifest import FileRecord, ZooEntry

CHUNK_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str, size: int | None = None, what: str = "") -> Path:
    """Check a file's size and sha256 against expected values.

    Args:
        path: File to check.
        sha256: Expected hex digest.
        size: Expected size in bytes (checked first: cheap, catches truncation).
        what: Description for the error message (e.g. the entry name).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        WeightsNotFoundError: the file does not exist.
        WeightsHashError: size or digest differs; the message names the file, both values and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist{f' ({what})' if what else ''}")
    label = f" for {what}" if what else ""
    fix = ("The file is corrupt, truncated or not the published one: delete it and download again "
           "(`python -m rr_zoo download NAME`), or pass the right file.")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise WeightsHashError(
            f"{path}{label}: size is {actual_size} bytes, expected {size}. {fix}"
        )
    actual = sha256_file(path)
    if actual != sha256:
        raise WeightsHashError(f"{path}{label}: sha256 is {actual}, expected {sha256}. {fix}")
    return path


def _not_safetensors(path: str | os.PathLike, exc: Exception) -> WeightsHashError:
    return WeightsHashError(
        f"{path} is not a readable safetensors file ({exc}). rr_zoo loads safetensors only; "
        "convert original .tar checkpoints with `python -m rr_zoo convert`."
    )


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file onto the CPU with a clear error for non-safetensors input."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise _not_safetensors(path, exc) from exc


def require_safetensors(path: str | os.PathLike) -> Path:
    """Return ``path`` if it is a readable safetensors file (header parsed, no tensor read), else raise.

    Raises:
        WeightsHashError: pickle checkpoints and anything else; rr_zoo never unpickles weights.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        raise _not_safetensors(path, exc) from exc
    return Path(path)


def hub_endpoint() -> str | None:
    """The Hub endpoint from ``HF_ENDPOINT`` at call time (None = huggingface_hub's default)."""
    return os.environ.get("HF_ENDPOINT") or None


def download_from_hub(repo_id: str, filename: str, revision: str | None, cache_dir: str | None = None) -> Path:
    """Download (or reuse from the cache) one file of a Hub repo at a pinned revision.

    Args:
        repo_id: ``org/name``.
        filename: File inside the repo.
        revision: Commit sha (pinned) or branch.
        cache_dir: huggingface_hub cache folder; default is its own.

    Returns:
        Local path of the cached file.

    Raises:
        WeightsNotFoundError: the Hub cannot be reached or has no such file, with the fix.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                    endpoint=hub_endpoint()))
    except LocalEntryNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{filename} of {repo_id}@{revision} is not in the local Hugging Face cache and the Hub "
            f"cannot be reached ({exc}). Run `python -m rr_zoo download NAME` while online, or pass "
            "a local file with weights=PATH."
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsNotFoundError(
            f"could not download {filename} from Hub repo {repo_id}@{revision}: {exc}"
        ) from exc


def resolve_file(entry: ZooEntry, role: str = "backbone", file: str | os.PathLike | None = None,
                 cache_dir: str | None = None) -> tuple[Path, FileRecord | None]:
    """Locate one weight file of an entry.

    Args:
        entry: The zoo entry.
        role: ``backbone`` or ``relation_head``.
        file: Explicit local file, or an export folder holding it.
        cache_dir: huggingface_hub cache folder for Hub downloads.

    Returns:
        ``(path, record)``; ``record`` is the manifest's record of a bundled or Hub
        file, None for an explicit file (its expected hash is decided by
        :func:`verified_entry_file`).

    Raises:
        UnpublishedWeightsError: no file given and the entry has no published weights.
        WeightsNotFoundError: the file is missing.
    """
    if file is not None:
        path = Path(file)
        if path.is_dir():
            path = path / (entry.file(role).name if entry.published else filename(role))
        if not path.exists():
            raise WeightsNotFoundError(f"weight file {path} does not exist (given for {entry.name!r})")
        return path, None
    if not entry.published:
        raise UnpublishedWeightsError(
            f"zoo entry {entry.name!r} has no published weights yet. Use pretrained=False for random "
            f"init, train it with `python -m training pretrain --entry {entry.name}` then export it, "
            "or convert an original checkpoint with `python -m rr_zoo convert`, and pass "
            "weights=PATH (timm: pretrained_cfg_overlay=dict(file=PATH))."
        )
    record = entry.file(role)
    bundled = entry.bundled_dir / record.name
    if record.bundled and bundled.is_file():
        return bundled, record
    return download_from_hub(entry.hub["repo_id"], record.name, entry.hub.get("revision"), cache_dir), record


def expected_from_folder(path: Path, role: str) -> FileRecord | None:
    """Expected hash of a file from the ``config.json`` of the export folder holding it (None if absent)."""
    if not (path.parent / CONFIG_FILE).is_file():
        return None
    record = read_export_config(path.parent).file(role)
    return record if record is not None and record.name == path.name else None


def expected_record(path: Path, role: str, sha256: str | None = None) -> FileRecord | None:
    """Expected hash of an explicit file: ``sha256`` when given, else its export folder's config.json record."""
    if sha256 is not None:
        return FileRecord(name=path.name, role=role, sha256=sha256, size=None)  # type: ignore[arg-type]
    return expected_from_folder(path, role)


def verified_export_file(folder: str | os.PathLike, role: str = "backbone") -> Path:
    """A weight file of a local export folder, verified against the folder's ``config.json``.

    Raises:
        CheckpointFormatError: no config.json, or it lists no file for ``role``.
        WeightsHashError / WeightsNotFoundError: the file differs from its record or is missing.
    """
    config = read_export_config(folder)
    record = config.file(role)
    if record is None:
        raise CheckpointFormatError(
            f"{config.path} lists no {role} file under rr_zoo.files; re-export the folder with "
            "`python -m training export` so its weights can be verified."
        )
    return verify_file(config.path.parent / record.name, record.sha256, record.size, what=str(config.path.parent))


def verified_hub_export_file(hub_id: str, role: str = "backbone", cache_dir: str | None = None) -> Path:
    """A weight file of an export folder on the Hub (``org/name[@revision]``), verified by its ``config.json``."""
    repo_id, _, revision = hub_id.partition("@")
    config_path = download_from_hub(repo_id, CONFIG_FILE, revision or None, cache_dir)
    record = read_export_config(config_path).file(role)
    if record is None:
        raise CheckpointFormatError(
            f"config.json of Hub repo {hub_id} lists no {role} file under rr_zoo.files: not an rr_zoo export, "
            "so its weights cannot be verified."
        )
    path = download_from_hub(repo_id, record.name, revision or None, cache_dir)
    return verify_file(path, record.sha256, record.size, what=hub_id)


def verified_entry_file(entry: ZooEntry, role: str = "backbone", file: str | os.PathLike | None = None,
                        sha256: str | None = None, cache_dir: str | None = None) -> Path:
    """Resolve and verify one weight file of an entry; returns its path.

    The expected hash of a bundled or Hub file is the manifest's. For an explicit
    file it is, in order: ``sha256``, the ``config.json`` of the export folder
    holding the file, the manifest (published entries). A file with no expected
    hash at all is refused rather than loaded unverified.

    Args:
        entry: The zoo entry.
        role: ``backbone`` or ``relation_head``.
        file: Explicit file or export folder.
        sha256: Expected digest of an explicit file.
        cache_dir: huggingface_hub cache folder.
    """
    path, record = resolve_file(entry, role, file, cache_dir)
    if record is None:
        record = expected_record(path, role, sha256)
    if record is None and entry.published:
        record = entry.file(role)
    if record is None:
        raise WeightsHashError(
            f"no expected sha256 for {path}: {entry.name!r} is unpublished and the file is not in an "
            "export folder whose config.json lists it. Pass sha256=... (the digest you trust), or "
            "export the checkpoint with `python -m training export`."
        )
    return verify_file(path, record.sha256, record.size, what=f"{entry.name} {role}")


def load_entry_state_dict(entry: ZooEntry, role: str = "backbone", file: str | os.PathLike | None = None,
                          sha256: str | None = None, cache_dir: str | None = None) -> dict[str, torch.Tensor]:
    """Resolve, verify (:func:`verified_entry_file`) and load one weight file of an entry."""
    return load_safetensors(verified_entry_file(entry, role, file, sha256, cache_dir))
