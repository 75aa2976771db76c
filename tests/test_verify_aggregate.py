"""The accumulator (merge = single pass, per day, save/load), verify(), input errors and the tidy table."""

from __future__ import annotations

import functools

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.errors import DatasetError, InputError, QpeError
from qpe.verify import ScoreAccumulator, ScoreConfig, figure_data, scores_to_frame, verify
from qpe.verify.tables import COLUMNS
from qpe.verify.testing import as_rain_field, random_rain_fields


def _days(members=None, seed=0, times=6, shape=(40, 48)):
    """Fields on three days (two per day)."""
    return random_rain_fields(
        shape, times=times, members=members, seed=seed, start="2021-06-01T00:00", freq="12h"
    )


@pytest.mark.parametrize("members", [None, 3])
def test_merged_accumulators_equal_a_single_pass(members):
    est, rad = _days(members)
    single = ScoreAccumulator(model="m").accum(est, rad).compute()
    workers = [
        ScoreAccumulator(model="m").accum(est.isel(time=s), rad.isel(time=s))
        for s in (slice(0, 1), slice(1, 4), slice(4, 6))
    ]  # day 2 is split between two workers
    merged = functools.reduce(ScoreAccumulator.merge, workers).compute()
    xr.testing.assert_allclose(merged, single)


def test_accumulation_in_dask_tasks_merges_to_the_single_pass():
    est, rad = _days()

    @dask.delayed
    def score_one(t):
        return ScoreAccumulator().accum(est.isel(time=t), rad.isel(time=t))

    parts = dask.compute(*[score_one(t) for t in range(est.sizes["time"])], scheduler="threads")
    merged = functools.reduce(ScoreAccumulator.merge, parts)
    xr.testing.assert_allclose(merged.compute(), ScoreAccumulator().accum(est, rad).compute())


def test_statistics_are_kept_per_utc_day():
    est, rad = _days()
    acc = ScoreAccumulator().accum(est, rad)
    np.testing.assert_array_equal(
        acc.days, np.array(["2021-06-01", "2021-06-02", "2021-06-03"], "datetime64[D]")
    )
    counts = acc.statistics(by="day")["categorical"]["hits"]
    assert counts.sizes["day"] == 3
    np.testing.assert_array_equal(counts.sum("day").values, acc.statistics()["categorical"]["hits"].values)


def test_per_time_scores_equal_scores_of_each_field():
    est, rad = _days(times=3)
    per_time = verify(est, rad, per_time=True)
    assert per_time["CSI"].dims == ("time", "threshold")
    for t in range(3):
        one = verify(est.isel(time=t), rad.isel(time=t))
        for name in ("CSI", "RMSE", "FSS", "wet_p99", "rapsd_ratio"):
            np.testing.assert_allclose(per_time[name].isel(time=t).values, one[name].values, rtol=1e-10)


def test_undated_fields_are_accepted():
    est, rad = _days(times=1)
    scores = verify(est.isel(time=0, drop=True), rad.isel(time=0, drop=True))
    np.testing.assert_allclose(scores["CSI"].values, verify(est, rad)["CSI"].values)


def test_save_and_reload_statistics(tmp_path):
    est, rad = _days(members=2)
    acc = ScoreAccumulator(ScoreConfig(thresholds=(0.5, 2.0)), model="flow").accum(est, rad)
    path = tmp_path / "stats.nc"
    acc.to_dataset().to_netcdf(path)
    with xr.open_dataset(path) as ds:
        back = ScoreAccumulator.from_dataset(ds.load())
    assert back.config == acc.config and back.model == "flow"
    xr.testing.assert_allclose(back.compute(), acc.compute())


def test_scores_are_labelled():
    est, rad = _days(members=2)
    scores = verify(est, rad, model="flow")
    assert str(scores["model"].values) == "flow"
    assert scores["threshold"].attrs["units"] == "mm/h"
    assert scores["scale"].attrs["units"] == "km"
    assert scores["wavelength"].attrs["units"] == "km"
    assert scores["RMSE"].attrs["units"] == "mm/h"
    assert scores["FSS"].dims == ("member", "threshold", "scale")
    assert scores["rank_histogram"].dims == ("rank",)
    np.testing.assert_array_equal(scores["window"].values, [1, 2, 4, 8, 16, 32])


def _field(**changes) -> xr.DataArray:
    da = as_rain_field(np.ones((2, 6, 8)))
    for key, value in changes.items():
        if key == "units":
            da.attrs["units"] = value
        elif key == "drop_units":
            del da.attrs["units"]
    return da


