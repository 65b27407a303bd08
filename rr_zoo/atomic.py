"""The one atomic-write helper: files and folders appear complete or not at all.

Used for every file the project writes that a crash must not leave half-written:
weight exports, training checkpoints, decoded-data caches, result JSON, figures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any] | bytes | str) -> Path:
    """Write a file so that readers see the old file or the complete new one, never a partial write.

    The data go to a temporary file in the same folder, are flushed and fsynced, and the
    temporary file is renamed over ``path``.

    Args:
        path: Destination file (parent folders are created).
        write: Bytes, text (UTF-8), or a callable that writes to the open binary file handle
            (e.g. ``lambda fh: torch.save(obj, fh)``).

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(write, str):
                fh.write(write.encode())
            elif isinstance(write, (bytes, bytearray)):
                fh.write(write)
            else:
                write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Build a folder in a temporary sibling; on success it replaces ``out_dir`` in one rename.

    A crash or exception leaves ``out_dir`` as it was (the temporary folder is removed).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


