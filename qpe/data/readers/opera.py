"""OPERA radar composites (ODIM HDF5) -> radar rain in the paired layout, with quality control.

The rain rate is read with :func:`pysteps.io.import_opera_hdf5` (mm/h; ``undetect`` -> 0, ``nodata``
-> NaN). The quality index (the ``QIND`` dataset, 0..1) is read with h5py, applying its gain and
offset; in the OPERA composite it is only given where rain was detected, so ``rain_quality`` is NaN
at dry and uncovered pixels.

Time
    Each composite is stamped with its nominal time, ``what/date`` + ``what/time`` (e.g. 18:00). The
    RATE product is an instantaneous rain rate; ``dataset1/what/startdate..enddate`` (17:50..18:05 for
    the 18:00 file) is the window of the radar scans merged into it; the first file's window is noted
    in the history, it is not used as the time.

Quality control (in this order, on the native 2 km pixels that the target grid uses)
    1. Outliers: rain above ``max_rate`` (default 300 mm/h, about 63 dBZ with Marshall-Palmer) is
       clutter or a bad gate, not rain. They are flagged, never dropped silently: ``outliers="mask"``
       sets them to NaN (no valid measurement), ``"clip"`` sets them to ``max_rate``. Their number per
       time is the variable ``qc_outliers(time)``; the total is the attribute ``qc_outliers_flagged``
       and the threshold ``qc_max_rate``.
    2. Optional ``min_quality``: rain is set to NaN where the quality index is below it (pixels with no
       quality index, i.e. dry ones, are kept); counts in ``qc_low_quality(time)``.
    3. Regridding onto the target grid (:mod:`qpe.data.regrid`): an exact crop for ``france`` at 2 km,
       a NaN-aware block mean at 4 km, nearest-neighbour reprojection on any other grid.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import MAX_RAIN_RATE, make_paired_dataset
from qpe.data.readers.inputs import (
    PathsLike,
    SkippedFile,
    append_history,
    check_same_grid,
    check_time_order,
    file_list,
    progress_bar,
    read_or_skip,
    report_skipped,
    resolve_paths,
    resolve_target,
)
from qpe.data.regrid import Regridder
from qpe.errors import InputError

#: Default outlier threshold, mm/h (about 63 dBZ with Z = 200 R^1.6).
DEFAULT_MAX_RATE = 300.0
OUTLIER_ACTIONS = ("mask", "clip")


@dataclass(frozen=True)
class OperaComposite:
    """One ODIM HDF5 composite as read from disk.

    Attributes
    ----------
    path : Path
    time : pandas.Timestamp
        Nominal time (``what/date`` + ``what/time``), UTC.
    rain : numpy.ndarray
        (rows, cols) of the window read, rain rate, mm/h, float64, NaN = no data, 0 = no rain detected.
    quality : numpy.ndarray or None
        (rows, cols) quality index 0..1, NaN where not given; None when the file has no QIND dataset.
    grid : Grid
        The whole composite's grid (not the window's).
    scan_window : tuple of pandas.Timestamp
        ``startdate/starttime`` .. ``enddate/endtime`` of the rain dataset.
    """

    path: Path
    time: pd.Timestamp
    rain: np.ndarray
    quality: np.ndarray | None
    grid: Grid
    scan_window: tuple[pd.Timestamp, pd.Timestamp]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _odim_time(attrs, date_key: str, time_key: str) -> pd.Timestamp:
    """``date`` (YYYYMMDD) + ``time`` (HHMMSS) of an ODIM ``what`` group; ValueError when malformed."""
    date, time = _text(attrs[date_key]), _text(attrs[time_key])
    try:
        return pd.Timestamp(pd.to_datetime(date + time, format="%Y%m%d%H%M%S"))
    except (ValueError, TypeError, OverflowError):
        raise ValueError(
            f"{date_key}={date!r} {time_key}={time!r} is not an ODIM time (YYYYMMDD HHMMSS)"
        ) from None


def _find_quantities(h5: h5py.File) -> dict[str, str]:
    """``{quantity: "datasetN/dataM"}`` for every ODIM data array in the file."""
    found: dict[str, str] = {}
    for dname, dset in h5.items():
        if not dname.startswith("dataset") or not isinstance(dset, h5py.Group):
            continue
        what_ds = dset.get("what")
        for name, group in dset.items():
            if not name.startswith("data") or not isinstance(group, h5py.Group) or "data" not in group:
                continue
            what = group.get("what") if "what" in group else what_ds
            if what is not None and "quantity" in what.attrs:
                found.setdefault(_text(what.attrs["quantity"]), f"{dname}/{name}")
    return found


def _what(h5: h5py.File, path: str) -> h5py.AttributeManager:
    group = h5[path]
    return group["what"].attrs if "what" in group else h5[path.split("/")[0]]["what"].attrs


def _decode_quality(h5: h5py.File, path: str, window: tuple[slice, slice]) -> np.ndarray:
    """QIND array (cut to ``window``) with gain/offset applied; NaN at ``nodata`` and ``undetect``."""
    what = _what(h5, path)
    raw = h5[path]["data"][window]  # reads only the compressed chunks of the window
    gain = float(what.get("gain", 1.0))
    offset = float(what.get("offset", 0.0))
    missing = np.zeros(raw.shape, dtype=bool)
    for key in ("nodata", "undetect"):
        if key in what:
            missing |= raw == what[key]
    quality = raw.astype("float64") * gain + offset
    quality[missing] = np.nan
    return quality


def read_opera_file(path: str | os.PathLike, window: tuple[slice, slice] | None = None) -> OperaComposite:
    """Read one OPERA ODIM HDF5 rain-rate composite.

    Parameters
    ----------
    path : path-like
        An ODIM HDF5 file holding a ``RATE`` (mm/h) composite and, optionally, its ``QIND``.
    window : tuple of slice, optional
        ``(rows, cols)`` of the composite to keep (e.g. :attr:`Regridder.window`); all by default.

    Returns
    -------
    OperaComposite

    Raises
    ------
    InputError
        The file is missing, is not HDF5, is not ODIM, or holds no rain rate (e.g. reflectivity).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if not h5py.is_hdf5(path):
        raise InputError(f"{path} is not an HDF5 file")
    try:
        time, scan, quality = _read_odim_header(path, window)
    except OSError as err:  # truncated or corrupt HDF5: h5py says where
        raise InputError(f"{path} is a damaged HDF5 file ({str(err).splitlines()[0]})") from None
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
    rain, _, meta = _pysteps_import(path)
    if meta.get("unit") != "mm/h":
        raise InputError(f"{path} gives rain in {meta.get('unit')!r}, not mm/h")
    grid = _grid_from_metadata(meta, rain.shape, path)
    rain = rain[window or (slice(None), slice(None))]
    if quality is not None and quality.shape != rain.shape:
        raise InputError(f"{path}: quality index {quality.shape} and rain {rain.shape} differ in shape")
    return OperaComposite(path, time, rain, quality, grid, scan)


