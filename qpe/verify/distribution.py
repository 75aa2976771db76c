"""Distribution of rain rates: histogram, exceedance curve, wet-pixel quantiles, wet fraction, maximum.

Everything comes from a histogram on fixed logarithmic bins, so that the statistics of many fields
and days simply add (and resample for bootstrap intervals) without keeping any pixel:

* bin 0 holds the dry pixels, ``rain <= wet_threshold`` (0.1 mm/h by default, the lowest categorical
  threshold); wet bins ``k = 1 .. K`` are ``(edge[k-1], edge[k]]`` with
  ``edge = wet_threshold * 10 ** (arange(K + 1) / bins_per_decade)`` up to ``max_rate`` (1000 mm/h);
  bin ``K + 1`` holds what exceeds it. Right-closed bins make the counts above an edge exact, so the
  exceedance curve ``P(rain > edge)`` and the wet fraction ``P(rain > wet_threshold)`` are exact.
* The wet-pixel quantiles p90/p99/p99.9 are read off the accumulated histogram, interpolating
  log-linearly inside the bin where the cumulative count reaches ``q * n_wet`` (in the overflow bin,
  between its edge and the maximum). **Tolerance:** the result lies in the bin that holds the order
  statistic of rank ``q * n_wet``, so it is within one bin of the order statistics that bracket the
  exact (``numpy.quantile``) value: relative error below ``10 ** (1 / bins_per_decade) - 1``, i.e.
  **2.33 %** with the default 100 bins per decade, wherever neighbouring order statistics lie in the
  same or adjacent bins (always for p90/p99 of a field of realistic size; p99.9 of a small sample can
  sit between two far-apart pixels, where the exact value is itself ill-defined).
* The maximum is exact (combined by maximum, not by sum).

Only valid pixels are counted (no radar, NaN estimate and pixels outside the region are excluded).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.errors import InputError
from qpe.verify.coords import score_attrs
from qpe.verify.pairs import FieldPair, Region, field_levels, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

DEFAULT_WET_THRESHOLD = 0.1
DEFAULT_MAX_RATE = 1000.0
DEFAULT_BINS_PER_DECADE = 100
DEFAULT_QUANTILES: tuple[float, ...] = (0.9, 0.99, 0.999)


def bin_edges(
    wet_threshold: float = DEFAULT_WET_THRESHOLD,
    max_rate: float = DEFAULT_MAX_RATE,
    bins_per_decade: int = DEFAULT_BINS_PER_DECADE,
) -> np.ndarray:
    """Edges of the wet bins, mm/h: ``wet_threshold * 10 ** (k / bins_per_decade)`` up to ``max_rate``."""
    if not 0 < wet_threshold < max_rate or bins_per_decade < 1:
        raise InputError(
            f"histogram needs 0 < wet_threshold < max_rate and bins_per_decade >= 1, got "
            f"{wet_threshold:g}, {max_rate:g}, {bins_per_decade}"
        )
    n = int(np.ceil(np.log10(max_rate / wet_threshold) * bins_per_decade - 1e-9))
    return wet_threshold * 10.0 ** (np.arange(n + 1) / bins_per_decade)


def quantile_tolerance(bins_per_decade: int = DEFAULT_BINS_PER_DECADE) -> float:
    """Relative width of one bin, the bound on the histogram-quantile error (0.0233 for 100/decade)."""
    return float(10.0 ** (1.0 / bins_per_decade) - 1.0)


def _histogram(
    values: np.ndarray, valid: np.ndarray, edges: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    """Counts of (dry, wet bins..., overflow) of the valid values of one field (sums of weights if given)."""
    edges = field_levels(edges, values)
    is_wet = valid & (values > edges[0])
    wet = values[is_wet]
    if weight is not None:
        wet_weight = weight[is_wet]
        counts = np.bincount(np.searchsorted(edges, wet, side="left"), wet_weight, minlength=edges.size + 1)
        counts[0] = weight[valid].sum() - wet_weight.sum()
        return counts
    counts = np.bincount(np.searchsorted(edges, wet, side="left"), minlength=edges.size + 1).astype("float64")
    counts[0] = np.count_nonzero(valid) - wet.size
    return counts


def distribution_statistics(pair: FieldPair, edges: np.ndarray | None = None) -> xr.Dataset:
    """Histogram counts and maxima of every field, for estimate and radar.

    Returns
    -------
    xarray.Dataset
        ``counts`` ([member,] time, bin_index), ``counts_radar`` (time, bin_index), ``maximum``
        ([member,] time) and ``maximum_radar`` (time), mm/h (NaN for a field without valid pixel).
        ``bin_index`` 0 is dry, 1..K the wet bins, K + 1 the overflow; its coordinate ``upper_edge``
        (mm/h) is the upper edge of each bin (``wet_threshold`` for the dry bin, inf for the overflow).
        For a weighted pair the counts are sums of the pixels' weights; the maxima are not weighted (the
        largest value of the valid pixels).
    """
    edges = bin_edges() if edges is None else np.asarray(edges, dtype="float64")
    n_members, n_times = pair.estimate.shape[:2]
    counts = np.zeros((n_members, n_times, edges.size + 1))
    counts_radar = np.zeros((n_times, edges.size + 1))
    maxima = np.full((n_members, n_times), np.nan)
    maxima_radar = np.full(n_times, np.nan)
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        weight = None if pair.weight is None else pair.weight[t]
        counts_radar[t] = _histogram(pair.radar[t], valid, edges, weight)
        maxima_radar[t] = pair.radar[t][valid].max()
        for m in range(n_members):
            counts[m, t] = _histogram(pair.estimate[m, t], valid, edges, weight)
            maxima[m, t] = pair.estimate[m, t][valid].max()
    coords = {
        "bin_index": np.arange(edges.size + 1),
        "upper_edge": ("bin_index", np.append(edges, np.inf), {"units": "mm/h"}),
    }
    return xr.Dataset(
        {
            "counts": pair.labelled(counts, ("bin_index",), coords),
            "counts_radar": pair.radar_labelled(counts_radar, ("bin_index",), coords),
            "maximum": pair.labelled(maxima, ()),
            "maximum_radar": pair.radar_labelled(maxima_radar, ()),
        },
        attrs={"family": "distribution"},
    )


def distribution_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "distribution"})


def distribution_accum(stats: xr.Dataset, pair: FieldPair, edges: np.ndarray | None = None) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, distribution_statistics(pair, edges))


def distribution_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


# -- scores -----------------------------------------------------------------------------------------------
def _histogram_quantile(counts: np.ndarray, maximum: np.ndarray, edges: np.ndarray, q: float) -> np.ndarray:
    """Quantile q of the wet pixels from counts (..., bin_index); NaN where there is no wet pixel."""
    wet = counts[..., 1:]
    total = wet.sum(axis=-1)
    cum = np.cumsum(wet, axis=-1)
    target = q * total
    k = np.minimum((cum < target[..., None]).sum(axis=-1), wet.shape[-1] - 1)  # bin reaching the target
    before = (
        np.take_along_axis(cum, k[..., None], -1)[..., 0] - np.take_along_axis(wet, k[..., None], -1)[..., 0]
    )
    in_bin = np.take_along_axis(wet, k[..., None], -1)[..., 0]
    lower = edges[np.minimum(k, edges.size - 1)]
    upper = np.where(
        k < edges.size - 1, edges[np.minimum(k + 1, edges.size - 1)], np.fmax(maximum, edges[-1])
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.clip((target - before) / in_bin, 0.0, 1.0)
        value = lower * (upper / lower) ** fraction
    return np.where(total > 0, value, np.nan)


def _edges(counts: xr.DataArray) -> np.ndarray:
    """The K + 1 wet-bin edges of histogram counts (mm/h)."""
    return counts["upper_edge"].values[:-1]


def wet_quantile(counts: xr.DataArray, maximum: xr.DataArray, q: float) -> xr.DataArray:
    """Quantile ``q`` of the wet pixels (rain > wet threshold), mm/h, from accumulated histogram counts."""
    edges = _edges(counts)
    return xr.apply_ufunc(
        _histogram_quantile,
        counts,
        maximum,
        kwargs={"edges": edges, "q": q},
        input_core_dims=[["bin_index"], []],
    ).assign_attrs(
        score_attrs(
            f"quantile {q:g} of wet-pixel rain rate",
            "mm/h",
            tolerance=f"{quantile_tolerance(_bins_per_decade(edges)):.4f} relative",
        )
    )


def _bins_per_decade(edges: np.ndarray) -> int:
    return round(1.0 / np.log10(edges[1] / edges[0]))


def histogram(counts: xr.DataArray) -> xr.DataArray:
    """Fraction of valid pixels in each wet bin, dim ``bin`` (geometric bin centre, mm/h)."""
    edges = _edges(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = counts / counts.sum("bin_index")
    wet = fraction.isel(bin_index=slice(1, edges.size)).drop_vars(["bin_index", "upper_edge"])
    wet = wet.rename(bin_index="bin").assign_coords(
        bin=("bin", np.sqrt(edges[:-1] * edges[1:]), {"units": "mm/h", "long_name": "geometric bin centre"}),
        bin_lower=("bin", edges[:-1], {"units": "mm/h"}),
        bin_upper=("bin", edges[1:], {"units": "mm/h"}),
    )
    return wet.assign_attrs(score_attrs("fraction of valid pixels in the rain-rate bin"))


def exceedance(counts: xr.DataArray) -> xr.DataArray:
    """P(rain > intensity) over valid pixels at the bin edges, dim ``intensity`` (mm/h). Exact."""
    edges = _edges(counts)
    above = (
        counts.isel(bin_index=slice(None, None, -1)).cumsum("bin_index").isel(bin_index=slice(None, None, -1))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = above.isel(bin_index=slice(1, None)) / counts.sum("bin_index")
    prob = prob.drop_vars(["upper_edge", "bin_index"]).rename(bin_index="intensity")
    return prob.assign_coords(intensity=("intensity", edges, {"units": "mm/h"})).assign_attrs(
        score_attrs("exceedance probability P(rain > intensity)")
    )


def wet_fraction(counts: xr.DataArray) -> xr.DataArray:
    """Fraction of valid pixels with rain > wet threshold (the first edge). Exact."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = counts.isel(bin_index=slice(1, None)).sum("bin_index") / counts.sum("bin_index")
    return value.assign_attrs(score_attrs(f"wet fraction (rain > {_edges(counts)[0]:g} mm/h)"))


