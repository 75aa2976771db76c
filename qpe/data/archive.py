"""A paired archive: months of 15-minute pairs in one chunked Zarr store, built in parallel, resumable.

Layout
    A Zarr (format 2) store in the paired layout (:mod:`qpe.data.paired`) whose ``time`` axis is every
    15-minute step of the period, plus ``archive_paired(time)`` (1 where the pair exists) and the IR
    normalisation. ``ir`` is chunked ``(1, channel, y, x)`` and ``rain`` ``(1, y, x)``: **one time step
    per chunk**, whole fields. A training sample reads T successive frames at a random time; with
    chunks of ``c`` times it decodes about ``c + T - 1`` frames for T used (c = 1: T; c = 8 and T = 4:
    11), so a chunk of one step wastes nothing and a bounded cache of recent chunks serves the
    overlapping windows of evaluation and validation, which read in time order. Chunks are stored raw
    by default (:data:`COMPRESSIONS`: ``none``), so that a read is a copy from the file into the sample,
    as fast as a copy from memory; ``lz4`` takes less disk (~0.6 of raw on synthetic data) and
    decodes every chunk (a streamed read ~0.65 of the in-memory rate, docs/data.md). The rule is in the
    store's ``time_chunk_rule`` attribute, the compression in its settings.
Blocks
    The period is cut into blocks (a day by default). Each block is read from its source, validated,
    written into its region of the store (``to_zarr(region=...)``) and then given a **completion
    record** (``<name>.blocks/block_NNNNN.json`` next to the store, written atomically): the times paired, the
    inputs missing or rejected with their reasons, and the block's IR sums for the normalisation. A
    block without a record is (re)done from scratch, so a build killed anywhere (``kill -9`` included)
    resumes with the blocks it had not finished; finished blocks are not recomputed. Blocks run as Dask
    tasks (:func:`qpe.dask_tasks.compute_tasks`: local threads, or a ``distributed`` cluster).
Finishing
    When every block has its record, ``archive_paired``, ``ir_mean`` and ``ir_std`` (combined from the
    blocks' sums, in block order) are written, the state becomes ``complete`` and the **manifest**
    (``<name>.manifest.json`` next to the store) lists every time that has no pair and every input
    rejected, each with its reason.
Reading
    :func:`qpe.data.paired.open_paired` opens a complete archive at its paired times only (an unfinished
    one is refused) with an ``archive_index(time)`` coordinate; values were validated block by block
    when built, so opening checks the layout only. :func:`streamed_arrays` gives training arrays that
    read chunk by chunk (:class:`StreamedVariable`: raw chunks straight into the sample, compressed ones
    through a cache of bounded size), so memory stays flat with the archive's length. Each block's
    record also keeps the SHA-256 of its values and a summary of its pairs: :func:`archive_summary`
    (``qpe data info``) and :func:`qpe.data.provenance.dataset_sha256` (training's data hash) of a whole
    archive read those records, not its chunks.
Sources
    :data:`ARCHIVE_SOURCES`: ``synthetic`` (the generator, one independent scenario per block) and
    ``files`` (SEVIRI files and radar files paired by :func:`qpe.data.pairing.pair`). A source says its
    grid and channels (:meth:`layout`) and reads the pairs of a block of times (:meth:`read_block`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.paired import (
    LAYOUT_VERSION,
    SEVIRI_CHANNELS,
    ir_attrs,
    rain_attrs,
    validate_paired,
)
from qpe.data.times import SEVIRI_STEP, parse_utc_time
from qpe.errors import DatasetError, InputError
from qpe.files import atomic_write, write_text

#: Version of the archive layout, in the store's attributes.
ARCHIVE_VERSION = 1
ARCHIVE_ATTR = "qpe_archive_version"
#: ``building`` until every block has its record, then ``complete``.
STATE_ATTR = "qpe_archive_state"
SETTINGS_ATTR = "qpe_archive_settings"
DIGEST_ATTR = "qpe_archive_digest"
#: Attribute of an opened archive: the store's absolute path (what :func:`streamed_arrays` reads).
PATH_ATTR = "qpe_archive_path"
#: 1 where the archive holds a pair, 0 where the manifest says why not.
PAIRED_VAR = "archive_paired"
#: Coordinate of an opened archive: each time's position in the store.
INDEX_COORD = "archive_index"
#: Times per chunk of ``ir`` and ``rain`` (see the module notes).
TIME_CHUNK = 1
#: Length of a block by default, hours (96 times).
DEFAULT_BLOCK_HOURS = 24
#: Decoded chunks a :class:`StreamedVariable` keeps, bytes at most.
STREAM_CACHE_BYTES = 128 * 2**20
#: How the chunks of ``ir``, ``rain`` (and ``rain_quality``) are stored (``qpe data build --compression``):
#: a numcodecs codec's settings, or None for raw chunk files (read straight into a sample; see the module
#: notes and docs/data.md for size against speed).
COMPRESSIONS: dict[str, dict | None] = {
    "lz4": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
    "none": None,
}
#: Compression of archives built before the choice existed (their settings do not name it).
_FIRST_COMPRESSION = "lz4"
DEFAULT_COMPRESSION = "none"


# -- period --------------------------------------------------------------------------------------------
def period_times(start: object, end: object) -> pd.DatetimeIndex:
    """Every 15-minute step from ``start`` to ``end`` (UTC), both included.

    An ``end`` given as a date alone (``2021-07-31``) means the whole of that day (to 23:45).

    Raises
    ------
    InputError
        A time that cannot be read, off the 15-minute steps, or an end before the start.
    """
    first = parse_utc_time(start, "start")
    last = parse_utc_time(end, "end")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(end).strip()):
        last = last + pd.Timedelta(days=1) - SEVIRI_STEP
    for name, value in (("start", first), ("end", last)):
        if value != value.floor(SEVIRI_STEP):
            raise InputError(f"{name} {value:%Y-%m-%dT%H:%M} is not on the 15-minute steps (:00, :15, :30, :45)")
    if last < first:
        raise InputError(f"end {last:%Y-%m-%dT%H:%M} is before start {first:%Y-%m-%dT%H:%M}")
    return pd.date_range(first, last, freq=SEVIRI_STEP)


def month_period(month: str) -> tuple[str, str]:
    """``("2021-07-01", "2021-07-31")`` for ``"2021-07"``: the start and (whole-day) end of a month."""
    if not re.fullmatch(r"\d{4}-\d{2}", str(month).strip()):
        raise InputError(f"month must be YYYY-MM, got {month!r}")
    first = pd.Timestamp(f"{month}-01")
    return f"{first:%Y-%m-%d}", f"{first + pd.offsets.MonthEnd(0):%Y-%m-%d}"


# -- what a source gives -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestRow:
    """A time without a pair, or an input left out, and why.

    Attributes
    ----------
    time : str
        ``YYYY-MM-DDTHH:MM`` (UTC) of the step concerned; empty for an input of no known time.
    status : str
        ``missing`` (an input is absent) or ``rejected`` (an input exists but could not be used).
    input : str
        The file or input concerned (``radar``, ``seviri`` or a file name).
    reason : str
        One line.
    """

    time: str
    status: str
    input: str
    reason: str


@dataclass
class BlockData:
    """What a source reads for a block: the pairs it found (a paired dataset, or None) and the rows of
    the manifest for what it could not pair (times of the block not in ``pairs`` get a row)."""

    pairs: xr.Dataset | None
    rows: list[ManifestRow] = field(default_factory=list)


@dataclass(frozen=True)
class ArchiveLayout:
    """The grid, channels and variables every block of an archive shares."""

    grid: Grid
    channels: tuple[str, ...]
    rain_quality: bool = False
    attrs: dict = field(default_factory=dict)


class ArchiveSource(Protocol):
    """A source of pairs for :func:`build_archive` (an entry of :data:`ARCHIVE_SOURCES`)."""

    name: ClassVar[str]

    def settings(self) -> dict: ...

    def layout(self) -> ArchiveLayout: ...

    def read_block(self, times: pd.DatetimeIndex) -> BlockData: ...


def _stamp(time: pd.Timestamp) -> str:
    return f"{pd.Timestamp(time):%Y-%m-%dT%H:%M}"


@dataclass(frozen=True)
class SyntheticSource:
    """The synthetic generator over a period: each block is one independent scenario.

    Block ``[t0, t1]`` is :func:`~qpe.data.synthetic.generate_paired` of ``config`` starting at ``t0``,
    as long as the block, with a seed drawn from (``config.seed``, ``t0``): the same day is the same
    data in any archive of the same settings, whatever its period. Its last step is left out (the rule
    of ``SynthConfig.scenario_hours``), so that no run of T frames spans two independent scenarios.
    """

    config: Any  # SynthConfig; ``hours``, ``start`` and ``seed`` are set per block
    name: ClassVar[str] = "synthetic"

    def settings(self) -> dict:
        from qpe.data.synthetic.generator import GENERATOR_VERSION

        return {"config": self.config.to_dict(), "generator": GENERATOR_VERSION}

    def layout(self) -> ArchiveLayout:
        from qpe.data.synthetic import synthetic_grid

        return ArchiveLayout(synthetic_grid(self.config), tuple(self.config.channels), False,
                             {"source": "qpe synthetic generator (one scenario per block)"})

    def read_block(self, times: pd.DatetimeIndex) -> BlockData:
        from qpe.data.synthetic import generate_paired

        hours = times.size * SEVIRI_STEP / pd.Timedelta(hours=1)
        seed = int(np.random.SeedSequence([self.config.seed, int(times[0].value // 10**9)]).generate_state(1)[0])
        if times.size < 2:
            return BlockData(None, [ManifestRow(_stamp(times[0]), "missing", "synthetic",
                                                "a block of one step has no frame: the last step of a scenario "
                                                "is left out")])
        config = self.config.replace(hours=hours, scenario_hours=hours, start=_stamp(times[0]), seed=seed)
        pairs = generate_paired(config)
        left_out = times.difference(pd.DatetimeIndex(pairs["time"].values))
        rows = [ManifestRow(_stamp(t), "missing", "synthetic",
                            "last step of an independent synthetic scenario, left out so that no run of "
                            "frames spans two") for t in left_out]
        return BlockData(pairs, rows)


#: A time in a file name: 8 digits of a date (19xx or 20xx), an optional ``T``, then HHMM.
_NAME_TIME = re.compile(r"((?:19|20)\d{6})T?(\d{4})")
#: Files whose name time lies this far around a block are read with it (SEVIRI's native files are named
#: after the end of their scan, ~12 min after the slot; radar mean rules reach 10 minutes back).
_FILE_MARGIN = (pd.Timedelta(minutes=30), pd.Timedelta(minutes=15))


def name_time(path: str | os.PathLike) -> pd.Timestamp | None:
    """The time in a file's name (``..._20180824180000.hdf``, ``...-201808241800-...``), or None."""
    found = _NAME_TIME.search(Path(path).name)
    if not found:
        return None
    try:
        return pd.Timestamp(f"{found.group(1)}T{found.group(2)}")
    except ValueError:
        return None


