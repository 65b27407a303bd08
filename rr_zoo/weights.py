"""Find, verify and load weight files. safetensors only; sha256 checked before reading.

Sources, in order: an explicit local file or export folder, the copy bundled in
the package, then the Hugging Face Hub at the manifest's pinned revision
(through huggingface_hub's cache; ``HF_HUB_OFFLINE=1`` is honoured).

A published, bundled or downloaded file is checked against the manifest; a file in
an export folder against the folder's ``config.json``; a file the user names
against ``sha256=`` when given, else it loads as what it is (safetensors runs no
code). Each mismatch names its own fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from rr_zoo.errors import CheckpointFormatError, UnpublishedWeightsError, WeightsHashError, WeightsNotFoundError
from rr_zoo.export_format import CONFIG_FILE, filename, read_export_config
from rr_zoo.hashing import sha256_file
from rr_zoo.manifest import FileRecord, ZooEntry

# What to do about a file that differs from its record, by where the file came from.
FIX_DOWNLOAD = ("The downloaded copy is corrupt or incomplete: download it again with "
                "`python -m rr_zoo download {name}` (it replaces a cached copy that fails this check).")
FIX_BUNDLED = ("The copy bundled with rr-zoo is damaged: reinstall rr-zoo (`pip install --force-reinstall rr-zoo`; "
               "in a git checkout `git checkout -- {path}`).")
FIX_PINNED = "It is not the file you pinned with sha256=: pass that file, or the digest of this one."
FIX_EXPORT = ("{path.name} no longer matches its record in {config} (rr_zoo.files, role {role}): it was changed or "
              "truncated after export; restore it, or export the checkpoint again (`python -m training export "
              "--checkpoint CHECKPOINT --out FOLDER`).")
FIX_HUB_EXPORT = ("The downloaded copy is corrupt or incomplete: delete {blob} (the cached download) and load again, "
                  "or the Hub repo's config.json does not describe its own files.")


def verify_file(path: str | os.PathLike, sha256: str, size: int | None = None, what: str = "",
                fix: str | None = None) -> Path:
    """Check a file's size and sha256 against expected values.

    Args:
        path: File to check.
        sha256: Expected hex digest.
        size: Expected size in bytes (checked first: cheap, catches truncation).
        what: Description for the error message (e.g. the entry name).
        fix: The error message's advice (where the file came from decides it: a download, a bundled
            copy, a pinned digest, an export folder); default: download it again.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        WeightsNotFoundError: the file does not exist.
        WeightsHashError: size or digest differs; the message names the file, both values and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist{f' ({what})' if what else ''}")
    label = f" ({what})" if what else ""
    fix = fix or FIX_DOWNLOAD.format(name="NAME")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise WeightsHashError(f"{path}{label}: size is {actual_size} bytes, expected {size}. {fix}")
    actual = sha256_file(path)
    if actual != sha256:
        raise WeightsHashError(f"{path}{label}: sha256 is {actual}, expected {sha256}. {fix}")
    return path


