"""What every reader shares: its input files, its target grid, time stacking and provenance."""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from qpe import __version__
from qpe.data.grid import Grid, get_region
from qpe.errors import InputError, MissingInputError

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]
T = TypeVar("T")

_GLOB_CHARS = set("*?[")
#: Largest target grid a reader builds, pixels (Europe at 0.5 km is 1.7e7; one float32 frame of this
#: size is 400 MB).
MAX_GRID_PIXELS = 100_000_000


def resolve_paths(paths: PathsLike, what: str) -> list[Path]:
    """The input files of a reader, from a glob pattern, a path, or a sequence of either.

    Parameters
    ----------
    paths : str, path-like or sequence of them
        A glob pattern (``"data/*.hdf"``), one path, or several of either.
    what : str
        What the files are, for the error message (e.g. ``"OPERA HDF5 files"``).

    Returns
    -------
    list of pathlib.Path
        Paths in the order given (globs sorted by name), duplicates removed.

    Raises
    ------
    InputError
        A pattern matches nothing, a path does not exist, or nothing is given.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InputError(f"no {what} given")
    found: list[Path] = []
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        if _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise MissingInputError(f"no {what} match {text!r}")
            found.extend(Path(m) for m in matches)
        elif not os.path.exists(text):
            raise MissingInputError(f"no such file: {text} (expected {what})")
        else:
            found.append(Path(text))
    return list(dict.fromkeys(found))


def resolve_target(grid: Grid | None = None, region: str | None = None, pixel_km: float = 2.0) -> Grid | None:
    """The target grid of a reader: ``grid``, or ``region`` at ``pixel_km``, or None (the source's own).

    Raises
    ------
    InputError
        Both a grid and a region are given, or the pixel size is not positive.
    DatasetError
        The region name is unknown.
    """
    if grid is not None and region is not None:
        raise InputError("give either a target grid or a region, not both")
    if grid is not None:
        if not isinstance(grid, Grid):
            raise InputError(f"grid must be a qpe.data.grid.Grid, got {type(grid).__name__}")
        return grid
    if region is None:
        return None
    if not pixel_km > 0 or not np.isfinite(pixel_km):
        raise InputError(f"pixel size must be positive, got {pixel_km} km")
    chosen = get_region(region)
    xmin, ymin, xmax, ymax = chosen.bounds
    rows, cols = (ymax - ymin) / (pixel_km * 1000.0), (xmax - xmin) / (pixel_km * 1000.0)
    if rows * cols > MAX_GRID_PIXELS:
        raise InputError(
            f"pixel size {pixel_km:g} km gives region {region} {rows:.4g} x {cols:.4g} pixels, more than "
            f"the {MAX_GRID_PIXELS:.0e} a reader builds: use a larger pixel size"
        )
    return chosen.grid(pixel_km * 1000.0)


class SkippedFilesWarning(UserWarning):
    """Some input files of a reader could not be read and were left out."""


@dataclass(frozen=True)
class SkippedFile:
    """An input file a reader left out, and why (the one-line message of its error)."""

    path: Path
    reason: str


def read_or_skip(
    read: Callable[[Path], T], path: Path, several: bool, skipped: list[SkippedFile]
) -> T | None:
    """``read(path)``; when several files are read, a file that cannot be read is noted and skipped.

    Parameters
    ----------
    read : callable
        Reads one file; raises :class:`InputError` (one line naming the file) when it cannot.
    path : pathlib.Path
        The file.
    several : bool
        More than one file is being read: go on without this one. With one file the error stands.
    skipped : list of SkippedFile
        Where a skipped file is noted (appended to).

    Returns
    -------
    The result of ``read``, or None when the file was skipped.
    """
    try:
        return read(path)
    except InputError as err:
        if not several:
            raise
        skipped.append(SkippedFile(path, str(err)))
        return None


def report_skipped(skipped: Sequence[SkippedFile], total: int, what: str) -> str | None:
    """Warn about the files a reader skipped and return the note for the dataset's attributes.

    Raises
    ------
    InputError
        Every file was skipped: nothing is left to read (the message quotes the first reason).
    """
    if not skipped:
        return None
    if len(skipped) == total:
        raise InputError(f"none of the {total} {what} could be read; first: {skipped[0].reason}")
    note = "; ".join(s.reason for s in skipped)
    warnings.warn(
        f"skipped {len(skipped)} of {total} {what} that could not be read: {note}", SkippedFilesWarning,
        stacklevel=3,
    )
    return note


def check_time_order(times: Sequence[pd.Timestamp], names: Sequence[str]) -> np.ndarray:
    """Order that sorts ``times``; raises if two inputs have the same time.

    Returns
    -------
    numpy.ndarray
        Indices sorting the inputs by time (stable).
    """
    index = pd.DatetimeIndex(times)
    order = np.argsort(index.values, kind="stable")
    sorted_times = index.values[order]
    dup = np.flatnonzero(sorted_times[1:] == sorted_times[:-1])
    if dup.size:
        a, b = names[order[dup[0]]], names[order[dup[0] + 1]]
        when = pd.Timestamp(sorted_times[dup[0]])
        raise InputError(f"{a} and {b} have the same time {when:%Y-%m-%dT%H:%M}")
    return order


def check_same_grid(path: Path, grid: Grid, first: Grid) -> None:
    """Raise :class:`InputError` unless ``path``'s ``grid`` matches the ``first`` file's grid."""
    if not grid.matches(first):
        raise InputError(f"{path.name} is on {grid.describe()}, earlier files on {first.describe()}")


def history_line(action: str) -> str:
    """One CF ``history`` line: UTC timestamp, qpe version, what was done."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now} qpe {__version__}: {action}"


def append_history(previous: str | None, action: str) -> str:
    """``previous`` history with one more line."""
    line = history_line(action)
    return f"{previous}\n{line}" if previous else line


def file_list(paths: Sequence[Path], limit: int = 400) -> str:
    """Base names of the input files, comma-separated, shortened to ``limit`` characters."""
    text = ", ".join(p.name for p in paths)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(paths)} files)"


def progress_bar(items: Sequence, desc: str, enabled: bool) -> tqdm:
    """A tqdm bar over ``items`` (files), shown only when ``enabled`` and stderr is a terminal.

    Use it as a context manager so that the bar is closed (its line ended) when a file fails.
    """
    return tqdm(items, desc=desc, unit="file", disable=None if enabled else True)
