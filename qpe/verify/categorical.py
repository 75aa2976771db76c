"""Categorical (yes/no) scores at rain-rate thresholds, from a contingency table.

An event is ``rain > threshold`` in both fields, as in :func:`pysteps.verification.detcatscores.det_cat_fct`
(note that FSS and the ensemble probabilities use ``>=``, as pysteps does). Invalid pixels (no radar,
NaN estimate, outside the region) are not counted at all; pysteps would count a NaN as a "no".

The table ``hits (H), misses (M), false_alarms (F), correct_negatives (R)`` (dims ``[member,]
threshold``) is accumulated with :func:`categorical_init` / :func:`categorical_accum` /
:func:`categorical_merge`, and turned into scores by :func:`categorical_compute` or the one-score
functions. Degenerate tables give NaN (0/0) or inf (x/0) exactly as pysteps does, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.verify.coords import as_score, threshold_coordinate
from qpe.verify.pairs import DEFAULT_THRESHOLDS, FieldPair, Region, field_levels, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

_COUNTS = ("hits", "misses", "false_alarms", "correct_negatives")


# -- statistics ------------------------------------------------------------------------------------------
def categorical_statistics(pair: FieldPair, thresholds: Sequence[float]) -> xr.Dataset:
    """Contingency counts of every field.

    Returns
    -------
    xarray.Dataset
        ``hits, misses, false_alarms, correct_negatives`` (int64; for a weighted pair the sums of the
        pixels' weights, float64), dims ``([member,] time, threshold)``.
    """
    thr = threshold_coordinate(thresholds)
    n_members, n_times = pair.estimate.shape[:2]
    counts = np.zeros((4, n_members, n_times, thr.size), dtype="int64" if pair.weight is None else "float64")
    radar_levels, estimate_levels = (
        field_levels(thr.values, pair.radar),
        field_levels(thr.values, pair.estimate),
    )
    for t in range(n_times):
        valid = pair.valid[t]
        n_valid = pair.weighted_count(t, valid)
        for k, (level_o, level_f) in enumerate(zip(radar_levels, estimate_levels, strict=True)):
            # invalid pixels hold 0 in both fields: never an event for a threshold >= 0
            obs = pair.radar[t] > level_o if level_o >= 0 else (pair.radar[t] > level_o) & valid
            n_obs = pair.weighted_count(t, obs)
            for m in range(n_members):
                fct = (
                    pair.estimate[m, t] > level_f if level_f >= 0 else (pair.estimate[m, t] > level_f) & valid
                )
                hits = pair.weighted_count(t, fct & obs)
                n_fct = pair.weighted_count(t, fct)
                counts[:, m, t, k] = (hits, n_obs - hits, n_fct - hits, n_valid - n_obs - n_fct + hits)
    coords = {"threshold": thr}
    return xr.Dataset(
        {
            name: pair.labelled(
                counts[i], ("threshold",), coords, units="1", long_name=name.replace("_", " ")
            )
            for i, name in enumerate(_COUNTS)
        },
        attrs={"family": "categorical"},
    )


def categorical_init(thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> xr.Dataset:
    """An empty contingency table for the given thresholds (mm/h)."""
    return xr.Dataset(coords={"threshold": threshold_coordinate(thresholds)}, attrs={"family": "categorical"})


def categorical_accum(table: xr.Dataset, pair: FieldPair) -> xr.Dataset:
    """Add the fields of ``pair`` to a contingency table; returns the new table."""
    return accumulate(table, categorical_statistics(pair, table["threshold"].values))


def categorical_merge(table_1: xr.Dataset, table_2: xr.Dataset) -> xr.Dataset:
    """Sum of two contingency tables (e.g. from two Dask workers)."""
    return add_statistics(table_1, table_2)


# -- scores ------------------------------------------------------------------------------------------------
def _hmfr(table: xr.Dataset) -> tuple[xr.Variable, ...]:
    return tuple(table[name].variable.astype("float64") for name in _COUNTS)


def probability_of_detection(table: xr.Dataset) -> xr.DataArray:
    """POD = H / (H + M)."""
    h, m, _, _ = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(h / (h + m), table, long_name="probability of detection", pysteps="det_cat_fct POD")


def false_alarm_ratio(table: xr.Dataset) -> xr.DataArray:
    """FAR = F / (H + F)."""
    h, _, f, _ = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(f / (h + f), table, long_name="false alarm ratio", pysteps="det_cat_fct FAR")


def success_ratio(table: xr.Dataset) -> xr.DataArray:
    """SR = 1 - FAR = H / (H + F), the x axis of the performance diagram."""
    h, _, f, _ = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(1.0 - f / (h + f), table, long_name="success ratio (1 - FAR)")


def critical_success_index(table: xr.Dataset) -> xr.DataArray:
    """CSI = H / (H + M + F)."""
    h, m, f, _ = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(h / (h + m + f), table, long_name="critical success index", pysteps="det_cat_fct CSI")


def frequency_bias(table: xr.Dataset) -> xr.DataArray:
    """BIAS = (H + F) / (H + M)."""
    h, m, f, _ = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score((h + f) / (h + m), table, long_name="frequency bias", pysteps="det_cat_fct BIAS")


def equitable_threat_score(table: xr.Dataset) -> xr.DataArray:
    """ETS (Gilbert skill score) = (H - H_r) / (H + M + F - H_r), H_r = (H + M)(H + F) / N.

    Evaluated as pysteps does, ``(POD - POFD) / ((1 - s POD) / (1 - s) + POFD (1 - s) / s)`` with base
    rate ``s = (H + M) / N`` and ``POFD = F / (F + R)``: the same value, and NaN (as in pysteps) when
    there is no observed event.
    """
    h, m, f, r = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        pod, pofd, s = h / (h + m), f / (f + r), (h + m) / (h + m + f + r)
        return as_score(
            (pod - pofd) / ((1 - s * pod) / (1 - s) + pofd * (1 - s) / s),
            table,
            long_name="equitable threat score",
            pysteps="det_cat_fct ETS",
        )


def heidke_skill_score(table: xr.Dataset) -> xr.DataArray:
    """HSS = 2 (H R - F M) / ((H + M)(M + R) + (H + F)(F + R))."""
    h, m, f, r = _hmfr(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return as_score(
            2 * (h * r - f * m) / ((h + m) * (m + r) + (h + f) * (f + r)),
            table,
            long_name="Heidke skill score",
            pysteps="det_cat_fct HSS",
        )


#: Score name -> function, in the order :func:`categorical_compute` returns them.
CATEGORICAL_SCORES = {
    "POD": probability_of_detection,
    "FAR": false_alarm_ratio,
    "SR": success_ratio,
    "CSI": critical_success_index,
    "ETS": equitable_threat_score,
    "HSS": heidke_skill_score,
    "BIAS": frequency_bias,
}


def categorical_compute(table: xr.Dataset) -> xr.Dataset:
    """All categorical scores of a contingency table, dims ``([member,] threshold)``."""
    return xr.Dataset({name: fn(table) for name, fn in CATEGORICAL_SCORES.items()})


def categorical_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    region: Region = None,
) -> xr.Dataset:
    """POD, FAR, SR, CSI, ETS, HSS and BIAS of an estimate against radar, over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        Event thresholds, mm/h (event: rain > threshold).
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.

    Returns
    -------
    xarray.Dataset
        Scores with dims ``([member,] threshold)``.
    """
    table = categorical_accum(categorical_init(thresholds), pair_fields(estimate, radar, region))
    return categorical_compute(table)
