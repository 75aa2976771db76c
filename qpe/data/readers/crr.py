"""NWC SAF Convective Rainfall Rate (CRR) NetCDF -> a satellite reference rain estimate in the layout.

The NWC/GEO CRR product estimates rain rate from SEVIRI IR/WV (and VIS by day). Each file holds one
time on a geostationary grid (3 km at the sub-satellite point; the Europe region is 1019 x 2200).

What is read
    ``crr_intensity`` (mm/h, packed uint16 with scale 0.1, ``_FillValue`` 65535 = no data) is the rain
    rate; ``crr`` itself is only a rate *class* (0..11) and is not used. ``crr_quality`` (flags:
    1 nodata, 8 good, 16 questionable, 24 bad, 32 interpolated; 0 = none) is kept as
    ``crr_quality(time, y, x)`` on the target grid (nearest neighbour, 0 outside the CRR domain).
Grid
    From the GDAL attributes: ``gdal_projection`` (PROJ string) and ``gdal_xgeo_up_left`` /
    ``gdal_ygeo_up_left`` (outer corner) with the pixel size of ``gdal_geotransform_table``.
Time
    ``nominal_product_time`` (e.g. 12:00, the SEVIRI slot); the scan over Europe
    (``time_coverage_start``, ~12:09) is later and is recorded in the history only.
Regridding
    Nearest neighbour from the geostationary pixels onto the target grid (rates are not smoothed);
    NaN outside the CRR domain and where CRR has no data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import RAIN_UNITS, make_paired_dataset
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
from qpe.data.regrid import Method, Regridder
from qpe.data.times import parse_utc_time
from qpe.errors import DatasetError, InputError

_REQUIRED_ATTRS = ("gdal_projection", "gdal_geotransform_table", "gdal_xgeo_up_left", "gdal_ygeo_up_left")


def crr_grid(nc: netCDF4.Dataset, path: Path) -> Grid:
    """The geostationary grid of an open CRR file, from its GDAL attributes."""
    missing = [a for a in _REQUIRED_ATTRS if a not in nc.ncattrs()]
    if missing:
        raise InputError(f"{path} has no {', '.join(missing)} attribute(s): cannot locate the CRR grid")
    table = np.asarray(nc.getncattr("gdal_geotransform_table"), dtype="float64")
    dx, dy = abs(float(table[1])), abs(float(table[5]))
    ny, nx = nc.variables["crr_intensity"].shape
    x_edge = float(nc.getncattr("gdal_xgeo_up_left"))
    y_edge = float(nc.getncattr("gdal_ygeo_up_left"))
    crs = str(nc.getncattr("gdal_projection")).strip()
    return Grid(crs, x_edge + dx / 2, y_edge - dy / 2, dx, dy, nx, ny)


@dataclass(frozen=True)
class CrrField:
    """One CRR file as read from disk.

    Attributes
    ----------
    time : pandas.Timestamp
        Nominal product time, UTC.
    rain : numpy.ndarray
        (ny, nx) rain rate, mm/h, float32, NaN where CRR has no data.
    quality : numpy.ndarray
        (ny, nx) ``crr_quality`` flags, uint16 (0 = none).
    grid : Grid
        The file's geostationary grid.
    scan_start : str
        ``time_coverage_start`` of the file.
    product : str
        Title, software version and satellite, from the global attributes.
    """

    time: pd.Timestamp
    rain: np.ndarray
    quality: np.ndarray
    grid: Grid
    scan_start: str
    product: str


def read_crr_file(path: str | os.PathLike) -> CrrField:
    """Read one CRR file.

    Raises
    ------
    InputError
        Not NetCDF, not a CRR file, or no nominal time.
    DatasetError
        ``crr_intensity`` is not in mm/h.
    """
    path = Path(path)
    try:
        nc = netCDF4.Dataset(path)
    except OSError as err:
        raise InputError(f"{path} is not a NetCDF file ({err})") from err
    try:
        return _read_crr_content(nc, path)
    except (OSError, RuntimeError) as err:  # damaged data inside a readable header
        raise InputError(f"{path} is a damaged NetCDF file ({err})") from None


def _read_crr_content(nc: netCDF4.Dataset, path: Path) -> CrrField:
    """The fields of an open CRR file (closed on return)."""
    with nc:
        if "crr_intensity" not in nc.variables:
            raise InputError(f"{path} is not an NWC SAF CRR file (no crr_intensity variable)")
        var = nc.variables["crr_intensity"]
        units = getattr(var, "units", None)
        if units not in RAIN_UNITS:
            raise DatasetError(f"{path}: crr_intensity is in {units!r}; expected rain rate in mm/h")
        grid = crr_grid(nc, path)
        try:
            time = parse_utc_time(nc.getncattr("nominal_product_time"), f"{path}: nominal_product_time")
        except AttributeError as err:
            raise InputError(f"{path} has no usable nominal_product_time attribute ({err})") from None
        var.set_auto_maskandscale(True)
        rain = np.ma.filled(var[:].astype("float32"), np.nan)
        quality = (
            np.ma.filled(nc.variables["crr_quality"][:], 0).astype("uint16")
            if "crr_quality" in nc.variables else np.zeros(rain.shape, dtype="uint16")
        )
        scan_start = str(getattr(nc, "time_coverage_start", "unknown"))
        product = (f"{getattr(nc, 'title', 'NWC SAF CRR')} ({getattr(nc, 'source', '')}, "
                   f"{getattr(nc, 'satellite_identifier', '')})")
    return CrrField(time, rain, quality, grid, scan_start, product)


def read_crr(
    paths: PathsLike,
    grid: Grid | None = None,
    *,
    region: str | None = None,
    pixel_km: float = 2.0,
    method: Method = "nearest",
    progress: bool = False,
) -> xr.Dataset:
    """Read NWC SAF CRR files as a reference rain estimate ``rain(time, y, x)`` on a target grid.

    Files may be given in any order: they are sorted by nominal time.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths of CRR NetCDF files.
    grid : Grid, optional
        Target grid (e.g. ``Grid.from_dataset(radar)``). Give ``grid`` or ``region``; with neither,
        the CRR geostationary grid is kept.
    region : str, optional
        Named region (``"france"``, ``"europe"``) at ``pixel_km``.
    pixel_km : float
        Pixel size of the region grid, km.
    method : {"nearest", "bilinear", "auto"}
        Resampling from the geostationary grid; nearest keeps CRR's rates unsmoothed.
    progress : bool
        Show a progress bar over files.

    Returns
    -------
    xarray.Dataset
        ``rain(time, y, x)`` mm/h (NaN outside the CRR domain), ``crr_quality(time, y, x)`` flags;
        attributes say the source is the NWC SAF CRR estimate (``rain_source = "nwcsaf_crr"``).
    """
    files = resolve_paths(paths, "NWC SAF CRR files")
    target = resolve_target(grid, region, pixel_km)
    fields: list[CrrField] = []
    skipped: list[SkippedFile] = []
    read_files: list[Path] = []
    regridder: Regridder | None = None
    with progress_bar(files, "CRR", progress) as bar:
        for path in bar:
            field = read_or_skip(read_crr_file, path, len(files) > 1, skipped)
            if field is None:
                continue
            read_files.append(path)
            if regridder is None:
                regridder = Regridder(field.grid, target or field.grid, method)
                flags_regridder = (  # flags are never averaged
                    regridder if regridder.kind in ("identity", "crop", "nearest")
                    else Regridder(field.grid, target or field.grid, "nearest")
                )
            else:
                check_same_grid(path, field.grid, regridder.source)
            flags = flags_regridder.apply(field.quality.astype("float32"))
            fields.append(replace(
                field,
                rain=regridder.apply(field.rain).astype("float32"),
                quality=np.nan_to_num(flags, nan=0.0).astype("uint16"),
            ))
    skipped_note = report_skipped(skipped, len(files), "NWC SAF CRR files")
    files = read_files
    order = check_time_order([f.time for f in fields], [p.name for p in files])
    fields = [fields[i] for i in order]
    attrs = {
        "source": (
            f"NWC SAF CRR satellite rain-rate estimate: {fields[0].product}, {len(files)} files (not radar)"
        ),
        "rain_source": "nwcsaf_crr",
        "source_files": file_list([files[i] for i in order]),
        "history": append_history(
            None,
            f"read {len(files)} NWC SAF CRR files (crr_intensity, nominal_product_time; first scan start "
            f"{fields[0].scan_start}), regridded by {regridder.kind} onto {regridder.target.describe()}",
        ),
    }
    if skipped_note:
        attrs["skipped_files"] = skipped_note
    ds = make_paired_dataset(
        regridder.target, [f.time for f in fields], rain=np.stack([f.rain for f in fields]), attrs=attrs
    )
    ds["rain"].attrs["long_name"] = "NWC SAF CRR convective rainfall intensity"
    ds["crr_quality"] = xr.DataArray(
        np.stack([f.quality for f in fields]), dims=("time", "y", "x"),
        attrs={
            "long_name": "NWC SAF CRR quality flags (0 = none / outside the CRR domain)",
            "flag_values": np.array([1, 2, 4, 8, 16, 24, 32], dtype="uint16"),
            "flag_meanings": (
                "nodata internal_consistency temporal_consistency good questionable bad interpolated"
            ),
            "grid_mapping": "crs",
        },
    )
    return ds
