"""Scores by regime: a perfect estimate on cold tops scores CSI 1 there and the known value elsewhere; the
solar zenith angle matches a published position of the sun (and pyorbital); Steiner's rule flags a cell and
not a uniform field; each group's regime sums equal the unsplit sums; per-day accumulators merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.errors import DatasetError, InputError
from qpe.verify import ScoreAccumulator, ScoreConfig, verify
from qpe.verify.regimes import (
    GROUPS,
    REGIME_RULES,
    bin_labels,
    convective_mask,
    regime_masks,
    regime_scores,
    solar_zenith_angle,
)
from qpe.verify.testing import as_rain_field, random_rain_fields

THRESHOLDS = (0.1, 1.0, 5.0)


def _inputs(shape=(48, 48), times=3, members=None, seed=0):
    """(estimate, radar, masks): realistic rain, a BT field cold where it rains, lon/lat over Europe."""
    estimate, radar = random_rain_fields(shape, times=times, members=members, seed=seed, wet_fraction=0.3)
    rng = np.random.default_rng(seed)
    bt = 280.0 - 12.0 * np.log1p(radar.values) * 6 + rng.normal(0, 5, radar.shape)
    ir = radar.copy(data=bt).assign_attrs(units="K")
    lon = xr.DataArray(np.linspace(-5, 15, shape[1])[None].repeat(shape[0], 0), dims=("y", "x"))
    lat = xr.DataArray(np.linspace(55, 42, shape[0])[:, None].repeat(shape[1], 1), dims=("y", "x"))
    quality = radar.copy(data=rng.uniform(0, 1, radar.shape)).where(radar > 0)
    return estimate, radar, regime_masks(radar, ir, lon, lat, quality)


# -- the rules ------------------------------------------------------------------------------------------------
def test_subsolar_point_at_the_march_equinox_has_the_sun_overhead():
    """2021 March equinox, 09:37 UTC (USNO): the sun is overhead at the equator where the apparent solar
    time is noon, lon = 15 (12 - 9.617 h) + eqtime (-7.5 min) / 4 = 37.6 E."""
    when = pd.Timestamp("2021-03-20T09:37")
    lon = np.arange(30.0, 45.0, 0.05)
    zenith = solar_zenith_angle(when, lon, np.zeros_like(lon))
    assert zenith.min() < 0.5
    np.testing.assert_allclose(lon[zenith.argmin()], 37.6, atol=0.3)
    # and 52 N on the same meridian sees the sun at 52 deg from the zenith, the antipode at 180 deg
    np.testing.assert_allclose(solar_zenith_angle(when, np.array([37.6]), np.array([52.0])), 52.0, atol=0.5)
    np.testing.assert_allclose(solar_zenith_angle(when, np.array([-142.4]), np.array([0.0])), 180.0, atol=0.5)


@pytest.mark.parametrize("when", ["2021-03-20T09:37", "2021-06-21T12:00", "2021-12-01T18:30", "2024-02-29T06:00"])
def test_solar_zenith_angle_equals_pyorbital(when):
    astronomy = pytest.importorskip("pyorbital.astronomy")
    lon, lat = np.meshgrid(np.linspace(-30, 40, 15), np.linspace(-60, 70, 15))
    expected = astronomy.sun_zenith_angle(pd.Timestamp(when).to_pydatetime(), lon, lat)
    np.testing.assert_allclose(solar_zenith_angle(pd.Timestamp(when), lon, lat), expected, atol=0.02)


def test_convective_rule_flags_a_cell_and_not_a_uniform_field():
    y, x = np.mgrid[:41, :41]
    cell = 1.0 + 30.0 * np.exp(-((y - 20) ** 2 + (x - 20) ** 2) / (2 * 2.0**2))  # 31 mm/h core on 1 mm/h
    flagged = convective_mask(cell, pixel_km=2.0)
    assert flagged[20, 20] and flagged[18:23, 18:23].all()
    assert not flagged[:5].any() and not flagged[:, :5].any()  # the stratiform surroundings
    assert not convective_mask(np.full((41, 41), 8.0), pixel_km=2.0).any()  # uniform 8 mm/h: 37.5 dBZ
    assert not convective_mask(np.zeros((41, 41)), pixel_km=2.0).any()


def test_masks_partition_each_group():
    masks = _inputs()[2]
    assert tuple(dict.fromkeys(masks["regime_group"].values)) == GROUPS
    assert [str(r) for r in masks["regime"].values[:5]] == [f"cloud_top: {b}" for b in bin_labels(
        REGIME_RULES.cloud_top_edges_k, "K")]
    for group, part in masks.groupby("regime_group"):
        np.testing.assert_array_equal(part.sum("regime"), 1, err_msg=group)  # every pixel in exactly one class
    # 12 UTC in June over 42-55 N: all day
    assert masks.sel(regime="daylight: day").all()


def test_quality_group_is_skipped_without_a_quality_field():
    radar = _inputs()[1]
    ir = radar.copy(data=np.full(radar.shape, 250.0))
    lon, lat = (xr.DataArray(np.zeros(radar.shape[1:]), dims=("y", "x")) for _ in range(2))
    without = regime_masks(radar, ir, lon, lat)
    assert "radar_quality" not in without["regime_group"].values
    assert "rain_quality" in without.attrs["skipped"]


# -- the scores -------------------------------------------------------------------------------------------
def test_perfect_estimate_on_cold_tops_scores_csi_one_there_and_the_known_value_elsewhere():
    """Rain everywhere in the radar; the estimate equals it on cold tops (< 210 K) and is dry elsewhere."""
    radar_values = np.full((1, 20, 20), 4.0)
    bt = np.full((1, 20, 20), 260.0)
    bt[0, :5] = 200.0  # 100 cold pixels
    estimate_values = np.where(bt < 210, radar_values, 0.0)
    estimate, radar = as_rain_field(estimate_values), as_rain_field(radar_values)
    ir = radar.copy(data=bt)
    lon, lat = (xr.DataArray(np.zeros((20, 20)), dims=("y", "x")) for _ in range(2))
    scores = regime_scores(estimate, radar, regime_masks(radar, ir, lon, lat), thresholds=(1.0,))
    csi = scores["CSI_regime"].sel(threshold=1.0)
    assert float(csi.sel(regime="cloud_top: <210 K")) == 1.0
    assert float(csi.sel(regime="cloud_top: 250-270 K")) == 0.0  # all misses
    assert np.isnan(float(csi.sel(regime="cloud_top: 230-250 K")))  # no pixel: 0 / 0
    np.testing.assert_allclose(float(csi.sel(regime="daylight: day")), 100 / 400)  # the whole field
    np.testing.assert_allclose(float(scores["RMSE_regime"].sel(regime="cloud_top: <210 K")), 0.0)
    np.testing.assert_allclose(float(scores["RMSE_regime"].sel(regime="cloud_top: 250-270 K")), 4.0)
    assert int(scores["n_regime"].sel(regime="cloud_top: <210 K")) == 100


@pytest.mark.parametrize("members", [None, 3], ids=["deterministic", "ensemble"])
def test_regime_sums_of_each_group_equal_the_unsplit_sums(members):
    estimate, radar, masks = _inputs(members=members)
    config = ScoreConfig(thresholds=THRESHOLDS, families=("categorical", "continuous", "ensemble", "regimes"))
    acc = ScoreAccumulator(config).accum(estimate, radar, masks)
    stats = acc.statistics()
    split = stats["regimes"]
    for group in GROUPS:
        total = split.where(split["regime_group"] == group, drop=True).sum("regime")
        for family, names in (("categorical", ("hits", "misses", "false_alarms", "correct_negatives")),
                              ("continuous", ("n", "sum_error", "sum_error_sq", "sum_abs_error", "sum_product"))):
            for name in names:
                np.testing.assert_allclose(total[f"{family}__{name}"], stats[family][name], rtol=1e-9,
                                           err_msg=f"{group} {name}")
        if members:
            for name in ("n", "sum_crps", "sum_crps_fair"):
                np.testing.assert_allclose(total[f"crps__{name}"], stats["ensemble"][name], rtol=1e-9)
    scores = acc.compute()
    assert {"CSI_regime", "RMSE_regime", "n_regime"} <= set(scores.data_vars)
    assert ("CRPS_regime" in scores) == bool(members)
    assert "FSS_regime" not in scores  # FSS is not split


def test_per_day_accumulators_merge_into_one():
    estimate, radar, masks = _inputs(times=4)
    days = pd.date_range("2021-06-01T00:00", periods=4, freq="12h")  # two UTC days
    estimate, radar, masks = (a.assign_coords(time=days.values) for a in (estimate, radar, masks))
    config = ScoreConfig(thresholds=THRESHOLDS, families=("categorical", "regimes"))
    whole = ScoreAccumulator(config).accum(estimate, radar, masks)
    parts = [ScoreAccumulator(config).accum(estimate.isel(time=s), radar.isel(time=s), masks.isel(time=s))
             for s in (slice(0, 2), slice(2, 4))]
    merged = parts[0].merge(parts[1])
    assert merged.days.size == 2
    xr.testing.assert_allclose(merged.compute(), whole.compute())
    # and through the saved per-day statistics
    again = ScoreAccumulator.from_dataset(merged.to_dataset())
    xr.testing.assert_allclose(again.compute()["CSI_regime"], whole.compute()["CSI_regime"])


def test_regimes_family_without_masks_says_what_is_missing():
    estimate, radar, _ = _inputs()
    with pytest.raises(InputError, match="regime masks"):
        verify(estimate, radar, families=("regimes",))


def test_masks_of_other_times_or_grids_are_refused():
    estimate, radar, masks = _inputs()
    with pytest.raises(DatasetError, match="other times"):
        verify(estimate, radar, families=("regimes",), regimes=masks.roll(time=1, roll_coords=True))
    with pytest.raises(DatasetError, match="grid"):
        verify(estimate, radar, families=("regimes",), regimes=masks.assign_coords(x=masks["x"] + 1000.0))
