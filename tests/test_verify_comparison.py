"""Is A better than B: the Diebold-Mariano test against hand computations, paired day-block bootstrap
replicates, and the scorecard on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from qpe.evaluation import EvaluationConfig, summarize_scores
from qpe.evaluation.summary import scorecard_of
from qpe.verify import ScoreAccumulator, ScoreConfig
from qpe.verify.bootstrap import case_weights, replicate_scores
from qpe.verify.comparison import (
    MAX_ALL_PAIRS_MODELS,
    SCORECARD,
    CardScore,
    card_values,
    case_scores,
    comparison_pairs,
    diebold_mariano,
    excludes_zero,
    newey_west_lag,
    newey_west_variance,
    paired_replicates,
    scorecard,
    scorecard_frame,
)
from qpe.verify.tables import ORIENTATION, orientation
from qpe.verify.testing import random_rain_fields

CONFIG = ScoreConfig(thresholds=(0.1, 1.0), scales_km=(4.0, 16.0), families=("categorical", "continuous"))


def _bartlett_variance(d: np.ndarray, lag: int) -> float:
    """The Newey-West variance as a quadratic form: (1/n) sum_s sum_t k(|s - t|) u_s u_t."""
    u = d - d.mean()
    n = u.size
    gaps = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    kernel = np.where(gaps <= lag, 1.0 - gaps / (lag + 1.0), 0.0)
    return float(u @ kernel @ u / n)


def test_dm_statistic_of_a_hand_computed_series():
    """d = 1, 2, 3, 6: mean 3, g0 = 14/4, g1 = 2/4; at lag 1 S = 3.5 + 2 (1/2) 0.5 = 4, DM = 3 / sqrt(4/4)."""
    test = diebold_mariano(np.array([1.0, 2.0, 3.0, 6.0]), lag=1, min_cases=2)
    assert test.n == 4 and test.lag == 1
    np.testing.assert_allclose([test.mean, test.variance, test.statistic], [3.0, 4.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(test.p_value, 2 * stats.t.sf(3.0, df=3), atol=1e-12)
    np.testing.assert_allclose(test.p_value, 0.0577, atol=5e-4)  # t(3) tables: 3.182 at p = 0.05


@pytest.mark.parametrize("lag", [0, 1, 3, 7])
def test_newey_west_variance_is_the_bartlett_quadratic_form(lag):
    d = np.random.default_rng(lag).normal(0.2, 1.0, 40)
    np.testing.assert_allclose(newey_west_variance(d, lag), _bartlett_variance(d, lag), rtol=1e-10)
    test = diebold_mariano(d, lag=lag)
    np.testing.assert_allclose(test.statistic, d.mean() / np.sqrt(_bartlett_variance(d, lag) / d.size), rtol=1e-10)


def test_lag_rule_and_missing_cases():
    assert [newey_west_lag(n) for n in (1, 5, 30, 100, 1000)] == [0, 2, 3, 4, 6]
    d = np.array([0.1, np.nan, 0.3, 0.2, np.nan, 0.5, 0.4])
    test = diebold_mariano(d)
    assert test.n == 5 and test.lag == newey_west_lag(5)
    assert np.isnan(diebold_mariano(d[:4]).p_value), "fewer than MIN_CASES finite differences: no test"


def test_dm_variance_equals_statsmodels_hac():
    sm = pytest.importorskip("statsmodels.api")
    d = np.random.default_rng(3).normal(0.1, 1.0, 60).cumsum() * 0.1 + np.random.default_rng(4).normal(0, 1, 60)
    test = diebold_mariano(d)
    fit = sm.OLS(d, np.ones_like(d)).fit(cov_type="HAC", cov_kwds={"maxlags": test.lag, "use_correction": False})
    np.testing.assert_allclose(fit.bse[0] ** 2, test.variance / test.n, rtol=1e-6)
    np.testing.assert_allclose(fit.tvalues[0], test.statistic, rtol=1e-6)


def _accumulators(days: int, shift: dict[str, float], noise: dict[str, int], sd: float = 0.6) -> dict:
    """Models scored on the same ``days`` x 3 times: radar plus ``shift`` plus seeded uniform noise in
    [0, ``sd``) mm/h (never negative, so never clipped: a shift stays exact)."""
    out = {name: ScoreAccumulator(CONFIG, model=name) for name in shift}
    for day in range(days):
        _, radar = random_rain_fields((32, 32), times=3, seed=day, start=f"2021-07-{day + 1:02d}T06:00",
                                      freq="2h", wet_fraction=0.3)
        for name, acc in out.items():
            rng = np.random.default_rng(1000 * noise[name] + day)
            estimate = radar + shift[name] + sd * rng.random(radar.shape)
            acc.accum(estimate.assign_attrs(units="mm/h"), radar)
    return out


def test_bootstrap_keeps_each_pair_on_the_same_days():
    """Two identical models: every replicate's difference is exactly 0 (days drawn for one are drawn for
    the other); each model's replicates are those of its own weights."""
    acc = _accumulators(6, {"a": 0.0, "b": 0.0, "c": 0.5}, {"a": 1, "b": 1, "c": 2})
    weights = case_weights(acc["a"].cases, "day", 200, seed=0)
    replicates = paired_replicates(acc, weights)
    difference = replicates["RMSE"].sel(model="a") - replicates["RMSE"].sel(model="b")
    assert float(abs(difference).max()) == 0.0
    alone = xr.concat(list(replicate_scores(acc["c"], weights)), "replicate")["RMSE"]
    np.testing.assert_allclose(replicates["RMSE"].sel(model="c").values, alone.values, rtol=1e-12)
    assert float(replicates["RMSE"].sel(model="c").std()) > 0, "the days do vary between replicates"


