"""NaN handling: a pixel without radar (or with a NaN estimate, or outside the region) is excluded from
every score in the same way. FSS border strips vs cropping, the RAPSD zero fill and SAL are checked in
their own test files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.verification.detcatscores import det_cat_fct
from pysteps.verification.detcontscores import det_cont_fct
from pysteps.verification.ensscores import rankhist
from pysteps.verification.probscores import CRPS

from qpe.verify import ScoreConfig, verify
from qpe.verify.testing import random_rain_fields

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")


def _holes(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A realistic radar gap: a block plus scattered pixels (True = no data)."""
    rng = np.random.default_rng(seed)
    gap = rng.random(shape) < 0.03
    gap[10:25, 30:50] = True
    return gap


def _with_nan(da: xr.DataArray, gap: np.ndarray) -> xr.DataArray:
    return da.where(~xr.DataArray(gap, dims=("y", "x")))


@pytest.mark.parametrize("members", [None, 4])
def test_estimate_nan_excludes_the_same_pixels_as_radar_nan(members):
    est, rad = random_rain_fields((64, 64), times=2, members=members, seed=1)
    gap = _holes((64, 64), 1)
    by_radar = verify(est, _with_nan(rad, gap))
    by_estimate = verify(_with_nan(est, gap).assign_attrs(est.attrs), rad)
    xr.testing.assert_allclose(by_radar, by_estimate)


def test_nan_in_one_member_excludes_the_pixel_for_every_member():
    est, rad = random_rain_fields((48, 48), times=1, members=3, seed=2)
    gap = _holes((48, 48), 2)
    one_member = est.copy()
    one_member.values[1, 0][gap] = np.nan
    xr.testing.assert_allclose(verify(one_member, rad), verify(est, _with_nan(rad, gap)))


def test_pixelwise_scores_with_holes_equal_pysteps_on_the_remaining_pixels():
    est, rad = random_rain_fields((64, 64), times=1, seed=3)
    gap = _holes((64, 64), 3)
    scores = verify(est, _with_nan(rad, gap), thresholds=(0.1, 1.0, 5.0))
    e, o = est.values[0][~gap], rad.values[0][~gap]
    for thr in (0.1, 1.0, 5.0):
        ref = det_cat_fct(e, o, thr, ["POD", "FAR", "CSI", "ETS", "HSS", "BIAS"])
        for name in ref:
            np.testing.assert_allclose(float(scores[name].sel(threshold=thr)), ref[name], rtol=1e-6)
    ref = det_cont_fct(e, o, ["ME", "MAE", "RMSE", "corr_p"])
    for name, ps_name in (("ME", "ME"), ("MAE", "MAE"), ("RMSE", "RMSE"), ("CORR", "corr_p")):
        np.testing.assert_allclose(float(scores[name]), ref[ps_name], rtol=1e-6)
    assert float(scores["wet_fraction_radar"]) == np.mean(o > 0.1)
    assert float(scores["maximum"]) == e.max()
    assert float(scores["n_valid"]) == (~gap).sum()


def test_ensemble_scores_with_holes_equal_pysteps_on_the_remaining_pixels():
    est, rad = random_rain_fields((48, 48), times=1, members=5, seed=4)
    est = est + 0.01 * np.random.default_rng(4).random(est.shape)  # no member equals the observation
    est.attrs["units"] = "mm/h"
    gap = _holes((48, 48), 4)
    scores = verify(est, _with_nan(rad, gap), config=ScoreConfig(rank_min=None))  # no ties: no random draw
    x, y = est.values[:, 0][:, ~gap], rad.values[0][~gap]
    np.testing.assert_allclose(float(scores["CRPS"]), CRPS(x, y), rtol=1e-6)
    np.testing.assert_allclose(scores["rank_histogram"].values, rankhist(x, y, X_min=None), rtol=1e-12)


def test_region_mask_equals_nan_outside_it():
    est, rad = random_rain_fields((48, 48), times=2, seed=5)
    gap = _holes((48, 48), 5)
    gap[0, 0] = gap[-1, -1] = False  # keep the bounding rectangle the whole grid
    mask = xr.DataArray(~gap, dims=("y", "x"), coords={"y": rad["y"], "x": rad["x"]})
    xr.testing.assert_allclose(verify(est, rad, region=mask), verify(est, _with_nan(rad, gap)))


def test_region_box_equals_cropped_fields():
    est, rad = random_rain_fields((48, 64), times=2, seed=6)
    x, y = rad["x"].values, rad["y"].values
    box = (x[5] - 1.0, y[40] - 1.0, x[50] + 1.0, y[3] + 1.0)
    crop = {"y": slice(3, 41), "x": slice(5, 51)}
    xr.testing.assert_allclose(verify(est, rad, region=box), verify(est.isel(crop), rad.isel(crop)))


def test_field_without_any_valid_pixel_gives_nan_scores():
    est, rad = random_rain_fields((32, 32), times=1, seed=7)
    scores = verify(est, rad * np.nan, per_time=True)
    for name in ("POD", "CSI", "RMSE", "CORR", "FSS", "wet_fraction", "maximum"):
        assert np.isnan(scores[name].values).all(), name
