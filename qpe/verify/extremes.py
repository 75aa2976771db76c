"""Scores of intense rain: exceedance scores with their sample counts, and the threshold-weighted CRPS.

Heavy rain is rare: at 50 mm/h a period may hold a few hundred radar pixels, or none. Every score here
is therefore reported with the counts it rests on, at its own thresholds (``extreme_threshold``, mm/h,
default 10, 20 and 50 mm/h), apart from the thresholds of the other families.

* **Exceedance scores** — POD, FAR, CSI and frequency bias of the event ``rain > threshold`` (pysteps
  ``det_cat_fct``; computed by :mod:`~qpe.verify.categorical` from the same contingency counts), per
  member for an ensemble, with ``n_radar_extreme`` (radar pixels above the threshold, the events a POD
  rests on), ``n_estimate_extreme`` (estimate pixels above it, those of a FAR) and ``n_hits_extreme``.
* **Threshold-weighted CRPS** (``twCRPS``, ``twCRPS_fair``; ensembles only) — the CRPS restricted to
  rain rates above ``t`` by the threshold weight ``w(z) = 1[z > t]``, i.e. the CRPS of the members and
  the radar after the chaining function ``v(z) = max(z, t)`` (Gneiting and Ranjan 2011; Allen et al.
  2023): ``mean_i |v(x_i) - v(y)| - 1/(2 M^2) sum_ij |v(x_i) - v(x_j)|``, and the fair form with
  ``1/(2 M (M - 1))`` (Ferro 2014), mm/h, averaged over every valid pixel (a pixel where members and
  radar are all below ``t`` scores 0). They equal ``scores.probability.tw_crps_for_ensemble(...,
  chaining_func=lambda z: numpy.maximum(z, t), method="ecdf" / "fair")`` of the BoM ``scores`` package.
  The fair CRPS of the whole distribution is the :mod:`~qpe.verify.ensemble` family's ``CRPS_fair``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.verify import categorical
from qpe.verify.coords import score_attrs, threshold_coordinate
from qpe.verify.ensemble import _pair_normaliser, crps_terms
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: Default thresholds of the extremes, mm/h.
DEFAULT_EXTREME_THRESHOLDS: tuple[float, ...] = (10.0, 20.0, 50.0)
#: The dimension of the extreme thresholds (apart from the ``threshold`` of the other families).
DIM = "extreme_threshold"
#: Exceedance scores: output name -> :mod:`~qpe.verify.categorical` function.
EXCEEDANCE_SCORES = {
    "POD_extreme": categorical.probability_of_detection,
    "FAR_extreme": categorical.false_alarm_ratio,
    "CSI_extreme": categorical.critical_success_index,
    "BIAS_extreme": categorical.frequency_bias,
}


def extreme_threshold_coordinate(thresholds: Sequence[float]) -> xr.DataArray:
    """The ``extreme_threshold`` coordinate, mm/h."""
    thr = threshold_coordinate(thresholds)
    return xr.DataArray(
        thr.values, dims=DIM, attrs={**thr.attrs, "long_name": "rain-rate threshold of the extremes"}
    )


def threshold_weighted_crps_sums(
    members: np.ndarray, obs: np.ndarray, threshold: float, weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Sums over pixels of the empirical and of the fair twCRPS above ``threshold``.

    Parameters
    ----------
    members : numpy.ndarray
        (member, pixel) rain rate, mm/h.
    obs : numpy.ndarray
        (pixel,) rain rate, mm/h.
    threshold : float
        ``t`` of the weight ``1[z > t]`` (chaining function ``max(z, t)``), mm/h.
    weight : numpy.ndarray, optional
        (pixel,) weight of each pixel in the sums (a pixel weight, apart from the threshold weight).

    Returns
    -------
    empirical, fair : float
        Sums over pixels, mm/h (divide by the number of pixels, or the sum of the weights, for the mean).
    """
    error, pair_sum = crps_terms(np.maximum(members, threshold), np.maximum(obs, threshold))
    n_members = members.shape[0]
    if weight is None:
        total_error, total_pairs = float(error.sum()), float(pair_sum.sum())
    else:
        total_error, total_pairs = float((weight * error).sum()), float((weight * pair_sum).sum())
    return (
        total_error - total_pairs / _pair_normaliser(n_members, fair=False),
        total_error - total_pairs / _pair_normaliser(n_members, fair=True),
    )