@pytest.mark.parametrize(
    "estimate, radar, error, message",
    [
        (_field(units="mm"), _field(), DatasetError, "estimate is in 'mm'; expected rain rate in mm/h"),
        (_field(), _field(drop_units=True), DatasetError, "radar has no 'units' attribute"),
        (_field().isel(x=slice(0, 7)), _field(), DatasetError, "different grids"),
        (_field().assign_coords(x=_field()["x"] + 500.0), _field(), DatasetError, "different grids"),
        (_field().rename(y="row"), _field(), DatasetError, "estimate has dims ('time', 'row', 'x')"),
        (_field().expand_dims(member=2), _field().expand_dims(member=2), DatasetError, "radar has dims"),
        (_field().isel(time=[0]), _field(), DatasetError, "1 time steps but radar has 2"),
        (
            _field().assign_coords(time=_field()["time"] + np.timedelta64(1, "h")),
            _field(),
            DatasetError,
            "times differ: 2021-06-01T13:00 vs 2021-06-01T12:00",
        ),
        (
            _field().assign_coords(x=np.arange(8) * 1000.0),
            _field().assign_coords(x=np.arange(8) * 1000.0),
            DatasetError,
            "pixels must be square",
        ),
        (_field().to_dataset(name="rain"), _field(), InputError, "must be an xarray.DataArray"),
    ],
)
def test_bad_inputs_raise_one_clear_line(estimate, radar, error, message):
    with pytest.raises(error) as err:
        verify(estimate, radar)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"region": (0.0, 0.0, 1.0, 1.0)}, "region contains no pixel"),
        ({"region": (5.0, 0.0, 1.0, 1.0)}, "is empty"),
        ({"region": np.ones((3, 3), bool)}, "region mask is 3x3"),
        ({"scales_km": (0.5,)}, "shorter than half a pixel"),
        ({"thresholds": (1.0, 1.0)}, "thresholds are repeated"),
        ({"families": ("categorical", "magic")}, "unknown score families magic"),
    ],
)
def test_bad_settings_raise_one_clear_line(kwargs, message):
    with pytest.raises(QpeError) as err:
        verify(_field(), _field(), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_merging_different_settings_or_grids_is_refused():
    est, rad = _days(times=2)
    a = ScoreAccumulator(model="a").accum(est, rad)
    with pytest.raises(DatasetError, match="different settings"):
        a.merge(ScoreAccumulator(ScoreConfig(thresholds=(1.0,)), model="a"))
    with pytest.raises(DatasetError, match="model"):
        a.merge(ScoreAccumulator(model="b"))
    crop = {"x": slice(0, 20), "y": slice(0, 20)}
    with pytest.raises(DatasetError, match="cannot combine"):
        a.accum(est.isel(crop), rad.isel(crop))


def test_compute_before_accum_is_a_clear_error():
    with pytest.raises(DatasetError, match="no fields have been accumulated"):
        ScoreAccumulator().compute()


def test_config_from_yaml(tmp_path):
    path = tmp_path / "scores.yaml"
    path.write_text("thresholds: [0.5, 2]\nscales_km: [10, 20]\nfamilies: [categorical, fss]\n")
    config = ScoreConfig.from_yaml(path)
    assert config.thresholds == (0.5, 2) and config.families == ("categorical", "fss")
    assert ScoreConfig.from_dict(config.to_dict()) == config
    path.write_text("thresholdz: [1]\n")
    with pytest.raises(InputError, match="unknown score settings thresholdz"):
        ScoreConfig.from_yaml(path)


def test_tidy_table_has_the_documented_columns_and_values(tmp_path):
    est, rad = _days(members=2)
    scores = verify(est, rad, model="flow")
    table = scores_to_frame(scores)
    assert tuple(table.columns) == COLUMNS
    csi = table.query("metric == 'CSI' and threshold == 1.0")
    assert csi["model"].tolist() == ["flow"]
    assert float(csi["value"].iloc[0]) == pytest.approx(
        float(scores["CSI"].sel(threshold=1.0).mean("member"))
    )
    fss = table.query("metric == 'FSS' and threshold == 5.0 and scale == 16.0")
    assert float(fss["value"].iloc[0]) == pytest.approx(
        float(scores["FSS"].sel(threshold=5.0, scale=16.0).mean())
    )
    radar = table.query("model == 'radar' and metric == 'wet_p99'")
    assert float(radar["value"].iloc[0]) == pytest.approx(float(scores["wet_p99_radar"]))
    assert {"histogram", "rapsd_ratio", "rank_histogram"}.isdisjoint(
        table["metric"]
    )  # curves stay in the Dataset
    rmse = table.query("metric == 'RMSE'")
    assert rmse["threshold"].isna().all() and rmse["scale"].isna().all()
    path = tmp_path / "scores.csv"
    table.to_csv(path, index=False)
    assert "flow,RMSE,,," in path.read_text()


def test_tidy_table_of_several_models():
    est, rad = _days(times=2)
    both = xr.concat(
        [verify(est, rad, model="a"), verify(est * 2, rad, model="b")],
        dim="model",
        coords="minimal",
        compat="override",
    )
    table = scores_to_frame(both)
    assert set(table["model"]) == {"a", "b", "radar"}
    assert len(table.query("metric == 'wet_p90' and model == 'radar'")) == 1


def test_figure_data_holds_what_each_figure_draws():
    est, rad = _days(members=2, times=2)
    figures = figure_data(verify(est, rad))
    assert set(figures) == {
        "performance_diagram",
        "fss_vs_scale",
        "ensemble_fss",
        "power_spectrum_ratio",
        "spectral_coherence",
        "exceedance_curves",
        "histograms",
        "rank_histogram",
        "reliability_diagram",
        "quantile_quantile",
    }
    assert set(figures["quantile_quantile"].data_vars) == {"quantile", "quantile_radar"}
    assert set(figures["performance_diagram"].data_vars) == {"POD", "SR", "CSI", "BIAS"}
    np.testing.assert_allclose(figures["performance_diagram"]["SR"], 1 - verify(est, rad)["FAR"])
    assert "wavelength" in figures["power_spectrum_ratio"].dims
    assert isinstance(scores_to_frame(figures["fss_vs_scale"]), pd.DataFrame)


def test_inputs_are_left_unchanged_and_writeable():
    est, rad = _days(times=2)
    rad.values[0, :3, :3] = np.nan
    before = (est.values.copy(), rad.values.copy())
    verify(est, rad)
    np.testing.assert_array_equal(est.values, before[0])
    np.testing.assert_array_equal(rad.values, before[1])
    assert est.values.flags.writeable and rad.values.flags.writeable


# -- the families of issue 15: ensemble FSS, extremes, multivariate, coherence ---------------------------------
ENSEMBLE_ONLY = (
    "FSS_ensemble",
    "FSS_ensemble_mean",
    "twCRPS",
    "twCRPS_fair",
    "energy_score",
    "variogram_score",
)


def test_deterministic_estimates_have_no_ensemble_only_scores():
    est, rad = _days()
    scores = verify(est, rad)
    assert not set(ENSEMBLE_ONLY) & set(scores.data_vars)
    for name in ("CSI_extreme", "n_radar_extreme", "effective_resolution", "coherence"):
        assert name in scores and "member" not in scores[name].dims, name
    ensemble = verify(*_days(members=3))
    assert set(ENSEMBLE_ONLY) <= set(ensemble.data_vars)
    assert ensemble["effective_resolution"].dims == ("member",)


def test_new_scores_get_bootstrap_intervals():
    from qpe.verify import bootstrap_ci

    est, rad = _days(members=2)
    acc = ScoreAccumulator(ScoreConfig(thresholds=(0.5, 2.0), extreme_thresholds=(1.0, 3.0))).accum(est, rad)
    ci = bootstrap_ci(acc, n_resamples=40, seed=0)
    for name in (
        "FSS_ensemble",
        "twCRPS_fair",
        "CSI_extreme",
        "energy_score",
        "variogram_score",
        "effective_resolution",
    ):
        bounds = ci[name]
        assert "bound" in bounds.dims and np.isfinite(bounds.values).any(), name
        assert (bounds.sel(bound="ci_low") <= bounds.sel(bound="ci_high")).all(), name


def test_extreme_thresholds_fill_the_threshold_column():
    est, rad = _days(members=2)
    scores = verify(est, rad, config=ScoreConfig(extreme_thresholds=(2.0, 4.0)))
    table = scores_to_frame(scores)
    csi = table[table["metric"] == "CSI_extreme"]
    assert sorted(csi["threshold"]) == [2.0, 4.0] and csi["scale"].isna().all()
    np.testing.assert_allclose(
        csi.set_index("threshold")["value"].sort_index(), scores["CSI_extreme"].mean("member").values
    )
    assert len(table[table["metric"] == "n_radar_extreme"]) == 2
    assert len(table[table["metric"] == "effective_resolution"]) == 1
    assert not table.duplicated(["model", "metric", "threshold", "scale"]).any()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"extreme_thresholds": (10.0, -1.0)}, "extreme_thresholds must be positive"),
        ({"variogram_lags_km": ()}, "variogram_lags_km must be positive"),
        ({"variogram_order": 0.0}, "variogram_order must be a positive number"),
    ],
)
def test_settings_of_the_new_scores_are_checked(changes, message):
    with pytest.raises(InputError, match=message):
        ScoreConfig(**changes)