@dataclass(frozen=True)
class FileSource:
    """SEVIRI files and radar files, paired block by block on one grid.

    Each block reads the radar files and the SEVIRI files whose names hold a time from 30 minutes
    before its first step to 15 minutes after its last (files with no time in their name are read with
    every block), with :func:`~qpe.data.readers.read_radar_source` on the target grid and
    :func:`~qpe.data.readers.seviri.read_seviri` onto the radar's grid and times, and pairs them
    (:func:`~qpe.data.pairing.pair`). Files a reader skips (damaged) are rejected in the manifest with
    the reader's reason; a block whose inputs cannot be read at all has every time rejected with it.

    Parameters
    ----------
    seviri, radar : str
        Glob patterns of the files.
    radar_source : str, optional
        ``opera``, ``knmi``, ``mch``, ``fmi``; told from the files when None.
    region : str, optional
        Target region (at ``pixel_km``); with neither it nor ``grid_like``, the radar source's default.
    pixel_km : float
        Pixel size of the region grid, km.
    grid_like : str, optional
        A dataset whose grid is the target.
    channels : tuple of str
        IR channels kept (all SEVIRI IR channels by default; every slot must hold them).
    method : str
        SEVIRI resampling (``bilinear``, ``nearest``, ``auto``).
    parallax : bool
        Correct the parallax of cloud tops (level-1.5 files).
    tolerance_min : float
        Largest distance of a SEVIRI scan time from its radar time, min.
    """

    seviri: str
    radar: str
    radar_source: str | None = None
    region: str | None = None
    pixel_km: float = 2.0
    grid_like: str | None = None
    channels: tuple[str, ...] = tuple(SEVIRI_CHANNELS)
    method: str = "bilinear"
    parallax: bool = False
    tolerance_min: float = 7.5
    name: ClassVar[str] = "files"

    def settings(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items()}

    def _source(self) -> str:
        from qpe.data.readers.inputs import resolve_paths
        from qpe.data.readers.radar_sources import check_source, detect_source

        if self.radar_source is not None:
            return check_source(self.radar_source)
        return detect_source(resolve_paths(self.radar, "radar files"))

    def grid(self) -> Grid:
        from qpe.data.paired import open_paired
        from qpe.data.readers.inputs import resolve_target
        from qpe.data.readers.radar_sources import DEFAULT_REGIONS

        if self.grid_like is not None:
            if self.region is not None:
                raise InputError("give either a region or a dataset to take the grid from, not both")
            return Grid.from_dataset(open_paired(self.grid_like, validate=False))
        return resolve_target(None, self.region or DEFAULT_REGIONS[self._source()], self.pixel_km)

    def layout(self) -> ArchiveLayout:
        unknown = [c for c in self.channels if c not in SEVIRI_CHANNELS]
        if unknown:
            raise InputError(f"unknown SEVIRI channel(s) {', '.join(unknown)}; choose from {', '.join(SEVIRI_CHANNELS)}")
        source = self._source()
        return ArchiveLayout(self.grid(), tuple(self.channels), source == "opera",
                             {"source": f"SEVIRI files {self.seviri}; {source} radar files {self.radar}"})

    def _files(self, pattern: str, what: str, times: pd.DatetimeIndex) -> list[Path]:
        from qpe.data.readers.inputs import resolve_paths

        lo, hi = times[0] - _FILE_MARGIN[0], times[-1] + _FILE_MARGIN[1]
        chosen = []
        for path in resolve_paths(pattern, what):
            when = name_time(path)
            if when is None or lo <= when <= hi:
                chosen.append(path)
        return chosen

    def read_block(self, times: pd.DatetimeIndex) -> BlockData:
        from qpe.data.pairing import pair
        from qpe.data.readers.radar_sources import read_radar_source
        from qpe.data.readers.seviri import read_seviri

        radar_files = self._files(self.radar, "radar files", times)
        seviri_files = self._files(self.seviri, "SEVIRI files", times)
        if not radar_files:
            return BlockData(None, [ManifestRow(_stamp(t), "missing", "radar", "no radar file for this time")
                                    for t in times])
        if not seviri_files:
            return BlockData(None, [ManifestRow(_stamp(t), "missing", "seviri", "no SEVIRI file for this time")
                                    for t in times])
        grid = self.grid()
        rows: list[ManifestRow] = []
        try:
            with warnings.catch_warnings():  # skipped files are in the datasets' attributes, and so here
                warnings.simplefilter("ignore")
                rain = read_radar_source(radar_files, self.radar_source, grid=grid)
                rows += _skipped_rows(rain, radar_files)
                ir = read_seviri(seviri_files, grid, channels=list(self.channels), method=self.method,
                                 parallax=self.parallax, tolerance_min=self.tolerance_min)
                rows += _skipped_rows(ir, seviri_files)
                pairs = pair(ir, rain)
        except (InputError, DatasetError) as err:
            reason = " ".join(str(err).split())
            return BlockData(None, rows + [ManifestRow(_stamp(t), "rejected", "block", reason) for t in times])
        rain_times = pd.DatetimeIndex(rain["time"].values)
        ir_times = pd.DatetimeIndex(ir["time"].values)
        for t in times.difference(pd.DatetimeIndex(pairs["time"].values)):
            if t not in rain_times:
                rows.append(ManifestRow(_stamp(t), "missing", "radar", "no radar field at this time"))
            elif t not in ir_times:
                rows.append(ManifestRow(_stamp(t), "missing", "seviri", "no SEVIRI frame at this time"))
        return BlockData(pairs, rows)