def distribution_compute(stats: xr.Dataset, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> xr.Dataset:
    """Histogram, exceedance, wet fraction, wet-pixel quantiles and maximum of estimate and radar.

    Variables ``X`` describe the estimate and ``X_radar`` the radar: ``histogram`` (bin),
    ``exceedance`` (intensity), ``wet_fraction``, ``wet_p90``/``wet_p99``/``wet_p999`` (names from the
    quantiles), ``maximum`` (mm/h) and ``n_valid`` (number of valid pixels).
    """
    out = {}
    for suffix in ("", "_radar"):
        counts, maximum = stats[f"counts{suffix}"], stats[f"maximum{suffix}"]
        out[f"histogram{suffix}"] = histogram(counts)
        out[f"exceedance{suffix}"] = exceedance(counts)
        out[f"wet_fraction{suffix}"] = wet_fraction(counts)
        for q in quantiles:
            out[f"wet_p{_quantile_label(q)}{suffix}"] = wet_quantile(counts, maximum, q)
        out[f"maximum{suffix}"] = maximum.assign_attrs(score_attrs("maximum rain rate", "mm/h"))
    out["n_valid"] = (
        stats["counts_radar"].sum("bin_index").assign_attrs(score_attrs("number of valid pixels"))
    )
    return xr.Dataset(out)


#: Wet-pixel quantile levels of the quantile-quantile figure (:func:`wet_quantile_curve`).
QQ_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


def _counts_from_exceedance(exceed: np.ndarray) -> np.ndarray:
    """Fractions (dry, wet bins..., overflow) of valid pixels from P(rain > edge) at the K + 1 edges (..., K + 1)."""
    wet = np.clip(exceed[..., :-1] - exceed[..., 1:], 0.0, None)  # round-off of the cumulative sums
    return np.concatenate([1.0 - exceed[..., :1], wet, exceed[..., -1:]], axis=-1)


def _quantile_curve(exceed: np.ndarray, maximum: np.ndarray, edges: np.ndarray, levels: np.ndarray) -> np.ndarray:
    counts = _counts_from_exceedance(exceed)
    return np.stack([_histogram_quantile(counts, maximum, edges, q) for q in levels], axis=-1)


def wet_quantile_curve(
    exceedance: xr.DataArray, maximum: xr.DataArray, levels: Sequence[float] = QQ_LEVELS
) -> xr.DataArray:
    """Quantiles of the wet-pixel rain rate at ``levels``, mm/h, read off an exceedance curve (QQ plot).

    The exceedance curve ``P(rain > edge)`` at the histogram edges (:func:`exceedance`) holds the wet and
    overflow fractions of the histogram, so each quantile is the one :func:`wet_quantile` reads off the
    counts (same log-linear interpolation and tolerance): level 0.99 gives ``wet_p99``.

    Parameters
    ----------
    exceedance : xarray.DataArray
        ([member,] ..., intensity) exceedance probability, ``intensity`` the wet-bin edges in mm/h.
    maximum : xarray.DataArray
        ([member,] ...) maximum rain rate, mm/h (the upper end of the overflow bin).
    levels : sequence of float
        Quantile levels in (0, 1) of the wet pixels (rain > the first edge).

    Returns
    -------
    xarray.DataArray
        ([member,] ..., level) rain rate, mm/h; NaN where there is no wet pixel.
    """
    levels = np.asarray(levels, dtype=float)
    if levels.size == 0 or not ((levels > 0) & (levels < 1)).all():
        raise InputError(f"quantile levels must lie in (0, 1), got {levels.tolist()}")
    edges = exceedance["intensity"].values
    curve = xr.apply_ufunc(
        _quantile_curve,
        exceedance,
        maximum,
        kwargs={"edges": edges, "levels": levels},
        input_core_dims=[["intensity"], []],
        output_core_dims=[["level"]],
    )
    return curve.assign_coords(level=("level", levels, {"long_name": "quantile level of the wet pixels"})).assign_attrs(
        score_attrs(
            "quantile of wet-pixel rain rate",
            "mm/h",
            tolerance=f"{quantile_tolerance(_bins_per_decade(edges)):.4f} relative",
            wet_threshold=float(edges[0]),
        )
    )


def _quantile_label(q: float) -> str:
    """0.9 -> '90', 0.99 -> '99', 0.999 -> '999'."""
    return f"{q * 100:g}".replace(".", "")


def rain_distribution(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    edges: np.ndarray | None = None,
) -> xr.Dataset:
    """Distribution statistics of an estimate and of radar over all their valid pixels.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    """
    pair = pair_fields(estimate, radar, region)
    return distribution_compute(distribution_accum(distribution_init(), pair, edges), quantiles)