def _is_pickle(path: Path) -> bool:
    """True for what ``torch.save`` writes: a zip archive, or a bare pickle (protocol 2+)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _not_safetensors(path: str | os.PathLike, exc: Exception) -> WeightsHashError:
    path = Path(path)
    if path.is_file() and _is_pickle(path):
        if path.suffix == ".tar":
            fix = (f"an original-repository checkpoint: convert it first (`python -m rr_zoo convert {path} --entry "
                   "NAME --out FOLDER`) and pass FOLDER; a training checkpoint: `python -m training export`")
        else:
            fix = (f"a training checkpoint: export it first (`python -m training export --checkpoint {path} --out "
                   "FOLDER`) and pass FOLDER; an original-repository .tar: `python -m rr_zoo convert`")
        return WeightsHashError(f"{path} is a PyTorch pickle (torch.save), not safetensors; rr_zoo never unpickles "
                                f"weights. If it is {fix}.")
    return WeightsHashError(
        f"{path} is not a readable safetensors file ({exc}): truncated, or another format. rr_zoo loads "
        "safetensors only (safetensors.torch.save_file(model.state_dict(), PATH)); convert original .tar "
        "checkpoints with `python -m rr_zoo convert`, export training checkpoints with `python -m training export`."
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
        WeightsHashError: pickle checkpoints (the message says how to export or convert them) and
            anything else that is not safetensors; rr_zoo never unpickles weights.
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


def download_from_hub(repo_id: str, filename: str, revision: str | None, cache_dir: str | None = None,
                      force_download: bool = False) -> Path:
    """Download (or reuse from the cache) one file of a Hub repo at a pinned revision.

    Args:
        repo_id: ``org/name``.
        filename: File inside the repo.
        revision: Commit sha (pinned) or branch.
        cache_dir: huggingface_hub cache folder; default is its own.
        force_download: Download again even when the cache holds the file (replaces a damaged copy).

    Returns:
        Local path of the cached file.

    Raises:
        WeightsNotFoundError: the Hub cannot be reached or has no such file, with the fix.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                    endpoint=hub_endpoint(), force_download=force_download))
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


def resolve_file(entry: ZooEntry, role: str = "backbone", cache_dir: str | None = None,
                 force_download: bool = False) -> tuple[Path, FileRecord, str]:
    """Locate one published weight file of an entry: its bundled copy, else the Hub at the pinned revision.

    Args:
        entry: The zoo entry.
        role: ``backbone`` or ``relation_head``.
        cache_dir: huggingface_hub cache folder for Hub downloads.
        force_download: Download the Hub file again even when the cache holds it.

    Returns:
        ``(path, record, fix)``: the local file, the manifest's record of it, and the advice for an error
        message should the file not match the record.

    Raises:
        UnpublishedWeightsError: the entry has no published weights.
        WeightsNotFoundError: the Hub cannot be reached.
    """
    if not entry.published:
        raise UnpublishedWeightsError(
            f"zoo entry {entry.name!r} has no published weights yet. Use pretrained=False for random "
            f"init, train it with `python -m training pretrain --entry {entry.name}` then export it, "
            "or convert an original checkpoint with `python -m rr_zoo convert`, and pass "
            "weights=PATH (timm: pretrained_cfg_overlay=dict(file=PATH))."
        )
    record = entry.file(role)
    bundled = entry.bundled_dir / record.name
    if record.bundled and bundled.is_file() and not force_download:
        return bundled, record, FIX_BUNDLED.format(path=bundled)
    path = download_from_hub(entry.hub["repo_id"], record.name, entry.hub.get("revision"), cache_dir,
                             force_download=force_download)
    return path, record, FIX_DOWNLOAD.format(name=entry.name)


def _folder_record(path: Path) -> tuple[FileRecord, Path] | None:
    """The record of a file in the ``config.json`` of the export folder holding it, matched by name."""
    config_path = path.parent / CONFIG_FILE
    if not config_path.is_file():
        return None
    config = read_export_config(config_path)
    record = next((f for f in config.files if f.name == path.name), None)
    return None if record is None else (record, config.path)


def verified_export_file(folder: str | os.PathLike, role: str = "backbone") -> Path:
    """A weight file of a local export folder, verified against the folder's ``config.json``.

    Raises:
        CheckpointFormatError: no config.json, or it lists no file for ``role``.
        WeightsNotFoundError: config.json lists a file the folder does not hold.
        WeightsHashError: the file differs from its record (the message names file and record).
    """
    config = read_export_config(folder)
    record = config.file(role)
    if record is None:
        raise CheckpointFormatError(
            f"{config.path} lists no {role} file under rr_zoo.files; re-export the folder with "
            "`python -m training export` so its weights can be verified."
        )
    path = config.path.parent / record.name
    if not path.is_file():
        raise WeightsNotFoundError(f"{config.path} lists {record.name} ({role}) under rr_zoo.files but {path} does "
                                   "not exist: copy the whole export folder, or export it again")
    return verify_file(path, record.sha256, record.size, what=f"export folder {config.path.parent}",
                       fix=FIX_EXPORT.format(path=path, config=config.path, role=role))


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
    return verify_file(path, record.sha256, record.size, what=f"Hub repo {hub_id}",
                       fix=FIX_HUB_EXPORT.format(blob=path.resolve()))


