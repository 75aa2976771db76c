"""The study's headline intervals from real score statistics: the same draws as the evaluation's intervals,
paired between models, by day or by time, and reproducible from the saved statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.evaluation import EvaluationConfig, summarize_scores
from qpe.study.metrics import measure_headline
from qpe.verify import ScoreAccumulator, ScoreConfig
from qpe.verify.testing import random_rain_fields

CONFIG = ScoreConfig(thresholds=(0.1, 1.0, 5.0), scales_km=(16.0, 32.0))


def accumulators(
    days: int, times: int, resolution: str
) -> tuple[dict[str, ScoreAccumulator], pd.DatetimeIndex]:
    """A deterministic 'U-Net' and a 3-member ensemble scored on the same radar fields, day after day."""
    accs = {
        name: ScoreAccumulator(CONFIG, model=name, resolution=resolution)
        for name in ("unet_t4", "flow_residual_t4_k8")
    }
    stamps = []
    for day in range(days):
        start = f"2021-06-{day + 1:02d}T06:00"
        est, rad = random_rain_fields(
            (48, 48), times=times, seed=day, correlation=0.6 + 0.05 * day, start=start, freq="1h"
        )
        members, _ = random_rain_fields(
            (48, 48), times=times, members=3, seed=day, correlation=0.6 + 0.05 * day, start=start, freq="1h"
        )
        accs["unet_t4"].accum(est, rad)
        accs["flow_residual_t4_k8"].accum(members, rad)
        stamps += list(rad["time"].values)
    return accs, pd.DatetimeIndex(stamps)


def evaluate(days: int, times: int, unit: str, n_resamples: int = 100):
    accs, stamps = accumulators(days, times, unit)
    config = EvaluationConfig(scores=CONFIG, n_resamples=n_resamples, bootstrap_unit=unit)
    scores = summarize_scores(accs, {"times": stamps}, config)
    return accs, scores, config


@pytest.mark.parametrize(("days", "times", "unit"), [(6, 2, "day"), (1, 12, "time")])
def test_headline_intervals_are_the_evaluation_s_intervals(days, times, unit):
    accs, scores, config = evaluate(days, times, unit)
    headline = measure_headline(scores, accs, config)
    assert (headline.resampling.unit, headline.resampling.n_units) == (unit, days if unit == "day" else times)
    assert headline.resampling.n_times == days * times and headline.resampling.n_days == days
    pairs = [
        ("unet_t4", "csi_1", scores["CSI__ci"].sel(threshold=1.0, member=0)),
        ("flow_residual_t4_k8", "crps", scores["CRPS_fair__ci"]),
        ("unet_t4", "crps", scores["MAE__ci"].sel(member=0)),
        ("flow_residual_t4_k8", "spread_skill", scores["spread_skill_ratio__ci"]),
    ]
    for model, column, ci in pairs:
        interval = headline.interval(model, column)
        bounds = ci.sel(model=model).values
        np.testing.assert_allclose([interval.low, interval.high], bounds, rtol=1e-12, err_msg=column)
        assert interval.low <= interval.value <= interval.high
    matched = headline.interval("unet_t4", "csi_matched_1")
    assert matched.value == pytest.approx(
        float(scores["CSI_matched"].sel(model="unet_t4", threshold=1.0, member=0))
    )


def test_a_paired_difference_is_taken_replicate_by_replicate():
    accs, scores, config = evaluate(6, 2, "day")
    headline = measure_headline(scores, accs, config)
    a = headline.replicates["fss_5_32"].sel(model="flow_residual_t4_k8")
    b = headline.replicates["fss_5_32"].sel(model="unet_t4")
    d = headline.compare("flow_residual_t4_k8", "unet_t4", "fss_5_32")
    np.testing.assert_allclose([d.low, d.high], np.quantile((a - b).values, [0.025, 0.975]), rtol=1e-12)
    r = headline.compare("flow_residual_t4_k8", "unet_t4", "fss_5_32", how="ratio")
    assert r.value == pytest.approx(
        headline.values.loc["flow_residual_t4_k8", "fss_5_32"] / headline.values.loc["unet_t4", "fss_5_32"]
    )


def test_the_headline_is_reproduced_from_the_saved_statistics(tmp_path):
    accs, scores, config = evaluate(1, 6, "time", n_resamples=50)
    for name, acc in accs.items():
        acc.to_dataset().to_netcdf(tmp_path / f"{name}.nc")
    again = {}
    for name in accs:
        with xr.open_dataset(tmp_path / f"{name}.nc") as ds:
            again[name] = ScoreAccumulator.from_dataset(ds.load())
    first, second = measure_headline(scores, accs, config), measure_headline(scores, again, config)
    xr.testing.assert_allclose(first.replicates, second.replicates)


def test_one_day_of_statistics_kept_per_day_gives_no_interval():
    accs, scores, config = evaluate(1, 4, "day")
    headline = measure_headline(scores, accs, config)
    assert headline.replicates is None and not headline.interval("unet_t4", "csi_1").defined
    assert "no interval" in headline.resampling.describe()


def test_one_time_per_day_resampled_within_days_gives_no_interval():
    """Each day redrawn from its only time is itself: no variation, so no interval and no verdict."""
    accs, scores, config = evaluate(3, 1, "time")
    headline = measure_headline(scores, accs, config)
    assert headline.resampling.n_units == 0 and headline.replicates is None
    assert "needs a day with 2 times" in headline.resampling.describe()
    assert "CSI__ci" not in scores  # the evaluation gives none either
