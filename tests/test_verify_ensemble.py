"""Ensemble scores against pysteps (CRPS, rank histogram, ensemble skill/spread, reliability), the fair
CRPS against the ``scores`` package (BoM) and closed forms, the fair spread-skill ratio on calibrated toys."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.postprocessing.ensemblestats import excprob
from pysteps.verification.ensscores import ensemble_skill, ensemble_spread, rankhist
from pysteps.verification.probscores import CRPS, CRPS_accum, CRPS_compute, CRPS_init, reldiag

from qpe.errors import DatasetError
from qpe.verify.ensemble import (
    crps_values,
    ensemble_accum,
    ensemble_init,
    ensemble_merge,
    ensemble_scores,
    rank_counts,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")


def _ensemble(seed: int, members: int = 6, times: int = 1, shape=(48, 56), drizzle: bool = True):
    """Realistic members; with ``drizzle`` they never exactly equal the (often 0) observation."""
    est, rad = random_rain_fields(shape, times=times, members=members, seed=seed)
    if drizzle:
        est = est + 0.01 * np.random.default_rng(seed).random(est.shape)
        est.attrs["units"] = "mm/h"
    return est, rad


def _kernel_crps(members: np.ndarray, obs: np.ndarray) -> float:
    """CRPS = E|X - y| - E|X - X'| / 2 of the empirical member distribution, averaged over pixels."""
    x = members.reshape(members.shape[0], -1)
    y = obs.ravel()
    return float((np.abs(x - y).mean(0) - 0.5 * np.abs(x[:, None] - x[None]).mean((0, 1))).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_crps_agrees_with_pysteps_without_ties(seed):
    est, rad = _ensemble(seed)
    ours = ensemble_scores(est, rad)
    np.testing.assert_allclose(float(ours["CRPS"]), CRPS(est.values[:, 0], rad.values[0]), rtol=1e-6)


def test_crps_accumulated_agrees_with_pysteps_accum():
    est, rad = _ensemble(2, times=3)
    ours = ensemble_scores(est, rad)
    obj = CRPS_init()
    for t in range(3):
        CRPS_accum(obj, est.values[:, t], rad.values[t])
    np.testing.assert_allclose(float(ours["CRPS"]), CRPS_compute(obj), rtol=1e-6)


def test_crps_with_ties_is_the_exact_empirical_crps():
    # members 0, 0, 0.5 and a dry observation: E|X - y| = 1/6, E|X - X'| = 2 * 2 * 0.5 / 9
    assert crps_values(np.array([[0.0], [0.0], [0.5]]), np.array([0.0]))[0] == pytest.approx(1 / 6 - 1 / 9)
    est, rad = _ensemble(3, drizzle=False)  # dry members and dry radar tie at 0 everywhere it is dry
    ours = ensemble_scores(est, rad)
    np.testing.assert_allclose(float(ours["CRPS"]), _kernel_crps(est.values[:, 0], rad.values[0]), rtol=1e-10)


def test_pysteps_crps_drops_intervals_bounded_by_a_tied_member():
    """The documented deviation: pysteps gives 0 here, the exact CRPS is 1/18."""
    members, obs = np.array([[0.0], [0.0], [0.5]]), np.array([0.0])
    assert CRPS(members, obs) == 0.0
    assert crps_values(members, obs)[0] == pytest.approx(1 / 18)


def test_rank_histogram_agrees_with_pysteps_without_ties():
    est, rad = _ensemble(4)
    ours = ensemble_scores(est, rad, rank_min=None)
    ref = rankhist(est.values[:, 0], rad.values[0], X_min=None, normalize=True)
    np.testing.assert_allclose(ours["rank_histogram"].values, ref, rtol=1e-12)


def test_rank_histogram_random_ties_draw_as_pysteps():
    est, rad = _ensemble(5, drizzle=False)
    np.random.seed(42)
    ref = rankhist(est.values[:, 0], rad.values[0], X_min=0.1, normalize=False)
    pair = pair_fields(est, rad)
    valid = pair.valid[0]
    ours = rank_counts(pair.estimate[:, 0][:, valid], pair.radar[0][valid], 0.1, np.random.RandomState(42))
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize(
    "members, obs, expected",
    [
        ([0.0, 0.0, 0.5], 0.0, [1 / 3, 1 / 3, 1 / 3, 0.0]),  # tied with two members: split over ranks 0..2
        ([0.0, 0.0, 0.5], 0.2, [0.0, 0.0, 1.0, 0.0]),
        ([1.0, 2.0, 3.0], 2.0, [0.0, 0.5, 0.5, 0.0]),
        ([1.0, 2.0, 3.0], 9.0, [0.0, 0.0, 0.0, 1.0]),
    ],
)
def test_split_ties_spread_one_count_over_the_tied_ranks(members, obs, expected):
    counts = rank_counts(np.array(members)[:, None], np.array([obs]), x_min=None)
    np.testing.assert_allclose(counts, expected)


def test_split_ties_match_the_mean_of_random_draws():
    est, rad = _ensemble(6, drizzle=False, shape=(64, 64))
    pair = pair_fields(est, rad)
    x, y = pair.estimate[:, 0].reshape(est.sizes["member"], -1), pair.radar[0].ravel()
    split = rank_counts(x, y, 0.1)
    rng = np.random.RandomState(0)
    drawn = np.mean([rank_counts(x, y, 0.1, rng) for _ in range(200)], axis=0)
    np.testing.assert_allclose(drawn, split, rtol=0.02)
    assert split.sum() == pytest.approx(drawn.sum())


def test_ensemble_skill_and_spread_agree_with_pysteps():
    est, rad = _ensemble(7, members=4)
    ours = ensemble_scores(est, rad)
    x, y = est.values[:, 0], rad.values[0]
    np.testing.assert_allclose(float(ours["ensemble_skill"]), ensemble_skill(x, y, "RMSE"), rtol=1e-6)
    np.testing.assert_allclose(float(ours["ensemble_spread"]), ensemble_spread(x, "RMSE"), rtol=1e-6)


@pytest.mark.parametrize("threshold", [0.1, 1.0, 5.0])
def test_reliability_agrees_with_pysteps_reldiag(threshold):
    est, rad = _ensemble(8, members=10, shape=(96, 96), drizzle=False)
    ours = ensemble_scores(est, rad, thresholds=(0.1, 1.0, 5.0)).sel(threshold=threshold)
    prob = excprob(est.values[:, 0], threshold)
    r, f = reldiag(prob, rad.values[0], threshold, n_bins=10, min_count=10)
    np.testing.assert_allclose(ours["reliability_forecast"].values, r, rtol=1e-6)
    np.testing.assert_allclose(ours["reliability_observed"].values, f, rtol=1e-6)


def test_brier_and_spread_skill_by_definition():
    est, rad = _ensemble(9, members=5)
    ours = ensemble_scores(est, rad, thresholds=(1.0,))
    x, y = est.values[:, 0], rad.values[0]
    prob = (x >= 1.0).mean(0)
    np.testing.assert_allclose(float(ours["BRIER"].squeeze()), np.mean((prob - (y >= 1.0)) ** 2), rtol=1e-10)
    spread = np.sqrt(x.var(axis=0, ddof=1).mean())
    rmse = np.sqrt(((x.mean(0) - y) ** 2).mean())
    np.testing.assert_allclose(float(ours["spread"]), spread, rtol=1e-10)
    np.testing.assert_allclose(float(ours["ensemble_mean_rmse"]), rmse, rtol=1e-10)
    np.testing.assert_allclose(float(ours["spread_skill_ratio"]), np.sqrt(6 / 5) * spread / rmse, rtol=1e-10)


def test_merged_statistics_equal_single_pass():
    est, rad = _ensemble(10, members=3, times=3, shape=(32, 32))
    whole = ensemble_accum(ensemble_init(), pair_fields(est, rad))
    parts = [
        ensemble_accum(ensemble_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 2), slice(2, 3))
    ]
    merged = ensemble_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)


