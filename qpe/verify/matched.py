"""Placement at matched frequency: the CSI of an estimate thresholded where it is as often wet as radar.

A CSI at a fixed threshold mixes placement with frequency bias: a smooth field that is too wide at 1 mm/h
collects hits by covering more area, and a realistic sample that puts a cell a few pixels off pays twice
(a miss and a false alarm). **CSI at matched wet fraction** removes the bias part: for each radar
threshold ``r`` (event ``radar > r``, as the categorical family and pysteps' ``det_cat_fct``) the estimate
is thresholded at the rate ``t`` where it has as many events as the radar, ``#(estimate > t) = #(radar >
r) = N``, over all the accumulated fields together (one ``t`` per member and period: the CSI after a
quantile mapping of the estimate onto the radar's climatology). Then hits ``H``, false alarms ``N - H``
and misses ``N - H`` give ``CSI = H / (2 N - H)``. Only the placement of the rain area is left to score.

Everything comes from histograms on the logarithmic bins of :mod:`qpe.verify.distribution` (right-closed:
the counts above every edge are exact), so the statistics add over fields and days and resample for
bootstrap intervals:

* ``counts`` — histogram of the estimate over the valid pixels;
* ``counts_event`` — its histogram over the valid pixels where ``radar > r``, for each threshold;
* ``n_events`` — the number of those pixels (the radar's events).

``t`` is found by interpolating inside the bin where the estimate's exceedance count crosses ``N``:
a fraction of the bin's pixels (and the same fraction of its event pixels) is taken off from below,
and ``t`` is placed log-linearly in the bin. **Tolerance:** exact when ``N`` falls on a bin edge;
otherwise ``H`` is off by at most the event pixels of one bin (1/100 of a decade of rain rate by
default) and ``t`` by one bin (2.3 %). Where the estimate exceeds the lowest edge (the wet threshold,
0.1 mm/h) on fewer than ``N`` pixels, ``t`` stays at that edge and the frequency bias stays below 1 (it
has too little rain to match); ``matched_bias`` says so. No radar event gives NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.verify.coords import score_attrs, threshold_coordinate
from qpe.verify.distribution import bin_edges
from qpe.verify.pairs import DEFAULT_THRESHOLDS, FieldPair, Region, field_levels, pair_fields
from qpe.verify.statistics import accumulate, add_statistics


# -- statistics ---------------------------------------------------------------------------------------------
def matched_statistics(
    pair: FieldPair, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, edges: np.ndarray | None = None
) -> xr.Dataset:
    """Histograms of every field behind the matched-frequency CSI.

    Parameters
    ----------
    pair : FieldPair
        Estimate and radar, mm/h.
    thresholds : sequence of float
        Radar thresholds, mm/h (event: ``radar > threshold``).
    edges : numpy.ndarray, optional
        Bin edges of the estimate's rain rate, mm/h (default :func:`qpe.verify.distribution.bin_edges`).

    Returns
    -------
    xarray.Dataset
        ``counts`` ([member,] time, bin_index), ``counts_event`` ([member,] time, threshold, bin_index)
        and ``n_events`` (time, threshold). ``bin_index`` 0 holds ``estimate <= edges[0]``, ``k`` the
        bin ``(edges[k-1], edges[k]]``, the last what exceeds ``edges[-1]``; its coordinate
        ``upper_edge`` (mm/h) is the upper edge of each bin (inf for the last). For a weighted pair, sums
        of the pixels' weights instead of counts.
    """
    edges = bin_edges() if edges is None else np.asarray(edges, dtype="float64")
    thr = threshold_coordinate(thresholds)
    n_members, n_times = pair.estimate.shape[:2]
    n_bins = edges.size + 1
    counts = np.zeros((n_members, n_times, n_bins))
    counts_event = np.zeros((n_members, n_times, thr.size, n_bins))
    n_events = np.zeros((n_times, thr.size))
    radar_levels = field_levels(thr.values, pair.radar)
    estimate_edges = field_levels(edges, pair.estimate)
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        events = pair.radar[t][valid][None, :] > radar_levels[:, None]  # (threshold, pixel)
        weight = None if pair.weight is None else pair.weight[t][valid]
        n_events[t] = events.sum(axis=1) if weight is None else (events * weight).sum(axis=1)
        for m in range(n_members):
            index = np.searchsorted(estimate_edges, pair.estimate[m, t][valid], side="left")
            counts[m, t] = np.bincount(index, weight, minlength=n_bins)
            for k in range(thr.size):
                event_weight = None if weight is None else weight[events[k]]
                counts_event[m, t, k] = np.bincount(index[events[k]], event_weight, minlength=n_bins)
    coords = {
        "bin_index": np.arange(n_bins),
        "upper_edge": ("bin_index", np.append(edges, np.inf), {"units": "mm/h"}),
    }
    return xr.Dataset(
        {
            "counts": pair.labelled(counts, ("bin_index",), coords),
            "counts_event": pair.labelled(
                counts_event, ("threshold", "bin_index"), {**coords, "threshold": thr}
            ),
            "n_events": pair.radar_labelled(n_events, ("threshold",), {"threshold": thr}),
        },
        attrs={"family": "matched"},
    )


def matched_init(thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> xr.Dataset:
    return xr.Dataset(coords={"threshold": threshold_coordinate(thresholds)}, attrs={"family": "matched"})


def matched_accum(stats: xr.Dataset, pair: FieldPair, edges: np.ndarray | None = None) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, matched_statistics(pair, stats["threshold"].values, edges))


def matched_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


# -- scores -------------------------------------------------------------------------------------------------
def _match(
    counts: np.ndarray, counts_event: np.ndarray, n_events: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits, estimate events and threshold at matched frequency; arrays (..., bin) and (...).

    ``edges`` (K + 1,) are the lower edges of the bins 1 .. K + 1 of ``counts`` (K + 2 bins).
    """
    counts, counts_event, n = np.broadcast_arrays(counts, counts_event, n_events[..., None])
    n_events = n[..., 0]
    tail = counts[..., ::-1].cumsum(axis=-1)[..., ::-1][..., 1:]  # (..., K + 1): #(estimate > edges[k])
    tail_event = counts_event[..., ::-1].cumsum(axis=-1)[..., ::-1][..., 1:]
    last = np.clip(
        (tail >= n[..., :1]).sum(axis=-1) - 1, 0, edges.size - 1
    )  # last edge still exceeded N times
    take = np.take_along_axis
    above, above_event = (
        take(tail, last[..., None], -1)[..., 0],
        take(tail_event, last[..., None], -1)[..., 0],
    )
    inside = last < edges.size - 1  # the crossing bin (edges[last], edges[last + 1]] exists
    following = np.minimum(last + 1, edges.size - 1)
    in_bin = np.where(inside, above - take(tail, following[..., None], -1)[..., 0], 0.0)
    in_bin_event = np.where(inside, above_event - take(tail_event, following[..., None], -1)[..., 0], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where((above > n_events) & (in_bin > 0), (above - n_events) / in_bin, 0.0)
    fraction = np.clip(fraction, 0.0, 1.0)
    hits = above_event - fraction * in_bin_event
    events = above - fraction * in_bin
    threshold = edges[last] * (edges[following] / edges[last]) ** fraction
    return hits, events, threshold


def matched_scores(stats: xr.Dataset) -> xr.Dataset:
    """``CSI_matched``, ``matched_threshold`` (mm/h) and ``matched_bias`` ([member,] threshold)."""
    edges = stats["upper_edge"].values[:-1]
    hits, events, threshold = xr.apply_ufunc(
        _match,
        stats["counts"],
        stats["counts_event"],
        stats["n_events"],
        kwargs={"edges": edges},
        input_core_dims=[["bin_index"], ["bin_index"], []],
        output_core_dims=[[], [], []],
    )
    n = stats["n_events"]
    with np.errstate(divide="ignore", invalid="ignore"):
        csi = (hits / (n + events - hits)).where(n > 0)
        bias = (events / n).where(n > 0)
    return xr.Dataset(
        {
            "CSI_matched": csi.assign_attrs(
                score_attrs("critical success index at matched wet fraction (frequency bias 1)")
            ),
            "matched_threshold": threshold.where(n > 0).assign_attrs(
                score_attrs("estimate threshold with as many events as radar > threshold", "mm/h")
            ),
            "matched_bias": bias.assign_attrs(
                score_attrs("frequency bias at the matched threshold (1 unless the estimate is too dry)")
            ),
        }
    )


def matched_compute(stats: xr.Dataset) -> xr.Dataset:
    """Every score of the family (see :func:`matched_scores`)."""
    return matched_scores(stats)


def matched_frequency_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    region: Region = None,
) -> xr.Dataset:
    """CSI at matched wet fraction of an estimate against radar, over all its fields together.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        Radar thresholds, mm/h (event: ``radar > threshold``).
    """
    return matched_compute(matched_accum(matched_init(thresholds), pair_fields(estimate, radar, region)))