def test_case_scores_are_each_case_scored_alone():
    acc = _accumulators(3, {"a": 0.0}, {"a": 1})["a"]
    series = case_scores(acc)
    assert series.sizes["case"] == 3
    one_day = ScoreAccumulator(CONFIG, model="a")
    _, radar = random_rain_fields((32, 32), times=3, seed=1, start="2021-07-02T06:00", freq="2h", wet_fraction=0.3)
    estimate = radar + 0.6 * np.random.default_rng(1001).random(radar.shape)
    expected = one_day.accum(estimate.assign_attrs(units="mm/h"), radar).compute()
    np.testing.assert_allclose(series["RMSE"].isel(case=1), expected["RMSE"], rtol=1e-12)
    chunked = case_scores(acc, lambda scores: scores[["RMSE", "CSI"]], chunk=2)  # chunks change nothing
    xr.testing.assert_allclose(chunked, series[["RMSE", "CSI"]])


def _card(days: int, shift: dict[str, float], noise: dict[str, int], compare_to: str | None = None):
    config = EvaluationConfig(scores=CONFIG, n_resamples=400, compare_to=compare_to)
    return scorecard_frame(scorecard_of(summarize_scores(_accumulators(days, shift, noise), {}, config)))


def test_a_constant_offset_gives_that_difference_significant():
    """B is A plus 0.3 mm/h everywhere: its mean error is 0.3 higher on every day (ME > 0 for both, so
    |ME - 0| differs by 0.3): difference 0.3, interval excludes 0, DM p-value ~ 0 (constant series)."""
    card = _card(8, {"a": 0.2, "b": 0.5}, {"a": 1, "b": 1}).set_index("metric")
    me = card.loc["ME"]
    assert me["model"] == "b" and me["reference"] == "a" and me["compared"] == "|ME - 0|"
    np.testing.assert_allclose([me["difference"], me["ci_low"], me["ci_high"]], 0.3, atol=1e-9)
    assert me["interval_excludes_0"] and me["dm_p_value"] < 1e-6 and me["gain"] == -1 and me["dm_cases"] == 8


