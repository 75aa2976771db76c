"""Multivariate ensemble scores of whole fields: energy score and variogram score.

Only for estimates with a ``member`` dimension. The CRPS and the rank histogram judge each pixel
alone: an "ensemble" made by shuffling the members independently at every pixel keeps them exactly,
while its members are noise without spatial structure. These scores take each member as one field
(a vector over the valid pixels) and so see what a spatially coherent ensemble must get right.

* **Energy score** (``energy_score``; Gneiting and Raftery 2007), fair form for M members (Ferro 2014):
  ``ES = 1/M sum_i ||x_i - y|| - 1/(2 M (M - 1)) sum_ij ||x_i - x_j||``, with ``||v||`` the root mean
  square over the valid pixels of a field, ``sqrt(mean v^2)`` (the Euclidean norm divided by
  ``sqrt(N)``, so that fields and regions of different sizes compare), mm/h. One value per field
  (time), averaged over fields. For a single pixel it is the fair CRPS.
* **Variogram score** of order p (``variogram_score``; Scheuerer and Hamill 2015, p = 0.5 by default):
  ``VS = sum_ij w_ij (|y_i - y_j|^p - 1/M sum_m |x_mi - x_mj|^p)^2 / sum_ij w_ij``, (mm/h)^(2p) (mm/h
  for p = 0.5). Every pair of pixels would be O(N^2) (3 10^10 pairs on 512 x 512), so the pairs are
  those at a set of *lags* along the grid axes: each valid pixel with the pixel ``d`` to its east and
  the pixel ``d`` to its south, for ``d`` = each lag in pixels (default 2, 4, 8, 16, 32 and 64 km,
  ``floor(lag / pixel + 0.5)`` pixels), both pixels valid; ``w_ij`` = 1 for those pairs and 0 for all
  others. ``variogram_score`` pools the pairs of every lag (each lag has about the same number of
  pairs, so about the same weight), ``variogram_score_lag`` gives each lag alone: the scales at which
  the ensemble's spatial variability is wrong. Summed over fields (pairs of all fields pooled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.errors import DatasetError, InputError
from qpe.verify.coords import score_attrs
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: Default order of the variogram score (Scheuerer and Hamill 2015).
DEFAULT_VARIOGRAM_ORDER = 0.5
#: Default lags of the variogram-score pairs, km (1 .. 32 pixels on the 2 km OPERA grid).
DEFAULT_VARIOGRAM_LAGS_KM: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


# -- per-field kernels (members along axis 0) ---------------------------------------------------------------
def energy_score_value(members: np.ndarray, obs: np.ndarray) -> float:
    """Fair energy score of one field, mm/h (RMS norm over its pixels; NaN for one member or no pixel).

    Parameters
    ----------
    members : numpy.ndarray
        (member, pixel) rain rate, mm/h.
    obs : numpy.ndarray
        (pixel,) rain rate, mm/h.
    """
    n_members, n_pixels = members.shape
    if n_members < 2 or n_pixels == 0:
        return np.nan
    error = np.sqrt(np.mean((members - obs) ** 2, axis=1)).sum()
    pairs = sum(
        np.sqrt(np.mean((members[i] - members[i + 1 :]) ** 2, axis=1)).sum() for i in range(n_members - 1)
    )  # each unordered pair once: sum_ij = 2 * pairs
    return float(error / n_members - pairs / (n_members * (n_members - 1)))


def variogram_sums(
    members: np.ndarray, obs: np.ndarray, valid: np.ndarray, offsets: Sequence[tuple[int, int]], order: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``(|y_i - y_j|^p - mean_m |x_mi - x_mj|^p)^2`` over the valid pixel pairs of each offset.

    Parameters
    ----------
    members : numpy.ndarray
        (member, y, x) rain rate, mm/h.
    obs : numpy.ndarray
        (y, x) rain rate, mm/h.
    valid : numpy.ndarray
        (y, x) bool: the pixels that may be paired.
    offsets : sequence of (int, int)
        Pixel offsets (dy, dx): pixel (i, j) is paired with (i + dy, j + dx). Give each unordered pair
        once (e.g. dy > 0, or dy = 0 and dx > 0).
    order : float
        p, the order of the variogram.

    Returns
    -------
    sums, counts : numpy.ndarray
        (offset,) sum of the squared variogram differences, (mm/h)^(2p), and number of pairs.
    """
    ny, nx = obs.shape
    sums, counts = np.zeros(len(offsets)), np.zeros(len(offsets))
    power = np.sqrt if order == 0.5 else (lambda v, out: np.power(v, order, out=out))
    for k, (dy, dx) in enumerate(offsets):
        if abs(dy) >= ny or abs(dx) >= nx:
            continue
        first = (slice(max(0, -dy), ny - max(0, dy)), slice(max(0, -dx), nx - max(0, dx)))
        second = (slice(max(0, dy), ny - max(0, -dy)), slice(max(0, dx), nx - max(0, -dx)))
        both = valid[first] & valid[second]
        n_pairs = np.count_nonzero(both)
        if n_pairs == 0:
            continue
        # whole slices (invalid pixels hold finite values) and the pair mask last: no fancy indexing
        gap = members[(slice(None), *first)] - members[(slice(None), *second)]
        forecast = power(np.abs(gap, out=gap), out=gap).mean(axis=0)
        difference = power(np.abs(obs[first] - obs[second]), out=None) - forecast
        squared = np.square(difference, out=difference)
        sums[k], counts[k] = float(np.sum(squared, where=both)), n_pairs
    return sums, counts