def _read_odim_header(
    path: Path, window: tuple[slice, slice] | None
) -> tuple[pd.Timestamp, tuple[pd.Timestamp, pd.Timestamp], np.ndarray | None]:
    """Nominal time, scan window and quality index (cut to ``window``) of an ODIM composite, with h5py.

    Raises InputError for a file that is not an ODIM rain-rate composite, OSError for a damaged one and
    ValueError for a malformed date or time.
    """
    with h5py.File(path, "r") as h5:
        what = h5.get("what")
        if what is None or "date" not in what.attrs or "time" not in what.attrs or "where" not in h5:
            raise InputError(f"{path} is not an ODIM HDF5 composite (no what/date, what/time or where group)")
        quantities = _find_quantities(h5)
        if "RATE" not in quantities:
            held = ", ".join(sorted(quantities)) or "no ODIM data"
            raise InputError(
                f"{path} holds {held}, not RATE (rain rate in mm/h): not an OPERA rain-rate composite"
            )
        time = _odim_time(what.attrs, "date", "time")
        rate_what = _what(h5, quantities["RATE"])
        try:
            scan = (
                _odim_time(rate_what, "startdate", "starttime"), _odim_time(rate_what, "enddate", "endtime")
            )
        except KeyError:
            scan = (time, time)
        window = window or (slice(None), slice(None))
        quality = _decode_quality(h5, quantities["QIND"], window) if "QIND" in quantities else None
    return time, scan, quality


def _pysteps_import(path: Path):
    with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints where its config file is on import
        from pysteps.exceptions import DataModelError
        from pysteps.io import import_opera_hdf5

    try:
        return import_opera_hdf5(str(path))
    except (OSError, KeyError, ValueError, DataModelError) as err:
        raise InputError(f"{path} could not be read as an OPERA composite by pysteps: {err}") from err