def _skipped_rows(ds: xr.Dataset, files: Sequence[Path]) -> list[ManifestRow]:
    """A row per file a reader skipped (its ``skipped_files`` note: one reason per file, ``; ``-joined)."""
    note = ds.attrs.get("skipped_files")
    if not note:
        return []
    rows = []
    for reason in str(note).split("; "):
        named = next((p for p in files if p.name in reason), None)
        when = name_time(named) if named is not None else None
        rows.append(ManifestRow(_stamp(when) if when is not None else "", "rejected",
                                named.name if named is not None else "file", " ".join(reason.split())))
    return rows


#: The sources of :func:`build_archive`, by name (``qpe data build --source``).
ARCHIVE_SOURCES: dict[str, type] = {SyntheticSource.name: SyntheticSource, FileSource.name: FileSource}


# -- building --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveBuild:
    """What :func:`build_archive` did.

    Attributes
    ----------
    path, manifest : Path
        The store and its manifest.
    blocks, built : int
        Blocks of the period, and blocks built by this call (the others were done already).
    times, paired : int
        Steps of the period, and steps with a pair.
    rows : int
        Rows of the manifest.
    """

    path: Path
    manifest: Path
    blocks: int
    built: int
    times: int
    paired: int
    rows: int


def manifest_path(path: str | os.PathLike) -> Path:
    """``july.zarr`` -> ``july.manifest.json`` (next to the store)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.manifest.json")


def records_path(path: str | os.PathLike) -> Path:
    """``july.zarr`` -> ``july.blocks``: the folder of the completion records, next to the store."""
    path = Path(path)
    return path.with_name(f"{path.stem}.blocks")


def _record_path(path: Path, block: int) -> Path:
    return records_path(path) / f"block_{block:05d}.json"


def plan_blocks(times: pd.DatetimeIndex, block_hours: float) -> list[pd.DatetimeIndex]:
    """The period cut into blocks of ``block_hours`` (the last one may be shorter)."""
    steps = round(block_hours * pd.Timedelta(hours=1) / SEVIRI_STEP)
    if steps < 1 or steps * SEVIRI_STEP != pd.Timedelta(hours=block_hours):
        raise InputError(f"block length must be a whole number of 15-minute steps, got {block_hours:g} h")
    return [times[i : i + steps] for i in range(0, times.size, steps)]


def _settings(source: ArchiveSource, times: pd.DatetimeIndex, block_hours: float,
              compression: str = DEFAULT_COMPRESSION) -> dict:
    settings = {"source": source.name, "settings": source.settings(), "start": _stamp(times[0]),
                "end": _stamp(times[-1]), "block_hours": float(block_hours), "time_chunk": TIME_CHUNK,
                "archive_version": ARCHIVE_VERSION}
    if compression != _FIRST_COMPRESSION:  # the settings (and digest) of earlier archives stay as they were
        settings["compression"] = compression
    return settings


def _compression(settings: dict) -> str:
    return settings.get("compression", _FIRST_COMPRESSION)


def _digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _template(layout: ArchiveLayout, times: pd.DatetimeIndex, settings: dict) -> xr.Dataset:
    """The store's variables as lazy NaN arrays (only their metadata is written) and its attributes."""
    import dask.array as da
    import numcodecs

    grid, n, channels = layout.grid, times.size, list(layout.channels)
    coords: dict = {"time": ("time", times.values.astype("datetime64[ns]"), {"standard_name": "time"}),
                    **grid.coords(), GRID_MAPPING_NAME: grid.grid_mapping()}
    coords["channel"] = ("channel", np.asarray(channels, dtype=str))
    coords["wavelength"] = ("channel", np.array([SEVIRI_CHANNELS[c] for c in channels], dtype="float32"),
                            {"units": "um", "long_name": "central wavelength"})
    field = (grid.ny, grid.nx)

    def nan(shape, chunks):
        return da.full(shape, np.nan, dtype="float32", chunks=chunks)

    data = {
        "ir": (("time", "channel", "y", "x"), nan((n, len(channels), *field), (TIME_CHUNK, len(channels), *field)),
               ir_attrs()),
        "rain": (("time", "y", "x"), nan((n, *field), (TIME_CHUNK, *field)), rain_attrs()),
    }
    if layout.rain_quality:
        data["rain_quality"] = (("time", "y", "x"), nan((n, *field), (TIME_CHUNK, *field)),
                                {"units": "1", "long_name": "radar quality index", "grid_mapping": GRID_MAPPING_NAME})
    ds = xr.Dataset(data, coords=coords)
    codec = COMPRESSIONS[_compression(settings)]
    for name in data:
        ds[name].encoding["compressors"] = None if codec is None else numcodecs.get_codec(codec)
    ds.attrs.update({"Conventions": "CF-1.8", "qpe_layout_version": LAYOUT_VERSION, **layout.attrs,
                     ARCHIVE_ATTR: ARCHIVE_VERSION, STATE_ATTR: "building",
                     SETTINGS_ATTR: json.dumps(settings, sort_keys=True, default=str),
                     DIGEST_ATTR: _digest(settings), "time_chunk_rule": _TIME_CHUNK_RULE,
                     "qpe_archive_compression": _compression(settings)})
    return ds


