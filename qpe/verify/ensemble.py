"""Ensemble scores: CRPS (empirical and fair), rank histogram, spread-skill and reliability at thresholds.

Only for estimates with a ``member`` dimension; computed over the valid pixels.

* **CRPS** — the CRPS of the empirical distribution of the members (pysteps
  :func:`~pysteps.verification.probscores.CRPS`, Hersbach 2000), computed per pixel as
  ``mean_i |x_i - y| - 1/(2 M^2) sum_ij |x_i - x_j|`` from the sorted members, mm/h. It equals
  pysteps' value whenever no member equals the observation exactly. *Known pysteps deviation:*
  ``CRPS_accum`` drops the intervals bounded by a member equal to the observation (e.g. a dry
  observation with some dry members scores as if those intervals were perfect), so with such ties
  pysteps under-estimates the CRPS; this module gives the exact value there.
* **Fair CRPS** (``CRPS_fair``) — the unbiased estimator of the CRPS of the distribution the members are
  drawn from (Ferro 2014; ``scores.probability.crps_for_ensemble(..., method="fair")``):
  ``mean_i |x_i - y| - 1/(2 M (M - 1)) sum_ij |x_i - x_j|``, mm/h. The empirical CRPS above rewards
  a small ensemble for its missing spread (its expectation is ``CRPS + E|X - X'| / (2 M)``); the fair one
  does not, so ensembles of different sizes, and an ensemble against the CRPS (= MAE) of a point
  estimate, compare fairly. Needs M >= 2.
* **Rank histogram** — pysteps :func:`~pysteps.verification.ensscores.rankhist`: pairs where the
  observation and all members are below ``x_min`` are skipped, values below ``x_min`` are set to
  ``x_min - 1``, the rank is the number of members below the observation and ties are broken at
  random among the tied ranks. By default the ties are instead *split* (each tied pixel adds
  ``1 / (ties + 1)`` to every tied rank: the expected value of the random draw, deterministic and
  independent of the order of accumulation); pass a ``numpy.random.RandomState`` to draw them as
  pysteps does (same draws as pysteps for the same state).
* **Spread-skill** — ``spread = sqrt(mean ensemble variance)`` (unbiased, ddof = 1) and the RMSE of the
  ensemble mean, and the *fair* ``spread_skill_ratio = sqrt((M + 1) / M) * spread / rmse`` (Fortin et
  al. 2014). Both corrections for a finite ensemble are in it: the ddof-1 variance is ``M / (M - 1)``
  times the members' biased variance, and ``(M + 1) / M`` accounts for the error of the mean of M
  members, ``E (mean - y)^2 = (M + 1) / M * sigma^2`` when the observation is one more draw of the
  members' distribution. So the ratio is ``sqrt((M + 1) / (M - 1) * biased variance) / rmse``, 1 for a
  perfectly calibrated ensemble of any size (the uncorrected ``sqrt(biased variance) / rmse`` would
  give ``sqrt((M - 1) / (M + 1))``, 0.58 for 2 members). Variances and squared errors are averaged
  over pixels before the square roots. Also pysteps' ``ensemble_skill`` (mean over members of
  each member's RMSE) and ``ensemble_spread`` (mean over member pairs of their RMSE), with RMSE as metric.
* **Reliability** — pysteps :func:`~pysteps.verification.probscores.reldiag`: forecast probability =
  fraction of members ``>= threshold`` (``ensemblestats.excprob``), observed event ``radar >= threshold``,
  ``n_bins`` equal bins on [0, 1]; bins with fewer than ``min_count`` samples are NaN. pysteps applies
  ``min_count`` to each accumulated batch separately; here it applies to the accumulated totals (the
  same for a single batch). Also the Brier score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.errors import DatasetError
from qpe.verify.coords import score_attrs, threshold_coordinate
from qpe.verify.pairs import DEFAULT_THRESHOLDS, FieldPair, Region, field_levels, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

DEFAULT_RANK_MIN = 0.1
DEFAULT_RELIABILITY_BINS = 10
DEFAULT_RELIABILITY_MIN_COUNT = 10

TieBreak = str | np.random.RandomState | np.random.Generator


# -- per-pixel kernels (members along axis 0, pixels along axis 1) ------------------------------------------
def crps_terms(members: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two terms of the ensemble CRPS at each pixel: ``mean_i |x_i - y|`` and ``sum_ij |x_i - x_j|``.

    Parameters
    ----------
    members : numpy.ndarray
        (member, pixel) values, mm/h.
    obs : numpy.ndarray
        (pixel,) observed values, mm/h.

    Returns
    -------
    error, pair_sum : numpy.ndarray
        (pixel,) mean absolute error of the members and sum over ordered member pairs of their
        absolute difference, mm/h.
    """
    m = members.shape[0]
    ordered = np.sort(members, axis=0)
    weights = 2.0 * (2.0 * np.arange(m) - m + 1.0)  # sum_ij |x_i - x_j| = 2 sum_k (2k - m + 1) x_(k)
    return np.abs(members - obs).mean(axis=0), np.einsum("k,kn->n", weights, ordered)


