"""Radar sources by name, and which source a file comes from.

``opera`` (OPERA ODIM HDF5 composites, :func:`~qpe.data.readers.opera.read_radar`) and the national
networks ``knmi``, ``mch``, ``fmi`` (:mod:`qpe.data.readers.networks`). :func:`detect_source` tells
them apart by content (HDF5 with KNMI's ``geographic``/``overview`` groups or with ODIM's
``what``/``where``; a GIF; a gzip or a PGM) and, when the content cannot say (a damaged file), by the
file name.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import h5py
import xarray as xr

from qpe.data.readers.inputs import PathsLike, resolve_paths
from qpe.data.readers.networks import NETWORKS
from qpe.data.readers.registry import get_reader
from qpe.errors import InputError

#: Radar source name -> reader name in :data:`qpe.data.readers.registry.READERS`.
RADAR_SOURCES: Mapping[str, str] = MappingProxyType({
    "opera": "opera_hdf5",
    "knmi": "knmi_hdf5",
    "mch": "mch_gif",
    "fmi": "fmi_pgm",
})
#: Default target region of each source.
DEFAULT_REGIONS: Mapping[str, str] = MappingProxyType(
    {"opera": "france", **{name: net.region for name, net in NETWORKS.items()}}
)
#: What each source's files are called in messages.
SOURCE_FILES: Mapping[str, str] = MappingProxyType(
    {"opera": "OPERA HDF5 files", **{name: net.files for name, net in NETWORKS.items()}}
)

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_source(source: str) -> str:
    """``source`` in lower case; :class:`InputError` listing the known sources otherwise."""
    name = str(source).lower()
    if name not in RADAR_SOURCES:
        raise InputError(f"unknown radar source {source!r}; known sources: {', '.join(RADAR_SOURCES)}")
    return name


def _source_by_name(path: Path) -> str | None:
    for name, net in NETWORKS.items():
        if net.file_name.match(path.name):
            return name
    return "opera" if path.suffix.lower() in (".hdf", ".h5", ".hdf5") else None


def _hdf5_source(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as h5:
            if "geographic" in h5 and "overview" in h5:
                return "knmi"
            if "what" in h5 and "where" in h5:
                return "opera"
    except OSError:  # damaged: the name decides
        return None
    return None


def file_source(path: str | Path) -> str | None:
    """The radar source a file comes from (``opera``, ``knmi``, ``mch``, ``fmi``), or None if unknown."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return _source_by_name(path)
    found = None
    if head.startswith(_HDF5_MAGIC):
        found = _hdf5_source(path)
    elif head.startswith(b"GIF8"):
        found = "mch"
    elif head.startswith(b"P5"):
        found = "fmi"
    elif head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as f:
                found = "fmi" if f.read(2) == b"P5" else None
        except (OSError, EOFError):
            found = None
    return found or _source_by_name(path)


def detect_source(paths: Sequence[Path]) -> str:
    """The one radar source of ``paths``; files whose source is unknown are left to the reader.

    Raises
    ------
    InputError
        No file's source can be told, or the files come from several sources.
    """
    found = {path: file_source(path) for path in paths}
    counts = Counter(s for s in found.values() if s is not None)
    if not counts:
        first = next(iter(paths), "nothing")
        raise InputError(
            f"cannot tell which radar source {first} comes from (not an OPERA or KNMI HDF5, MeteoSwiss "
            f"GIF or FMI PGM file): give --source {'|'.join(RADAR_SOURCES)}"
        )
    if len(counts) > 1:
        listed = ", ".join(f"{name} {n} file{'s' * (n > 1)}" for name, n in sorted(counts.items()))
        raise InputError(
            f"the input files come from several radar sources ({listed}): read one source at a time")
    return next(iter(counts))


def read_radar_source(paths: PathsLike, source: str | None = None, **options) -> xr.Dataset:
    """Read radar files of one source (given, or told from the files) with its registered reader.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths.
    source : str, optional
        ``opera``, ``knmi``, ``mch`` or ``fmi``; by default :func:`detect_source`.
    **options
        The reader's options (``grid``, ``region``, ``pixel_km``, ``max_rate``, ...; ``zr`` and
        ``step_rule`` for the networks; ``min_quality`` for OPERA). Without ``grid`` or ``region``,
        the source's default region (:data:`DEFAULT_REGIONS`).

    Returns
    -------
    xarray.Dataset
        ``rain(time, y, x)`` mm/h at 15-minute steps in the paired layout (see the reader).
    """
    name = check_source(source) if source is not None else detect_source(
        resolve_paths(paths, "radar files"))
    if options.get("grid") is None and options.get("region") is None:
        options["region"] = DEFAULT_REGIONS[name]
    return get_reader(RADAR_SOURCES[name])(paths, **options)