def _snap(value: float) -> float:
    """The corners pysteps derives from lat/lon are within a millimetre of whole metres."""
    r = round(value)
    return float(r) if abs(value - r) < 0.01 else float(value)


def _grid_from_metadata(meta: dict, shape: tuple[int, int], path: Path) -> Grid:
    if meta.get("yorigin") != "upper":
        raise InputError(f"{path}: unsupported y origin {meta.get('yorigin')!r} (expected 'upper')")
    dx, dy = float(meta["xpixelsize"]), float(meta["ypixelsize"])
    x1, y2 = _snap(float(meta["x1"])), _snap(float(meta["y2"]))
    return Grid(meta["projection"], x1 + dx / 2, y2 - dy / 2, dx, dy, shape[1], shape[0])


def apply_outlier_control(
    rain: np.ndarray, max_rate: float, outliers: Literal["mask", "clip"]
) -> tuple[np.ndarray, int]:
    """Flag rain above ``max_rate`` (mm/h): NaN (``mask``) or ``max_rate`` (``clip``).

    Returns the corrected copy and the number of flagged pixels.
    """
    with np.errstate(invalid="ignore"):
        bad = rain > max_rate
    out = rain.copy()
    out[bad] = np.nan if outliers == "mask" else max_rate
    return out, int(bad.sum())


def check_qc_settings(max_rate: float, outliers: str, min_quality: float | None = None) -> None:
    """Raise :class:`InputError` (one line) for an outlier threshold (mm/h), action or quality bound
    that a radar reader cannot use."""
    if outliers not in OUTLIER_ACTIONS:
        raise InputError(f"outliers must be one of {', '.join(OUTLIER_ACTIONS)}, got {outliers!r}")
    if not 0 < max_rate <= MAX_RAIN_RATE:
        raise InputError(f"max_rate must be in (0, {MAX_RAIN_RATE:g}] mm/h, got {max_rate:g}")
    if min_quality is not None and not 0.0 <= min_quality <= 1.0:
        raise InputError(f"min_quality must be in [0, 1], got {min_quality:g}")


