"""The paired IR/radar dataset: the contract every stage of qpe shares.

Layout (an :class:`xarray.Dataset` on a projected, north-up :class:`~qpe.data.grid.Grid`)::

    ir            (time, channel, y, x)  float32  K      SEVIRI brightness temperature
    rain          (time, y, x)           float32  mm/h   surface rain rate, NaN = no radar coverage
    rain_quality  (time, y, x)           float32  1      optional radar quality index, 0..1
    crs           ()                              CF grid mapping (crs_wkt, proj4)
    time  datetime64 (UTC, strictly increasing); channel  str, e.g. "IR_108"; x, y  m

A dataset may hold only ``ir`` or only ``rain`` (a satellite or a radar source before pairing);
training needs both. On disk it is Zarr (``*.zarr``) or NetCDF (``*.nc``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.normalization import with_ir_normalization
from qpe.data.rain_statistics import RainUnitWarning, rain_unit_problem
from qpe.data.times import utc_naive
from qpe.errors import DatasetError, InputError, MissingInputError
from qpe.files import atomic_write
from qpe.netcdf import NETCDF_LOCK

#: SEVIRI infrared channels and their central wavelengths, µm.
SEVIRI_CHANNELS: dict[str, float] = {
    "WV_062": 6.25,
    "WV_073": 7.35,
    "IR_087": 8.70,
    "IR_097": 9.66,
    "IR_108": 10.80,
    "IR_120": 12.00,
    "IR_134": 13.40,
}

#: Plausible brightness temperatures, K. Outside this, the data are not BT in kelvin.
IR_RANGE_K = (150.0, 350.0)
#: Largest rain rate accepted, mm/h. Larger values are clutter or a unit error; readers flag them first.
MAX_RAIN_RATE = 500.0
#: Rain-rate unit spellings accepted as mm/h.
RAIN_UNITS = ("mm/h", "mm h-1", "mm hr-1", "mm/hr", "mm.h-1", "kg m-2 h-1")
#: Brightness-temperature unit spellings accepted as kelvin.
IR_UNITS = ("K", "kelvin", "Kelvin")
#: Version of this layout, written to every dataset.
LAYOUT_VERSION = 1
#: Validation reads a variable in blocks of whole time steps of about this size, bytes.
SCAN_BLOCK_BYTES = 64 * 1024**2
#: Most positive rain values kept (evenly strided) for the unit-plausibility check.
UNIT_SAMPLE_SIZE = 2_000_000
#: Times listed by name in a message; more are counted.
TIMES_LISTED = 5


def make_paired_dataset(
    grid: Grid,
    times: Sequence | np.ndarray | pd.DatetimeIndex,
    *,
    ir: np.ndarray | None = None,
    channels: Sequence[str] | None = None,
    rain: np.ndarray | None = None,
    rain_quality: np.ndarray | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Build a dataset in the paired layout from plain arrays, and validate it.

    Parameters
    ----------
    grid : Grid
        The projected grid of the fields.
    times : sequence of datetime-like
        Valid times, UTC, strictly increasing.
    ir : numpy.ndarray, optional
        (time, channel, y, x) brightness temperature, K.
    channels : sequence of str, optional
        Channel labels of ``ir`` (keys of :data:`SEVIRI_CHANNELS`).
    rain : numpy.ndarray, optional
        (time, y, x) rain rate, mm/h, NaN where there is no radar.
    rain_quality : numpy.ndarray, optional
        (time, y, x) radar quality index, 0..1.
    attrs : dict, optional
        Global attributes (``source``, ``history``, ...).

    Returns
    -------
    xarray.Dataset
        The validated dataset.
    """
    time_index = utc_naive(pd.DatetimeIndex(pd.to_datetime(times)))
    coords: dict = {"time": ("time", time_index.values.astype("datetime64[ns]")), **grid.coords()}
    coords[GRID_MAPPING_NAME] = grid.grid_mapping()
    data_vars = {}
    if ir is not None:
        if channels is None:
            raise DatasetError("ir given without its channel labels")
        coords["channel"] = ("channel", np.asarray(list(channels), dtype=str))
        coords["wavelength"] = (
            "channel",
            np.array([SEVIRI_CHANNELS.get(c, np.nan) for c in channels], dtype="float32"),
            {"units": "um", "long_name": "central wavelength"},
        )
        data_vars["ir"] = (("time", "channel", "y", "x"), np.asarray(ir, dtype="float32"), ir_attrs())
    if rain is not None:
        data_vars["rain"] = (("time", "y", "x"), np.asarray(rain, dtype="float32"), rain_attrs())
    if rain_quality is not None:
        data_vars["rain_quality"] = (
            ("time", "y", "x"),
            np.asarray(rain_quality, dtype="float32"),
            {"units": "1", "long_name": "radar quality index", "grid_mapping": GRID_MAPPING_NAME},
        )
    ds = xr.Dataset(data_vars, coords=coords)
    ds.coords["time"].attrs["standard_name"] = "time"
    ds.attrs.update({"Conventions": "CF-1.8", "qpe_layout_version": LAYOUT_VERSION})
    ds.attrs.update(attrs or {})
    return validate_paired(ds)