_TIME_CHUNK_RULE = ("one time step per chunk (whole fields, all channels): a training sample reads T successive "
                    "frames at a random time and decodes no frame it does not use")


def _open_or_create(path: Path, source: ArchiveSource, times: pd.DatetimeIndex, settings: dict) -> None:
    """Create the store (atomically) or check that the one there was started with these settings."""
    if path.exists():
        try:
            attrs = json.loads((path / ".zattrs").read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{path} exists and is not a qpe archive ({type(err).__name__}); choose another "
                             "--out or remove it") from None
        if attrs.get(ARCHIVE_ATTR) is None:
            raise InputError(f"{path} exists and is not a qpe archive; choose another --out or remove it")
        if attrs.get(DIGEST_ATTR) != _digest(settings):
            raise InputError(f"{path} is an archive of other settings (period, source, block length or "
                             "compression): choose another --out, or remove it to rebuild")
        return
    template = _template(source.layout(), times, settings)
    records = records_path(path)
    if records.exists():  # records of a store that is gone: not this store's blocks
        shutil.rmtree(records)
    atomic_write(path, lambda tmp: template.to_zarr(tmp, mode="w", compute=False, zarr_format=2,
                                                    consolidated=True))
    records.mkdir()


def build_block(path: str | os.PathLike, source: ArchiveSource, block: int, first: int,
                times: pd.DatetimeIndex, run: str) -> dict:
    """Read one block from its source, write it into its region of the store, then its record.

    Parameters
    ----------
    path : path-like
        The store (created by :func:`build_archive`).
    source : ArchiveSource
        Where the pairs come from.
    block, first : int
        The block's number and the store position of its first time.
    times : pandas.DatetimeIndex
        The block's steps.
    run : str
        Identifier of the build call (in the record: which call built the block).

    Returns
    -------
    dict
        The completion record.
    """
    path = Path(path)
    store = xr.open_zarr(path, chunks=None, consolidated=True)
    names = [str(c) for c in store["channel"].values]
    shape = (store.sizes["y"], store.sizes["x"])
    has_quality = "rain_quality" in store.data_vars
    store.close()
    read = source.read_block(times)
    ir = np.full((times.size, len(names), *shape), np.nan, dtype="float32")
    rain = np.full((times.size, *shape), np.nan, dtype="float32")
    quality = np.full((times.size, *shape), np.nan, dtype="float32") if has_quality else None
    paired = np.zeros(times.size, dtype=bool)
    if read.pairs is not None:
        pairs = validate_paired(read.pairs, require=("ir", "rain"))
        if (pairs.sizes["y"], pairs.sizes["x"]) != shape:
            raise DatasetError(f"block {block} is on a {pairs.sizes['y']}x{pairs.sizes['x']} grid, the archive "
                               f"on {shape[0]}x{shape[1]}")
        positions = times.get_indexer(pd.DatetimeIndex(pairs["time"].values))
        keep = positions >= 0
        pairs, positions = pairs.isel(time=np.flatnonzero(keep)), positions[keep]
        ir[positions] = pairs["ir"].sel(channel=names).values
        rain[positions] = pairs["rain"].values
        if quality is not None and "rain_quality" in pairs:
            quality[positions] = pairs["rain_quality"].values
        paired[positions] = True
    data = {"ir": (("time", "channel", "y", "x"), ir), "rain": (("time", "y", "x"), rain)}
    if quality is not None:
        data["rain_quality"] = (("time", "y", "x"), quality)
    xr.Dataset(data).to_zarr(path, region={"time": slice(first, first + times.size)}, zarr_format=2,
                             consolidated=False)
    frames = np.where(np.isfinite(ir[paired]), ir[paired], 0.0).astype("float64")
    counts = np.isfinite(ir[paired]).sum(axis=(0, 2, 3))
    explained = {row.time for row in read.rows}
    rows = list(read.rows) + [ManifestRow(_stamp(t), "missing", source.name, "no pair at this time")
                              for t, ok in zip(times, paired) if not ok and _stamp(t) not in explained]
    record = {
        "block": block, "first": first, "times": int(times.size), "start": _stamp(times[0]),
        "paired": np.flatnonzero(paired).tolist(), "rows": [dataclasses.asdict(r) for r in rows],
        "ir_sum": frames.sum(axis=(0, 2, 3)).tolist(), "ir_sum_sq": (frames**2).sum(axis=(0, 2, 3)).tolist(),
        "ir_count": counts.tolist(), "run": run,
        "sha256": {name: hashlib.sha256(np.ascontiguousarray(values).data).hexdigest()
                   for name, (_, values) in data.items()},
        "summary": _block_summary(ir[paired], rain[paired]),
    }
    write_text(_record_path(path, block), json.dumps(record))
    return record


