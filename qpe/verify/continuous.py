"""Continuous scores of rain rate: mean error, mean absolute error, RMSE and Pearson correlation.

Definitions are those of :func:`pysteps.verification.detcontscores.det_cont_fct` (``ME``, ``MAE``,
``RMSE``, ``corr_p``) over the valid pixels. The statistics are plain sums (count, sums of estimate,
radar, their squares and product, of the error, its square and its absolute value), which add across
batches; the correlation is formed from them at the end (``cov = E[eo] - E[e]E[o]``), which for rain
(non-negative, mean well below its standard deviation) loses no useful precision in float64.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from qpe.verify.coords import as_score
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

_SUMS = (
    "n",
    "sum_estimate",
    "sum_radar",
    "sum_estimate_sq",
    "sum_radar_sq",
    "sum_product",
    "sum_error",
    "sum_error_sq",
    "sum_abs_error",
)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's sum of products avoids BLAS, whose threading is slow for single dot products here
    return float(np.einsum("i,i->", a, b))


def continuous_statistics(pair: FieldPair) -> xr.Dataset:
    """Sums over the valid pixels of every field, dims ``([member,] time)``.

    For a weighted pair (:mod:`qpe.verify.pairs`) every sum is weighted (``n`` is the sum of the weights),
    so the scores are weighted means.
    """
    n_members, n_times = pair.estimate.shape[:2]
    sums = np.zeros((len(_SUMS), n_members, n_times))
    for t in range(n_times):
        o = np.asarray(pair.radar[t], dtype="float64").ravel()
        if pair.weight is not None:
            sums[:, :, t] = _weighted_sums(pair.weight[t].ravel(), o, pair.estimate[:, t]).T
            continue
        n = float(np.count_nonzero(pair.valid[t]))
        sum_o, sum_oo = float(o.sum()), _dot(o, o)
        for m in range(n_members):
            e = np.asarray(pair.estimate[m, t], dtype="float64").ravel()
            d = e - o
            sums[:, m, t] = (
                n,
                e.sum(),
                sum_o,
                _dot(e, e),
                sum_oo,
                _dot(e, o),
                d.sum(),
                _dot(d, d),
                np.abs(d).sum(),
            )
    return xr.Dataset(
        {name: pair.labelled(sums[i], ()) for i, name in enumerate(_SUMS)}, attrs={"family": "continuous"}
    )


def _weighted_sums(w: np.ndarray, o: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """The sums of :data:`_SUMS` weighted by ``w`` (pixel,), for each member of ``estimates`` (member, y, x).

    Each is the unweighted expression with one factor multiplied by ``w`` (``(w * e).sum()`` for
    ``e.sum()``), so weights of 1 give the unweighted sums bit for bit. Returns (member, statistic).
    """
    wo = w * o
    n, sum_o, sum_oo = float(w.sum()), float(wo.sum()), _dot(wo, o)
    out = []
    for field in estimates:
        e = np.asarray(field, dtype="float64").ravel()
        d = e - o
        we, wd = w * e, w * d
        out.append((n, we.sum(), sum_o, _dot(we, e), sum_oo, _dot(we, o), wd.sum(), _dot(wd, d),
                    (w * np.abs(d)).sum()))
    return np.array(out)


def continuous_init() -> xr.Dataset:
    """Empty statistics of the continuous scores."""
    return xr.Dataset(attrs={"family": "continuous"})


def continuous_accum(stats: xr.Dataset, pair: FieldPair) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, continuous_statistics(pair))


def continuous_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def _sums(stats: xr.Dataset, *names: str) -> tuple[xr.Variable, ...]:
    return tuple(stats[name].variable for name in names)


def mean_error(stats: xr.Dataset) -> xr.DataArray:
    """ME = mean(estimate - radar), mm/h."""
    total, n = _sums(stats, "sum_error", "n")
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(
            total / n,
            stats,
            long_name="mean error (estimate - radar)",
            units="mm/h",
            pysteps="det_cont_fct ME",
        )


def mean_absolute_error(stats: xr.Dataset) -> xr.DataArray:
    """MAE = mean(|estimate - radar|), mm/h."""
    total, n = _sums(stats, "sum_abs_error", "n")
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(
            total / n, stats, long_name="mean absolute error", units="mm/h", pysteps="det_cont_fct MAE"
        )


def root_mean_square_error(stats: xr.Dataset) -> xr.DataArray:
    """RMSE = sqrt(mean((estimate - radar)^2)), mm/h."""
    total, n = _sums(stats, "sum_error_sq", "n")
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(
            np.sqrt(total / n),
            stats,
            long_name="root mean square error",
            units="mm/h",
            pysteps="det_cont_fct RMSE",
        )


def correlation(stats: xr.Dataset) -> xr.DataArray:
    """Pearson correlation of estimate and radar."""
    n, se, so, see, soo, seo = _sums(
        stats, "n", "sum_estimate", "sum_radar", "sum_estimate_sq", "sum_radar_sq", "sum_product"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_e, mean_o = se / n, so / n
        cov = seo / n - mean_e * mean_o
        var_e = see / n - mean_e**2
        var_o = soo / n - mean_o**2
        return as_score(
            cov / np.sqrt(var_e * var_o),
            stats,
            long_name="Pearson correlation",
            pysteps="det_cont_fct corr_p",
        )


#: Score name -> function, in the order :func:`continuous_compute` returns them.
CONTINUOUS_SCORES = {
    "ME": mean_error,
    "MAE": mean_absolute_error,
    "RMSE": root_mean_square_error,
    "CORR": correlation,
}


def continuous_compute(stats: xr.Dataset) -> xr.Dataset:
    """ME, MAE, RMSE and CORR, dims ``([member,])``."""
    return xr.Dataset({name: fn(stats) for name, fn in CONTINUOUS_SCORES.items()})


def continuous_scores(estimate: xr.DataArray, radar: xr.DataArray, region: Region = None) -> xr.Dataset:
    """ME, MAE, RMSE (mm/h) and CORR of an estimate against radar over all its valid pixels.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.
    """
    return continuous_compute(continuous_accum(continuous_init(), pair_fields(estimate, radar, region)))
