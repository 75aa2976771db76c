"""Labelled coordinates shared by the scores: thresholds (mm/h), scales (km) and score attributes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.errors import InputError


def threshold_coordinate(thresholds: Sequence[float]) -> xr.DataArray:
    """The ``threshold`` coordinate, mm/h; raises on an empty or repeated list."""
    values = np.atleast_1d(np.asarray(thresholds, dtype="float64"))
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise InputError("thresholds must be a non-empty list of finite rain rates in mm/h")
    if np.unique(values).size != values.size:
        raise InputError(f"thresholds are repeated: {values.tolist()}")
    return xr.DataArray(values, dims="threshold", attrs={"units": "mm/h", "long_name": "rain-rate threshold"})


def scale_coordinate(scales_km: Sequence[float]) -> xr.DataArray:
    """The ``scale`` coordinate, km (neighbourhood width)."""
    values = np.atleast_1d(np.asarray(scales_km, dtype="float64"))
    if values.ndim != 1 or values.size == 0 or not (values > 0).all():
        raise InputError("scales must be a non-empty list of positive lengths in km")
    if np.unique(values).size != values.size:
        raise InputError(f"scales are repeated: {values.tolist()}")
    return xr.DataArray(values, dims="scale", attrs={"units": "km", "long_name": "neighbourhood width"})


def score_attrs(long_name: str, units: str = "1", pysteps: str | None = None, **extra) -> dict:
    """Attributes of a score variable: long name, units and the pysteps function it matches."""
    attrs = {"long_name": long_name, "units": units, **extra}
    if pysteps:
        attrs["pysteps"] = pysteps
    return attrs


def as_score(values: xr.Variable, like: xr.Dataset, **attrs) -> xr.DataArray:
    """Label a score computed on :class:`xarray.Variable` objects with the coordinates of ``like``.

    Arithmetic on Variables broadcasts by dimension name without index alignment, which is what makes
    computing many scores from one statistics Dataset cheap.
    """
    dims = set(values.dims)
    coords = {name: c for name, c in like.coords.items() if set(c.dims) <= dims}
    return xr.DataArray(values, coords=coords, attrs=score_attrs(**attrs))
