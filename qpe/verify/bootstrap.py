"""Bootstrap confidence intervals: resampling UTC days, or times within days.

Rain scores are strongly correlated within a day (one weather situation), so the resampling unit is
the **UTC day** (``unit="day"``): each replicate draws as many days as were accumulated, with
replacement, from a seeded generator; its statistics are the per-day statistics weighted by how often
each day was drawn, and its scores are computed from them exactly as the point estimate is. The
percentile interval of the replicates is the confidence interval.

With few days (fewer than :data:`MIN_DAYS`, see :func:`choose_unit`) a day bootstrap has too few
distinct resamples to give an interval; ``unit="time"`` then resamples the **times within each day**
(a stratified bootstrap: every replicate keeps every day and draws as many of its times as it has, with
replacement). It needs statistics kept per time (``ScoreAccumulator(resolution="time")``) and, since
times of one day are correlated, gives narrower intervals than the day bootstrap would: they describe
the sampling of times in those days, not of weather situations. Say which unit was used.

Everything happens on the small per-case statistics, never on the fields, and replicates are computed
in chunks (vectorised over a ``replicate`` dimension). :func:`case_weights` gives the draws,
:func:`replicate_scores` the scores of each replicate (e.g. to bootstrap derived quantities, such as
paired differences between models drawn with the same weights), :func:`percentile_bounds` the interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import xarray as xr

from qpe.errors import InputError
from qpe.verify.aggregate import ScoreAccumulator, compute_scores
from qpe.verify.statistics import resample_statistics

#: Replicates computed together (bounds memory: the histograms are the largest statistics).
_CHUNK = 200
#: Resampling units: whole UTC days, or times within each day.
UNITS = ("day", "time")
#: Fewest resampling units for an interval that decides a claim: 5 units give 126 distinct resamples;
#: 2 give 3, and a percentile interval of 3 values is no measure of noise.
MIN_UNITS = 5
#: Fewest days for a day bootstrap under ``choose_unit`` (below it, times within days are resampled).
MIN_DAYS = MIN_UNITS
#: How the page and the files name each unit.
UNIT_NAMES = {"day": "UTC days", "time": "times within UTC days"}


def choose_unit(n_days: int, min_days: int = MIN_DAYS) -> str:
    """``"day"`` with at least ``min_days`` days, else ``"time"`` (resample times within the days)."""
    return "day" if n_days >= min_days else "time"


def bootstrap_weights(n_days: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """(replicate, day) number of times each day is drawn, each row summing to ``n_days``."""
    return _draw_counts(np.random.default_rng(seed), n_days, n_resamples)


def _draw_counts(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """(replicate, n) counts of ``n`` draws with replacement among ``n`` items, per replicate."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    rows = np.repeat(np.arange(n_resamples), n)
    return (
        np.bincount(rows * n + draws.ravel(), minlength=n_resamples * n)
        .reshape(n_resamples, n)
        .astype("float64")
    )


def n_units(cases: np.ndarray, unit: str) -> int:
    """Number of resampling units among ``cases`` (datetime64 days or times) that can vary.

    Unit ``"day"``: the days. Unit ``"time"``: the times of the days that have at least two (a day with
    a single time is redrawn as itself in every replicate, so it brings no variation: with one time
    per day a bootstrap of times within days is no bootstrap at all).
    """
    _check_unit(unit)
    days, counts = np.unique(np.asarray(cases).astype("datetime64[D]"), return_counts=True)
    return int(days.size if unit == "day" else counts[counts >= 2].sum())


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise InputError(f"unknown bootstrap unit {unit!r}: use {' or '.join(UNITS)}")


def case_weights(cases: np.ndarray, unit: str, n_resamples: int, seed: int = 0) -> xr.DataArray:
    """How often each case is drawn in each replicate.

    Parameters
    ----------
    cases : numpy.ndarray
        (case,) datetime64 labels of the kept statistics (days, or times), as
        :attr:`ScoreAccumulator.cases`, sorted.
    unit : {"day", "time"}
        Resample whole days (all cases of a day get the day's count), or the times within each day.
    n_resamples : int
        Number of replicates.
    seed : int
        Seed of the generator; the same cases, unit and seed give the same weights (with per-day cases
        and ``unit="day"``, the weights of :func:`bootstrap_weights`).

    Returns
    -------
    xarray.DataArray
        (replicate, case) counts; a replicate's counts sum to the number of cases.
    """
    _check_unit(unit)
    if n_resamples < 1:
        raise InputError(f"n_resamples must be at least 1, got {n_resamples}")
    cases = np.asarray(cases)
    days, day_index = np.unique(cases.astype("datetime64[D]"), return_inverse=True)
    if unit == "day":
        weights = bootstrap_weights(days.size, n_resamples, seed)[:, day_index]
    else:
        if days.size == cases.size and cases.dtype == np.dtype("datetime64[D]"):
            raise InputError(
                "resampling times needs statistics kept per time: ScoreAccumulator(resolution='time')"
            )
        rng = np.random.default_rng(seed)
        weights = np.zeros((n_resamples, cases.size))
        for d in range(days.size):
            chosen = np.flatnonzero(day_index == d)
            weights[:, chosen] = _draw_counts(rng, chosen.size, n_resamples)
    return xr.DataArray(weights, dims=("replicate", "case"))


