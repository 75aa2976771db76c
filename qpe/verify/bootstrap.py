"""Bootstrap confidence intervals over days.

Rain scores are strongly correlated within a day (one weather situation), so the resampling unit is
the UTC day: each replicate draws as many days as were accumulated, with replacement, from a seeded
generator; its statistics are the per-day statistics weighted by how often each day was drawn, and its
scores are computed from them exactly as the point estimate is. The percentile interval of the
replicates is the confidence interval. Everything happens on the small per-day statistics, never on
the fields, and all replicates are computed at once (vectorised over a ``replicate`` dimension).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from qpe.errors import InputError
from qpe.verify.aggregate import ScoreAccumulator, compute_scores
from qpe.verify.statistics import resample_statistics

#: Replicates computed together (bounds memory: the histograms are the largest statistics).
_CHUNK = 200


def bootstrap_weights(n_days: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """(replicate, day) number of times each day is drawn, each row summing to ``n_days``."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_days, size=(n_resamples, n_days))
    rows = np.repeat(np.arange(n_resamples), n_days)
    return (
        np.bincount(rows * n_days + draws.ravel(), minlength=n_resamples * n_days)
        .reshape(n_resamples, n_days)
        .astype("float64")
    )


def bootstrap_ci(
    accumulator: ScoreAccumulator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """Percentile confidence intervals of every score, resampling days with replacement.

    Parameters
    ----------
    accumulator : ScoreAccumulator
        Scores accumulated over several days.
    n_resamples : int
        Number of bootstrap replicates.
    confidence : float
        Coverage of the interval (0.95: the 2.5 and 97.5 percentiles).
    seed : int
        Seed of the generator drawing the days; the same seed gives the same intervals.

    Returns
    -------
    xarray.Dataset
        The variables of ``accumulator.compute()`` with a leading ``bound`` dimension
        (``"ci_low"``, ``"ci_high"``); NaN where a score is undefined in too many replicates.
    """
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise InputError(f"n_resamples must be at least 1, got {n_resamples}")
    by_day = accumulator.statistics(by_day=True)
    n_days = accumulator.days.size
    weights = bootstrap_weights(n_days, n_resamples, seed)
    replicates = []
    for start in range(0, n_resamples, _CHUNK):
        w = xr.DataArray(weights[start : start + _CHUNK], dims=("replicate", "day"))
        resampled = {name: resample_statistics(stats, w) for name, stats in by_day.items()}
        replicates.append(compute_scores(resampled, accumulator.config))
    scores = xr.concat(replicates, dim="replicate", coords="minimal", compat="override")
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates of an undefined score
        bounds = scores.quantile([tail, 1.0 - tail], dim="replicate", skipna=True)
    bounds = bounds.rename(quantile="bound").assign_coords(bound=["ci_low", "ci_high"])
    bounds.attrs.update(
        {
            "confidence": confidence,
            "n_resamples": n_resamples,
            "seed": seed,
            "n_days": int(n_days),
            "method": "percentile bootstrap over days",
        }
    )
    if accumulator.model is not None:
        bounds = bounds.assign_coords(model=accumulator.model)
    return bounds