def verified_user_file(file: str | os.PathLike, role: str = "backbone", sha256: str | None = None,
                       entry: ZooEntry | None = None) -> Path:
    """A weight file the user names (or an export folder holding it), checked as far as anything records it.

    A safetensors file needs no hash: safetensors runs no code, and a damaged file fails to parse or to
    fit the model, each with its own error. A hash is checked whenever one is known, in order:
    ``sha256`` (a pin), the ``config.json`` of the export folder holding the file (matched by name),
    the manifest (the file is an entry's bundled copy). A folder must be an export folder.

    Args:
        file: Safetensors file, or export folder (its ``config.json`` names the file of ``role``).
        role: ``backbone`` or ``relation_head``.
        sha256: Expected digest (pinning).
        entry: The zoo entry the weights are loaded for (its bundled copies are recognised).

    Returns:
        The file's path.

    Raises:
        WeightsNotFoundError: nothing at ``file``.
        WeightsHashError: the file differs from a known digest, or is not safetensors (a pickle checkpoint:
            the message says how to export or convert it).
        CheckpointFormatError: a folder that is not an export folder, or a file its folder records under
            another role.
    """
    path = Path(file)
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointFormatError(
                f"{path} is a folder without {CONFIG_FILE}, not an export folder: pass the safetensors file itself, "
                "or a folder written by `python -m training export` / `python -m rr_zoo convert`")
        if sha256 is None:
            return require_safetensors(verified_export_file(path, role))
        record = read_export_config(path).file(role)
        path = path / (record.name if record is not None else filename(role))
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist"
                                   f"{f' (given for {entry.name!r})' if entry is not None else ''}")
    found = _folder_record(path)
    if found is not None and found[0].role != role:
        raise CheckpointFormatError(f"{path} is the {found[0].role} file of its export folder ({found[1]}), "
                                    f"not a {role} file: pass {filename(role)} or the folder")
    if sha256 is not None:
        verify_file(path, sha256, what="sha256= given", fix=FIX_PINNED)
    elif found is not None:
        record, config = found
        verify_file(path, record.sha256, record.size, what=f"export folder {path.parent}",
                    fix=FIX_EXPORT.format(path=path, config=config, role=role))
    elif entry is not None and entry.published and path.resolve() == (entry.bundled_dir / entry.file(role).name
                                                                       ).resolve():
        record = entry.file(role)
        verify_file(path, record.sha256, record.size, what=f"{entry.name} {role}", fix=FIX_BUNDLED.format(path=path))
    return require_safetensors(path)


def verified_entry_file(entry: ZooEntry, role: str = "backbone", file: str | os.PathLike | None = None,
                        sha256: str | None = None, cache_dir: str | None = None) -> Path:
    """Resolve and verify one weight file of an entry; returns its path.

    Without ``file``: the published file (bundled copy, else the Hub at the pinned revision), verified
    against the manifest. With ``file``: :func:`verified_user_file`.

    Args:
        entry: The zoo entry.
        role: ``backbone`` or ``relation_head``.
        file: Explicit file or export folder.
        sha256: Expected digest of an explicit file.
        cache_dir: huggingface_hub cache folder.
    """
    if file is not None:
        return verified_user_file(file, role, sha256, entry)
    path, record, fix = resolve_file(entry, role, cache_dir)
    return verify_file(path, record.sha256, record.size, what=f"{entry.name} {role}", fix=fix)


def load_entry_state_dict(entry: ZooEntry, role: str = "backbone", file: str | os.PathLike | None = None,
                          sha256: str | None = None, cache_dir: str | None = None) -> dict[str, torch.Tensor]:
    """Resolve, verify (:func:`verified_entry_file`) and load one weight file of an entry."""
    return load_safetensors(verified_entry_file(entry, role, file, sha256, cache_dir))