def test_deterministic_estimate_is_refused():
    field = as_rain_field(np.ones((4, 4)))
    with pytest.raises(DatasetError, match="member"):
        ensemble_scores(field, field)


# -- fair CRPS and the fair spread-skill ratio ------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "members", "drizzle"), [(11, 2, True), (12, 4, False), (13, 8, True)])
def test_fair_crps_agrees_with_the_scores_package(seed, members, drizzle):
    from scores.probability import crps_for_ensemble

    est, rad = _ensemble(seed, members=members, times=2, drizzle=drizzle)
    ours = ensemble_scores(est, rad)
    reference = crps_for_ensemble(est, rad, "member", method="fair")  # mean over (time, y, x)
    np.testing.assert_allclose(float(ours["CRPS_fair"]), float(reference), rtol=1e-6)
    ecdf = crps_for_ensemble(est, rad, "member", method="ecdf")  # and the empirical CRPS, independently
    np.testing.assert_allclose(float(ours["CRPS"]), float(ecdf), rtol=1e-6)


@pytest.mark.parametrize(
    ("members", "obs", "empirical", "fair"),
    [
        ([0.0, 1.0], 0.0, 0.5 - 2 / 8, 0.5 - 2 / 4),  # sum_ij |x_i - x_j| = 2
        ([0.0, 0.0, 0.5], 0.0, 1 / 6 - 2 / 18, 1 / 6 - 2 / 12),
        ([1.0, 2.0, 3.0, 4.0], 2.5, 1.0 - 20 / 32, 1.0 - 20 / 24),  # sum_ij = 2 (1+2+3+1+2+1) = 20
    ],
)
def test_fair_crps_by_hand(members, obs, empirical, fair):
    x, y = np.array(members)[:, None], np.array([obs])
    assert crps_values(x, y)[0] == pytest.approx(empirical)
    assert crps_values(x, y, fair=True)[0] == pytest.approx(fair)


