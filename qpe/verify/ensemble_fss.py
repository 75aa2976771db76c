"""Ensemble FSS: the probabilistic FSS of the ensemble and the FSS of the ensemble mean.

Only for estimates with a ``member`` dimension. Three FSS of an ensemble, side by side (Necker et al.
2024, "The fractions skill score for ensemble forecast verification", QJRMS 150, 4457-4477; the
``pfss`` of pysteps pull request 523):

* **member FSS** — the :mod:`~qpe.verify.fss` family's ``FSS`` with its ``member`` dimension; its mean
  over members (``scores.csv``) is Necker et al.'s *average* FSS.
* **ensemble FSS** (``FSS_ensemble``, their *probabilistic* FSS) — the forecast fraction of a pixel is
  the fraction of members with ``rain >= threshold`` in its window: the window mean of the member
  exceedance probability ``P = #(members >= threshold) / M`` (pysteps
  ``ensemblestats.excprob``), i.e. the mean of the members' fractions. It credits an ensemble for
  spreading its probability over where the rain may be, which no single member can do.
* **ensemble-mean FSS** (``FSS_ensemble_mean``) — the FSS of the ensemble-mean field (pysteps
  ``ensemblestats.mean``), thresholded like a deterministic estimate. The mean of a spread ensemble is
  smooth: too wide above low thresholds, too small (or absent) above high ones.

Everything else is the :mod:`~qpe.verify.fss` convention: event ``rain >= threshold``, windows of
``floor(scale / pixel + 0.5)`` pixels with zero padding outside the domain,
``FSS = 1 - (sum S_f^2 - 2 sum S_f S_o + sum S_o^2) / (sum S_f^2 + sum S_o^2)`` from sums accumulated
over fields, invalid pixels non-events in both fields and left out of the sums. The window counts
come from the same summed-area tables, here of the number of members above the threshold (int32:
exact while ``M w^2 < 2^31``), and their products are exact int64 sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.errors import DatasetError
from qpe.verify.coords import scale_coordinate, score_attrs, threshold_coordinate
from qpe.verify.fss import _SummedAreaTables, fractions_skill_score
from qpe.verify.pairs import (
    DEFAULT_SCALES_KM,
    DEFAULT_THRESHOLDS,
    FieldPair,
    Region,
    field_levels,
    pair_fields,
    window_sizes,
)
from qpe.verify.statistics import accumulate, add_statistics

#: The two forecasts scored, along the ``forecast`` dimension of the statistics.
FORECASTS = ("ensemble", "ensemble_mean")


def _window_sum_product(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Exact sum of ``a * b`` (int64) of two window-count arrays; 0 when either has no events."""
    if a is None or b is None:
        return 0.0
    return float(np.multiply(a, b, dtype=np.int64).sum())


def ensemble_fss_statistics(
    pair: FieldPair, thresholds: Sequence[float], scales_km: Sequence[float]
) -> xr.Dataset:
    """Fraction sums of the ensemble probability and of the ensemble mean, per field.

    Returns
    -------
    xarray.Dataset
        ``sum_fct_sq`` and ``sum_fct_obs`` (time, forecast, threshold, scale) with ``forecast`` =
        ``ensemble`` (member exceedance fraction) and ``ensemble_mean``; ``sum_obs_sq`` (time,
        threshold, scale); ``n_obs_events`` (time, threshold) and ``n_valid`` (time), as in the
        :mod:`~qpe.verify.fss` statistics.
    """
    if not pair.is_ensemble:
        raise DatasetError("the ensemble FSS needs an estimate with a 'member' dimension")
    thr = threshold_coordinate(thresholds)
    scale = scale_coordinate(scales_km)
    windows = window_sizes(scale.values, pair.pixel_km)
    levels = thr.values[:, None, None]
    n_members, n_times = pair.estimate.shape[:2]
    fct_sq = np.zeros((n_times, len(FORECASTS), thr.size, windows.size))
    fct_obs = np.zeros_like(fct_sq)
    obs_sq = np.zeros((n_times, thr.size, windows.size))
    n_obs = np.zeros((n_times, thr.size))
    pad = int(windows.max())
    norms = np.array([n_members, 1.0])  # window counts -> fractions: members, then the single mean field
    for t in range(n_times):
        valid = pair.valid[t]
        mask = None if valid.all() else valid.astype(np.int32)
        members = pair.estimate[:, t]
        mean = members.mean(axis=0)  # in the field's precision, like pysteps' ensemblestats.mean
        planes = np.empty((3, thr.size, *pair.shape), dtype=np.int32)  # radar, member count, mean
        planes[0] = (pair.radar[t] >= field_levels(levels, pair.radar)) & valid
        planes[1] = ((members[:, None] >= field_levels(levels, members)[None]) & valid).sum(axis=0)
        planes[2] = (mean >= field_levels(levels, mean)) & valid
        n_obs[t] = np.count_nonzero(planes[0], axis=(1, 2))
        tables = _SummedAreaTables(planes, pad, dtype=np.int32)
        events = tables.any_events()
        for k in range(thr.size):
            for j, w in enumerate(windows.tolist()):
                obs = tables.box_sums((0, k), w, mask) if events[0, k] else None
                obs_sq[t, k, j] = _window_sum_product(obs, obs) / float(w) ** 4
                for f in range(len(FORECASTS)):
                    fct = tables.box_sums((f + 1, k), w, mask) if events[f + 1, k] else None
                    fct_sq[t, f, k, j] = _window_sum_product(fct, fct) / (norms[f] ** 2 * float(w) ** 4)
                    fct_obs[t, f, k, j] = _window_sum_product(fct, obs) / (norms[f] * float(w) ** 4)
    coords = {
        "time": pair.time,
        "forecast": list(FORECASTS),
        "threshold": thr,
        "scale": scale,
        "window": ("scale", windows, {"units": "pixel"}),
    }
    dims = ("time", "forecast", "threshold", "scale")
    radar_dims = ("time", "threshold", "scale")
    radar_coords = {k: v for k, v in coords.items() if k != "forecast"}
    data = {
        "sum_fct_sq": xr.DataArray(fct_sq, dims=dims, coords=coords),
        "sum_fct_obs": xr.DataArray(fct_obs, dims=dims, coords=coords),
        "sum_obs_sq": xr.DataArray(obs_sq, dims=radar_dims, coords=radar_coords),
        "n_obs_events": pair.radar_labelled(n_obs, ("threshold",), {"threshold": thr}),
        "n_valid": pair.radar_labelled(pair.valid.sum(axis=(1, 2)).astype("float64"), ()),
    }
    return xr.Dataset(data, attrs={"family": "ensemble_fss"})


