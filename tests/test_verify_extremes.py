"""Extremes: exceedance scores against pysteps' det_cat_fct with their pixel counts, the threshold-weighted
CRPS against the ``scores`` package (BoM) and closed forms, deterministic estimates without twCRPS."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.verification.detcatscores import det_cat_fct

from qpe.verify.ensemble import ensemble_scores
from qpe.verify.extremes import (
    extremes_accum,
    extremes_init,
    extremes_merge,
    extremes_scores,
    threshold_weighted_crps_sums,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import random_rain_fields

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")

EXTREMES = (10.0, 20.0, 50.0)


def _intense(seed: int, members: int | None = 4, times: int = 2):
    """Fields with rain well above 50 mm/h in places (a steep log-normal tail)."""
    return random_rain_fields(
        (96, 88), times=times, members=members, seed=seed, wet_fraction=0.3, min_rate=1.0, log_slope=3.0
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_exceedance_scores_and_counts_agree_with_pysteps(seed):
    est, rad = _intense(seed, members=3, times=1)
    ours = extremes_scores(est, rad, EXTREMES)
    assert ours["n_radar_extreme"].sel(extreme_threshold=50.0) > 0, "the case must hold 50 mm/h rain"
    for m in range(3):
        for thr in EXTREMES:
            x, y = est.values[m, 0], rad.values[0]
            ref = det_cat_fct(x, y, thr, ["POD", "FAR", "CSI", "BIAS"])
            at = ours.sel(member=m, extreme_threshold=thr)
            for name in ("POD", "FAR", "CSI", "BIAS"):
                np.testing.assert_allclose(float(at[f"{name}_extreme"]), ref[name], rtol=1e-12, err_msg=name)
            assert float(at["n_estimate_extreme"]) == np.count_nonzero(x > thr)
            assert float(at["n_hits_extreme"]) == np.count_nonzero((x > thr) & (y > thr))
            assert float(ours["n_radar_extreme"].sel(extreme_threshold=thr)) == np.count_nonzero(y > thr)


@pytest.mark.parametrize("method", ["ecdf", "fair"])
@pytest.mark.parametrize("members", [2, 5])
def test_threshold_weighted_crps_agrees_with_the_scores_package(method, members):
    from scores.probability import tw_crps_for_ensemble

    est, rad = _intense(2 + members, members=members)
    ours = extremes_scores(est, rad, EXTREMES)["twCRPS_fair" if method == "fair" else "twCRPS"]
    for thr in EXTREMES:
        reference = tw_crps_for_ensemble(
            est, rad, "member", lambda z, t=thr: np.maximum(z, t), method=method
        )  # mean over (time, y, x)
        np.testing.assert_allclose(float(ours.sel(extreme_threshold=thr)), float(reference), rtol=1e-6)


def test_threshold_weighted_crps_uses_the_tail_weight_of_the_scores_package():
    """``tail_tw_crps_for_ensemble(tail="upper")``: the weight 1[z > t] itself, not its chaining function."""
    from scores.probability import tail_tw_crps_for_ensemble

    est, rad = _intense(9)
    ours = extremes_scores(est, rad, (20.0,))["twCRPS"]
    reference = tail_tw_crps_for_ensemble(est, rad, "member", threshold=20.0, tail="upper")
    np.testing.assert_allclose(float(ours.squeeze()), float(reference), rtol=1e-6)


def test_below_every_value_the_twcrps_is_the_crps():
    """With t below all rain rates v(z) = max(z, t) shifts nothing: twCRPS = CRPS, fair twCRPS = fair CRPS."""
    est, rad = _intense(10)
    tw = extremes_scores(est, rad, (-1.0,)).squeeze()
    crps = ensemble_scores(est, rad)
    np.testing.assert_allclose(float(tw["twCRPS"]), float(crps["CRPS"]), rtol=1e-12)
    np.testing.assert_allclose(float(tw["twCRPS_fair"]), float(crps["CRPS_fair"]), rtol=1e-12)


@pytest.mark.parametrize(
    ("members", "obs", "threshold", "empirical", "fair"),
    [
        # v = max(z, 10): members 10, 10, 30 and y 10: E|v(X) - v(y)| = 20/3, sum_ij |.| = 2 * 2 * 20 = 80
        ([0.0, 5.0, 30.0], 3.0, 10.0, 20 / 3 - 80 / 18, 20 / 3 - 80 / 12),
        ([0.0, 5.0], 2.0, 10.0, 0.0, 0.0),  # nothing above t: no penalty
        ([12.0, 16.0], 20.0, 10.0, 6.0 - 8 / 8, 6.0 - 8 / 4),
    ],
)
def test_threshold_weighted_crps_by_hand(members, obs, threshold, empirical, fair):
    sums = threshold_weighted_crps_sums(np.array(members)[:, None], np.array([obs]), threshold)
    np.testing.assert_allclose(sums, (empirical, fair), rtol=1e-12)


def test_deterministic_estimate_has_exceedance_scores_but_no_twcrps():
    est, rad = _intense(11, members=None)
    ours = extremes_scores(est, rad, EXTREMES)
    assert "twCRPS" not in ours and "twCRPS_fair" not in ours
    assert ours["CSI_extreme"].dims == ("extreme_threshold",)
    np.testing.assert_allclose(
        float(ours["CSI_extreme"].sel(extreme_threshold=10.0)),
        det_cat_fct(est.values.ravel(), rad.values.ravel(), 10.0, ["CSI"])["CSI"],
        rtol=1e-12,
    )


def test_no_event_gives_nan_scores_and_zero_counts():
    est, rad = random_rain_fields((32, 32), times=1, members=2, seed=12)  # nothing near 500 mm/h
    ours = extremes_scores(est, rad, (500.0,)).squeeze()
    assert np.isnan(ours["POD_extreme"]).all() and np.isnan(ours["CSI_extreme"]).all()
    assert float(ours["n_radar_extreme"]) == 0 and (ours["n_estimate_extreme"] == 0).all()
    assert float(ours["twCRPS"]) == 0.0


def test_merged_statistics_equal_single_pass():
    est, rad = _intense(13, times=3)
    whole = extremes_accum(extremes_init(EXTREMES), pair_fields(est, rad))
    parts = [
        extremes_accum(extremes_init(EXTREMES), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 3))
    ]
    merged = extremes_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)