def read_radar(
    paths: PathsLike,
    grid: Grid | None = None,
    *,
    region: str | None = None,
    pixel_km: float = 2.0,
    max_rate: float = DEFAULT_MAX_RATE,
    outliers: Literal["mask", "clip"] = "mask",
    min_quality: float | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Read OPERA ODIM HDF5 composites into a radar dataset in the paired layout.

    Files may be given in any order: they are sorted by their nominal time. Of several files, those that
    cannot be read (damaged, truncated, malformed date, not a rain-rate composite) are left out with a
    :class:`~qpe.data.readers.inputs.SkippedFilesWarning` naming each and why, and listed in the
    attribute ``skipped_files``; a single unreadable file, or none readable, is an error.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths of ODIM HDF5 rain-rate composites.
    grid : Grid, optional
        Target grid. Give ``grid`` or ``region``; with neither, the composite's own grid is kept.
    region : str, optional
        Named region (``"france"``, ``"europe"``), at ``pixel_km``.
    pixel_km : float
        Pixel size of the region grid, km (2 = native pixels, 4 = 2x2 block means).
    max_rate : float
        Outlier threshold, mm/h (at most the layout's 500 mm/h).
    outliers : {"mask", "clip"}
        What to do with rain above ``max_rate``: NaN, or clip to ``max_rate``. Counted either way.
    min_quality : float, optional
        Set rain to NaN where the quality index (0..1) is below this.
    progress : bool
        Show a progress bar over files.

    Returns
    -------
    xarray.Dataset
        ``rain(time, y, x)`` mm/h, ``rain_quality(time, y, x)`` 0..1 (when the files have QIND),
        ``qc_outliers(time)`` (and ``qc_low_quality(time)`` with ``min_quality``), attributes
        ``qc_outliers_flagged``, ``qc_max_rate``, ``qc_outlier_action``, ``source``, ``history``.

    Raises
    ------
    InputError
        Missing files or empty glob, a single file (or all files) that is not a readable ODIM HDF5
        rain-rate composite, files on different grids, two files with the same time, bad QC settings.
    """
    check_qc_settings(max_rate, outliers, min_quality)
    files = resolve_paths(paths, "OPERA HDF5 files")
    target = resolve_target(grid, region, pixel_km)

    fields: list[dict] = []
    skipped: list[SkippedFile] = []
    read_files: list[Path] = []
    regridder: Regridder | None = None
    with progress_bar(files, "OPERA", progress) as bar:
        for path in bar:
            window = regridder.window if regridder is not None else None
            comp = read_or_skip(partial(read_opera_file, window=window), path, len(files) > 1, skipped)
            if comp is None:
                continue
            read_files.append(path)
            if regridder is None:
                regridder = Regridder(comp.grid, target or comp.grid)
                comp = replace(comp, rain=comp.rain[regridder.window], quality=(
                    None if comp.quality is None else comp.quality[regridder.window]))
            else:
                check_same_grid(path, comp.grid, regridder.source)
            fields.append(_quality_controlled(comp, regridder, max_rate, outliers, min_quality))

    skipped_note = report_skipped(skipped, len(files), "OPERA HDF5 files")
    order = check_time_order([f["time"] for f in fields], [f["name"] for f in fields])
    fields = [fields[i] for i in order]
    has_quality = any(f["quality"] is not None for f in fields)
    rain = np.stack([f["rain"] for f in fields])
    quality = None
    if has_quality:
        missing = np.full(regridder.target.shape, np.nan, dtype="float32")
        quality = np.stack([missing if f["quality"] is None else f["quality"] for f in fields])
    n_out = np.array([f["outliers"] for f in fields], dtype="int64")
    times = [f["time"] for f in fields]
    scans = f"{fields[0]['scan'][0]:%H:%M}..{fields[0]['scan'][1]:%H:%M}"
    attrs = {
        "source": f"OPERA radar composite (ODIM HDF5, pysteps import_opera_hdf5), {len(fields)} files",
        "source_files": file_list([read_files[i] for i in order]),
        "radar_network": "opera",
        "rain_step_rule": "instant",
        "rain_time_rule": "instant: each composite's instantaneous rain rate (RATE) at its nominal time",
        "qc_max_rate": float(max_rate),
        "qc_outlier_action": outliers,
        "qc_outliers_flagged": int(n_out.sum()),
        "history": append_history(
            None,
            f"read {len(fields)} OPERA composites (nominal times what/date+time; "
            f"first file's scans {scans}), "
            f"outliers > {max_rate:g} mm/h {'set to NaN' if outliers == 'mask' else 'clipped'}"
            + (f", rain with quality < {min_quality:g} set to NaN" if min_quality is not None else "")
            + f", regridded by {regridder.kind} onto {regridder.target.describe()}",
        ),
    }
    if min_quality is not None:
        attrs["qc_min_quality"] = float(min_quality)
    if skipped_note:
        attrs["skipped_files"] = skipped_note
    ds = make_paired_dataset(regridder.target, times, rain=rain, rain_quality=quality, attrs=attrs)
    ds["qc_outliers"] = xr.DataArray(
        n_out, dims="time",
        attrs={
            "units": "1",
            "long_name": f"rain pixels above {max_rate:g} mm/h flagged as outliers ({outliers})",
        },
    )
    if min_quality is not None:
        ds["qc_low_quality"] = xr.DataArray(
            np.array([f["low_quality"] for f in fields], dtype="int64"), dims="time",
            attrs={"units": "1", "long_name": f"rain pixels with quality index < {min_quality:g} set to NaN"},
        )
    return ds


def _quality_controlled(
    comp: OperaComposite, regridder: Regridder, max_rate: float, outliers: str, min_quality: float | None
) -> dict:
    """QC on the native pixels of the regridder's window (``comp`` is cut to it), then regridding."""
    rain, n_out = apply_outlier_control(comp.rain, max_rate, outliers)
    quality = comp.quality
    low = 0
    if min_quality is not None and quality is not None:
        with np.errstate(invalid="ignore"):
            poor = (quality < min_quality) & np.isfinite(rain)
        low = int(poor.sum())
        rain[poor] = np.nan
    return {
        "name": comp.path.name,
        "time": comp.time,
        "scan": comp.scan_window,
        "rain": regridder.apply_window(rain).astype("float32"),
        "quality": None if quality is None else regridder.apply_window(quality).astype("float32"),
        "outliers": n_out,
        "low_quality": low,
    }

