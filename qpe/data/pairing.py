"""Pair an IR source with a rain source by time on one grid: the paired dataset used for training.

Times
    Each IR frame is matched to the nearest rain time within ``tolerance`` (SEVIRI's nominal or scan
    start times against radar's nominal times), one to one: when two IR frames compete for one rain
    time the closer wins. Unmatched frames on either side are dropped and counted (attributes
    ``pair_unmatched_ir`` and ``pair_unmatched_rain``). The paired ``time`` is the rain time (the
    label's time); the IR frame's own time is kept as ``ir_time(time)``.
Grids
    Both sources must be on the same grid, unless a target ``grid`` is given: then each is regridded
    onto it (:func:`qpe.data.regrid.regrid_dataset`, method ``auto``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import make_paired_dataset, validate_paired
from qpe.data.readers.inputs import append_history
from qpe.data.regrid import regrid_dataset
from qpe.errors import DatasetError, InputError

#: Largest IR-rain time difference for a match by default.
DEFAULT_TOLERANCE = pd.Timedelta(minutes=5)
#: Largest tolerance accepted: frames a day apart are not a pair.
MAX_TOLERANCE = pd.Timedelta(days=1)
#: Variables of the inputs that :func:`pair` rebuilds or recomputes rather than copies.
_REBUILT = ("ir", "rain", "rain_quality", "ir_mean", "ir_std", "wavelength", "ir_time")


def match_times(
    ir_times: np.ndarray, rain_times: np.ndarray, tolerance: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one nearest matching of two sorted time axes within ``tolerance``.

    Returns
    -------
    ir_index, rain_index : numpy.ndarray
        Indices of the matched pairs, both increasing.
    """
    ir_t = pd.DatetimeIndex(ir_times).values.astype("datetime64[ns]").astype("int64")
    rain_t = pd.DatetimeIndex(rain_times).values.astype("datetime64[ns]").astype("int64")
    tol = int(pd.Timedelta(tolerance).value)
    pos = np.searchsorted(rain_t, ir_t)
    left = np.clip(pos - 1, 0, rain_t.size - 1)
    right = np.clip(pos, 0, rain_t.size - 1)
    take_right = np.abs(rain_t[right] - ir_t) < np.abs(rain_t[left] - ir_t)
    nearest = np.where(take_right, right, left)
    gap = np.abs(rain_t[nearest] - ir_t)
    best: dict[int, tuple[int, int]] = {}  # rain index -> (gap, ir index), keep the closest IR frame
    for i in np.flatnonzero(gap <= tol):
        j = int(nearest[i])
        if j not in best or gap[i] < best[j][0]:
            best[j] = (int(gap[i]), int(i))
    rain_idx = np.array(sorted(best), dtype="int64")
    ir_idx = np.array([best[j][1] for j in rain_idx], dtype="int64")
    return ir_idx, rain_idx


def tolerance_from_minutes(minutes: float) -> pd.Timedelta:
    """The matching tolerance for a number of minutes (``--tolerance-min``).

    Raises
    ------
    InputError
        Not a number from 0 to :data:`MAX_TOLERANCE` (negative, NaN, infinite, too large).
    """
    most = MAX_TOLERANCE / pd.Timedelta(minutes=1)
    if not (isinstance(minutes, (int, float)) and 0 <= minutes <= most):
        raise InputError(f"time tolerance must be 0 to {most:g} minutes, got {minutes!r}")
    return pd.Timedelta(minutes=minutes)


def _validated(ds: xr.Dataset, role: str, variable: str) -> xr.Dataset:
    try:
        return validate_paired(ds, require=(variable,))
    except DatasetError as err:
        raise DatasetError(f"{role} dataset: {err}") from None