def ir_attrs() -> dict:
    """CF attributes of the ``ir`` variable."""
    return {
        "units": "K",
        "standard_name": "toa_brightness_temperature",
        "long_name": "SEVIRI brightness temperature",
        "grid_mapping": GRID_MAPPING_NAME,
    }


def rain_attrs() -> dict:
    """CF attributes of the ``rain`` variable."""
    return {
        "units": "mm/h",
        "standard_name": "rainfall_rate",
        "long_name": "surface rain rate",
        "grid_mapping": GRID_MAPPING_NAME,
    }


def validate_paired(ds: xr.Dataset, require: Sequence[str] = ()) -> xr.Dataset:
    """Check a dataset against the paired layout; return it unchanged or raise.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset to check.
    require : sequence of str
        Variables that must be present (e.g. ``("ir", "rain")`` for training). With none given, at
        least one of ``ir`` and ``rain`` must be present.

    Raises
    ------
    DatasetError
        With a one-line message naming the first problem found (units, range, grid, time order).
    """
    missing = [name for name in require if name not in ds.data_vars]
    if missing:
        raise DatasetError(f"dataset lacks required variable(s) {', '.join(missing)}")
    if "ir" not in ds.data_vars and "rain" not in ds.data_vars:
        raise DatasetError("dataset has neither 'ir' (K) nor 'rain' (mm/h): not a qpe paired dataset")
    Grid.from_dataset(ds)  # raises on a missing projection or an irregular / not north-up grid
    _check_time(ds)
    if "ir" in ds.data_vars:
        _check_ir(ds["ir"])
    if "rain" in ds.data_vars:
        _check_rain(ds["rain"])
    if "rain_quality" in ds.data_vars:
        _check_dims(ds["rain_quality"], ("time", "y", "x"))
        _check_range(_scan(ds["rain_quality"]), 0.0, 1.0, "rain_quality", "")
    return ds


@dataclass(frozen=True)
class _Scan:
    """What validation needs of a variable, read once in blocks of time steps.

    Attributes
    ----------
    low, high : float
        Smallest and largest non-NaN value (NaN when there is none; infinities count).
    present : numpy.ndarray
        Bool, (time,) or (time, channel): whether that field has any non-NaN value.
    positive : numpy.ndarray
        A strided sample of the values above 0 (only when asked for).
    """

    low: float
    high: float
    present: np.ndarray
    positive: np.ndarray