def ensemble_fss_init(
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS, scales_km: Sequence[float] = DEFAULT_SCALES_KM
) -> xr.Dataset:
    """Empty ensemble-FSS statistics for thresholds (mm/h) x scales (km)."""
    return xr.Dataset(
        coords={"threshold": threshold_coordinate(thresholds), "scale": scale_coordinate(scales_km)},
        attrs={"family": "ensemble_fss"},
    )


def ensemble_fss_accum(stats: xr.Dataset, pair: FieldPair) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, ensemble_fss_statistics(pair, stats["threshold"].values, stats["scale"].values))


def ensemble_fss_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def probabilistic_fss(stats: xr.Dataset) -> xr.DataArray:
    """FSS of the ensemble exceedance probability (Necker et al. 2024 pFSS), (threshold, scale)."""
    return (
        fractions_skill_score(stats.sel(forecast="ensemble", drop=True))
        .drop_vars("forecast", errors="ignore")
        .assign_attrs(
            score_attrs(
                "ensemble (probabilistic) FSS: forecast fraction = fraction of members >= threshold",
                "1",
                reference="Necker et al. 2024 pFSS; pysteps PR 523 pfss",
            )
        )
    )


def ensemble_mean_fss(stats: xr.Dataset) -> xr.DataArray:
    """FSS of the ensemble-mean field, (threshold, scale)."""
    return (
        fractions_skill_score(stats.sel(forecast="ensemble_mean", drop=True))
        .drop_vars("forecast", errors="ignore")
        .assign_attrs(score_attrs("FSS of the ensemble mean", "1", "spatialscores.fss of ensemblestats.mean"))
    )


def ensemble_fss_compute(stats: xr.Dataset) -> xr.Dataset:
    """``FSS_ensemble`` and ``FSS_ensemble_mean`` (threshold, scale); the useful level is the
    :mod:`~qpe.verify.fss` family's ``FSS_useful`` (:func:`~qpe.verify.fss.useful_fss` of these statistics)."""
    return xr.Dataset(
        {"FSS_ensemble": probabilistic_fss(stats), "FSS_ensemble_mean": ensemble_mean_fss(stats)}
    )


def ensemble_fss(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    scales_km: Sequence[float] = DEFAULT_SCALES_KM,
    region: Region = None,
) -> xr.Dataset:
    """Ensemble FSS and ensemble-mean FSS of an ensemble estimate against radar, over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        (member, [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        mm/h (event: rain >= threshold, as in pysteps' FSS).
    scales_km : sequence of float
        Neighbourhood widths, km.
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.

    Returns
    -------
    xarray.Dataset
        ``FSS_ensemble`` and ``FSS_ensemble_mean`` (threshold, scale).
    """
    stats = ensemble_fss_accum(ensemble_fss_init(thresholds, scales_km), pair_fields(estimate, radar, region))
    return ensemble_fss_compute(stats)