def crps_values(members: np.ndarray, obs: np.ndarray, fair: bool = False) -> np.ndarray:
    """CRPS of the members at each pixel, mm/h: empirical (Hersbach) or fair (Ferro 2014).

    ``mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 M^2)``, or with ``fair`` ``/ (2 M (M - 1))``
    (NaN for a single member).

    Parameters
    ----------
    members : numpy.ndarray
        (member, pixel) values, mm/h.
    obs : numpy.ndarray
        (pixel,) observed values, mm/h.
    fair : bool
        The unbiased (fair) estimator instead of the CRPS of the empirical distribution.
    """
    error, pair_sum = crps_terms(members, obs)
    return error - pair_sum / _pair_normaliser(members.shape[0], fair)


def _pair_normaliser(m: int, fair: bool) -> float:
    """``2 M^2`` (empirical CRPS) or ``2 M (M - 1)`` (fair CRPS; NaN for one member)."""
    if not fair:
        return 2.0 * m * m
    return 2.0 * m * (m - 1) if m > 1 else np.nan


def rank_counts(
    members: np.ndarray,
    obs: np.ndarray,
    x_min: float | None = DEFAULT_RANK_MIN,
    ties: TieBreak = "split",
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Rank-histogram counts (member + 1 ranks) of pixels, pysteps' ``rankhist_accum`` rules.

    Parameters
    ----------
    members : numpy.ndarray
        (member, pixel) values.
    obs : numpy.ndarray
        (pixel,) observed values.
    x_min : float or None
        Skip pixels where the observation and all members are below it; values below it tie.
    ties : "split" or numpy.random.RandomState or numpy.random.Generator
        Split tied pixels evenly over their tied ranks, or draw one rank at random like pysteps.
    weight : numpy.ndarray, optional
        (pixel,) weight of each pixel (its count); 1 each when None.
    """
    n_members = members.shape[0]
    if x_min is not None:
        keep = (obs >= x_min) | (members >= x_min).any(axis=0)
        members, obs = members[:, keep], obs[keep]
        weight = None if weight is None else weight[keep]
        members = np.where(members < x_min, x_min - 1, members)
        obs = np.where(obs < x_min, x_min - 1, obs)
    below = (members < obs).sum(axis=0)
    tied = (members == obs).sum(axis=0)
    if isinstance(ties, str):
        if ties != "split":
            raise DatasetError(f"unknown tie rule {ties!r}: use 'split' or a random generator")
        share = 1.0 / (tied + 1.0)  # spread over ranks below .. below + tied: a difference array
        if weight is not None:
            share = share * weight
        diff = np.bincount(below, share, n_members + 2) - np.bincount(below + tied + 1, share, n_members + 2)
        return np.cumsum(diff)[: n_members + 1]
    rank = below.copy()
    draw = tied > 0
    rank[draw] = (below[draw] + ties.uniform(0.0, 1.0, int(draw.sum())) * (tied[draw] + 1)).astype(int)
    return np.bincount(rank, weight, minlength=n_members + 1).astype("float64")


# -- statistics ---------------------------------------------------------------------------------------------
def ensemble_statistics(
    pair: FieldPair,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    rank_min: float | None = DEFAULT_RANK_MIN,
    ties: TieBreak = "split",
) -> xr.Dataset:
    """Per-field sums behind the ensemble scores.

    Returns
    -------
    xarray.Dataset
        With dims (time, ...): ``n`` pixels, ``sum_crps`` and ``sum_crps_fair``, ``rank_counts`` (rank),
        ``sum_sq_error_mean`` (ensemble-mean squared error), ``sum_variance`` (member variance, ddof 1),
        ``sum_sq_error_member`` (member), ``sum_sq_difference`` (member, member_b), and
        ``reliability_table`` (threshold, n_exceeding = 0..M members >= threshold, observed = 0/1).
        For a weighted pair (:mod:`qpe.verify.pairs`) every sum over pixels is weighted, ``n`` and the
        counts of the rank histogram and reliability table are sums of weights.
    """
    if not pair.is_ensemble:
        raise DatasetError("ensemble scores need an estimate with a 'member' dimension")
    thr = threshold_coordinate(thresholds)
    n_members, n_times = pair.estimate.shape[:2]
    n = np.zeros(n_times)
    crps = np.zeros(n_times)
    crps_fair = np.zeros(n_times)
    ranks = np.zeros((n_times, n_members + 1))
    sq_error_mean = np.zeros(n_times)
    variance = np.zeros(n_times)
    sq_error_member = np.zeros((n_times, n_members))
    sq_difference = np.zeros((n_times, n_members, n_members))
    table = np.zeros((n_times, thr.size, n_members + 1, 2))
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        x_field, y_field = (
            pair.estimate[:, t][:, valid],
            pair.radar[t][valid],
        )  # comparisons in their precision
        weight = None if pair.weight is None else pair.weight[t][valid]
        ranks[t] = rank_counts(x_field, y_field, rank_min, ties, weight)
        exceeding = (x_field[None] >= field_levels(thr.values, x_field)[:, None, None]).sum(axis=1)
        observed = (y_field[None] >= field_levels(thr.values, y_field)[:, None]).astype(int)
        x, y = x_field.astype("float64"), y_field.astype("float64")
        codes = exceeding * 2 + observed + np.arange(thr.size)[:, None] * (n_members + 1) * 2
        n_codes = thr.size * (n_members + 1) * 2
        if weight is not None:
            n[t], crps[t], crps_fair[t] = _weighted_crps_sums(x, y, weight)
            # each unweighted expression with one factor times the weight: weights of 1 give it bit for bit
            mean = x.mean(axis=0)
            sq_error_mean[t] = np.einsum("i,i->", weight * (mean - y), mean - y)
            if n_members > 1:
                variance[t] = (weight * (x - mean) ** 2).sum() / (n_members - 1)
            error = x - y
            sq_error_member[t] = np.einsum("mi,mi->m", weight * error, error)
            gram = np.einsum("mi,ki->mk", weight * x, x)
            codes_weight = np.broadcast_to(weight, codes.shape).ravel()
            table[t] = np.bincount(codes.ravel(), codes_weight, minlength=n_codes).reshape(
                thr.size, n_members + 1, 2
            )
        else:
            n[t] = y.size
            error, pair_sum = crps_terms(x, y)
            crps[t] = error.sum() - pair_sum.sum() / _pair_normaliser(n_members, fair=False)
            crps_fair[t] = error.sum() - pair_sum.sum() / _pair_normaliser(n_members, fair=True)
            mean = x.mean(axis=0)
            sq_error_mean[t] = np.einsum("i,i->", mean - y, mean - y)
            if n_members > 1:
                variance[t] = ((x - mean) ** 2).sum() / (n_members - 1)
            error = x - y
            sq_error_member[t] = np.einsum("mi,mi->m", error, error)
            gram = np.einsum("mi,ki->mk", x, x)
            table[t] = np.bincount(codes.ravel(), minlength=n_codes).reshape(thr.size, n_members + 1, 2)
        norms = np.diag(gram)
        sq_difference[t] = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
    time = {"time": pair.time}
    members = {"member": pair.member, "member_b": ("member_b", pair.member)}
    data = {
        "n": xr.DataArray(n, dims="time", coords=time),
        "sum_crps": xr.DataArray(crps, dims="time", coords=time),
        "sum_crps_fair": xr.DataArray(crps_fair, dims="time", coords=time),
        "rank_counts": xr.DataArray(
            ranks, dims=("time", "rank"), coords={**time, "rank": np.arange(n_members + 1)}
        ),
        "sum_sq_error_mean": xr.DataArray(sq_error_mean, dims="time", coords=time),
        "sum_variance": xr.DataArray(variance, dims="time", coords=time),
        "sum_sq_error_member": xr.DataArray(
            sq_error_member, dims=("time", "member"), coords={**time, "member": pair.member}
        ),
        "sum_sq_difference": xr.DataArray(
            sq_difference, dims=("time", "member", "member_b"), coords={**time, **members}
        ),
        "reliability_table": xr.DataArray(
            table,
            dims=("time", "threshold", "n_exceeding", "observed"),
            coords={**time, "threshold": thr, "n_exceeding": np.arange(n_members + 1), "observed": [0, 1]},
        ),
    }
    return xr.Dataset(data, attrs={"family": "ensemble"})


def _weighted_crps_sums(
    members: np.ndarray, obs: np.ndarray, weight: np.ndarray
) -> tuple[float, float, float]:
    """Sum of the weights, and the weighted sums of the empirical and of the fair CRPS over pixels, mm/h."""
    error, pair_sum = crps_terms(members, obs)
    total_error, total_pairs = float((weight * error).sum()), float((weight * pair_sum).sum())
    n_members = members.shape[0]
    return (
        float(weight.sum()),
        total_error - total_pairs / _pair_normaliser(n_members, fair=False),
        total_error - total_pairs / _pair_normaliser(n_members, fair=True),
    )


def crps_statistics(pair: FieldPair) -> xr.Dataset:
    """Per-field sums behind the CRPS alone (the ensemble family without its other scores).

    Returns
    -------
    xarray.Dataset
        ``n`` pixels, ``sum_crps`` and ``sum_crps_fair`` (mm/h), dim ``time``; weighted sums (``n`` the
        sum of the weights) for a weighted pair.
    """
    if not pair.is_ensemble:
        raise DatasetError("the CRPS needs an estimate with a 'member' dimension")
    n_members, n_times = pair.estimate.shape[:2]
    sums = np.zeros((3, n_times))
    for t in range(n_times):
        valid = pair.valid[t]
        if valid.any() and pair.weight is not None:
            sums[:, t] = _weighted_crps_sums(pair.estimate[:, t][:, valid].astype("float64"),
                                             pair.radar[t][valid].astype("float64"), pair.weight[t][valid])
        elif valid.any():
            error, pair_sum = crps_terms(pair.estimate[:, t][:, valid].astype("float64"),
                                         pair.radar[t][valid].astype("float64"))
            sums[:, t] = (valid.sum(), error.sum() - pair_sum.sum() / _pair_normaliser(n_members, fair=False),
                          error.sum() - pair_sum.sum() / _pair_normaliser(n_members, fair=True))
    return xr.Dataset({name: xr.DataArray(sums[i], dims="time", coords={"time": pair.time})
                       for i, name in enumerate(("n", "sum_crps", "sum_crps_fair"))}, attrs={"family": "ensemble"})


def ensemble_init(thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> xr.Dataset:
    return xr.Dataset(coords={"threshold": threshold_coordinate(thresholds)}, attrs={"family": "ensemble"})


def ensemble_accum(
    stats: xr.Dataset, pair: FieldPair, rank_min: float | None = DEFAULT_RANK_MIN, ties: TieBreak = "split"
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, ensemble_statistics(pair, stats["threshold"].values, rank_min, ties))


def ensemble_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


# -- scores -------------------------------------------------------------------------------------------------
def continuous_ranked_probability_score(stats: xr.Dataset) -> xr.DataArray:
    """Mean CRPS over valid pixels, mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (stats["sum_crps"] / stats["n"]).assign_attrs(
            score_attrs("continuous ranked probability score", "mm/h", "probscores.CRPS")
        )


def fair_continuous_ranked_probability_score(stats: xr.Dataset) -> xr.DataArray:
    """Mean fair (unbiased, Ferro 2014) CRPS over valid pixels, mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (stats["sum_crps_fair"] / stats["n"]).assign_attrs(
            score_attrs(
                "fair continuous ranked probability score (Ferro 2014)",
                "mm/h",
                reference='scores.probability.crps_for_ensemble(method="fair")',
            )
        )


def crps_compute(stats: xr.Dataset) -> xr.Dataset:
    """CRPS and fair CRPS (mm/h) from :func:`crps_statistics` (or the full ensemble statistics)."""
    return xr.Dataset({"CRPS": continuous_ranked_probability_score(stats),
                       "CRPS_fair": fair_continuous_ranked_probability_score(stats)})


def rank_histogram(stats: xr.Dataset) -> xr.DataArray:
    """Rank histogram normalised to sum to one, dim ``rank`` (0 .. M)."""
    counts = stats["rank_counts"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (counts / counts.sum("rank")).assign_attrs(
            score_attrs("rank histogram (relative frequency)", "1", "ensscores.rankhist")
        )


def ensemble_spread(stats: xr.Dataset) -> xr.DataArray:
    """pysteps ``ensemble_spread(X_f, "RMSE")``: mean over member pairs of the RMSE between them, mm/h."""
    pairs = stats["sum_sq_difference"]
    members = pairs.sizes["member"]
    upper = xr.DataArray(np.triu(np.ones((members, members), bool), 1), dims=("member", "member_b"))
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt(pairs / stats["n"])
    return (
        rmse.where(upper)
        .mean(("member", "member_b"))
        .assign_attrs(score_attrs("mean RMSE between member pairs", "mm/h", "ensscores.ensemble_spread RMSE"))
    )


def ensemble_skill(stats: xr.Dataset) -> xr.DataArray:
    """pysteps ``ensemble_skill(X_f, X_o, "RMSE")``: mean over members of each member's RMSE, mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt(stats["sum_sq_error_member"] / stats["n"])
    return rmse.mean("member").assign_attrs(
        score_attrs("mean member RMSE", "mm/h", "ensscores.ensemble_skill RMSE")
    )


def spread(stats: xr.Dataset) -> xr.DataArray:
    """sqrt(mean member variance), ddof = 1, mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(stats["sum_variance"] / stats["n"]).assign_attrs(
            score_attrs("ensemble spread sqrt(mean variance)", "mm/h")
        )


def ensemble_mean_rmse(stats: xr.Dataset) -> xr.DataArray:
    """RMSE of the ensemble mean, mm/h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(stats["sum_sq_error_mean"] / stats["n"]).assign_attrs(
            score_attrs("RMSE of the ensemble mean", "mm/h")
        )


def spread_skill_ratio(stats: xr.Dataset) -> xr.DataArray:
    """Fair spread-skill ratio ``sqrt((M + 1) / M) * spread / RMSE(ensemble mean)``, spread with ddof 1.

    Equal to ``sqrt((M + 1) / (M - 1) * biased member variance) / RMSE``; 1 for a perfectly calibrated
    ensemble of any size M (see the module notes).
    """
    members = stats.sizes["member"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt((members + 1) / members) * spread(stats) / ensemble_mean_rmse(stats)
    return ratio.assign_attrs(
        score_attrs("fair spread-skill ratio sqrt((M+1)/M) spread(ddof 1) / RMSE(mean)")
    )


def reliability(
    stats: xr.Dataset, n_bins: int = DEFAULT_RELIABILITY_BINS, min_count: int = DEFAULT_RELIABILITY_MIN_COUNT
) -> xr.Dataset:
    """Reliability diagram per threshold, as pysteps ``reldiag`` with ``n_bins`` and ``min_count``.

    Returns
    -------
    xarray.Dataset
        ``reliability_forecast`` (mean forecast probability), ``reliability_observed`` (observed
        frequency) and ``reliability_count`` (samples), dims (threshold, probability_bin).
    """
    table = stats["reliability_table"]
    members = table.sizes["n_exceeding"] - 1
    probability = np.arange(members + 1) / members
    edges = np.linspace(-1e-6, 1 + 1e-6, int(n_bins + 1))
    bins = np.digitize(probability, edges, right=True) - 1  # 0 .. n_bins-1
    one_hot = xr.DataArray(
        (bins[:, None] == np.arange(n_bins)[None, :]).astype(float), dims=("n_exceeding", "probability_bin")
    )
    samples = table.sum("observed")
    count = xr.dot(samples, one_hot, dim="n_exceeding")
    forecast_sum = xr.dot(samples * xr.DataArray(probability, dims="n_exceeding"), one_hot, dim="n_exceeding")
    observed_sum = xr.dot(table.sel(observed=1, drop=True), one_hot, dim="n_exceeding")
    enough = count >= max(min_count, 1)
    centre = {"probability_bin": ("probability_bin", (edges[:-1] + edges[1:]) / 2, {"units": "1"})}
    with np.errstate(divide="ignore", invalid="ignore"):
        return xr.Dataset(
            {
                "reliability_forecast": (forecast_sum / count)
                .where(enough)
                .assign_coords(centre)
                .assign_attrs(
                    score_attrs("mean forecast probability in the bin", "1", "probscores.reldiag r")
                ),
                "reliability_observed": (observed_sum / count)
                .where(enough)
                .assign_coords(centre)
                .assign_attrs(score_attrs("observed frequency in the bin", "1", "probscores.reldiag f")),
                "reliability_count": count.assign_coords(centre).assign_attrs(
                    score_attrs("samples in the bin")
                ),
            }
        )


def brier_score(stats: xr.Dataset) -> xr.DataArray:
    """Brier score of the member exceedance probability at each threshold."""
    table = stats["reliability_table"]
    members = table.sizes["n_exceeding"] - 1
    p = xr.DataArray(np.arange(members + 1) / members, dims="n_exceeding")
    o = xr.DataArray([0.0, 1.0], dims="observed")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (table * (p - o) ** 2).sum(("n_exceeding", "observed")) / table.sum(
            ("n_exceeding", "observed")
        )
    return value.assign_attrs(score_attrs("Brier score of P(rain >= threshold)"))


def ensemble_compute(
    stats: xr.Dataset,
    reliability_bins: int = DEFAULT_RELIABILITY_BINS,
    reliability_min_count: int = DEFAULT_RELIABILITY_MIN_COUNT,
) -> xr.Dataset:
    """CRPS (empirical and fair), rank histogram, spread-skill, pysteps ensemble skill/spread,
    reliability and Brier score."""
    return xr.Dataset(
        {
            "CRPS": continuous_ranked_probability_score(stats),
            "CRPS_fair": fair_continuous_ranked_probability_score(stats),
            "rank_histogram": rank_histogram(stats),
            "spread": spread(stats),
            "ensemble_mean_rmse": ensemble_mean_rmse(stats),
            "spread_skill_ratio": spread_skill_ratio(stats),
            "ensemble_skill": ensemble_skill(stats),
            "ensemble_spread": ensemble_spread(stats),
            "BRIER": brier_score(stats),
            **reliability(stats, reliability_bins, reliability_min_count).data_vars,
        }
    )


def ensemble_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    region: Region = None,
    rank_min: float | None = DEFAULT_RANK_MIN,
    ties: TieBreak = "split",
) -> xr.Dataset:
    """Ensemble scores of an estimate with a member dimension against radar.

    Parameters
    ----------
    estimate : xarray.DataArray
        (member, [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        Reliability / Brier thresholds, mm/h (event: rain >= threshold).
    """
    stats = ensemble_accum(ensemble_init(thresholds), pair_fields(estimate, radar, region), rank_min, ties)
    return ensemble_compute(stats)
