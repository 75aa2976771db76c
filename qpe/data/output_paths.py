"""Checks on where a command writes, made before any work: never over an input, never a wrong kind of path.

Every writer in qpe replaces its output whole (:func:`qpe.data.paired.save_paired` moves a finished
temporary into place and deletes what was there), so an output that is one of the inputs, lies inside
one, or holds one would destroy data. Paths are compared resolved (``./a.zarr``, ``a.zarr/`` and a
symbolic link to it are the same dataset).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from qpe.errors import InputError

#: Suffixes of the paired dataset formats (Zarr directory, NetCDF file).
DATASET_SUFFIXES = (".zarr", ".nc")
#: Files that mark a directory as a Zarr store (v2 and v3).
ZARR_MARKERS = (".zgroup", ".zmetadata", "zarr.json")


def _inside(path: Path, folder: Path) -> bool:
    """Whether resolved ``path`` is ``folder`` or lies below it."""
    return path == folder or folder in path.parents


def check_not_an_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> Path:
    """Refuse an output that is, lies inside, or contains one of the inputs.

    Parameters
    ----------
    out : path-like
        Where the command will write (a file or a folder; it need not exist).
    inputs : iterable of path-like
        What the command reads (files, datasets, folders); ones that do not exist are ignored.

    Returns
    -------
    pathlib.Path
        ``out`` resolved (symbolic links followed).

    Raises
    ------
    InputError
        One line naming the output and the input it would overwrite.
    """
    target = Path(out).resolve()
    for item in inputs:
        source = Path(item)
        if not source.exists():
            continue
        resolved = source.resolve()
        if target == resolved:
            raise InputError(f"output {out} is the input {item}: choose another output (inputs are never "
                             "overwritten)")
        if _inside(resolved, target):
            raise InputError(f"output {out} would replace {target}, which holds the input {item}")
        if _inside(target, resolved) and resolved.is_dir():
            raise InputError(f"output {out} lies inside the input {item}: write it elsewhere")
    return target


def check_writable_parent(out: str | os.PathLike) -> None:
    """Refuse an output whose nearest existing parent is a file or not a writable folder."""
    path = Path(out)
    parent = path.parent if str(path.parent) else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: {existing} is not a writable directory")


def check_dataset_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Checks before writing a paired dataset (``*.zarr`` or ``*.nc``) to ``out``.

    The suffix names a dataset format; an existing ``out`` is a dataset of that format (a Zarr store,
    a NetCDF file), so that replacing it cannot delete an unrelated folder or file; the parent is a
    writable folder; ``out`` is none of the inputs (:func:`check_not_an_input`).

    Returns
    -------
    pathlib.Path
        ``out`` as given.

    Raises
    ------
    InputError
        One line for the first problem.
    """
    path = Path(out)
    if path.suffix not in DATASET_SUFFIXES:
        raise InputError(f"unknown dataset format for {path.name}: use a .zarr or .nc suffix")
    if path.exists():
        if path.suffix == ".zarr" and not (path.is_dir() and any((path / m).exists() for m in ZARR_MARKERS)):
            raise InputError(f"{path} exists and is not a Zarr dataset: will not replace it")
        if path.suffix == ".nc" and not path.is_file():
            raise InputError(f"{path} is a directory, not a NetCDF file: will not replace it")
    check_writable_parent(path)
    check_not_an_input(path, inputs)
    return path


def check_file_output(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), option: str = "--out"
) -> Path:
    """Checks before writing one file (e.g. an estimate's NetCDF) to ``out``: not a folder, writable
    parent, none of the inputs. ``option`` names the path in messages."""
    path = Path(out)
    if path.is_dir():
        raise InputError(f"{option} {path} is a directory; give a file name, e.g. {path / 'estimate.nc'}")
    check_writable_parent(path)
    check_not_an_input(path, inputs)
    return path


def check_folder_output(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), option: str = "--out"
) -> Path:
    """Checks before writing files into the folder ``out``: not an existing file, writable parent, and
    neither an input nor inside one. ``option`` names the path in messages."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is an existing file; give a folder to write into")
    check_writable_parent(path)
    target = path.resolve()
    for item in inputs:
        source = Path(item)
        if source.exists() and (target == source.resolve() or _inside(target, source.resolve())):
            raise InputError(f"output folder {out} is or lies inside the input {item}: write it elsewhere")
    return path
