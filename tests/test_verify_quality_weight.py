"""Scores weighted by radar quality (OPERA QIND): weights of 1 give the unweighted scores, a two-group toy
case gives the hand-computed weighted scores, the field scores ignore the weight, bad weights and data
without QIND get one clear line, and ``qpe evaluate --quality-weight`` on real OPERA rain equals
qpe.verify with the same weights."""

from __future__ import annotations

import glob
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from qpe.cli import main
from qpe.errors import DatasetError, InputError
from qpe.verify import ScoreAccumulator, ScoreConfig, verify
from qpe.verify.aggregate import DEFAULT_FAMILIES
from qpe.verify.regimes import quality_weights, regime_masks
from qpe.verify.testing import as_rain_field, random_rain_fields

THRESHOLDS = (0.1, 1.0, 5.0)
#: The families whose statistics are sums over pixels (weighted) and the field scores (not weighted).
WEIGHTED = ("categorical", "matched", "continuous", "distribution", "extremes", "ensemble", "regimes")
NOT_WEIGHTED = ("FSS", "FSS_ensemble", "FSS_ensemble_mean", "rapsd", "coherence", "energy_score",
                "variogram_score", "maximum", "maximum_radar")


def _masks(radar: xr.DataArray, quality: xr.DataArray) -> xr.DataArray:
    rng = np.random.default_rng(3)
    ir = radar.copy(data=280.0 - 40.0 * np.log1p(radar.values) + rng.normal(0, 5, radar.shape))
    ny, nx = radar.sizes["y"], radar.sizes["x"]
    lon = xr.DataArray(np.linspace(-5, 15, nx)[None].repeat(ny, 0), dims=("y", "x"))
    lat = xr.DataArray(np.linspace(55, 42, ny)[:, None].repeat(nx, 1), dims=("y", "x"))
    return regime_masks(radar, ir, lon, lat, quality)


@pytest.mark.parametrize("members", [None, 4])
def test_weights_of_one_give_the_unweighted_scores(members):
    estimate, radar = random_rain_fields((64, 64), times=3, members=members, seed=2, wet_fraction=0.3)
    radar = radar.where(np.random.default_rng(1).uniform(size=radar.shape) > 0.05)  # some pixels without radar
    quality = radar.where(radar > 0) * 0 + 1.0  # QIND 1 where it rains, none (weight 1) elsewhere
    config = ScoreConfig(thresholds=THRESHOLDS, families=(*DEFAULT_FAMILIES, "regimes"))
    masks = _masks(radar, quality)
    plain = verify(estimate, radar, config=config, regimes=masks)
    weighted = verify(estimate, radar, config=config, regimes=masks, weight=quality_weights(quality))
    assert set(plain.data_vars) == set(weighted.data_vars)
    for name in plain.data_vars:  # bit for bit: each weighted sum is the unweighted one with a factor w = 1
        np.testing.assert_array_equal(weighted[name], plain[name], err_msg=name)
    assert json_config(weighted)["quality_weight"] and not json_config(plain)["quality_weight"]


def json_config(scores: xr.Dataset) -> dict:
    import json

    return json.loads(scores.attrs["qpe_score_config"])


def _two_groups(members: bool):
    """Radar 2 mm/h everywhere. Left half: QIND missing (weight 1), the estimate 3 mm/h (members 1 and 3);
    right half: QIND 0.25, the estimate 0 (a miss at every threshold)."""
    shape = (8, 8)
    radar = np.full(shape, 2.0)
    left = np.zeros(shape, dtype=bool)
    left[:, :4] = True
    quality = np.where(left, np.nan, 0.25)
    if members:
        est = np.stack([np.where(left, 1.0, 0.0), np.where(left, 3.0, 0.0)])
        estimate = as_rain_field(est, members=True)
    else:
        estimate = as_rain_field(np.where(left, 3.0, 0.0))
    radar_field = as_rain_field(radar)
    return estimate, radar_field, radar_field.copy(data=quality)


