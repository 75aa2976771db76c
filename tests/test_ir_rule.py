"""The IR probability-matching baseline: monotone, matches the training rain distribution, round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import CheckpointError, DatasetError
from qpe.models.ir_rule import IRRainRule, fit_ir_rule


@pytest.fixture(scope="module")
def paired():
    return generate_paired(SynthConfig(hours=3, size=64, seed=2))


def test_colder_is_never_drier_and_the_rain_distribution_is_matched(paired):
    rule = fit_ir_rule(paired)
    assert np.all(np.diff(rule.temperatures) >= 0) and np.all(np.diff(rule.rates) <= 0)
    rain = rule.apply(paired["ir"])
    truth = paired["rain"].values
    valid = np.isfinite(truth)
    # probability matching on the same data reproduces the wet fraction and the upper quantiles
    assert np.mean(rain.values[valid] > 0.1) == pytest.approx(np.mean(truth[valid] > 0.1), rel=0.05)
    for q in (0.95, 0.99):
        assert np.quantile(rain.values[valid], q) == pytest.approx(np.quantile(truth[valid], q), rel=0.1)
    bt = paired["ir"].sel(channel="IR_108").values
    assert rain.values[bt < np.quantile(bt, 0.01)].min() > rain.values[bt > np.quantile(bt, 0.5)].max()


def test_cirrus_screen_dries_large_split_window_differences(paired):
    rule = fit_ir_rule(paired, cirrus_split_k=2.0)
    rain = rule.apply(paired["ir"]).values
    split = (paired["ir"].sel(channel="IR_108") - paired["ir"].sel(channel="IR_120")).values
    assert (split > 2.0).any() and np.all(rain[split > 2.0] == 0)


def test_missing_ir_gives_nan_and_missing_channel_an_error(paired):
    rule = fit_ir_rule(paired)
    ir = paired["ir"].isel(time=0).copy()
    ir.values[:, :3, :3] = np.nan
    rain = rule.apply(ir)
    assert rain.dims == ("y", "x") and np.isnan(rain.values[:3, :3]).all() and np.isfinite(rain.values[5:, 5:]).all()
    with pytest.raises(DatasetError, match="needs channel"):
        rule.apply(paired["ir"].sel(channel=["WV_062"]))


def test_round_trip_and_bad_files(tmp_path, paired):
    rule = fit_ir_rule(paired, cirrus_split_k=2.5, source="test")
    back = IRRainRule.read(rule.write(tmp_path / "rule.yaml"))
    np.testing.assert_allclose(back.temperatures, rule.temperatures, atol=1e-4)
    np.testing.assert_allclose(back.rates, rule.rates, atol=1e-5)
    assert back.cirrus_split_k == 2.5 and back.source == "test"
    (tmp_path / "foreign.yaml").write_text("a: 1\n")
    with pytest.raises(CheckpointError, match="not a qpe IR rule"):
        IRRainRule.read(tmp_path / "foreign.yaml")
    with pytest.raises(CheckpointError, match="must increase"):
        IRRainRule((200.0, 190.0), (5.0, 1.0))
