"""Bootstrap confidence intervals over days: cover the point estimate, shrink with days, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from qpe.verify import ScoreAccumulator, ScoreConfig, bootstrap_ci, scores_to_frame
from qpe.verify.bootstrap import bootstrap_weights
from qpe.verify.testing import random_rain_fields

CONFIG = ScoreConfig(
    thresholds=(0.1, 1.0),
    scales_km=(4.0, 16.0),
    families=("categorical", "continuous", "fss", "distribution", "ensemble"),
)
SCORES = {
    "CSI": {"threshold": 1.0},
    "RMSE": {},
    "CORR": {},
    "FSS": {"threshold": 1.0, "scale": 16.0},
    "ME": {},
    "wet_p90": {},
}


def _accumulator(
    days: int, seed: int = 0, members: int | None = None, distinct: int | None = None
) -> ScoreAccumulator:
    """Two fields per day, each day with its own skill so that days differ.

    With ``distinct``, day ``d`` repeats the fields of day ``d % distinct`` (on its own date).
    """
    acc = ScoreAccumulator(CONFIG, model="m")
    for day in range(days):
        pattern = day % (distinct or days)
        correlation = 0.5 + 0.4 * np.random.default_rng(seed + pattern).random()
        est, rad = random_rain_fields(
            (32, 32),
            times=2,
            members=members,
            seed=seed + 100 * pattern,
            correlation=correlation,
            start=f"2021-06-{day + 1:02d}T06:00",
            freq="6h",
        )
        acc.accum(est, rad)
    return acc


def test_weights_draw_every_day_count_once_per_slot():
    w = bootstrap_weights(5, 100, seed=1)
    assert w.shape == (100, 5)
    np.testing.assert_array_equal(w.sum(axis=1), 5)
    np.testing.assert_array_equal(bootstrap_weights(5, 100, seed=1), w)


def test_interval_contains_the_point_estimate():
    acc = _accumulator(8)
    point = acc.compute()
    ci = bootstrap_ci(acc, n_resamples=300, seed=0)
    assert ci["CSI"].dims == ("bound", "threshold")
    for name, where in SCORES.items():
        low, high = (float(ci[name].sel(bound=b, **where)) for b in ("ci_low", "ci_high"))
        assert low <= float(point[name].sel(**where)) <= high, name
        assert low < high, name


def test_interval_shrinks_with_more_days():
    """Sixteen days drawn like four known ones: the same day-to-day spread, four times the days."""
    few = bootstrap_ci(_accumulator(4, seed=1), n_resamples=400, seed=0)
    many = bootstrap_ci(_accumulator(16, seed=1, distinct=4), n_resamples=400, seed=0)
    for name, where in SCORES.items():
        width = {
            k: float(ci[name].sel(bound="ci_high", **where) - ci[name].sel(bound="ci_low", **where))
            for k, ci in (("few", few), ("many", many))
        }
        assert width["many"] < 0.75 * width["few"], name  # ~ 1/2 expected (1/sqrt(4))


def test_same_seed_same_interval_other_seed_other_interval():
    acc = _accumulator(5)
    a, b = bootstrap_ci(acc, n_resamples=100, seed=7), bootstrap_ci(acc, n_resamples=100, seed=7)
    xr.testing.assert_identical(a, b)
    c = bootstrap_ci(acc, n_resamples=100, seed=8)
    assert not np.allclose(a["RMSE"].values, c["RMSE"].values)


def test_single_day_interval_collapses_to_the_point():
    acc = _accumulator(1)
    ci = bootstrap_ci(acc, n_resamples=50)
    point = acc.compute()
    for bound in ("ci_low", "ci_high"):
        np.testing.assert_allclose(ci["RMSE"].sel(bound=bound), point["RMSE"], rtol=1e-12)
        np.testing.assert_allclose(ci["wet_p99"].sel(bound=bound), point["wet_p99"], rtol=1e-12)


def test_ensemble_scores_get_intervals_and_fill_the_table():
    acc = _accumulator(4, members=3)
    ci = bootstrap_ci(acc, n_resamples=100)
    point = acc.compute()
    assert (
        float(ci["CRPS"].sel(bound="ci_low"))
        <= float(point["CRPS"])
        <= float(ci["CRPS"].sel(bound="ci_high"))
    )
    table = scores_to_frame(point, ci)
    row = table.query("metric == 'CRPS'").iloc[0]
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert table.query("metric == 'CSI'")[["ci_low", "ci_high"]].notna().all().all()


@pytest.mark.parametrize("bad", [{"confidence": 1.5}, {"n_resamples": 0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        bootstrap_ci(_accumulator(1), **bad)