def test_scorecard_of_an_offset_series_with_noise():
    """Per-day scores of B are A's plus 0.1 plus independent noise (sd 0.02): the DM test finds it."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.1, 30)
    series = xr.DataArray(np.stack([base + rng.normal(0, 0.02, 30), base + 0.1 + rng.normal(0, 0.02, 30)])[..., None],
                          dims=("model", "case", "score"), coords={"model": ["a", "b"]})
    cards = [CardScore("RMSE")]
    card = scorecard(series.mean("case"), comparison_pairs(["a", "b"]), cards, series=series)
    np.testing.assert_allclose(card["difference"].item(), 0.1, atol=0.01)
    assert card["dm_p_value"].item() < 1e-10 and card["gain"].item() == -1, "higher RMSE is worse"


def test_models_identical_but_for_noise_are_not_told_apart():
    card = _card(12, {"a": 0.0, "b": 0.0}, {"a": 1, "b": 2}).set_index("metric")
    for metric in ("RMSE", "MAE", "CSI"):
        row = card.loc[metric]
        assert row["ci_low"] < 0 < row["ci_high"], metric
        assert not row["interval_excludes_0"] and row["dm_p_value"] > 0.05, (metric, row["dm_p_value"])


def test_pairs_orientation_and_gain():
    assert comparison_pairs(["a", "b", "c"]) == [("b", "a"), ("c", "a"), ("c", "b")]
    assert comparison_pairs(["a", "b", "c"], "b") == [("a", "b"), ("c", "b")]
    many = [f"m{i}" for i in range(MAX_ALL_PAIRS_MODELS + 1)]
    assert len(comparison_pairs(many[:-1])) == 28 and comparison_pairs(many) == [(m, "m0") for m in many[1:]]
    assert orientation("CSI").higher_is_better and not orientation("RMSE").higher_is_better
    assert orientation("BIAS").compared_name("BIAS") == "|BIAS - 1|"
    assert excludes_zero(0.1, 0.2) and excludes_zero(-0.2, -0.1) and not excludes_zero(-0.1, 0.1)
    scores = xr.Dataset({"BIAS": ("model", [0.7, 1.2]), "RMSE": ("model", [2.0, 1.0]), "CSI": ("model", [0.3, 0.4])},
                        coords={"model": ["a", "b"]})
    cards = [CardScore("BIAS"), CardScore("RMSE"), CardScore("CSI")]
    card = scorecard(card_values(scores, cards), [("b", "a")], cards)
    np.testing.assert_allclose(card["difference"].values[0], [0.2 - 0.3, -1.0, 0.1])
    assert list(card["gain"].values[0]) == [1, 1, 1], "b is nearer bias 1, lower RMSE, higher CSI"
    assert set(ORIENTATION) >= {m for m, _, _ in SCORECARD}, "every scorecard score has an orientation"


def test_scorecard_figure_and_report_show_each_verdict():
    from qpe.evaluation.figures import scorecard_grid
    from qpe.evaluation.report import scorecard_section

    config = EvaluationConfig(scores=CONFIG, n_resamples=200, compare_to="a")
    scores = summarize_scores(_accumulators(6, {"a": 0.0, "b": 0.0, "c": 0.4}, {"a": 1, "b": 2, "c": 3}), {}, config)
    ax = scorecard_grid(scores).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b − a", "c − a"]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    rmse = [t.get_text() for t in ax.get_xticklabels()].index("RMSE\n(↓ better)")
    assert cells[(1, rmse)].startswith("▼ +0.3"), "c adds 0.4 mm/h: significantly worse RMSE"
    section = scorecard_section(scores)
    assert "<th>c − a</th>" in section and '<span class="worse">▼ +0.' in section
    assert scorecard_section(scores.drop_vars([n for n in scores.data_vars if n.startswith("scorecard_")])) == ""
