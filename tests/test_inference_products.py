"""Map products of an ensemble estimate agree with pysteps and with the ensemble scores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.postprocessing.ensemblestats import excprob

from qpe.data.paired import rain_attrs
from qpe.errors import DatasetError, InputError
from qpe.inference.products import ensemble_mean, ensemble_spread, exceedance_probability, rain_difference
from qpe.verify import verify


def _ensemble(members: int = 5, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = rng.gamma(0.6, 3.0, (members, 20, 30)).astype("float32")
    values[:, :3, :4] = 0.0
    values[min(2, members - 1), 10, 10] = np.nan
    return xr.DataArray(
        values,
        dims=("member", "y", "x"),
        coords={"member": np.arange(members), "y": -2000.0 * np.arange(20), "x": 2000.0 * np.arange(30)},
        attrs=rain_attrs(),
    )


@pytest.mark.parametrize("threshold", [0.1, 1.0, 5.0])
def test_exceedance_probability_is_pysteps_excprob(threshold):
    rain = _ensemble()
    ours = exceedance_probability(rain, threshold)
    theirs = excprob(np.nan_to_num(rain.values, nan=0.0), threshold, ignore_nan=False)
    valid = np.isfinite(rain.values).all(axis=0)
    np.testing.assert_allclose(ours.values[valid], theirs[valid])
    assert np.isnan(ours.values[10, 10]) and float(ours["threshold"]) == threshold
    assert ours.dims == ("y", "x") and ours.attrs["units"] == "1"


def test_threshold_compared_in_the_field_precision():
    rain = _ensemble(members=2) * 0 + np.float32(0.1)
    rain.attrs = rain_attrs()
    assert float(exceedance_probability(rain, 0.1).isel(y=0, x=0)) == 1.0


def test_mean_and_spread_values_and_missing_pixels():
    rain = _ensemble()
    mean, spread = ensemble_mean(rain), ensemble_spread(rain)
    np.testing.assert_allclose(mean.values[5, 7], rain.values[:, 5, 7].mean(), rtol=1e-6)
    np.testing.assert_allclose(spread.values[5, 7], rain.values[:, 5, 7].std(ddof=1), rtol=1e-5)
    assert np.isnan(mean.values[10, 10]) and np.isnan(spread.values[10, 10])
    assert mean.attrs["units"] == spread.attrs["units"] == "mm/h"


def test_spread_map_gives_the_spread_score():
    rain = _ensemble(seed=1)
    radar = rain.isel(member=0, drop=True).copy(data=np.random.default_rng(2).gamma(0.6, 3.0, (20, 30)))
    spread = ensemble_spread(rain)
    score = float(verify(rain, radar, families=("ensemble",))["spread"])
    valid = np.isfinite(spread.values)
    np.testing.assert_allclose(np.sqrt(np.mean(spread.values[valid] ** 2)), score, rtol=1e-5)


def test_single_member_spread_is_zero():
    spread = ensemble_spread(_ensemble(members=1))
    assert np.nanmax(spread.values) == 0.0


def test_difference_sign_and_grid_check():
    rain = _ensemble()
    radar = rain.isel(member=0, drop=True)
    diff = rain_difference(rain.isel(member=1, drop=True), radar)
    np.testing.assert_allclose(diff.values[5, 7], rain.values[1, 5, 7] - rain.values[0, 5, 7])
    with pytest.raises(DatasetError, match="different grids"):
        rain_difference(rain.isel(member=1, drop=True), radar.assign_coords(x=radar["x"] + 1000.0))


def test_bad_inputs_raise_clear_errors():
    rain = _ensemble()
    with pytest.raises(DatasetError, match="member"):
        ensemble_mean(rain.isel(member=0))
    with pytest.raises(InputError, match="threshold"):
        exceedance_probability(rain, -1.0)
    with pytest.raises(DatasetError, match="mm/h"):
        ensemble_spread(rain.assign_attrs(units="dBZ"))
