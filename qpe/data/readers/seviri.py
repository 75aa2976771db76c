"""SEVIRI brightness temperatures from CF NetCDF or Zarr (satpy's ``cf`` writer output) -> ``ir``.

What satpy's CF writer (``scene.save_datasets(writer="cf")``) produces, and this reader expects:
one variable per channel named after it (``IR_108``, ``WV_062``, ...; dims ``(y, x)`` or
``(time, y, x)``), ``units = "K"``, ``standard_name = "toa_brightness_temperature"``, projected
``x``/``y`` coordinates in metres (geostationary for native SEVIRI, any projection after resampling)
with a CF grid-mapping variable, and the time as a ``time`` coordinate or a ``start_time`` attribute.
Longitude/latitude arrays, visible channels and other variables are ignored. satpy itself is not
needed to read these files (it stays an optional extra for native/HRIT level-1.5 files).

Time
    The ``time`` coordinate when present, else ``start_time`` (of the variable, then of the file).
    For a full-disk scan ``start_time`` is the start of the repeat cycle (e.g. 18:00:09 for the
    18:00 slot); :func:`qpe.data.pairing.pair` matches it to radar times within a tolerance.
Regridding
    Bilinear by default from the source grid onto the target (geostationary -> LAEA), exact when the
    source is already on (a super-grid of) the target.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import IR_UNITS, SEVIRI_CHANNELS, make_paired_dataset
from qpe.data.readers.inputs import (
    PathsLike,
    SkippedFile,
    append_history,
    check_time_order,
    file_list,
    progress_bar,
    read_or_skip,
    report_skipped,
    resolve_paths,
    resolve_target,
)
from qpe.data.regrid import Method, Regridder
from qpe.data.times import utc_naive
from qpe.errors import DatasetError, InputError

BT_STANDARD_NAME = "toa_brightness_temperature"
_TIME_ATTRS = ("start_time", "nominal_start_time", "time_coverage_start")


def open_cf(path: str | os.PathLike) -> xr.Dataset:
    """Open a CF NetCDF file or a Zarr store lazily; :class:`InputError` when it is neither."""
    path = Path(path)
    try:
        if path.is_dir() or path.suffix == ".zarr":
            return xr.open_zarr(path, chunks=None)
        return xr.open_dataset(path, engine="netcdf4", chunks=None)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(
            f"{path} is not a readable CF NetCDF/Zarr file ({type(err).__name__}: {err})"
        ) from None


def _channel_names(ds: xr.Dataset, path: Path) -> list[str]:
    names = [str(n) for n in ds.data_vars if str(n) in SEVIRI_CHANNELS]
    if not names:
        raise InputError(
            f"{path} holds no SEVIRI IR channel variable "
            f"(expected names such as {', '.join(SEVIRI_CHANNELS)})"
        )
    for name in names:
        var = ds[name]
        units = var.attrs.get("units")
        if units is None or str(units).strip() not in IR_UNITS:
            raise DatasetError(
                f"{path}: channel {name} is in {units!r}; expected brightness temperature in K"
            )
        standard_name = var.attrs.get("standard_name", BT_STANDARD_NAME)
        if standard_name != BT_STANDARD_NAME:
            raise DatasetError(
                f"{path}: channel {name} is {standard_name!r}, not {BT_STANDARD_NAME} "
                "(calibrate to brightness temperature)"
            )
        if var.dims not in (("y", "x"), ("time", "y", "x")):
            raise DatasetError(f"{path}: channel {name} has dims {var.dims}; expected (y, x) or (time, y, x)")
    return names


def _times(ds: xr.Dataset, name: str, path: Path) -> pd.DatetimeIndex:
    if "time" in ds.coords:
        values = np.atleast_1d(ds["time"].values)
    else:
        text = next(
            (src.attrs[a] for src in (ds[name], ds) for a in _TIME_ATTRS if src.attrs.get(a)), None
        )
        if text is None:
            raise InputError(f"{path} has no time: no 'time' coordinate and no start_time attribute")
        values = [str(text)]
    try:
        times = pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: cannot read its time {values!r} ({err})") from None
    return utc_naive(times)


def _source_grid(ds: xr.Dataset, names: list[str], path: Path) -> tuple[Grid, xr.Dataset]:
    """The grid of the channels, with rows flipped north-up when the file stores them south-up."""
    if "x" not in ds.coords or "y" not in ds.coords:
        raise InputError(f"{path} has no projected x/y coordinates (save an area-based satpy Scene)")
    if ds.sizes["y"] > 1 and ds["y"].values[1] > ds["y"].values[0]:
        ds = ds.isel(y=slice(None, None, -1))
    mapping = ds[names[0]].attrs.get("grid_mapping") or ds[names[0]].encoding.get("grid_mapping")
    keep = names + ([mapping] if mapping in ds.data_vars else [])
    try:
        return Grid.from_dataset(ds[keep]), ds
    except DatasetError as err:
        raise DatasetError(f"{path}: {err}") from None


def _read_file(
    path: Path, wanted: list[str] | None
) -> tuple[pd.DatetimeIndex, np.ndarray, Grid, list[str], str]:
    """Times, ``(time, channel, y, x)`` BT (K, channels in SEVIRI order), grid, channels, platform."""
    try:
        return _read_open_file(path, wanted)
    except (OSError, RuntimeError) as err:  # damaged data inside a readable header
        raise InputError(f"{path} is a damaged CF NetCDF/Zarr file ({str(err).splitlines()[0]})") from None


def _read_open_file(
    path: Path, wanted: list[str] | None
) -> tuple[pd.DatetimeIndex, np.ndarray, Grid, list[str], str]:
    with open_cf(path) as ds:
        present = _channel_names(ds, path)
        if wanted is not None:
            lacking = [c for c in wanted if c not in present]
            if lacking:
                raise InputError(f"{path.name} lacks channel(s) {', '.join(lacking)}")
        channels = [c for c in SEVIRI_CHANNELS if c in (wanted if wanted is not None else present)]
        source, ds = _source_grid(ds, channels, path)
        times = _times(ds, channels[0], path)
        stack = np.stack(
            [np.asarray(ds[c].transpose(..., "y", "x").values, dtype="float32").reshape(-1, *source.shape)
             for c in channels],
            axis=1,
        )
        platform = str(ds[channels[0]].attrs.get("platform_name", ""))
    if stack.shape[0] != times.size:
        raise InputError(f"{path}: {stack.shape[0]} frames but {times.size} times")
    return times, stack, source, channels, platform


def read_seviri(
    paths: PathsLike,
    grid: Grid | None = None,
    *,
    region: str | None = None,
    pixel_km: float = 2.0,
    channels: list[str] | tuple[str, ...] | None = None,
    method: Method = "bilinear",
    progress: bool = False,
) -> xr.Dataset:
    """Read SEVIRI brightness temperatures from CF NetCDF files or Zarr stores into ``ir``.

    Files may hold one time or several and may be given in any order: the frames are sorted by time.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths of CF NetCDF files (one or more times each) or Zarr stores.
    grid : Grid, optional
        Target grid. Give ``grid`` or ``region``; with neither, the files' own grid is kept.
    region : str, optional
        Named region (``"france"``, ``"europe"``) at ``pixel_km``.
    pixel_km : float
        Pixel size of the region grid, km.
    channels : sequence of str, optional
        Channels to keep; by default every SEVIRI IR channel of the files (all files must hold the same).
    method : {"bilinear", "nearest", "auto"}
        Resampling when the target is not a sub-grid / aligned coarsening of the source.
    progress : bool
        Show a progress bar over files.

    Returns
    -------
    xarray.Dataset
        ``ir(time, channel, y, x)`` in K, channels in SEVIRI order (``WV_062`` ... ``IR_134``),
        NaN where the target lies outside the source.

    Raises
    ------
    InputError
        Missing files, unreadable files, no IR channel, no time, channels that differ between files,
        two frames with the same time.
    DatasetError
        A channel that is not a brightness temperature in K (e.g. degrees Celsius, radiances), or a
        grid that is not regular and projected.
    """
    files = resolve_paths(paths, "SEVIRI CF NetCDF/Zarr files")
    target = resolve_target(grid, region, pixel_km)
    wanted = list(channels) if channels is not None else None
    unknown = sorted(set(wanted or ()) - set(SEVIRI_CHANNELS))
    if unknown:
        raise InputError(f"unknown channel(s) {', '.join(unknown)}; SEVIRI IR: {', '.join(SEVIRI_CHANNELS)}")
    regridders: list[Regridder] = []
    frames: list[tuple[pd.Timestamp, np.ndarray, str]] = []
    channel_order: list[str] | None = None
    platform = ""
    skipped: list[SkippedFile] = []
    read_files: list[Path] = []
    with progress_bar(files, "SEVIRI", progress) as bar:
        for path in bar:
            content = read_or_skip(partial(_read_file, wanted=wanted), path, len(files) > 1, skipped)
            if content is None:
                continue
            read_files.append(path)
            times, stack, source, present, file_platform = content
            if channel_order is None:
                channel_order, platform = present, file_platform
                target = target or source  # without a target, the first file's grid
            elif present != channel_order:
                raise InputError(
                    f"{path.name} has channels {', '.join(present)}, "
                    f"the first file {', '.join(channel_order)}"
                )
            regridder = next((r for r in regridders if r.source.matches(source)), None)
            if regridder is None:
                regridder = Regridder(source, target, method)
                regridders.append(regridder)
            regridded = regridder.apply(stack).astype("float32")
            frames.extend((t, regridded[i], f"{path.name}[{t:%H:%M}]") for i, t in enumerate(times))

    skipped_note = report_skipped(skipped, len(files), "SEVIRI CF NetCDF/Zarr files")
    files = read_files
    order = check_time_order([f[0] for f in frames], [f[2] for f in frames])
    target_grid = regridders[0].target
    kinds = sorted({r.kind for r in regridders})
    attrs = {
        "source": f"SEVIRI brightness temperature (CF NetCDF/Zarr{', ' + platform if platform else ''}), "
                  f"{len(files)} file(s), {len(frames)} frame(s)",
        "source_files": file_list(files),
        "history": append_history(
            None,
            f"read {len(frames)} SEVIRI frames ({', '.join(channel_order)}) from CF files, regridded by "
            f"{'/'.join(kinds)} onto {target_grid.describe()}",
        ),
    }
    if skipped_note:
        attrs["skipped_files"] = skipped_note
    return make_paired_dataset(
        target_grid,
        [frames[i][0] for i in order],
        ir=np.stack([frames[i][1] for i in order]),
        channels=channel_order,
        attrs=attrs,
    )
