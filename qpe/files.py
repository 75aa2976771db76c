"""Writing files so that nothing is lost: whole or not at all, and no litter from killed runs.

Every output of qpe (datasets, checkpoints, cached estimates, training states, score tables, reports)
is written by :func:`atomic_write`: into a temporary sibling ``.<name>.<pid>-<random>.tmp``, flushed to
disk, then moved over ``<name>`` in one rename. A reader sees the old output or the new one, never a mix;
a run killed at any point (even ``kill -9``) leaves the previous output intact and, at worst, its
temporary, which the next write into the same folder removes (:func:`remove_stale_temporaries`).

A folder (a Zarr store, a checkpoint) cannot be swapped for another in one rename: the old one is moved
aside (``.<name>.<pid>-<random>.old``), the new one moved in, the old one deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

#: A temporary of a dead process older than this is litter, s (a live writer's is never touched).
STALE_AFTER_S = 60.0


def temporary_sibling(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """``.<name>.<pid>-<random>.<kind>`` beside ``path``: hidden, unique, and naming its writer."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}")


def _writer_alive(temporary: Path) -> bool:
    """Whether the process named in a temporary's name still runs (on this machine)."""
    try:
        pid = int(temporary.name.rsplit(".", 2)[-2].split("-")[0])
        os.kill(pid, 0)
    except (ValueError, IndexError):
        return False  # not named by this module (older qpe): age alone decides
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


#: What :func:`temporary_sibling` names: ``.<name>.<pid>-<8 hex>.tmp`` (or ``.old``).
_OURS = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.(tmp|old)$")


def remove_stale_temporaries(path: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporaries that killed writers left beside ``path``; returns what was removed.

    Removed: temporaries of ``path`` itself (also those of older qpe versions, ``.<name>.<random>.tmp``)
    and any other temporary of this module in the same folder (e.g. of other entries of the estimate
    cache), when older than ``older_than_s`` and their writer process is gone. The temporaries of live
    writers (another thread or process writing at the same time) stay; other programs' files are never
    touched.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    now = time.time()
    for item in path.parent.iterdir():
        name = item.name
        ours = _OURS.match(name) or (name.startswith(f".{path.name}.") and name.endswith((".tmp", ".old")))
        if not ours:
            continue
        try:
            age = now - item.lstat().st_mtime
        except FileNotFoundError:
            continue
        if age > older_than_s and not _writer_alive(item):
            _remove(item)
            removed.append(item)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush one file, or one folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """Flush a file, or a folder with every file and folder in it, to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(Path(root) / name)
            _fsync(Path(root))
    else:
        _fsync(path)


def replace_path(new: Path, path: Path) -> None:
    """Move ``new`` (a file or folder) to ``path``, replacing what is there."""
    if (path.exists() or path.is_symlink()) and (new.is_dir() or (path.is_dir() and not path.is_symlink())):
        old = temporary_sibling(path, "old")  # a folder cannot be swapped in one rename: move it aside
        os.replace(path, old)
        os.replace(new, path)
        _remove(old)
    else:
        os.replace(new, path)  # atomic for files


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, durable: bool = True) -> Path:
    """Write ``path`` whole or not at all.

    Parameters
    ----------
    path : path-like
        The output (a file, or a folder such as a Zarr store); its parent folder is created.
    write : callable
        ``write(tmp)`` creates the output at ``tmp`` (a file or a folder of that name).
    durable : bool
        Flush the new output to disk before it replaces the old one (so that a power cut cannot leave
        an empty file under the final name).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        if durable:
            _fsync_tree(tmp)
        replace_path(tmp, path)
        if durable:
            _fsync(path.parent)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
