"""Continuous scores (ME, MAE, RMSE, correlation) against pysteps' det_cont_fct."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.verification.detcontscores import (
    det_cont_fct,
    det_cont_fct_accum,
    det_cont_fct_compute,
    det_cont_fct_init,
)

from qpe.verify.continuous import continuous_accum, continuous_init, continuous_merge, continuous_scores
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields

PYSTEPS_NAMES = {"ME": "ME", "MAE": "MAE", "RMSE": "RMSE", "CORR": "corr_p"}


def test_hand_computed_scores():
    estimate = [[1.0, 2.0], [0.0, 4.0]]
    radar = [[0.0, 2.0], [1.0, 1.0]]
    # errors 1, 0, -1, 3
    scores = continuous_scores(as_rain_field(estimate), as_rain_field(radar))
    np.testing.assert_allclose(float(scores["ME"]), 3 / 4)
    np.testing.assert_allclose(float(scores["MAE"]), 5 / 4)
    np.testing.assert_allclose(float(scores["RMSE"]), np.sqrt(11 / 4))
    np.testing.assert_allclose(float(scores["CORR"]), np.corrcoef([1, 2, 0, 4], [0, 2, 1, 1])[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_field_agrees_with_pysteps(seed):
    est, rad = random_rain_fields((96, 80), times=1, seed=seed)
    ours = continuous_scores(est, rad)
    ref = det_cont_fct(est.values[0], rad.values[0], scores=list(PYSTEPS_NAMES.values()))
    for name, ps_name in PYSTEPS_NAMES.items():
        np.testing.assert_allclose(float(ours[name]), ref[ps_name], rtol=1e-6, err_msg=name)


def test_accumulation_over_fields_agrees_with_pysteps_accum():
    est, rad = random_rain_fields((64, 64), times=6, seed=3)
    ours = continuous_scores(est, rad)
    err = det_cont_fct_init()
    for t in range(6):
        det_cont_fct_accum(err, est.values[t], rad.values[t])
    ref = det_cont_fct_compute(err, list(PYSTEPS_NAMES.values()))
    for name, ps_name in PYSTEPS_NAMES.items():
        np.testing.assert_allclose(float(ours[name]), ref[ps_name], rtol=1e-6, err_msg=name)


def test_ensemble_members_are_scored_one_by_one():
    est, rad = random_rain_fields((48, 48), times=2, members=3, seed=4)
    ours = continuous_scores(est, rad)
    assert ours["RMSE"].dims == ("member",)
    for m in range(3):
        ref = det_cont_fct(est.values[m], rad.values, scores=["RMSE", "corr_p"])
        np.testing.assert_allclose(float(ours["RMSE"][m]), ref["RMSE"], rtol=1e-6)
        np.testing.assert_allclose(float(ours["CORR"][m]), ref["corr_p"], rtol=1e-6)


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((48, 48), times=4, seed=5)
    whole = continuous_accum(continuous_init(), pair_fields(est, rad))
    halves = [
        continuous_accum(continuous_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 4))
    ]
    merged = continuous_merge(*halves)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)