def lag_offsets(lags_km: Sequence[float], pixel_km: float) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Lags in whole pixels, ``floor(lag / pixel + 0.5)``, and each lag's offsets (east and south).

    Raises
    ------
    InputError
        A lag is shorter than half a pixel.
    """
    lags = np.asarray(lags_km, dtype="float64")
    if lags.ndim != 1 or lags.size == 0 or not np.isfinite(lags).all():
        raise InputError("variogram lags must be a non-empty list of lengths in km")
    pixels = np.floor(lags / pixel_km + 0.5).astype(int)
    if (pixels < 1).any():
        raise InputError(
            f"variogram lag {lags[pixels < 1][0]:g} km is shorter than half a pixel ({pixel_km:g} km)"
        )
    return pixels, [[(0, int(d)), (int(d), 0)] for d in pixels]


# -- statistics ---------------------------------------------------------------------------------------------
def multivariate_statistics(
    pair: FieldPair,
    lags_km: Sequence[float] = DEFAULT_VARIOGRAM_LAGS_KM,
    order: float = DEFAULT_VARIOGRAM_ORDER,
) -> xr.Dataset:
    """Per-field energy score and variogram sums.

    Returns
    -------
    xarray.Dataset
        ``sum_energy`` (time, the fair energy score of each field, mm/h), ``n_fields`` (time, 1 for a
        field with valid pixels), ``sum_variogram`` and ``n_pairs`` (time, lag; lag in km with its
        ``lag_pixels``).
    """
    if not pair.is_ensemble:
        raise DatasetError("multivariate ensemble scores need an estimate with a 'member' dimension")
    if not order > 0:
        raise InputError(f"the variogram order must be positive, got {order}")
    pixels, offsets = lag_offsets(lags_km, pair.pixel_km)
    n_times = pair.radar.shape[0]
    energy, used = np.zeros(n_times), np.zeros(n_times)
    variogram, pairs = np.zeros((n_times, pixels.size)), np.zeros((n_times, pixels.size))
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        members = pair.estimate[:, t].astype("float64")
        obs = pair.radar[t].astype("float64")
        energy[t], used[t] = energy_score_value(members[:, valid], obs[valid]), 1.0
        for k, lag in enumerate(offsets):
            sums, counts = variogram_sums(members, obs, valid, lag, order)
            variogram[t, k], pairs[t, k] = sums.sum(), counts.sum()
    lag = {
        "lag": ("lag", np.asarray(lags_km, dtype="float64"), {"units": "km", "long_name": "pixel-pair lag"}),
        "lag_pixels": ("lag", pixels, {"units": "pixel"}),
    }
    return xr.Dataset(
        {
            "sum_energy": pair.radar_labelled(energy, ()),
            "n_fields": pair.radar_labelled(used, ()),
            "sum_variogram": pair.radar_labelled(variogram, ("lag",), lag),
            "n_pairs": pair.radar_labelled(pairs, ("lag",), lag),
        },
        attrs={"family": "multivariate", "variogram_order": float(order)},
    )


def multivariate_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "multivariate"})


def multivariate_accum(
    stats: xr.Dataset,
    pair: FieldPair,
    lags_km: Sequence[float] = DEFAULT_VARIOGRAM_LAGS_KM,
    order: float = DEFAULT_VARIOGRAM_ORDER,
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, multivariate_statistics(pair, lags_km, order))


def multivariate_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


# -- scores -------------------------------------------------------------------------------------------------
def energy_score(stats: xr.Dataset) -> xr.DataArray:
    """Mean over fields of the fair energy score (RMS norm over the valid pixels), mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (stats["sum_energy"] / stats["n_fields"]).assign_attrs(
            score_attrs("fair energy score of the field (RMS norm over valid pixels)", "mm/h")
        )


def _variogram_units(stats: xr.Dataset) -> str:
    order = float(stats.attrs.get("variogram_order", DEFAULT_VARIOGRAM_ORDER))
    return "mm/h" if order == 0.5 else f"(mm/h)^{2 * order:g}"


def variogram_score(stats: xr.Dataset) -> xr.DataArray:
    """Variogram score of order p over the pixel pairs of every lag (pooled), (mm/h)^(2p)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = stats["sum_variogram"].sum("lag") / stats["n_pairs"].sum("lag")
    order = float(stats.attrs.get("variogram_order", DEFAULT_VARIOGRAM_ORDER))
    return value.assign_attrs(
        score_attrs(
            f"variogram score of order {order:g} (pairs at the lags, pooled)", _variogram_units(stats)
        )
    )


def variogram_score_by_lag(stats: xr.Dataset) -> xr.DataArray:
    """Variogram score of the pixel pairs at each lag, (lag), (mm/h)^(2p)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = stats["sum_variogram"] / stats["n_pairs"]
    return value.assign_attrs(
        score_attrs("variogram score of the pixel pairs at the lag", _variogram_units(stats))
    )


def multivariate_compute(stats: xr.Dataset) -> xr.Dataset:
    """``energy_score``, ``variogram_score`` and ``variogram_score_lag`` (lag)."""
    return xr.Dataset(
        {
            "energy_score": energy_score(stats),
            "variogram_score": variogram_score(stats),
            "variogram_score_lag": variogram_score_by_lag(stats),
        }
    )


def multivariate_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    lags_km: Sequence[float] = DEFAULT_VARIOGRAM_LAGS_KM,
    order: float = DEFAULT_VARIOGRAM_ORDER,
) -> xr.Dataset:
    """Energy and variogram scores of an ensemble estimate against radar, over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        (member, [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.
    lags_km : sequence of float
        Lags of the variogram pixel pairs, km.
    order : float
        Order p of the variogram score.
    """
    pair = pair_fields(estimate, radar, region)
    return multivariate_compute(multivariate_accum(multivariate_init(), pair, lags_km, order))