#: Positive rain values a block's record keeps at most (every k-th one), for ``qpe data info``.
RAIN_SAMPLE_SIZE = 2000


def _block_summary(ir: np.ndarray, rain: np.ndarray) -> dict:
    """What ``qpe data info`` says of a block's pairs (``ir`` (time, channel, y, x) K, ``rain`` (time, y,
    x) mm/h), so that it reads the records, not the chunks: IR extremes per channel, rain counts, sum,
    maximum, times without radar and a sample of the positive rain rates."""
    known = np.isfinite(ir)
    low = np.min(np.where(known, ir, np.inf), axis=(0, 2, 3), initial=np.inf)
    high = np.max(np.where(known, ir, -np.inf), axis=(0, 2, 3), initial=-np.inf)
    valid = np.isfinite(rain)
    values = rain[valid]
    positive = values[values > 0]
    keep = max(1, -(-positive.size // RAIN_SAMPLE_SIZE))
    return {
        "ir_min": [float(v) if np.isfinite(v) else None for v in low],
        "ir_max": [float(v) if np.isfinite(v) else None for v in high],
        "rain_pixels": int(rain.size), "rain_valid": int(values.size), "rain_wet": int((values > 0.1).sum()),
        "rain_sum": float(values.sum(dtype="float64")), "rain_max": float(values.max()) if values.size else None,
        "rain_absent": np.flatnonzero(~valid.any(axis=(1, 2))).tolist(),
        "rain_positive_sample": positive[::keep].tolist(), "rain_positive_stride": keep,
    }


def read_records(path: str | os.PathLike) -> dict[int, dict]:
    """The completion records of a store's finished blocks, by block number."""
    records = {}
    for file in sorted(records_path(path).glob("block_*.json")):
        try:
            record = json.loads(file.read_text())
        except ValueError:  # cannot happen with atomic writes; a damaged record means: redo the block
            continue
        records[int(record["block"])] = record
    return records


def build_archive(
    path: str | os.PathLike,
    source: ArchiveSource,
    start: object,
    end: object,
    *,
    block_hours: float = DEFAULT_BLOCK_HOURS,
    scheduler=None,
    workers: int | None = None,
    progress: bool = False,
    compression: str = DEFAULT_COMPRESSION,
) -> ArchiveBuild:
    """Build (or finish building) the paired archive of a period from a source.

    Parameters
    ----------
    path : path-like
        The store, ``*.zarr``. An unfinished store of the same settings is resumed: only blocks without
        a completion record are built.
    source : ArchiveSource
        An instance of a class of :data:`ARCHIVE_SOURCES`.
    start, end : datetime-like or str
        The period, UTC, both included (:func:`period_times`).
    block_hours : float
        Length of a block (the unit of work and of resumption), hours; a day by default.
    scheduler : str or distributed.Client, optional
        A Dask ``distributed`` cluster; local threads when None.
    workers : int, optional
        Threads of the local scheduler.
    progress : bool
        Show a bar over blocks.
    compression : str
        A name of :data:`COMPRESSIONS`: ``lz4`` (Blosc LZ4 with byte shuffle) or ``none`` (raw chunks).

    Raises
    ------
    InputError
        A bad period or compression, a path that is not ``.zarr``, or a store of other settings at ``path``.
    """
    path = Path(path)
    if path.suffix != ".zarr":
        raise InputError(f"an archive is a Zarr store: give a .zarr path, got {path.name}")
    if compression not in COMPRESSIONS:
        raise InputError(f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
    times = period_times(start, end)
    blocks = plan_blocks(times, block_hours)
    settings = _settings(source, times, block_hours, compression)
    _open_or_create(path, source, times, settings)
    done = read_records(path)
    firsts = np.cumsum([0] + [b.size for b in blocks[:-1]])
    run = uuid.uuid4().hex[:12]
    todo = [(str(path), source, k, int(firsts[k]), blocks[k], run) for k in range(len(blocks)) if k not in done]
    for record in compute_blocks(todo, scheduler, workers, progress):
        done[int(record["block"])] = record
    return finish_archive(path, [done[k] for k in range(len(blocks))], times, run)


def compute_blocks(todo: list[tuple], scheduler, workers: int | None, progress: bool) -> list[dict]:
    """:func:`build_block` of each set of arguments, on Dask."""
    from qpe.dask_tasks import compute_tasks

    return compute_tasks(build_block, todo, scheduler=scheduler, workers=workers, progress=progress,
                         desc="archive blocks", unit="block")


def finish_archive(path: Path, records: list[dict], times: pd.DatetimeIndex, run: str = "") -> ArchiveBuild:
    """Write ``archive_paired`` and the normalisation, mark the store complete, write the manifest."""
    import zarr

    paired = np.zeros(times.size, dtype="uint8")
    for record in records:
        paired[record["first"] + np.asarray(record["paired"], dtype=int)] = 1
    total = np.sum([r["ir_sum"] for r in records], axis=0)
    total_sq = np.sum([r["ir_sum_sq"] for r in records], axis=0)
    count = np.sum([r["ir_count"] for r in records], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    attrs = {"units": "K", "comment": "computed over all paired times and pixels of this archive"}
    kept = json.loads((path / ".zattrs").read_text())  # appending variables rewrites the store's attributes
    xr.Dataset({
        PAIRED_VAR: ("time", paired, {"long_name": "1 where the archive holds a pair (see the manifest)"}),
        "ir_mean": ("channel", mean, {**attrs, "long_name": "IR mean"}),
        "ir_std": ("channel", std, {**attrs, "long_name": "IR std"}),
    }, attrs=kept).to_zarr(path, mode="a", zarr_format=2, consolidated=False)
    rows = [row for record in records for row in record["rows"]]
    rows.sort(key=lambda r: (r["time"], r["input"]))
    manifest = manifest_path(path)
    write_text(manifest, json.dumps({
        "archive": path.name, "start": _stamp(times[0]), "end": _stamp(times[-1]), "times": int(times.size),
        "paired": int(paired.sum()), "blocks": len(records),
        "columns": ["time", "status", "input", "reason"], "rows": rows,
    }, indent=1))
    group = zarr.open_group(str(path), mode="r+", zarr_format=2)
    group.attrs.update({STATE_ATTR: "complete", "archive_paired_times": int(paired.sum())})
    zarr.consolidate_metadata(str(path))
    return ArchiveBuild(path, manifest, len(records), sum(1 for r in records if r["run"] == run), int(times.size),
                        int(paired.sum()), len(rows))


# -- reading -----------------------------------------------------------------------------------------------
def archive_view(ds: xr.Dataset, path: str | os.PathLike) -> xr.Dataset:
    """An opened store as the paired dataset it holds: a complete archive at its paired times (lazy), with
    :data:`INDEX_COORD` and :data:`PATH_ATTR`; any other dataset unchanged.

    Raises
    ------
    DatasetError
        An archive still being built, or one without any pair.
    """
    state = ds.attrs.get(STATE_ATTR)
    if state is None or (state == "complete" and PAIRED_VAR not in ds.variables):
        return ds  # not an archive (or a copy of one's pairs)
    if state != "complete":
        done, total = len(read_records(path)), _block_count(ds)
        raise DatasetError(f"{path} is an archive still being built ({done} of {total} blocks done): run the "
                           "same qpe data build again to finish it")
    index = np.flatnonzero(np.asarray(ds[PAIRED_VAR].values, dtype=bool))
    if index.size == 0:
        raise DatasetError(f"archive {path} holds no pair; its manifest {manifest_path(path).name} says why")
    out = ds.drop_vars(PAIRED_VAR).isel(time=index).assign_coords({INDEX_COORD: ("time", index)})
    out.attrs[PATH_ATTR] = str(Path(path).resolve())
    return out


def _block_count(ds: xr.Dataset) -> int:
    settings = json.loads(ds.attrs.get(SETTINGS_ATTR, "{}"))
    steps = round(float(settings.get("block_hours", DEFAULT_BLOCK_HOURS)) * 4)
    return -(-ds.sizes["time"] // max(steps, 1))


def validate_view(ds: xr.Dataset, require: Sequence[str] = ()) -> xr.Dataset:
    """:func:`~qpe.data.paired.validate_paired` of a dataset; of an opened archive, its layout on its first
    time only (its values were validated block by block when it was built; a month would take minutes)."""
    if is_archive(ds):
        validate_paired(ds.isel(time=[0]), require)
        return ds
    return validate_paired(ds, require)


def is_archive(ds: xr.Dataset) -> bool:
    """Whether ``ds`` was opened from a complete archive (and so streams, see :func:`streamed_arrays`)."""
    return PATH_ATTR in ds.attrs and INDEX_COORD in ds.coords


def view_records(ds: xr.Dataset) -> list[dict] | None:
    """The completion records, in block order, of the archive ``ds`` was opened from, when ``ds`` is all
    of it (every paired time, the whole grid, every channel in stored order) and every record has what
    was added to records later (values' SHA-256 and summary); None otherwise. Reads no chunk."""
    if not is_archive(ds):
        return None
    store = Path(ds.attrs[PATH_ATTR])
    settings = json.loads(ds.attrs.get(SETTINGS_ATTR, "{}"))
    try:
        blocks = len(plan_blocks(period_times(settings["start"], settings["end"]), settings["block_hours"]))
        meta = json.loads((store / "rain" / ".zarray").read_text())
    except (KeyError, OSError, ValueError, InputError):
        return None
    found = read_records(store)
    records = [found.get(k) for k in range(blocks)]
    if any(r is None or "sha256" not in r or "summary" not in r for r in records):
        return None
    paired = np.concatenate([r["first"] + np.asarray(r["paired"], dtype="int64") for r in records])
    if tuple(meta["shape"][1:]) != (ds.sizes["y"], ds.sizes["x"]) or not np.array_equal(
            paired, np.asarray(ds[INDEX_COORD].values)):
        return None
    if "channel" in ds.coords:
        with xr.open_zarr(store, chunks=None) as opened:
            if [str(c) for c in opened["channel"].values] != [str(c) for c in ds["channel"].values]:
                return None
    return records


def archive_summary(ds: xr.Dataset) -> dict | None:
    """:func:`~qpe.data.paired.summarize` of a whole opened archive from its completion records alone (no
    chunk is read, so memory and time do not grow with its length); None when :func:`view_records` has
    none (then summarise it as any dataset).

    The IR minimum, mean and maximum per channel and the rain coverage, wet fraction, mean and maximum
    are exact (over the paired times, as ``summarize``); the wet-pixel percentiles and the unit check
    come from a sample of the positive rain rates (:data:`RAIN_SAMPLE_SIZE` per block), said in
    ``rain.percentiles_from``.
    """
    from qpe.data.paired import rain_problems, summarize_layout

    records = view_records(ds)
    if records is None:
        return None
    parts = [r["summary"] for r in records]
    info = summarize_layout(ds)
    if "ir" in ds.data_vars:
        count = np.sum([r["ir_count"] for r in records], axis=0)
        total = np.sum([r["ir_sum"] for r in records], axis=0)
        info["channels"] = {}
        for k, channel in enumerate(str(c) for c in ds["channel"].values):
            lows = [p["ir_min"][k] for p in parts if p["ir_min"][k] is not None]
            highs = [p["ir_max"][k] for p in parts if p["ir_max"][k] is not None]
            info["channels"][channel] = {
                "min_K": round(min(lows), 1) if lows else float("nan"),
                "mean_K": round(float(total[k] / count[k]), 1) if count[k] else float("nan"),
                "max_K": round(max(highs), 1) if highs else float("nan"),
            }
    if "rain" in ds.data_vars:
        valid = sum(p["rain_valid"] for p in parts)
        wet = sum(p["rain_wet"] for p in parts)
        sample = np.concatenate([np.asarray(p["rain_positive_sample"], dtype="float64") for p in parts])
        stride = np.concatenate([np.full(len(p["rain_positive_sample"]), p["rain_positive_stride"]) for p in parts])
        wet_sample, wet_weight = sample[sample > 0.1], stride[sample > 0.1]  # a value stands for ``stride``
        highs = [p["rain_max"] for p in parts if p["rain_max"] is not None]

        def wet_percentile(q: float) -> float | None:
            if not wet_sample.size:
                return None
            return round(float(np.percentile(wet_sample, q, weights=wet_weight, method="inverted_cdf")), 3)

        info["rain"] = {
            "coverage": round(valid / max(sum(p["rain_pixels"] for p in parts), 1), 4),
            "wet_fraction_0.1": round(wet / max(valid, 1), 4),
            "mean_mm_h": round(sum(p["rain_sum"] for p in parts) / valid, 4) if valid else None,
            "wet_p50_mm_h": wet_percentile(50), "wet_p90_mm_h": wet_percentile(90),
            "wet_p99_mm_h": wet_percentile(99),
            "max_mm_h": round(max(highs), 2) if highs else None,
            "percentiles_from": f"a sample of {wet_sample.size} of the {wet} wet pixels (the completion records)",
        }
        present = np.ones(ds.sizes["time"], dtype=bool)
        offset = 0
        for record, part in zip(records, parts):  # a block's absent times count among its paired ones
            present[offset + np.asarray(part["rain_absent"], dtype=int)] = False
            offset += len(record["paired"])
        info["problems"] = rain_problems(pd.DatetimeIndex(ds["time"].values), present, sample,
                                         str(ds["rain"].attrs.get("units", "mm/h")).strip())
    else:
        info["problems"] = []
    return info


class StreamedVariable:
    """One ``(time, ...)`` variable of an archive, read a chunk at a time through a bounded cache.

    Reads the store's chunk files directly (Zarr format 2: one file per chunk, decoded with its
    numcodecs compressor): whole fields, so indexing ``[times, ..., rows, cols]`` decodes each time's
    chunk once and keeps the most recent ones up to ``cache_bytes``. Raw chunks (compression ``none``)
    are not cached: each read goes from the file (the system's page cache) straight into the array
    returned, or through one reused buffer when only a window of the field is wanted. Supports the indexing
    :class:`~qpe.data.samples.PairedSamples` does: an int, a slice or an int array of time positions
    first, then any basic index of the remaining axes; returns a new NumPy array as NumPy would.
    :meth:`prefetch` decodes the chunks of many times at once on threads (the file reads and the
    decompression release the GIL), what a batch of training samples needs.

    Parameters
    ----------
    store : path-like
        The archive.
    name : str
        ``ir``, ``rain`` or ``rain_quality``.
    index : numpy.ndarray
        Store position of each time of the opened dataset (:data:`INDEX_COORD`).
    channels : numpy.ndarray, optional
        Positions of the channels kept (``ir`` only), in the order wanted.
    cache_bytes : int
        Largest size of the decoded chunks kept.
    """

    def __init__(self, store: str | os.PathLike, name: str, index: np.ndarray,
                 channels: np.ndarray | None = None, cache_bytes: int = STREAM_CACHE_BYTES) -> None:
        import numcodecs

        self.folder = Path(store) / name
        meta = json.loads((self.folder / ".zarray").read_text())
        shape, chunks = tuple(meta["shape"]), tuple(meta["chunks"])
        if meta.get("zarr_format") != 2 or meta.get("order", "C") != "C" or chunks[1:] != shape[1:]:
            raise DatasetError(f"{self.folder} is not chunked as an archive (whole fields per chunk)")
        self.codec = numcodecs.get_codec(meta["compressor"]) if meta.get("compressor") else None
        self.filters = [numcodecs.get_codec(f) for f in meta.get("filters") or []]
        self.separator = meta.get("dimension_separator", ".")
        self.dtype = np.dtype(meta["dtype"])
        fill = meta.get("fill_value")
        self.fill = np.nan if fill in ("NaN", None) else fill
        self.chunk_shape, self.ndim = chunks, len(shape)
        self.index = np.asarray(index, dtype="int64")
        field_shape = list(shape[1:])
        if channels is not None and not np.array_equal(channels, np.arange(shape[1])):
            self.channels: np.ndarray | None = np.asarray(channels, dtype=int)
            field_shape[0] = self.channels.size
        else:  # all channels in stored order: the decoded chunk as it is, no copy
            self.channels = None
        self.shape = (self.index.size, *field_shape)
        self.chunk_bytes = int(np.prod(chunks)) * self.dtype.itemsize  # decoded, at most
        self.cache_bytes = cache_bytes
        self.raw = self.codec is None and not self.filters and chunks[0] == 1
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached = 0
        self._buffers = threading.local()  # per thread: a raw chunk of which a window is read

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:  # worker processes start with an empty cache
        state = dict(self.__dict__)
        state["_cache"], state["_cached"], state["_buffers"] = OrderedDict(), 0, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._buffers = threading.local()

    @property
    def cached_chunks(self) -> list[int]:
        """Store chunk numbers now in the cache, least recently used first."""
        return list(self._cache)

    @property
    def cached_bytes(self) -> int:
        return self._cached

    def _file(self, chunk: int) -> Path:
        return self.folder / self.separator.join([str(chunk)] + ["0"] * (self.ndim - 1))

    def _decode(self, chunk: int) -> np.ndarray:
        """The chunk's values, channels selected (a new array; touches no state, so threads may run it)."""
        try:
            raw = self._file(chunk).read_bytes()
        except FileNotFoundError:
            values = np.full(self.chunk_shape, self.fill, dtype=self.dtype)
        else:
            if self.codec is not None and not self.filters:
                values = np.empty(self.chunk_shape, dtype=self.dtype)
                self.codec.decode(raw, out=values)
            else:
                data = self.codec.decode(raw) if self.codec is not None else raw
                for codec in reversed(self.filters):
                    data = codec.decode(data)
                values = np.frombuffer(data, dtype=self.dtype).reshape(self.chunk_shape)
        values = values[:, self.channels] if self.channels is not None else values
        values.flags.writeable = False  # cached: shared by every read of its times
        return values

    def _store(self, chunk: int, values: np.ndarray) -> None:
        self._cache[chunk] = values
        self._cached += values.nbytes
        while self._cached > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.nbytes

    def _chunk(self, chunk: int) -> np.ndarray:
        if chunk in self._cache:
            self._cache.move_to_end(chunk)
            return self._cache[chunk]
        values = self._decode(chunk)
        self._store(chunk, values)
        return values

    def chunks_of(self, positions: np.ndarray) -> np.ndarray:
        """Store chunk numbers holding the given time positions of the opened dataset, each once, in order."""
        stored = self.index[np.asarray(positions, dtype=int)]
        return np.unique(stored // self.chunk_shape[0])

    def prefetch(self, positions: np.ndarray, pool=None) -> None:
        """Decode the chunks of ``positions`` not in the cache, on ``pool`` (a
        :class:`concurrent.futures.Executor`) when given, and cache them (as many as the cache holds).

        The cache itself changes on the calling thread only.
        """
        if self.raw:  # nothing to decode: each read goes from the file
            return
        missing = [int(c) for c in self.chunks_of(positions) if int(c) not in self._cache]
        missing = missing[: max(1, self.cache_bytes // max(self.chunk_bytes, 1))]
        decoded = pool.map(self._decode, missing) if pool is not None and len(missing) > 1 else map(
            self._decode, missing)
        for chunk, values in zip(missing, decoded):
            self._store(chunk, values)

    def field(self, position: int) -> np.ndarray:
        """The whole field of time ``position`` of the opened dataset (read-only view of a cached chunk)."""
        stored = int(self.index[position])
        step = self.chunk_shape[0]
        return self._chunk(stored // step)[stored % step]

    def _read_raw(self, position: int, rest: tuple, out: np.ndarray) -> None:
        """``[position, *rest]`` of a raw store into ``out``: the chunk file read straight into ``out`` when
        that is the whole field, else into this thread's reused buffer and the window copied out of it.
        Touches no shared state: threads may read at once."""
        whole = self.channels is None and out.flags.c_contiguous and all(
            isinstance(r, slice) and r.indices(n) == (0, n, 1) for r, n in zip(rest, self.shape[1:]))
        if whole:
            target = out
        else:
            target = getattr(self._buffers, "chunk", None)
            if target is None:
                target = self._buffers.chunk = np.empty(self.chunk_shape[1:], dtype=self.dtype)
        file = self._file(int(self.index[position]))
        try:
            with open(file, "rb", buffering=0) as f:
                read = f.readinto(memoryview(target).cast("B"))
        except FileNotFoundError:  # a chunk never written holds the fill value
            out[...] = self.fill
            return
        if read != target.nbytes:
            raise DatasetError(f"{file} holds {read} bytes, not the {target.nbytes} of a raw chunk: a damaged archive")
        if not whole:
            out[...] = (target if self.channels is None else target[self.channels])[rest]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        positions = np.arange(self.shape[0])[key[0]]
        rest = key[1:]
        if self.raw:
            shape = np.broadcast_to(np.empty((), dtype=self.dtype), self.shape[1:])[rest].shape
            out = np.empty((*positions.shape, *shape), dtype=self.dtype)
            fields = out.reshape(-1, *shape)  # a view, one field per position
            for k, position in enumerate(positions.ravel()):
                self._read_raw(int(position), rest, fields[k : k + 1].reshape(shape))
            return out
        if positions.ndim == 0:
            return np.array(self.field(int(positions))[rest])
        if positions.size == 0:
            return np.empty((0, *np.empty(self.shape[1:], dtype=self.dtype)[rest].shape), dtype=self.dtype)
        first = self.field(int(positions[0]))[rest]
        out = np.empty((positions.size, *first.shape), dtype=self.dtype)
        out[0] = first
        for k in range(1, positions.size):
            out[k] = self.field(int(positions[k]))[rest]
        return out


def streamed_arrays(ds: xr.Dataset, channels: Sequence[str],
                    cache_bytes: int = STREAM_CACHE_BYTES) -> tuple[StreamedVariable, StreamedVariable] | None:
    """``(ir, rain)`` of an opened archive as :class:`StreamedVariable` (``ir`` with ``channels`` in that
    order), or None for a dataset that is not a whole-grid view of an archive (then read it as usual).

    The IR gets three quarters of ``cache_bytes``, the rain the rest.
    """
    if not is_archive(ds):
        return None
    store = Path(ds.attrs[PATH_ATTR])
    try:
        meta = json.loads((store / "rain" / ".zarray").read_text())
    except (OSError, ValueError):
        return None
    if tuple(meta["shape"][1:]) != (ds.sizes["y"], ds.sizes["x"]):
        return None  # a spatial subset: xarray's lazy reads
    with xr.open_zarr(store, chunks=None) as opened:
        stored = [str(c) for c in opened["channel"].values]
    positions = np.array([stored.index(c) for c in channels], dtype=int)
    index = np.asarray(ds[INDEX_COORD].values, dtype="int64")
    return (StreamedVariable(store, "ir", index, positions, cache_bytes * 3 // 4),
            StreamedVariable(store, "rain", index, None, cache_bytes // 4))