def replicate_scores(
    accumulator: ScoreAccumulator, weights: xr.DataArray, chunk: int = _CHUNK
) -> Iterator[xr.Dataset]:
    """The scores of each bootstrap replicate, ``chunk`` replicates at a time.

    Parameters
    ----------
    accumulator : ScoreAccumulator
        Statistics per case (``accumulator.cases`` in the order of ``weights``' ``case`` dimension).
    weights : xarray.DataArray
        (replicate, case) draws, from :func:`case_weights`.

    Yields
    ------
    xarray.Dataset
        The variables of ``accumulator.compute()`` with a leading ``replicate`` dimension.
    """
    by_case = accumulator.statistics(by="case")
    if weights.sizes["case"] != accumulator.cases.size:
        raise InputError(f"{weights.sizes['case']} case weights for {accumulator.cases.size} cases")
    for start in range(0, weights.sizes["replicate"], chunk):
        w = weights.isel(replicate=slice(start, start + chunk))
        resampled = {name: resample_statistics(stats, w, dim="case") for name, stats in by_case.items()}
        yield compute_scores(resampled, accumulator.config)


def percentile_bounds(
    replicates: xr.Dataset | xr.DataArray, confidence: float = 0.95
) -> xr.Dataset | xr.DataArray:
    """The ``confidence`` percentile interval over ``replicate``: a leading ``bound`` dimension
    (``"ci_low"``, ``"ci_high"``); NaN replicates (a score undefined in them) are left out."""
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates of an undefined score
        bounds = replicates.quantile([tail, 1.0 - tail], dim="replicate", skipna=True)
    return bounds.rename(quantile="bound").assign_coords(bound=["ci_low", "ci_high"])


def bootstrap_replicates(accumulator: ScoreAccumulator, weights: xr.DataArray) -> xr.Dataset:
    """Every score of every replicate at once (:func:`replicate_scores` concatenated along ``replicate``)."""
    return xr.concat(
        list(replicate_scores(accumulator, weights)), dim="replicate", coords="minimal", compat="override"
    )


def bootstrap_ci(
    accumulator: ScoreAccumulator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    unit: str = "day",
    *,
    replicates: xr.Dataset | None = None,
) -> xr.Dataset:
    """Percentile confidence intervals of every score, resampling days (or times within days).

    Parameters
    ----------
    accumulator : ScoreAccumulator
        Scores accumulated over several days (or, for ``unit="time"``, kept per time).
    n_resamples : int
        Number of bootstrap replicates.
    confidence : float
        Coverage of the interval (0.95: the 2.5 and 97.5 percentiles).
    seed : int
        Seed of the generator drawing the days; the same seed gives the same intervals.
    unit : {"day", "time"}
        Resampling unit (see the module notes).
    replicates : xarray.Dataset, optional
        The replicates already computed with these settings (:func:`bootstrap_replicates` of
        ``case_weights(accumulator.cases, unit, n_resamples, seed)``), e.g. to reuse them for paired
        differences between models; drawn here when None.

    Returns
    -------
    xarray.Dataset
        The variables of ``accumulator.compute()`` with a leading ``bound`` dimension
        (``"ci_low"``, ``"ci_high"``); NaN where a score is undefined in too many replicates.
    """
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    if replicates is None:
        replicates = bootstrap_replicates(accumulator, case_weights(accumulator.cases, unit, n_resamples, seed))
    elif replicates.sizes["replicate"] != n_resamples:
        raise InputError(f"{replicates.sizes['replicate']} replicates given for n_resamples={n_resamples}")
    bounds = percentile_bounds(replicates, confidence)
    bounds.attrs.update(
        {
            "confidence": confidence,
            "n_resamples": n_resamples,
            "seed": seed,
            "n_days": int(accumulator.days.size),
            "unit": unit,
            "n_units": n_units(accumulator.cases, unit),
            "method": f"percentile bootstrap over {UNIT_NAMES[unit]}",
        }
    )
    if accumulator.model is not None:
        bounds = bounds.assign_coords(model=accumulator.model)
    return bounds