def _scan(da: xr.DataArray, per_channel: bool = False, positive: bool = False) -> _Scan:
    """One pass over ``da`` (time first) in blocks of about :data:`SCAN_BLOCK_BYTES`."""
    n_time = da.sizes["time"]
    field_bytes = da.dtype.itemsize * int(np.prod(da.shape[1:], dtype="int64"))
    step = max(1, SCAN_BLOCK_BYTES // max(field_bytes, 1))
    keep_every = max(1, int(np.ceil(da.size / UNIT_SAMPLE_SIZE))) if positive else 1
    low, high = np.inf, -np.inf
    present, sample = [], []
    for start in range(0, n_time, step):
        block = np.asarray(da.isel(time=slice(start, start + step)).values)
        known = ~np.isnan(block) if np.issubdtype(block.dtype, np.floating) else np.ones(block.shape, bool)
        present.append(known.any(axis=tuple(range(2 if per_channel else 1, block.ndim))))
        values = block[known]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
        if positive:
            sample.append(values[values > 0][::keep_every])
    if low > high:  # nothing but NaN
        low = high = float("nan")
    positives = np.concatenate(sample) if sample else np.empty(0)
    return _Scan(low, high, np.concatenate(present), positives)


def _check_time(ds: xr.Dataset) -> None:
    if "time" not in ds.coords:
        raise DatasetError("dataset has no 'time' coordinate")
    t = ds["time"].values
    if not np.issubdtype(t.dtype, np.datetime64):
        raise DatasetError(f"'time' must hold datetimes (UTC), got dtype {t.dtype}")
    if t.size == 0:
        raise DatasetError("dataset has no time steps")
    if np.isnat(t).any():
        raise DatasetError("'time' contains missing values (NaT)")
    step = np.diff(t)
    if (step == np.timedelta64(0)).any():
        dup = pd.Timestamp(t[1:][step == np.timedelta64(0)][0])
        raise DatasetError(f"'time' has a duplicated step at {dup:%Y-%m-%dT%H:%M}")
    if (step < np.timedelta64(0)).any():
        bad = pd.Timestamp(t[1:][step < np.timedelta64(0)][0])
        raise DatasetError(f"'time' is not sorted: {bad:%Y-%m-%dT%H:%M} comes after a later time")


def _check_dims(da: xr.DataArray, dims: tuple[str, ...]) -> None:
    if da.dims != dims:
        raise DatasetError(f"variable {da.name!r} must have dims {dims}, got {da.dims}")


def _check_units(da: xr.DataArray, accepted: Sequence[str], expected: str) -> None:
    units = da.attrs.get("units")
    if units is None:
        raise DatasetError(f"variable {da.name!r} has no 'units' attribute; expected {expected}")
    if str(units).strip() not in accepted:
        raise DatasetError(f"variable {da.name!r} is in {units!r}; expected {expected}")


def _check_range(scan: _Scan, low: float, high: float, name: str, units: str) -> None:
    lo, hi = scan.low, scan.high
    if np.isnan(lo):
        return
    if lo < low or hi > high:
        raise DatasetError(
            f"{name} values span [{lo:g}, {hi:g}]{' ' + units if units else ''}, outside the plausible "
            f"range [{low:g}, {high:g}]: wrong units or unflagged outliers"
        )


def _check_ir(ir: xr.DataArray) -> None:
    _check_dims(ir, ("time", "channel", "y", "x"))
    _check_units(ir, IR_UNITS, "brightness temperature in K")
    channels = [str(c) for c in ir["channel"].values]
    unknown = sorted(set(channels) - set(SEVIRI_CHANNELS))
    if unknown:
        raise DatasetError(
            f"unknown IR channel(s) {', '.join(unknown)}; expected SEVIRI labels such as "
            f"{', '.join(SEVIRI_CHANNELS)}"
        )
    if len(set(channels)) != len(channels):
        raise DatasetError(f"IR channels are repeated: {channels}")
    if "IR_108" not in channels:
        raise DatasetError("IR channels must include IR_108 (the 10.8 µm window channel)")
    scan = _scan(ir, per_channel=True)
    _check_ir_present(scan.present, pd.DatetimeIndex(ir["time"].values), channels)
    _check_range(scan, *IR_RANGE_K, "IR brightness temperature", "K")


def _check_ir_present(present: np.ndarray, times: pd.DatetimeIndex, channels: list[str]) -> None:
    """Refuse IR that is entirely NaN: overall, in a whole channel, or at some times (missing scans)."""
    if not present.any():
        raise DatasetError(f"ir is entirely NaN: no brightness temperature at any of the {times.size} times")
    empty_channels = [c for c, seen in zip(channels, present.any(axis=0)) if not seen]
    if empty_channels:
        raise DatasetError(
            f"IR channel(s) {', '.join(empty_channels)} entirely NaN at all {times.size} times"
        )
    missing = ~present.all(axis=1)
    if missing.any():
        raise DatasetError(
            f"ir is entirely NaN (in at least one channel) at {missing.sum()} of {times.size} times "
            f"({describe_times(times[missing])}): missing scans; drop these times"
        )


def _check_rain(rain: xr.DataArray) -> None:
    _check_dims(rain, ("time", "y", "x"))
    _check_units(rain, RAIN_UNITS, "rain rate in mm/h")
    scan = _scan(rain, positive=True)
    _check_range(scan, 0.0, MAX_RAIN_RATE, "rain rate", "mm/h")
    problem = rain_unit_problem(scan.positive, str(rain.attrs["units"]).strip())
    if problem:
        warnings.warn(problem, RainUnitWarning, stacklevel=3)


def describe_times(times: Sequence | pd.DatetimeIndex, listed: int = TIMES_LISTED) -> str:
    """``"2021-06-01T00:15, 2021-06-01T01:00, ... (12 in all)"``: times for a one-line message (UTC)."""
    times = pd.DatetimeIndex(times)
    names = ", ".join(f"{t:%Y-%m-%dT%H:%M}" for t in times[:listed])
    return names + (f", ... ({times.size} in all)" if times.size > listed else "")


def dataset_problems(ds: xr.Dataset) -> list[str]:
    """Problems that do not make a dataset invalid but a user should hear of, one line each.

    Rain that is entirely NaN (a region outside radar coverage: nothing to train on or score against;
    :class:`qpe.data.samples.PairedSamples` refuses it), rain with no valid pixel at some times (a radar
    outage) and rain whose values look like another unit than mm/h
    (:func:`qpe.data.rain_statistics.rain_unit_problem`).
    """
    if "rain" not in ds.data_vars:
        return []
    scan = _scan(ds["rain"], positive=True)
    return rain_problems(pd.DatetimeIndex(ds["time"].values), scan.present, scan.positive,
                         str(ds["rain"].attrs.get("units", "mm/h")).strip())


def rain_problems(times: pd.DatetimeIndex, present: np.ndarray, positive: np.ndarray, units: str = "mm/h") -> list[str]:
    """The rain lines of :func:`dataset_problems`, from what a scan of the rain found.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        The dataset's times.
    present : numpy.ndarray
        Bool per time: the rain has a valid pixel then.
    positive : numpy.ndarray
        Rain rates above 0 (all of them or a sample), in ``units``.
    """
    problems = []
    if not present.any():
        problems.append(f"rain is entirely NaN: no radar value at any of the {times.size} times")
    elif not present.all():
        problems.append(
            f"rain has no valid pixel (no radar) at {(~present).sum()} of {times.size} times: "
            f"{describe_times(times[~present])}"
        )
    unit_problem = rain_unit_problem(positive, units)
    if unit_problem:
        problems.append(unit_problem)
    return problems


# -- files -------------------------------------------------------------------------------------------
def open_paired(path: str | os.PathLike, require: Sequence[str] = (), *, validate: bool = True) -> xr.Dataset:
    """Open a paired dataset (Zarr directory or NetCDF file) lazily and validate it.

    Parameters
    ----------
    path : path-like
        ``*.zarr`` directory or ``*.nc`` file.
    require : sequence of str
        Variables that must be present, see :func:`validate_paired`.
    validate : bool
        Check the layout and every value (which reads the whole dataset); False only for a dataset
        validated already, e.g. one that parallel tasks reopen. A paired archive
        (:mod:`qpe.data.archive`) opens at its paired times, and only its layout is checked (its values
        were, block by block, when it was built); one still being built is refused.

    Raises
    ------
    InputError
        The path does not exist or is not a dataset.
    DatasetError
        The dataset does not follow the layout.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no dataset at {path}")
    try:
        if path.is_dir():
            ds = xr.open_zarr(path, chunks=None, decode_timedelta=False)
        else:
            with NETCDF_LOCK:  # threads may open datasets at once; netCDF-C is not thread-safe
                ds = xr.open_dataset(path, decode_timedelta=False)
    except Exception as err:  # any reader failure means "not a dataset we can read"
        first_line = next((line for line in str(err).splitlines() if line.strip()), "")
        reason = first_line.split(". ")[0].rstrip(".")  # xarray goes on with advice over several lines
        raise InputError(
            f"{path} is not a readable Zarr/NetCDF dataset ({type(err).__name__}: {reason})"
        ) from err
    from qpe.data.archive import archive_view, validate_view

    ds = archive_view(ds, path)  # an archive: its paired times (a dataset otherwise unchanged)
    return validate_view(ds, require) if validate else ds


def save_paired(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Validate and write a dataset to ``*.zarr`` (directory) or ``*.nc``, atomically.

    IR normalisation statistics (``ir_mean``, ``ir_std``) are added when absent, so every stored
    dataset carries them. The data are written by :func:`qpe.files.atomic_write`, so a reader never sees
    a half-written dataset and an interrupted write leaves any previous one intact.
    """
    path = Path(path)
    if path.suffix not in (".nc", ".zarr"):
        raise InputError(f"unknown dataset format for {path.name}: use a .zarr or .nc suffix")
    validate_paired(ds)
    if "ir" in ds.data_vars and "ir_mean" not in ds.variables:
        ds = with_ir_normalization(ds)
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding.pop("chunks", None)
        var.encoding.pop("preferred_chunks", None)

    def write(tmp: Path) -> None:
        if path.suffix == ".nc":
            ds.to_netcdf(tmp, engine="netcdf4")
        else:
            ds.chunk(_disk_chunks(ds)).to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)

    return atomic_write(path, write)


