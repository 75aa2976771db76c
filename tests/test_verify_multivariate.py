"""Energy and variogram scores: against direct O(M^2) and O(N^2) computations on small fields, the fair
CRPS of the ``scores`` package (a one-pixel field), the closed form of a Gaussian ensemble, and an
ensemble shuffled pixel by pixel (same CRPS and rank histogram, worse variogram score)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from scipy.special import gammaln

from qpe.errors import DatasetError, InputError
from qpe.verify import verify
from qpe.verify.multivariate import (
    lag_offsets,
    multivariate_accum,
    multivariate_init,
    multivariate_merge,
    multivariate_scores,
    variogram_sums,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields


def _energy_by_definition(members: np.ndarray, obs: np.ndarray) -> float:
    """Fair ES with the RMS norm, by its double sum over members (one field, valid pixels only)."""
    m = members.shape[0]
    norm = lambda v: np.sqrt(np.mean(v**2))
    error = np.mean([norm(x - obs) for x in members])
    spread = sum(norm(members[i] - members[j]) for i in range(m) for j in range(m))
    return error - spread / (2 * m * (m - 1))


def _variogram_by_definition(members, obs, valid, weight, order=0.5) -> float:
    """sum_ij w_ij (|y_i - y_j|^p - mean_m |x_mi - x_mj|^p)^2 / sum_ij w_ij over every pixel pair i < j."""
    pixels = np.flatnonzero(valid.ravel())
    x, y = members.reshape(members.shape[0], -1)[:, pixels], obs.ravel()[pixels]
    total = weights = 0.0
    for a, b in itertools.combinations(range(pixels.size), 2):
        w = weight(pixels[a], pixels[b])
        if w:
            term = abs(y[a] - y[b]) ** order - np.mean(np.abs(x[:, a] - x[:, b]) ** order)
            total, weights = total + w * term**2, weights + w
    return total / weights


@pytest.mark.parametrize("seed", [0, 1])
def test_energy_score_agrees_with_its_definition(seed):
    est, rad = random_rain_fields((24, 20), times=3, members=4, seed=seed)
    holed = rad.copy()
    holed.values[1, 3:9, 2:7] = np.nan
    ours = multivariate_scores(est, holed)["energy_score"]
    per_field = []
    for t in range(3):
        valid = np.isfinite(holed.values[t])
        per_field.append(_energy_by_definition(est.values[:, t][:, valid], rad.values[t][valid]))
    np.testing.assert_allclose(float(ours), np.mean(per_field), rtol=1e-10)


def test_energy_score_of_one_pixel_is_the_fair_crps_of_the_scores_package():
    """One valid pixel per field: ||v|| = |v| and the fair ES is the fair CRPS, averaged over fields."""
    from scores.probability import crps_for_ensemble

    est, rad = random_rain_fields((6, 5), times=4, members=5, seed=2)
    est = est + 0.01 * np.random.default_rng(2).random(est.shape)  # no member equal to the radar
    picked = np.zeros(rad.shape, bool)
    for t, (i, j) in enumerate([(0, 0), (2, 3), (5, 4), (3, 1)]):
        picked[t, i, j] = True
    ours = multivariate_scores(est.assign_attrs(rad.attrs), rad.where(picked))["energy_score"]
    reference = crps_for_ensemble(
        est.where(picked), rad.where(picked), "member", method="fair"
    )  # NaN skipped
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-6)


def test_energy_score_of_a_gaussian_ensemble_has_its_closed_form():
    """Members and radar iid N(0, s^2) over d pixels: fair ES = s E||Z|| / sqrt(2 d), E||Z|| = sqrt(2)
    Gamma((d + 1) / 2) / Gamma(d / 2)."""
    rng = np.random.default_rng(3)
    sigma, shape, members = 2.0, (200, 250), 6
    draws = 10.0 + sigma * rng.standard_normal((members + 1, 3, *shape))
    est, rad = as_rain_field(draws[:-1], members=True), as_rain_field(draws[-1])
    d = shape[0] * shape[1]
    expected_norm = np.sqrt(2.0) * np.exp(gammaln((d + 1) / 2) - gammaln(d / 2))
    ours = float(multivariate_scores(est, rad)["energy_score"])
    # sd of a field's norm sigma / sqrt(d) = 0.004: 1 % is many standard errors, and 8 % from the
    # empirical (not fair) ES
    assert ours == pytest.approx(sigma * expected_norm / np.sqrt(2 * d), rel=1e-2)


def test_variogram_sums_over_every_offset_are_the_all_pairs_score():
    """Offsets covering every pixel pair once reproduce the O(N^2) variogram score with w_ij = 1."""
    est, rad = random_rain_fields((7, 9), times=1, members=3, seed=4, wet_fraction=0.6)
    members, obs = est.values[:, 0], rad.values[0]
    valid = np.ones(obs.shape, bool)
    valid[2, 3] = valid[5, 0] = False
    offsets = [(dy, dx) for dy in range(7) for dx in range(-8, 9) if dy > 0 or dx > 0]
    for order in (0.5, 1.0):
        sums, counts = variogram_sums(members, obs, valid, offsets, order)
        reference = _variogram_by_definition(members, obs, valid, lambda a, b: 1.0, order)
        np.testing.assert_allclose(sums.sum() / counts.sum(), reference, rtol=1e-10)
        assert counts.sum() == valid.sum() * (valid.sum() - 1) / 2


def test_variogram_score_uses_the_pairs_at_the_lags_along_rows_and_columns():
    est, rad = random_rain_fields((10, 12), times=1, members=4, seed=5, wet_fraction=0.5, pixel_m=1000.0)
    holed = rad.copy()
    holed.values[0, 4, 4:7] = np.nan
    ours = multivariate_scores(est, holed, lags_km=(1.0, 3.0))
    nx = 12

    def at_lag(lag):
        def weight(a, b):
            (ya, xa), (yb, xb) = divmod(a, nx), divmod(b, nx)
            return float((ya == yb and abs(xa - xb) == lag) or (xa == xb and abs(ya - yb) == lag))

        return weight

    valid = np.isfinite(holed.values[0])
    members, obs = est.values[:, 0], rad.values[0]
    by_lag = [_variogram_by_definition(members, obs, valid, at_lag(lag)) for lag in (1, 3)]
    np.testing.assert_allclose(ours["variogram_score_lag"].values, by_lag, rtol=1e-10)
    both = _variogram_by_definition(members, obs, valid, lambda a, b: at_lag(1)(a, b) + at_lag(3)(a, b))
    np.testing.assert_allclose(float(ours["variogram_score"]), both, rtol=1e-10)
    np.testing.assert_array_equal(ours["lag_pixels"].values, [1, 3])


def test_a_pixelwise_shuffled_ensemble_keeps_crps_and_ranks_but_loses_the_variogram_score():
    """Shuffling the members independently at every pixel keeps each pixel's set of values (CRPS, rank
    histogram: equal) but destroys each member's spatial structure: the variogram score tells."""
    est, rad = random_rain_fields((96, 96), times=2, members=6, seed=6, correlation=0.6)
    rng = np.random.default_rng(6)
    order = np.argsort(rng.random(est.shape), axis=0)
    shuffled = est.copy(data=np.take_along_axis(est.values, order, axis=0))
    coherent = verify(est, rad, families=("ensemble", "multivariate"), thresholds=(1.0,))
    pixelwise = verify(shuffled, rad, families=("ensemble", "multivariate"), thresholds=(1.0,))
    for name in ("CRPS", "CRPS_fair", "rank_histogram", "BRIER"):
        np.testing.assert_allclose(pixelwise[name].values, coherent[name].values, rtol=1e-10, err_msg=name)
    assert float(pixelwise["variogram_score"]) > 1.2 * float(coherent["variogram_score"])
    short = {"lag": slice(None, 8.0)}  # up to 8 km; far apart the members are unrelated anyway
    assert (
        pixelwise["variogram_score_lag"].sel(short) > 1.2 * coherent["variogram_score_lag"].sel(short)
    ).all()


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((32, 40), times=3, members=3, seed=7)
    whole = multivariate_accum(multivariate_init(), pair_fields(est, rad))
    parts = [
        multivariate_accum(multivariate_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 2), slice(2, 3))
    ]
    merged = multivariate_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)


def test_lags_in_km_become_whole_pixels():
    pixels, offsets = lag_offsets((2.0, 3.0, 64.0), 2.0)
    np.testing.assert_array_equal(pixels, [1, 2, 32])
    assert offsets[1] == [(0, 2), (2, 0)]
    with pytest.raises(InputError, match="shorter than half a pixel"):
        lag_offsets((0.9,), 2.0)


def test_deterministic_estimate_is_refused():
    field = as_rain_field(np.ones((4, 4)))
    with pytest.raises(DatasetError, match="member"):
        multivariate_scores(field, field)


def test_lags_longer_than_the_field_have_no_pairs():
    est, rad = random_rain_fields((16, 16), times=1, members=2, seed=8)
    ours = multivariate_scores(est, rad, lags_km=(2.0, 64.0))  # 32 pixels: no pair in 16 x 16
    assert np.isnan(ours["variogram_score_lag"].sel(lag=64.0))
    np.testing.assert_allclose(
        float(ours["variogram_score"]), float(ours["variogram_score_lag"].sel(lag=2.0)), rtol=1e-12
    )
    assert isinstance(ours, xr.Dataset)
