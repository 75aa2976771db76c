"""SAL (structure, amplitude, location; Wernli et al. 2008) through pysteps' object detection.

The object identification of pysteps (:mod:`pysteps.feature.tstorm`, watershed segmentation above
``thr_factor * quantile(rain, thr_quantile)``, needing scikit-image) is the costly part and is not
worth re-implementing; this module wraps it. It detects the objects of each field *once* (pysteps'
:func:`~pysteps.verification.salscores.sal` detects them twice per field, and again for the radar of
every member of an ensemble), then forms S, A and L exactly as pysteps does, so the values equal
``pysteps.verification.salscores.sal``. It still costs about a second per 512 x 512 field pair, so
the accumulator leaves SAL out unless asked for (``families`` including ``"sal"``).

Invalid pixels (no radar, NaN estimate, outside the region) are NaN in both fields (pysteps ignores
NaN); the fields are the region's bounding rectangle. Over many fields the mean of each component is
reported (fields where a component is undefined, e.g. no object, are left out of its mean).
"""

from __future__ import annotations

import warnings
from math import hypot, sqrt

import numpy as np
import xarray as xr
from scipy.ndimage import center_of_mass

from qpe.errors import InputError
from qpe.verify.coords import score_attrs
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: pysteps' defaults: objects enclosed by thr_factor * quantile(wet rain, thr_quantile).
DEFAULT_THR_FACTOR = 0.067
DEFAULT_THR_QUANTILE = 0.95
_COMPONENTS = ("S", "A", "L")


def _salscores():
    from pysteps.verification import salscores

    if not salscores.SKIMAGE_IMPORTED:
        raise InputError("SAL needs scikit-image (pysteps' object detection): pip install scikit-image")
    return salscores


class _Objects:
    """The precipitation objects of one field and what S and L need of them."""

    def __init__(self, field: np.ndarray, thr_factor: float, thr_quantile: float):
        salscores = _salscores()
        self.field = field
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty / all-NaN fields: no objects
            self.table = salscores._sal_detect_objects(field, thr_factor, thr_quantile, None)
            self.scaled_volume = float(salscores._sal_scaled_volume(self.table))
            self.centre = center_of_mass(np.nan_to_num(field))

    def weighted_distance(self) -> float:
        """Rain-weighted mean distance of the objects' centroids from the field's centre of mass, px."""
        if len(self.table) == 0:
            return np.nan
        sums = np.array([np.nansum(image) for image in self.table["intensity_image"]])
        dy = self.table["weighted_centroid-0"].to_numpy() - self.centre[0]
        dx = self.table["weighted_centroid-1"].to_numpy() - self.centre[1]
        return float(np.nansum(sums * np.sqrt(dx**2 + dy**2)) / np.nansum(sums))


def sal_components(
    estimate: np.ndarray,
    radar: np.ndarray,
    thr_factor: float = DEFAULT_THR_FACTOR,
    thr_quantile: float = DEFAULT_THR_QUANTILE,
    radar_objects: _Objects | None = None,
) -> tuple[float, float, float]:
    """(S, A, L) of one (y, x) field pair with NaN where there is no data, as pysteps ``sal``."""
    obs = radar_objects or _Objects(radar, thr_factor, thr_quantile)
    fct = _Objects(estimate, thr_factor, thr_quantile)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        structure = (fct.scaled_volume - obs.scaled_volume) / (0.5 * (fct.scaled_volume + obs.scaled_volume))
        mean_obs, mean_fct = np.nanmean(radar), np.nanmean(estimate)
        amplitude = (mean_fct - mean_obs) / (0.5 * (mean_fct + mean_obs))
        max_distance = sqrt(radar.shape[0] ** 2 + radar.shape[1] ** 2)
        l1 = hypot(fct.centre[1] - obs.centre[1], fct.centre[0] - obs.centre[0]) / max_distance
        l2 = 2 * abs(obs.weighted_distance() - fct.weighted_distance()) / max_distance
    return float(structure), float(amplitude), float(l1 + l2)


def sal_statistics(
    pair: FieldPair, thr_factor: float = DEFAULT_THR_FACTOR, thr_quantile: float = DEFAULT_THR_QUANTILE
) -> xr.Dataset:
    """S, A, L of every field as sums and counts, dims ``([member,] time)``."""
    n_members, n_times = pair.estimate.shape[:2]
    values = np.full((3, n_members, n_times), np.nan)
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        radar = np.where(valid, pair.radar[t], np.nan)
        radar_objects = _Objects(radar, thr_factor, thr_quantile)
        for m in range(n_members):
            estimate = np.where(valid, pair.estimate[m, t], np.nan)
            values[:, m, t] = sal_components(estimate, radar, thr_factor, thr_quantile, radar_objects)
    data = {}
    for i, name in enumerate(_COMPONENTS):
        data[f"sum_{name}"] = pair.labelled(np.nan_to_num(values[i], nan=0.0), ())
        data[f"n_{name}"] = pair.labelled(np.isfinite(values[i]).astype("float64"), ())
    return xr.Dataset(data, attrs={"family": "sal"})


def sal_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "sal"})


def sal_accum(
    stats: xr.Dataset,
    pair: FieldPair,
    thr_factor: float = DEFAULT_THR_FACTOR,
    thr_quantile: float = DEFAULT_THR_QUANTILE,
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, sal_statistics(pair, thr_factor, thr_quantile))


def sal_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


_LONG_NAMES = {"S": "SAL structure", "A": "SAL amplitude", "L": "SAL location"}


def sal_compute(stats: xr.Dataset) -> xr.Dataset:
    """Mean ``SAL_S``, ``SAL_A``, ``SAL_L`` over the fields where each is defined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return xr.Dataset(
            {
                f"SAL_{name}": (stats[f"sum_{name}"] / stats[f"n_{name}"]).assign_attrs(
                    score_attrs(_LONG_NAMES[name], "1", f"salscores.sal {name}")
                )
                for name in _COMPONENTS
            }
        )


def sal(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    thr_factor: float = DEFAULT_THR_FACTOR,
    thr_quantile: float = DEFAULT_THR_QUANTILE,
) -> xr.Dataset:
    """SAL of an estimate against radar (mean over fields), as ``pysteps.verification.salscores.sal``.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    """
    pair = pair_fields(estimate, radar, region)
    return sal_compute(sal_accum(sal_init(), pair, thr_factor, thr_quantile))
