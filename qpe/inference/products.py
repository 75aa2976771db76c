"""Fields derived from an ensemble estimate: member, ensemble mean, exceedance probability, spread.

What a map of an estimate shows, defined once so that the dashboard, the CLI figures and notebooks
draw the same thing, and on the same definitions as the scores of :mod:`qpe.verify.ensemble`:

* ``ensemble_mean``: the mean over members, mm/h;
* ``exceedance_probability``: the fraction of members ``>= threshold`` (pysteps
  ``ensemblestats.excprob``, the forecast probability of the reliability diagram), 1;
* ``ensemble_spread``: the per-pixel standard deviation over members (ddof = 1, so that the square
  root of its spatial mean square is the ``spread`` score), mm/h; 0 for a single member;
* ``rain_difference``: estimate minus radar, mm/h.

A pixel where any member is NaN is NaN in every product, as it is excluded from every score.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from qpe.data.paired import RAIN_UNITS, rain_attrs
from qpe.errors import DatasetError, InputError

#: Map products of an estimate, by name (what the dashboard's "view" selector offers).
PRODUCTS = ("member", "mean", "probability")


def _check_ensemble(rain: xr.DataArray) -> None:
    if not isinstance(rain, xr.DataArray) or "member" not in rain.dims:
        dims = tuple(rain.dims) if isinstance(rain, xr.DataArray) else type(rain).__name__
        raise DatasetError(f"an ensemble estimate needs a 'member' dimension, got {dims}")
    if str(rain.attrs.get("units", "")).strip() not in RAIN_UNITS:
        raise DatasetError(f"estimate is in {rain.attrs.get('units')!r}; expected rain rate in mm/h")


def _any_member_missing(rain: xr.DataArray) -> xr.DataArray:
    return rain.isnull().any("member")


def ensemble_mean(rain: xr.DataArray) -> xr.DataArray:
    """Mean over members.

    Parameters
    ----------
    rain : xarray.DataArray
        (member, ...) rain rate, mm/h.

    Returns
    -------
    xarray.DataArray
        (...) mm/h; NaN where any member is NaN.
    """
    _check_ensemble(rain)
    mean = rain.mean("member", skipna=False)
    return mean.assign_attrs({**rain_attrs(), "long_name": "ensemble mean rain rate"})


def exceedance_probability(rain: xr.DataArray, threshold: float) -> xr.DataArray:
    """Fraction of members at or above a threshold (pysteps ``excprob``).

    Parameters
    ----------
    rain : xarray.DataArray
        (member, ...) rain rate, mm/h.
    threshold : float
        mm/h.

    Returns
    -------
    xarray.DataArray
        (...) probability in [0, 1] (steps of 1 / members), with a scalar ``threshold`` coordinate;
        NaN where any member is NaN.
    """
    _check_ensemble(rain)
    threshold = float(threshold)
    if not np.isfinite(threshold) or threshold < 0:
        raise InputError(f"exceedance threshold must be a rain rate >= 0 mm/h, got {threshold}")
    # compare in the field's precision, as the scores do (float32(0.1) is not above 0.1)
    level = np.asarray(threshold, dtype=rain.dtype if rain.dtype.kind == "f" else "float64")
    probability = (rain >= level).mean("member").where(~_any_member_missing(rain))
    return probability.assign_coords(threshold=threshold).assign_attrs(
        units="1", long_name=f"probability of rain rate >= {threshold:g} mm/h"
    )


def ensemble_spread(rain: xr.DataArray) -> xr.DataArray:
    """Standard deviation over members (ddof = 1), per pixel.

    Parameters
    ----------
    rain : xarray.DataArray
        (member, ...) rain rate, mm/h.

    Returns
    -------
    xarray.DataArray
        (...) mm/h; 0 everywhere for a single member; NaN where any member is NaN.
    """
    _check_ensemble(rain)
    if rain.sizes["member"] < 2:
        spread = xr.zeros_like(rain.isel(member=0, drop=True)).where(~_any_member_missing(rain))
    else:
        spread = rain.std("member", ddof=1, skipna=False)
    return spread.assign_attrs({**rain_attrs(), "long_name": "ensemble spread (standard deviation)"})


def rain_difference(estimate: xr.DataArray, radar: xr.DataArray) -> xr.DataArray:
    """Estimate minus radar, mm/h (positive: the estimate rains more); NaN where either is NaN.

    Both fields must be on the same x/y coordinates (no silent alignment).
    """
    for name, field in (("estimate", estimate), ("radar", radar)):
        if str(field.attrs.get("units", "")).strip() not in RAIN_UNITS:
            raise DatasetError(f"{name} is in {field.attrs.get('units')!r}; expected rain rate in mm/h")
    for coord in ("x", "y"):
        if estimate.sizes.get(coord) != radar.sizes.get(coord) or not np.allclose(
            estimate[coord].values, radar[coord].values
        ):
            raise DatasetError(f"estimate and radar are on different grids (their {coord!r} differ)")
    difference = estimate - radar.assign_coords(x=estimate["x"], y=estimate["y"])
    return difference.assign_attrs({**rain_attrs(), "long_name": "estimate minus radar rain rate"})
