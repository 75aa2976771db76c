"""Bootstrap confidence intervals over days (or times within days): cover the point estimate, shrink with
days, seeded; statistics kept per time; replicates of derived quantities."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from qpe.errors import InputError
from qpe.verify import ScoreAccumulator, ScoreConfig, bootstrap_ci, scores_to_frame
from qpe.verify.bootstrap import (
    MIN_DAYS,
    bootstrap_weights,
    case_weights,
    choose_unit,
    n_units,
    percentile_bounds,
    replicate_scores,
)
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
    days: int,
    seed: int = 0,
    members: int | None = None,
    distinct: int | None = None,
    times: int = 2,
    resolution: str = "day",
    scale: float = 1.0,
) -> ScoreAccumulator:
    """``times`` fields per day (from 06 UTC), each day with its own skill so that days differ.

    With ``distinct``, day ``d`` repeats the fields of day ``d % distinct`` (on its own date); ``scale``
    multiplies the estimates.
    """
    acc = ScoreAccumulator(CONFIG, model="m", resolution=resolution)
    for day in range(days):
        pattern = day % (distinct or days)
        correlation = 0.5 + 0.4 * np.random.default_rng(seed + pattern).random()
        est, rad = random_rain_fields(
            (32, 32),
            times=times,
            members=members,
            seed=seed + 100 * pattern,
            correlation=correlation,
            start=f"2021-06-{day + 1:02d}T06:00",
            freq="6h" if times <= 3 else "1h",
        )
        acc.accum((est * scale).assign_attrs(units="mm/h"), rad)
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


# -- statistics kept per time, and times resampled within days -------------------------------------------------
def test_statistics_kept_per_time_sum_to_those_kept_per_day():
    per_time, per_day = _accumulator(3, times=2, resolution="time"), _accumulator(3, times=2)
    assert per_time.cases.size == 6 and per_time.cases.dtype == np.dtype("datetime64[s]")
    np.testing.assert_array_equal(per_time.days, per_day.days)
    xr.testing.assert_allclose(per_time.compute(), per_day.compute())
    for family, stats in per_time.statistics(by="day").items():
        xr.testing.assert_allclose(stats, per_day.statistics(by="day")[family])
    cases = per_time.statistics(by="case")["categorical"]
    assert cases.sizes["case"] == 6
    np.testing.assert_array_equal(
        cases["case_day"].values.astype("datetime64[D]"), np.repeat(per_day.days, 2)
    )


def test_statistics_kept_per_time_survive_a_file(tmp_path):
    acc = _accumulator(2, times=3, resolution="time")
    acc.to_dataset().to_netcdf(tmp_path / "m.nc")
    with xr.open_dataset(tmp_path / "m.nc") as ds:
        back = ScoreAccumulator.from_dataset(ds.load())
    assert back.resolution == "time" and back.cases.size == 6
    xr.testing.assert_allclose(back.compute(), acc.compute())
    with pytest.raises(ValueError, match="kept per time"):
        acc.merge(_accumulator(2))


def test_time_weights_draw_each_day_s_times_within_the_day():
    times = ["2021-06-01T06", "2021-06-01T07", "2021-06-01T08", "2021-06-02T06", "2021-06-02T07"]
    cases = np.array(times, dtype="datetime64[s]")
    w = case_weights(cases, "time", 500, seed=3)
    assert w.dims == ("replicate", "case")
    np.testing.assert_array_equal(w.values[:, :3].sum(axis=1), 3)  # every replicate keeps both days
    np.testing.assert_array_equal(w.values[:, 3:].sum(axis=1), 2)
    assert (w.values[:, 0] == 3).any() and (w.values[:, 0] == 0).any()
    days = case_weights(cases, "day", 500, seed=3).values
    np.testing.assert_array_equal(days[:, 0], days[:, 2])  # a day's times are drawn together
    np.testing.assert_array_equal(days[:, [0, 3]], bootstrap_weights(2, 500, seed=3))
    assert (n_units(cases, "day"), n_units(cases, "time")) == (2, 5)
    lonely = np.append(cases, np.datetime64("2021-06-03T06", "s"))  # a day of one time never varies
    assert (n_units(lonely, "day"), n_units(lonely, "time")) == (3, 5)
    assert n_units(cases[[0, 3]], "time") == 0


def test_one_day_resampled_by_time_gets_an_interval_and_per_day_statistics_refuse_it():
    acc = _accumulator(1, times=12, resolution="time")
    ci = bootstrap_ci(acc, n_resamples=200, unit="time")
    point = acc.compute()
    assert ci.attrs["unit"] == "time" and ci.attrs["n_units"] == 12
    low, high = (float(ci["RMSE"].sel(bound=b)) for b in ("ci_low", "ci_high"))
    assert low < float(point["RMSE"]) < high
    day = bootstrap_ci(acc, n_resamples=50, unit="day")  # one day: the day bootstrap collapses
    np.testing.assert_allclose(day["RMSE"].sel(bound="ci_low"), point["RMSE"], rtol=1e-12)
    with pytest.raises(InputError, match="kept per time"):
        bootstrap_ci(_accumulator(2), n_resamples=10, unit="time")


def test_the_unit_is_chosen_by_the_number_of_days():
    assert choose_unit(MIN_DAYS) == "day" and choose_unit(MIN_DAYS - 1) == "time" and MIN_DAYS == 5


def test_replicates_of_a_paired_difference_use_the_same_draws():
    """Two models scored on the same days: the interval of their RMSE difference, from replicates drawn with
    the same weights, is narrower than either RMSE's own (the day-to-day variation cancels)."""
    a, b = _accumulator(8, seed=2), _accumulator(8, seed=2, scale=1.3)  # same radar, a worse estimate
    w = case_weights(a.cases, "day", 300, seed=0)
    rmse = {
        name: xr.concat([r["RMSE"] for r in replicate_scores(acc, w)], "replicate")
        for name, acc in (("a", a), ("b", b))
    }
    width = {k: float(np.diff(percentile_bounds(v).values)[0]) for k, v in rmse.items()}
    difference = float(np.diff(percentile_bounds(rmse["b"] - rmse["a"]).values)[0])
    assert difference < 0.5 * min(width.values())
    single = xr.concat(list(replicate_scores(a, w, chunk=7)), "replicate")["RMSE"]  # chunks change nothing
    xr.testing.assert_allclose(single, rmse["a"])