def _disk_chunks(ds: xr.Dataset) -> dict[str, int]:
    """One time step (and one channel) per chunk: what the data loader reads."""
    chunks = {"time": 1, "y": ds.sizes["y"], "x": ds.sizes["x"]}
    if "channel" in ds.dims:
        chunks["channel"] = ds.sizes["channel"]
    return chunks


# -- summary -------------------------------------------------------------------------------------------
def summarize_layout(ds: xr.Dataset) -> dict:
    """The part of :func:`summarize` that reads no data: times, grid, crs, variables and source."""
    grid = Grid.from_dataset(ds)
    times = pd.DatetimeIndex(ds["time"].values)
    steps = np.unique(np.diff(times.values)) if times.size > 1 else np.array([])
    return {
        "times": {
            "count": int(times.size),
            "first": f"{times[0]:%Y-%m-%dT%H:%M}",
            "last": f"{times[-1]:%Y-%m-%dT%H:%M}",
            "steps_min": sorted({int(s / np.timedelta64(1, "m")) for s in steps}),
        },
        "grid": grid.describe(),
        "crs": grid.crs if grid.crs.lstrip().startswith("+") else grid.pyproj_crs.name,
        "variables": sorted(ds.data_vars),
        "source": ds.attrs.get("source", "unknown"),
    }