def test_two_pixel_groups_give_the_hand_computed_weighted_scores():
    estimate, radar, quality = _two_groups(members=False)
    scores = verify(estimate, radar, thresholds=(1.0,), weight=quality_weights(quality))
    total = 1.0 + 0.25  # per pair of pixels (one left, one right)
    expected = {
        "ME": (1.0 * 1.0 + 0.25 * -2.0) / total,  # 0.4
        "MAE": (1.0 * 1.0 + 0.25 * 2.0) / total,  # 1.2
        "RMSE": np.sqrt((1.0 * 1.0 + 0.25 * 4.0) / total),  # sqrt(1.6)
        "POD": 1.0 / total,  # hits weigh 1, misses 0.25: 0.8
        "CSI": 1.0 / total,
        "BIAS": 1.0 / total,
        "FAR": 0.0,
    }
    for name, value in expected.items():
        np.testing.assert_allclose(float(scores[name].sel(threshold=1.0) if "threshold" in scores[name].dims
                                         else scores[name]), value, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(float(scores["wet_fraction"]), 1.0 / total, atol=1e-12)  # estimate dry at right
    np.testing.assert_allclose(float(scores["n_valid"]), 32 * total, atol=1e-12)  # 32 pixels a half
    unweighted = verify(estimate, radar, thresholds=(1.0,))
    np.testing.assert_allclose(float(unweighted["ME"]), (1.0 - 2.0) / 2, atol=1e-12)


def test_two_pixel_groups_give_the_hand_computed_weighted_crps():
    estimate, radar, quality = _two_groups(members=True)
    scores = verify(estimate, radar, thresholds=(1.0,), weight=quality_weights(quality))
    # left: members 1 and 3 around 2: mean |x - y| = 1, sum_ij |x_i - x_j| = 4 -> CRPS 1 - 4/8 = 0.5, fair
    # 1 - 4/4 = 0; right: both members 0 -> CRPS = fair CRPS = 2; weights 1 and 0.25
    np.testing.assert_allclose(float(scores["CRPS"]), (0.5 + 0.25 * 2.0) / 1.25, atol=1e-12)  # 0.8
    np.testing.assert_allclose(float(scores["CRPS_fair"]), (0.0 + 0.25 * 2.0) / 1.25, atol=1e-12)  # 0.4
    # Brier at 1 mm/h (event >= 1): left both members and radar are events (0), right no member is (1)
    np.testing.assert_allclose(float(scores["BRIER"].sel(threshold=1.0)), 0.25 / 1.25, atol=1e-12)


def test_field_scores_ignore_the_weights():
    estimate, radar = random_rain_fields((48, 48), times=2, members=3, seed=4, wet_fraction=0.3)
    weight = radar.copy(data=np.random.default_rng(0).uniform(0.1, 1.0, radar.shape))
    plain = verify(estimate, radar, thresholds=THRESHOLDS)
    weighted = verify(estimate, radar, thresholds=THRESHOLDS, weight=weight)
    for name in NOT_WEIGHTED:
        np.testing.assert_array_equal(weighted[name], plain[name], err_msg=name)
    for name in ("RMSE", "CSI", "CRPS", "histogram", "CSI_matched", "twCRPS"):
        assert not np.allclose(weighted[name], plain[name], equal_nan=True), name


def test_bad_weights_and_settings_give_one_clear_line():
    estimate, radar = random_rain_fields((16, 16), times=1, seed=0)
    with pytest.raises(InputError, match="give the weights with each case"):
        ScoreAccumulator(ScoreConfig(quality_weight=True)).accum(estimate, radar)
    with pytest.raises(InputError, match="quality_weight is off"):
        ScoreAccumulator(ScoreConfig()).accum(estimate, radar, weight=xr.ones_like(radar))
    with pytest.raises(InputError, match="finite and >= 0"):
        verify(estimate, radar, weight=-xr.ones_like(radar))
    with pytest.raises(DatasetError, match=r"must lie in \[0, 1\]"):
        quality_weights(radar.copy(data=np.full(radar.shape, 1.5)))
    with pytest.raises(DatasetError, match="pixel weights are"):
        verify(estimate, radar, weight=xr.ones_like(radar).isel(x=slice(0, 8)))


def test_weighted_and_unweighted_statistics_do_not_merge():
    estimate, radar = random_rain_fields((16, 16), times=1, seed=0)
    weighted = ScoreAccumulator(ScoreConfig(quality_weight=True))
    weighted.accum(estimate, radar, weight=xr.ones_like(radar))
    with pytest.raises(DatasetError, match="different settings"):
        ScoreAccumulator(ScoreConfig()).accum(estimate, radar).merge(weighted)


def test_evaluate_without_a_quality_index_says_so_before_any_estimate(capsys, tmp_path):
    code = main(["evaluate", "--data", "data/demo/demo.zarr", "--checkpoints", "models/demo/unet", "--out",
                 str(tmp_path / "out"), "--quality-weight", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2
    assert "rain_quality (OPERA QIND)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# -- real OPERA rain, end to end ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def opera_paired(opera_dir, tmp_path_factory):
    """OPERA 18:00-19:00 on a 128 x 128 box of 2 km pixels (rain and QIND), with simulated IR."""
    from qpe.data.grid import OPERA_CRS, Grid
    from qpe.data.paired import save_paired
    from qpe.data.readers import read_radar_source
    from qpe.data.synthetic import SynthConfig
    from qpe.data.synthetic.semisynthetic import ir_from_rain

    files = sorted(glob.glob(str(opera_dir / "*.hdf")))[:5]
    box = Grid.from_bounds(OPERA_CRS, (1_076_000.0, -2_676_000.0, 1_332_000.0, -2_420_000.0), 2000.0)
    radar = read_radar_source(files, grid=box)
    path = tmp_path_factory.mktemp("opera_quality") / "opera.zarr"
    save_paired(radar.assign(ir=ir_from_rain(radar["rain"], SynthConfig())), path)
    return path


@pytest.mark.shared_data
def test_evaluate_weights_real_opera_scores_by_qind(opera_paired, tmp_path, capsys):
    from qpe.data.paired import open_paired
    from qpe.evaluation import open_scores, split_scores
    from qpe.inference.engine import EstimateConfig
    from qpe.inference.estimators import find_estimators

    out = tmp_path / "weighted"
    args = ["evaluate", "--data", str(opera_paired), "--checkpoints", "models/demo/unet", "--start",
            "2018-08-24T18:45", "--bootstrap", "0", "--no-cache", "--thresholds", "0.1", "1", "5"]
    assert main([*args, "--out", str(out), "--quality-weight"]) == 0
    printed = capsys.readouterr().out
    assert "scored 2 times" in printed and "weighted by the radar quality index (QIND" in printed
    assert "weighted by the radar quality index QIND" in (out / "report.html").read_text()
    settings = yaml.safe_load((out / "evaluation.yaml").read_text())["evaluation"]
    assert settings["scores"]["quality_weight"] is True
    written = split_scores(open_scores(out / "scores.nc"))[0].sel(model="unet")

    ds = open_paired(opera_paired)
    times = ds["time"].values[3:]
    (unet,) = find_estimators(["models/demo/unet"])
    rain = unet.estimate(ds, times, EstimateConfig(), progress=False)["rain"].isel(member=0, drop=True)
    radar = ds["rain"].sel(time=times)
    weight = quality_weights(ds["rain_quality"].sel(time=times))
    assert 0.0 < float(weight.where(radar > 0.1).mean()) < 1.0  # QIND weighs the rain down
    expected = verify(rain.where(radar.notnull()), radar, thresholds=(0.1, 1.0, 5.0), weight=weight)
    plain = verify(rain.where(radar.notnull()), radar, thresholds=(0.1, 1.0, 5.0))
    for name in ("CSI", "POD", "ME", "RMSE", "CORR", "wet_fraction", "n_radar_extreme", "FSS"):
        np.testing.assert_allclose(written[name], expected[name], rtol=1e-6, err_msg=name)
    assert not np.allclose(expected["RMSE"], plain["RMSE"])
    np.testing.assert_array_equal(expected["FSS"], plain["FSS"])


def test_the_regime_table_says_its_pixel_columns_are_sums_of_weights_when_weighted():
    from qpe.evaluation.report import regime_section

    table = pd.DataFrame({"model": ["unet"] * 3, "metric": ["CSI", "CSI_regime", "n_regime"],
                          "threshold": [1.0, 1.0, np.nan], "scale": [np.nan] * 3, "regime": ["", "night", "night"],
                          "value": [0.5, 0.4, 12.5], "ci_low": [np.nan] * 3, "ci_high": [np.nan] * 3})
    scores = xr.Dataset(coords={"regime_group": ("regime", ["radar_quality"])})
    for weighted in (False, True):
        scores.attrs["qpe_score_config"] = json.dumps({"quality_weight": weighted})
        section = regime_section(table, scores)
        assert "unet pixels" in section and "night" in section
        assert ("sums of weights, not counts" in section) is weighted