def _calibrated(members: int, shape=(400, 500), seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """Members and observation: independent draws of one N(5, 1) mm/h per pixel (a perfectly calibrated
    ensemble), as (member, time, y, x) and (time, y, x) fields."""
    draws = 5.0 + np.random.default_rng(seed).standard_normal((members + 1, 1, *shape))
    coords = {
        "time": np.array(["2021-06-01T12:00"], "datetime64[ns]"),
        "y": np.arange(shape[0]) * 2e3,
        "x": np.arange(shape[1]) * 2e3,
    }
    est = xr.DataArray(draws[:-1], dims=("member", "time", "y", "x"), coords=coords, attrs={"units": "mm/h"})
    return est, xr.DataArray(draws[-1], dims=("time", "y", "x"), coords=coords, attrs={"units": "mm/h"})


@pytest.mark.parametrize("members", [2, 4, 16])
def test_a_calibrated_ensemble_has_the_closed_form_crps_and_spread_skill_one(members):
    """N(5, 1) members and observation: CRPS(N(5, 1), y) averages E|X - y| - E|X - X'| / 2 = 1 / sqrt(pi);
    the fair CRPS estimates it without bias, the empirical CRPS exceeds it by E|X - X'| / (2M) =
    1 / (M sqrt(pi)); the fair spread-skill ratio is 1 (uncorrected: sqrt((M - 1) / (M + 1)))."""
    est, rad = _calibrated(members)
    ours = ensemble_scores(est, rad, thresholds=(1.0,))
    tolerance = (
        4 * 0.6 / np.sqrt(est.sizes["x"] * est.sizes["y"])
    )  # 4 standard errors of a pixel mean (CRPS sd < 0.6)
    assert abs(float(ours["CRPS_fair"]) - 1 / np.sqrt(np.pi)) < tolerance
    assert abs(float(ours["CRPS"]) - (1 + 1 / members) / np.sqrt(np.pi)) < tolerance
    assert float(ours["spread_skill_ratio"]) == pytest.approx(1.0, abs=0.01)
    uncorrected = np.sqrt(est.var("member", ddof=0).mean()) / float(ours["ensemble_mean_rmse"])
    assert float(uncorrected) == pytest.approx(np.sqrt((members - 1) / (members + 1)), abs=0.01)


def test_fair_spread_skill_is_the_biased_variance_corrected_by_m_plus_1_over_m_minus_1():
    est, rad = _ensemble(14, members=3, times=2)
    ours = ensemble_scores(est, rad)
    x, y = est.values.reshape(3, -1), rad.values.ravel()
    biased = x.var(axis=0, ddof=0).mean()
    rmse = np.sqrt(((x.mean(0) - y) ** 2).mean())
    np.testing.assert_allclose(float(ours["spread_skill_ratio"]), np.sqrt(4 / 2 * biased) / rmse, rtol=1e-10)


def test_the_fair_crps_prefers_a_calibrated_pair_of_members_to_an_under_dispersive_one():
    """Two members drawn with half the spread of the observation: the empirical CRPS of 2 members prefers
    them (expected 0.751 against 0.846 for calibrated members), the fair CRPS does not (0.610 against
    1 / sqrt(pi) = 0.564); the fair spread-skill ratio is sqrt(1.5 x 0.25 / 1.125) = 0.58."""
    est, rad = _calibrated(2, shape=(250, 400), seed=3)
    narrow = ensemble_scores(5.0 + (est - 5.0) * 0.5, rad, thresholds=(1.0,))
    wide = ensemble_scores(est, rad, thresholds=(1.0,))
    assert float(narrow["CRPS"]) < float(wide["CRPS"])
    assert float(narrow["CRPS_fair"]) > float(wide["CRPS_fair"])
    np.testing.assert_allclose([float(narrow["CRPS"]), float(narrow["CRPS_fair"])], [0.751, 0.610], atol=0.01)
    assert float(narrow["spread_skill_ratio"]) == pytest.approx(np.sqrt(1.5 * 0.25 / 1.125), abs=0.01)


def test_fair_crps_of_one_member_is_undefined():
    assert np.isnan(crps_values(np.array([[1.0]]), np.array([0.0]), fair=True)[0])