def summarize(ds: xr.Dataset) -> dict:
    """Key facts of a dataset: times, grid, channels, rain statistics and problems (``qpe data info``).

    ``problems`` lists :func:`dataset_problems` (one line each; empty when there are none).
    """
    info = summarize_layout(ds)
    if "ir" in ds.data_vars:
        ir = ds["ir"]
        info["channels"] = {
            str(c): {
                "min_K": round(float(ir.sel(channel=c).min()), 1),
                "mean_K": round(float(ir.sel(channel=c).mean()), 1),
                "max_K": round(float(ir.sel(channel=c).max()), 1),
            }
            for c in ir["channel"].values
        }
    if "rain" in ds.data_vars:
        rain = np.asarray(ds["rain"].values, dtype="float64")
        valid = rain[np.isfinite(rain)]
        wet = valid[valid > 0.1]
        info["rain"] = {
            "coverage": round(valid.size / rain.size, 4),
            "wet_fraction_0.1": round(wet.size / max(valid.size, 1), 4),
            "mean_mm_h": round(float(valid.mean()), 4) if valid.size else None,
            "wet_p50_mm_h": round(float(np.percentile(wet, 50)), 3) if wet.size else None,
            "wet_p90_mm_h": round(float(np.percentile(wet, 90)), 3) if wet.size else None,
            "wet_p99_mm_h": round(float(np.percentile(wet, 99)), 3) if wet.size else None,
            "max_mm_h": round(float(valid.max()), 2) if valid.size else None,
        }
        for key in ("qc_outliers_flagged", "qc_max_rate"):
            if key in ds.attrs:
                info["rain"][key] = ds.attrs[key]
    info["problems"] = dataset_problems(ds)
    return info