def extremes_statistics(
    pair: FieldPair, thresholds: Sequence[float] = DEFAULT_EXTREME_THRESHOLDS
) -> xr.Dataset:
    """Contingency counts at the extreme thresholds and, for an ensemble, the twCRPS sums, per field.

    Returns
    -------
    xarray.Dataset
        ``hits, misses, false_alarms, correct_negatives`` ([member,] time, extreme_threshold) and, for an
        ensemble, ``n`` (time, valid pixels), ``sum_twcrps`` and ``sum_twcrps_fair`` (time,
        extreme_threshold), mm/h. For a weighted pair, sums of weights and weighted sums.
    """
    thr = extreme_threshold_coordinate(thresholds)
    stats = categorical.categorical_statistics(pair, thr.values).rename({"threshold": DIM})
    stats = stats.assign_coords({DIM: thr})
    if pair.is_ensemble:
        n_times = pair.radar.shape[0]
        sums = np.zeros((2, n_times, thr.size))
        for t in range(n_times):
            valid = pair.valid[t]
            members, obs = (
                pair.estimate[:, t][:, valid].astype("float64"),
                pair.radar[t][valid].astype("float64"),
            )
            weight = None if pair.weight is None else pair.weight[t][valid]
            for k, level in enumerate(thr.values):
                sums[:, t, k] = threshold_weighted_crps_sums(members, obs, float(level), weight)
        n = (pair.valid if pair.weight is None else pair.weight).sum(axis=(1, 2)).astype("float64")
        stats = stats.assign(
            n=pair.radar_labelled(n, ()),
            sum_twcrps=pair.radar_labelled(sums[0], (DIM,), {DIM: thr}),
            sum_twcrps_fair=pair.radar_labelled(sums[1], (DIM,), {DIM: thr}),
        )
    return stats.assign_attrs(family="extremes")


def extremes_init(thresholds: Sequence[float] = DEFAULT_EXTREME_THRESHOLDS) -> xr.Dataset:
    """Empty statistics for the extreme thresholds (mm/h)."""
    return xr.Dataset(coords={DIM: extreme_threshold_coordinate(thresholds)}, attrs={"family": "extremes"})


def extremes_accum(stats: xr.Dataset, pair: FieldPair) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, extremes_statistics(pair, stats[DIM].values))


def extremes_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def threshold_weighted_crps(stats: xr.Dataset, fair: bool = False) -> xr.DataArray:
    """Mean twCRPS above each extreme threshold (empirical, or fair), mm/h."""
    name = "sum_twcrps_fair" if fair else "sum_twcrps"
    with np.errstate(divide="ignore", invalid="ignore"):
        return (stats[name] / stats["n"]).assign_attrs(
            score_attrs(
                ("fair " if fair else "")
                + "threshold-weighted CRPS, weight 1[z > t] (chaining function max(z, t))",
                "mm/h",
                reference="scores.probability.tw_crps_for_ensemble(method="
                + ('"fair")' if fair else '"ecdf")'),
            )
        )


def exceedance_counts(stats: xr.Dataset) -> xr.Dataset:
    """``n_radar_extreme`` (extreme_threshold), ``n_estimate_extreme`` and ``n_hits_extreme``
    ([member,] extreme_threshold): the pixels behind each exceedance score."""
    radar = stats["hits"] + stats["misses"]  # the same for every member
    if "member" in radar.dims:
        radar = radar.isel(member=0, drop=True)
    return xr.Dataset(
        {
            "n_radar_extreme": radar.astype("float64").assign_attrs(
                score_attrs("radar pixels above the threshold (events)")
            ),
            "n_estimate_extreme": (stats["hits"] + stats["false_alarms"])
            .astype("float64")
            .assign_attrs(score_attrs("estimate pixels above the threshold")),
            "n_hits_extreme": stats["hits"]
            .astype("float64")
            .assign_attrs(score_attrs("pixels above the threshold in both")),
        }
    )


def extremes_compute(stats: xr.Dataset) -> xr.Dataset:
    """Exceedance scores and counts at the extreme thresholds; twCRPS (empirical, fair) of an ensemble."""
    table = stats[list(categorical._COUNTS)]
    scores = {}
    for name, score_of in EXCEEDANCE_SCORES.items():
        score = score_of(table)
        scores[name] = score.assign_attrs(long_name=f"{score.attrs['long_name']} (rain > extreme threshold)")
    if "sum_twcrps" in stats:
        scores["twCRPS"] = threshold_weighted_crps(stats)
        scores["twCRPS_fair"] = threshold_weighted_crps(stats, fair=True)
    return xr.Dataset(scores).assign(exceedance_counts(stats).data_vars)


def extremes_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_EXTREME_THRESHOLDS,
    region: Region = None,
) -> xr.Dataset:
    """Exceedance scores with their counts, and (ensembles) the twCRPS, at the extreme thresholds.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        Extreme thresholds, mm/h (event: rain > threshold).
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.
    """
    return extremes_compute(extremes_accum(extremes_init(thresholds), pair_fields(estimate, radar, region)))