def pair(
    ir: xr.Dataset,
    rain: xr.Dataset,
    tolerance: pd.Timedelta = DEFAULT_TOLERANCE,
    grid: Grid | None = None,
) -> xr.Dataset:
    """Pair IR frames with rain fields by time on one grid.

    Parameters
    ----------
    ir : xarray.Dataset
        Paired-layout dataset with ``ir(time, channel, y, x)``, K.
    rain : xarray.Dataset
        Paired-layout dataset with ``rain(time, y, x)``, mm/h (and optionally ``rain_quality`` and
        per-time QC variables such as ``qc_outliers(time)``, which are carried over).
    tolerance : pandas.Timedelta
        Largest time difference for a match.
    grid : Grid, optional
        Target grid. Without it both inputs must already share a grid.

    Returns
    -------
    xarray.Dataset
        ``ir``, ``rain`` (+ ``rain_quality``, ``ir_time`` and the rain side's per-time QC variables)
        at the matched rain times, with history and matching counts in the attributes.

    Raises
    ------
    DatasetError
        An input is not in the layout (e.g. times not sorted), the grids differ and no target grid
        is given (the message names both grids), or no time matches.
    """
    ir = _validated(ir, "IR", "ir")
    rain = _validated(rain, "rain", "rain")
    tolerance = pd.Timedelta(tolerance)
    if tolerance < pd.Timedelta(0) or tolerance > MAX_TOLERANCE:
        raise DatasetError(f"time tolerance must be 0 to {MAX_TOLERANCE}, got {tolerance}")
    ir_grid, rain_grid = Grid.from_dataset(ir), Grid.from_dataset(rain)
    if grid is None:
        if not ir_grid.matches(rain_grid):
            raise DatasetError(
                f"IR and rain are on different grids (IR: {ir_grid.describe()}; "
                f"rain: {rain_grid.describe()}); give a target grid to regrid them"
            )
        grid = rain_grid
    ir_idx, rain_idx = match_times(ir["time"].values, rain["time"].values, tolerance)
    if ir_idx.size == 0:
        raise DatasetError(
            f"no IR time is within {tolerance} of a rain time (IR {_span(ir)}; rain {_span(rain)})"
        )
    ir_sel = ir.isel(time=ir_idx)[["ir"]]
    rain_vars = [v for v in rain.data_vars if v in ("rain", "rain_quality") or
                 (v not in _REBUILT and rain[v].dims[:1] == ("time",))]
    rain_sel = rain.isel(time=rain_idx)[rain_vars]
    if not ir_grid.matches(grid):
        ir_sel = regrid_dataset(ir_sel, grid, "auto")
    if not rain_grid.matches(grid):
        rain_sel = regrid_dataset(rain_sel, grid, "auto")

    unmatched_ir = int(ir.sizes["time"] - ir_idx.size)
    unmatched_rain = int(rain.sizes["time"] - rain_idx.size)
    attrs = {
        "source": f"IR: {ir.attrs.get('source', 'unknown')}; rain: {rain.attrs.get('source', 'unknown')}",
        "pair_tolerance_min": tolerance / pd.Timedelta(minutes=1),
        "pair_matched": int(ir_idx.size),
        "pair_unmatched_ir": unmatched_ir,
        "pair_unmatched_rain": unmatched_rain,
    }
    for key in ("qc_max_rate", "qc_outlier_action", "qc_min_quality", "rain_source"):
        if key in rain.attrs:
            attrs[key] = rain.attrs[key]
    if "qc_outliers" in rain_sel:
        attrs["qc_outliers_flagged"] = int(rain_sel["qc_outliers"].sum())
    attrs["history"] = append_history(
        "\n".join(h for h in (ir.attrs.get("history"), rain.attrs.get("history")) if h),
        f"paired IR and rain within {tolerance}: {ir_idx.size} matched, {unmatched_ir} IR and "
        f"{unmatched_rain} rain times unmatched (dropped), on {grid.describe()}",
    )
    out = make_paired_dataset(
        grid,
        rain_sel["time"].values,
        ir=ir_sel["ir"].values,
        channels=[str(c) for c in ir_sel["channel"].values],
        rain=rain_sel["rain"].values,
        rain_quality=rain_sel["rain_quality"].values if "rain_quality" in rain_sel else None,
        attrs=attrs,
    )
    out["ir_time"] = xr.DataArray(
        ir_sel["time"].values.astype("datetime64[ns]"), dims="time",
        attrs={"long_name": "time of the IR frame"},
    )
    for name in rain_vars:
        if name not in ("rain", "rain_quality"):
            var = rain_sel[name].drop_vars([c for c in rain_sel[name].coords if c not in rain_sel[name].dims])
            out[name] = var.assign_coords(time=out["time"]) if "time" in var.dims else var
    return out


def _span(ds: xr.Dataset) -> str:
    t = pd.DatetimeIndex(ds["time"].values)
    return f"{t[0]:%Y-%m-%dT%H:%M}..{t[-1]:%Y-%m-%dT%H:%M}, {t.size} times"

