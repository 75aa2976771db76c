"""Is model A better than model B? Paired differences with day-block bootstrap intervals, the
Diebold-Mariano test, and the scorecard that shows both.

Two models scored on the same times are compared through the **paired difference** of a score,
``d = q(A) - q(B)``, where ``q`` is the score itself, or for a score with a target (frequency bias 1,
mean error 0) its distance to the target (:data:`qpe.verify.tables.ORIENTATION`, the one table of which
way each score is better).

Bootstrap interval (paired block bootstrap)
    Each replicate draws UTC days with replacement (:func:`qpe.verify.bootstrap.case_weights`, the draws
    of the evaluation's own intervals) and scores **both** models on the same drawn days; ``d`` is taken
    replicate by replicate (:func:`paired_replicates`), so what the two share — the weather of the day,
    the radar — cancels. The interval is the percentile range of the replicates' ``d`` at the configured
    confidence; A differs from B when it excludes 0 (:func:`excludes_zero`).
Diebold-Mariano test (Diebold and Mariano 1995)
    On the series ``d_t`` of the score difference per case (each UTC day, or each valid time when the
    statistics are kept per time: :func:`case_scores`), ``DM = mean(d) / sqrt(S / n)`` with ``S`` the
    Newey-West (Bartlett-kernel) estimate of the long-run variance of ``d_t``
    (:func:`newey_west_variance`) at lag ``L = floor(4 (n / 100) ** (2 / 9))`` (Newey and West 1994, the
    default of ``statsmodels``' ``cov_hac``): :func:`newey_west_lag`. The p-value is two-sided, from
    Student's t with ``n - 1`` degrees of freedom (the small-sample reference distribution of Harvey,
    Leybourne and Newbold 1997; their multiplicative correction is not applied: it is derived for the
    rectangular ``h - 1``-lag variance of ``h``-step forecasts, not for a Bartlett variance).
    The test needs at least :data:`MIN_CASES` cases with both scores finite.

The two answer different questions: the bootstrap interval is about the period's score (computed from
pooled statistics, e.g. the CSI of all pixels), the DM test about the mean of the per-case scores.

:func:`scorecard` puts them together for pairs of models (each against a reference, or every pair) and
the scores of :data:`SCORECARD` (:func:`card_scores`); :func:`scorecard_frame` makes its tidy table.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from qpe.errors import DatasetError, InputError
from qpe.verify.aggregate import ScoreAccumulator, compute_scores
from qpe.verify.bootstrap import percentile_bounds, replicate_scores
from qpe.verify.tables import orientation, preferred_level

#: Fewest cases (days or times) with both scores finite for a Diebold-Mariano test.
MIN_CASES = 5
#: Cases scored together by :func:`case_scores` (bounds memory, as the bootstrap's chunks do).
CASE_CHUNK = 200
#: The threshold (mm/h) and scale (km) of the headline scores and of the scorecard, when scored.
HEADLINE_THRESHOLD, HEADLINE_SCALE = 1.0, 16.0
#: Scores of the scorecard: (metric, at the headline threshold?, at the headline scale?).
SCORECARD: tuple[tuple[str, bool, bool], ...] = (
    ("CSI", True, False),
    ("CSI_matched", True, False),
    ("ETS", True, False),
    ("BIAS", True, False),
    ("FSS", True, True),
    ("FSS_ensemble", True, True),
    ("ME", False, False),
    ("MAE", False, False),
    ("RMSE", False, False),
    ("CORR", False, False),
    ("CRPS_fair", False, False),
    ("spread_skill_ratio", False, False),
    ("energy_score", False, False),
    ("variogram_score", False, False),
    ("effective_resolution", False, False),
)


# -- Diebold-Mariano ----------------------------------------------------------------------------------------
def newey_west_lag(n: int) -> int:
    """The Newey-West (1994) lag rule ``floor(4 (n / 100) ** (2 / 9))`` for a series of ``n`` values
    (0 for n < 2)."""
    return int(np.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))) if n >= 2 else 0


def newey_west_variance(series: np.ndarray, lag: int) -> float:
    """Newey-West (Bartlett-kernel HAC) estimate of the long-run variance of a series.

    ``S = g_0 + 2 sum_{k=1..L} (1 - k / (L + 1)) g_k``, ``g_k = 1/n sum_{t>=k} (d_t - m)(d_{t-k} - m)``
    with ``m`` the mean (autocovariances normalised by ``n``, so ``S >= 0``).

    Parameters
    ----------
    series : numpy.ndarray
        (n,) values in time order (score units).
    lag : int
        Truncation lag ``L >= 0`` (0: the plain variance with divisor ``n``).

    Returns
    -------
    float
        ``S``, in squared score units; ``n S`` estimates the variance of the series' sum.
    """
    d = np.asarray(series, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise InputError(f"a series of at least one value is needed, got shape {d.shape}")
    if lag < 0:
        raise InputError(f"the lag must be 0 or more, got {lag}")
    u = d - d.mean()
    n = u.size
    total = u @ u / n
    for k in range(1, min(lag, n - 1) + 1):
        total += 2.0 * (1.0 - k / (lag + 1.0)) * (u[k:] @ u[:-k]) / n
    return float(total)


@dataclass(frozen=True)
class DieboldMariano:
    """A Diebold-Mariano test of a series of differences ``d_t``.

    Attributes
    ----------
    statistic : float
        ``mean(d) / sqrt(S / n)`` (NaN without a test; +-inf for a constant non-zero series).
    p_value : float
        Two-sided, from Student's t with ``n - 1`` degrees of freedom.
    mean : float
        Mean difference (score units).
    variance : float
        Newey-West long-run variance ``S`` (squared score units).
    lag : int
        Truncation lag of ``S``.
    n : int
        Number of differences used (finite ones).
    """

    statistic: float
    p_value: float
    mean: float
    variance: float
    lag: int
    n: int


def diebold_mariano(differences: np.ndarray, lag: int | None = None, min_cases: int = MIN_CASES) -> DieboldMariano:
    """Diebold-Mariano test that the mean of ``differences`` is zero (see the module notes).

    Parameters
    ----------
    differences : numpy.ndarray
        (n,) per-case score differences ``q_t(A) - q_t(B)`` in time order; NaN cases (a score undefined
        on that day or time for either model) are left out.
    lag : int, optional
        Truncation lag of the Newey-West variance; :func:`newey_west_lag` of the finite count by default.
    min_cases : int
        Fewest finite differences for a test; with fewer, statistic and p-value are NaN.

    Returns
    -------
    DieboldMariano
    """
    d = np.asarray(differences, dtype=float).ravel()
    d = d[np.isfinite(d)]
    n = d.size
    lag = newey_west_lag(n) if lag is None else int(lag)
    if n < max(min_cases, 2):
        return DieboldMariano(np.nan, np.nan, float(d.mean()) if n else np.nan, np.nan, lag, n)
    mean, variance = float(d.mean()), newey_west_variance(d, lag)
    spread = 1e-12 * max(float(np.abs(d).max()), 1e-300)
    if variance <= spread**2:  # a constant series: no noise to test against
        statistic = np.nan if mean == 0 else float(np.copysign(np.inf, mean))
        p_value = np.nan if mean == 0 else 0.0
    else:
        statistic = mean / np.sqrt(variance / n)
        p_value = float(2.0 * stats.t.sf(abs(statistic), df=n - 1))
    return DieboldMariano(float(statistic), p_value, mean, variance, lag, n)


# -- paired replicates --------------------------------------------------------------------------------------
def check_same_cases(accumulators: dict[str, ScoreAccumulator]) -> np.ndarray:
    """The cases (days or times) shared by every model; a :class:`DatasetError` if they differ (paired
    comparisons need the same cases)."""
    if not accumulators:
        raise InputError("no model to compare")
    cases = next(iter(accumulators.values())).cases
    for name, acc in accumulators.items():
        if not np.array_equal(acc.cases, cases):
            raise DatasetError(f"model {name!r} was scored on other days or times than the others: "
                               "paired replicates need the same cases")
    return cases


def paired_replicates(
    accumulators: dict[str, ScoreAccumulator],
    weights: xr.DataArray,
    transform: Callable[[xr.Dataset], xr.Dataset] | None = None,
) -> xr.Dataset:
    """The scores of every model on each bootstrap replicate, all drawn with the same ``weights``.

    Parameters
    ----------
    accumulators : dict
        Model name -> statistics of the same cases (days or times) for every model.
    weights : xarray.DataArray
        (replicate, case) draws (:func:`qpe.verify.bootstrap.case_weights`), shared by all models: in
        each replicate both models of a pair are scored on the same days, so the replicates are paired.
    transform : callable, optional
        Applied to each chunk of replicate scores (e.g. to keep a few derived columns); identity by default.

    Returns
    -------
    xarray.Dataset
        Dims (model, replicate, ...); a variable a model lacks (a U-Net's ensemble scores) is NaN there.
    """
    check_same_cases(accumulators)
    transform = transform or (lambda scores: scores)
    per_model = []
    for name, acc in accumulators.items():
        chunks = [transform(scores) for scores in replicate_scores(acc, weights)]
        per_model.append(xr.concat(chunks, "replicate", data_vars="all", coords="minimal", compat="override")
                         .expand_dims(model=[name]))
    out = xr.concat(per_model, "model", data_vars="all", coords="minimal", compat="override", join="outer")
    return out.transpose("model", "replicate", ...)


def case_scores(
    accumulator: ScoreAccumulator,
    transform: Callable[[xr.Dataset], xr.Dataset | xr.DataArray] | None = None,
    chunk: int = CASE_CHUNK,
) -> xr.Dataset | xr.DataArray:
    """Every score of each case alone (each UTC day, or each time for statistics kept per time).

    Parameters
    ----------
    accumulator : ScoreAccumulator
        Statistics kept per case.
    transform : callable, optional
        Applied to the scores of each chunk of cases (e.g. :func:`card_values`, to keep a few scores of
        thousands of times without holding every curve of every time); identity by default.
    chunk : int
        Cases scored together.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The variables of ``accumulator.compute()`` (or their ``transform``) with a leading ``case``
        dimension (datetime64 labels, :attr:`ScoreAccumulator.cases`): the per-case series a
        Diebold-Mariano test compares.
    """
    transform = transform or (lambda scores: scores)
    by_case = {name: stats.drop_vars("case_day", errors="ignore")
               for name, stats in accumulator.statistics(by="case").items()}
    n = accumulator.cases.size
    parts = [transform(compute_scores({name: stats.isel(case=slice(start, start + chunk))
                                       for name, stats in by_case.items()}, accumulator.config))
             for start in range(0, n, chunk)]
    return parts[0] if len(parts) == 1 else xr.concat(parts, "case", coords="minimal", compat="override")


#: Differences within this fraction of the compared values are rounding, i.e. 0 (e.g. the CORR of two
#: estimates that differ by a constant).
ROUNDING = 1e-12


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b``, set to 0 where it is within :data:`ROUNDING` of the values (NaN stays NaN)."""
    d = a - b
    return np.where(np.abs(d) <= ROUNDING * np.fmax(np.abs(a), np.abs(b)), 0.0, d)


def excludes_zero(low: float | np.ndarray, high: float | np.ndarray) -> bool | np.ndarray:
    """Whether an interval ``[low, high]`` lies wholly above or below 0 (False where a bound is NaN)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    out = (low > 0) | (high < 0)
    return bool(out) if out.ndim == 0 else out


# -- the scorecard ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardScore:
    """One column of the scorecard: a scalar score, at one threshold (mm/h) and scale (km) if it has them."""

    metric: str
    threshold: float | None = None
    scale: float | None = None

    @property
    def label(self) -> str:
        """``CSI >1``, ``FSS ≥1 @16 km``, ``RMSE`` (the report's headline labels)."""
        label = self.metric
        if self.threshold is not None:
            label += f" ≥{self.threshold:g}" if self.metric.startswith("FSS") else f" >{self.threshold:g}"
        return label + (f" @{self.scale:g} km" if self.scale is not None else "")

    def compared(self, scores: xr.Dataset) -> xr.DataArray:
        """The compared quantity (the score, or its distance to the target), members averaged, keeping the
        other dims of ``scores`` (model, replicate, case); NaN when ``scores`` lacks the score."""
        if self.metric not in scores.data_vars:
            return xr.DataArray(np.nan)
        da = scores[self.metric]
        if "member" in da.dims:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN members: an undefined score
                da = da.mean("member", skipna=True)
        where = {k: v for k, v in (("threshold", self.threshold), ("scale", self.scale)) if v is not None}
        da = da.sel(where) if where else da
        da = da.drop_vars([c for c in da.coords if c not in da.dims])
        return orientation(self.metric).compared(da)


def card_scores(
    thresholds: Sequence[float], scales: Sequence[float], metrics: Sequence[tuple[str, bool, bool]] = SCORECARD
) -> list[CardScore]:
    """The scorecard's columns: ``metrics`` at the headline threshold and scale (1 mm/h and 16 km when
    scored, else the middle ones; :func:`qpe.verify.tables.preferred_level`)."""
    threshold = preferred_level(thresholds, HEADLINE_THRESHOLD)
    scale = preferred_level(scales, HEADLINE_SCALE)
    cards = []
    for metric, at_threshold, at_scale in metrics:
        if (at_threshold and threshold is None) or (at_scale and scale is None):
            continue
        cards.append(CardScore(metric, threshold if at_threshold else None, scale if at_scale else None))
    return cards


def card_values(scores: xr.Dataset, cards: Sequence[CardScore]) -> xr.DataArray:
    """The compared quantity of each card, dims (..., score): the other dims of ``scores`` first."""
    columns = xr.broadcast(*[card.compared(scores) for card in cards])
    out = xr.concat(columns, "score", coords="minimal", compat="override")
    return out.assign_coords(score=[c.label for c in cards]).transpose(..., "score")


#: Most models compared pair by pair when no reference is named (28 pairs); with more, every model is
#: compared with the first (a study of 49 models would otherwise give 1176 pairs).
MAX_ALL_PAIRS_MODELS = 8


def comparison_pairs(models: Sequence[str], reference: str | None = None) -> list[tuple[str, str]]:
    """(model, reference) pairs: every other model against ``reference``, or, without one, every pair
    once (each model against every model listed before it) — with more than
    :data:`MAX_ALL_PAIRS_MODELS` models, every other model against the first."""
    models = list(models)
    if reference is None and len(models) > MAX_ALL_PAIRS_MODELS:
        reference = models[0]
    if reference is not None:
        if reference not in models:
            raise InputError(f"the reference model {reference!r} is not among the models {models}")
        return [(m, reference) for m in models if m != reference]
    return [(b, a) for i, a in enumerate(models) for b in models[i + 1:]]


def scorecard(
    values: xr.DataArray,
    pairs: Sequence[tuple[str, str]],
    cards: Sequence[CardScore],
    replicates: xr.DataArray | None = None,
    series: xr.DataArray | None = None,
    confidence: float = 0.95,
) -> xr.Dataset:
    """Paired differences of every pair of models in every card score, with interval and DM test.

    Parameters
    ----------
    values : xarray.DataArray
        (model, score) compared quantity on all the data (:func:`card_values`).
    pairs : sequence of (str, str)
        (model, reference) pairs (:func:`comparison_pairs`); the difference is model minus reference.
    cards : sequence of CardScore
        The scores, in the order of the ``score`` dimension.
    replicates : xarray.DataArray, optional
        (model, replicate, score) compared quantity on each paired bootstrap replicate; no interval without.
    series : xarray.DataArray, optional
        (model, case, score) compared quantity of each case in time order; no DM test without.
    confidence : float
        Coverage of the interval; the DM test is significant at ``1 - confidence``.

    Returns
    -------
    xarray.Dataset
        Dims (pair, score). ``difference`` (model - reference, score units), ``ci_low``, ``ci_high``,
        ``dm_statistic``, ``dm_p_value``, ``dm_lag``, ``dm_cases``, and ``gain``: +1 where the model is
        better (the difference points the better way), -1 worse, 0 equal, NaN undefined. Coordinates
        ``model`` and ``reference`` along ``pair``; ``metric``, ``threshold`` (mm/h, NaN: none),
        ``scale`` (km, NaN: none), ``compared`` (``CSI``, ``|BIAS - 1|``) and ``better`` (``higher`` or
        ``lower``, of the compared quantity) along ``score``.
    """
    n_pairs, n_scores = len(pairs), len(cards)
    data = {k: np.full((n_pairs, n_scores), np.nan) for k in
            ("difference", "ci_low", "ci_high", "dm_statistic", "dm_p_value", "dm_lag", "dm_cases")}
    for i, (model, reference) in enumerate(pairs):
        data["difference"][i] = _difference(values.sel(model=model).values, values.sel(model=reference).values)
        if replicates is not None:
            d = replicates.sel(model=model, drop=True) - replicates.sel(model=reference, drop=True)
            bounds = percentile_bounds(d.where(np.isfinite(d)), confidence).transpose("bound", "score").values
            data["ci_low"][i], data["ci_high"][i] = bounds
        if series is not None:
            a, b = (series.sel(model=m, drop=True).transpose("score", ...).values for m in (model, reference))
            for j, row in enumerate(_difference(a, b)):
                test = diebold_mariano(row)
                data["dm_statistic"][i, j], data["dm_p_value"][i, j] = test.statistic, test.p_value
                data["dm_lag"][i, j], data["dm_cases"][i, j] = test.lag, test.n
    sign = np.array([1.0 if orientation(c.metric).higher_is_better else -1.0 for c in cards])
    gain = np.sign(data["difference"] * sign)
    dims = ("pair", "score")
    out = xr.Dataset({k: (dims, v) for k, v in {**data, "gain": gain}.items()})
    out["dm_lag"] = out["dm_lag"].fillna(-1).astype(int)
    out["dm_cases"] = out["dm_cases"].fillna(0).astype(int)
    return out.assign_coords(
        score=[c.label for c in cards],
        model=("pair", [p[0] for p in pairs]),
        reference=("pair", [p[1] for p in pairs]),
        metric=("score", [c.metric for c in cards]),
        threshold=("score", [np.nan if c.threshold is None else c.threshold for c in cards]),
        scale=("score", [np.nan if c.scale is None else c.scale for c in cards]),
        compared=("score", [orientation(c.metric).compared_name(c.metric) for c in cards]),
        better=("score", ["higher" if s > 0 else "lower" for s in sign]),
    ).assign_attrs(
        confidence=confidence,
        dm_test="Diebold-Mariano, Newey-West (Bartlett) variance at lag floor(4 (n/100)^(2/9)), "
                "two-sided p-value from Student's t with n - 1 degrees of freedom",
    )


def verdicts(card: xr.Dataset) -> xr.DataArray:
    """What each cell of a scorecard says, (pair, score): +2 the model is better than the reference and
    significantly so, +1 better but not significantly, 0 equal, -1 worse, -2 significantly worse, NaN
    undefined.

    Significant: the bootstrap interval of the difference excludes 0; where there is no interval (fewer
    than 2 days), the Diebold-Mariano p-value is below ``1 - confidence``.
    """
    with_interval = np.isfinite(card["ci_low"]) & np.isfinite(card["ci_high"])
    by_dm = card["dm_p_value"] < 1.0 - float(card.attrs.get("confidence", 0.95))
    significant = xr.where(with_interval, excludes_zero(card["ci_low"].values, card["ci_high"].values), by_dm)
    return card["gain"] * xr.where(significant & (card["gain"] != 0), 2.0, 1.0)


#: Columns of :func:`scorecard_frame` (``scorecard.csv``).
SCORECARD_COLUMNS = ("model", "reference", "metric", "threshold", "scale", "compared", "better", "difference",
                     "ci_low", "ci_high", "interval_excludes_0", "dm_statistic", "dm_p_value", "dm_lag",
                     "dm_cases", "gain", "verdict")


def scorecard_frame(card: xr.Dataset) -> pd.DataFrame:
    """The scorecard as a tidy table, one row per (model, reference, score): :data:`SCORECARD_COLUMNS`.

    ``interval_excludes_0`` is empty (NaN) without an interval; ``gain`` is +1 where the model is better
    than the reference, -1 worse, 0 equal; ``verdict`` is :func:`verdicts` (+-2: significantly).
    """
    verdict = verdicts(card).values
    rows = []
    for i in range(card.sizes["pair"]):
        for j in range(card.sizes["score"]):
            cell = card.isel(pair=i, score=j)
            low, high = float(cell["ci_low"]), float(cell["ci_high"])
            defined = np.isfinite(low) and np.isfinite(high)
            rows.append({
                **{k: cell[k].item() for k in ("model", "reference", "metric", "threshold", "scale", "compared",
                                                "better")},
                "difference": float(cell["difference"]), "ci_low": low, "ci_high": high,
                "interval_excludes_0": excludes_zero(low, high) if defined else np.nan,
                **{k: cell[k].item() for k in ("dm_statistic", "dm_p_value", "dm_lag", "dm_cases", "gain")},
                "verdict": verdict[i, j],
            })
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
