"""What every reader shares: its input files, its target grid, time stacking and provenance."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from qpe import __version__
from qpe.data.grid import Grid, get_region
from qpe.errors import InputError

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]

_GLOB_CHARS = set("*?[")


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
                raise InputError(f"no {what} match {text!r}")
            found.extend(Path(m) for m in matches)
        elif not os.path.exists(text):
            raise InputError(f"no such file: {text} (expected {what})")
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
    if not pixel_km > 0:
        raise InputError(f"pixel size must be positive, got {pixel_km} km")
    return get_region(region).grid(pixel_km * 1000.0)


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
