"""Ensemble scores against pysteps: CRPS, rank histogram, ensemble skill/spread, reliability."""

from __future__ import annotations

import numpy as np
import pytest
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
