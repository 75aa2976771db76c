"""Distribution: exact wet fraction, exceedance and maximum; histogram quantiles within one bin."""

from __future__ import annotations

import numpy as np
import pytest

from qpe.verify.distribution import (
    bin_edges,
    distribution_accum,
    distribution_compute,
    distribution_init,
    distribution_merge,
    quantile_tolerance,
    rain_distribution,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields


def test_bins_are_log_spaced_from_the_wet_threshold():
    edges = bin_edges(0.1, 1000.0, 100)
    assert edges.size == 401
    np.testing.assert_allclose(edges[[0, 100, 200, 400]], [0.1, 1.0, 10.0, 1000.0], rtol=1e-12)
    np.testing.assert_allclose(edges[1:] / edges[:-1], 10**0.01, rtol=1e-12)
    assert quantile_tolerance(100) == pytest.approx(0.0233, abs=1e-4)


def test_hand_computed_histogram():
    values = [[0.0, 0.05, 0.1, 0.15], [1.0, 2.5, 1500.0, 0.0]]
    dist = rain_distribution(as_rain_field(values), as_rain_field(values))
    # dry (<= 0.1): 0, 0.05, 0.1, 0 ; wet: 0.15, 1.0, 2.5 ; above the last edge: 1500
    assert float(dist["wet_fraction"]) == pytest.approx(4 / 8)
    assert float(dist["exceedance"].sel(intensity=1.0, method="nearest")) == pytest.approx(
        2 / 8
    )  # 1.0 not > 1
    assert float(dist["maximum"]) == 1500.0
    assert float(dist["n_valid"]) == 8
    hist = dist["histogram"]
    np.testing.assert_allclose(float(hist.sum()), 3 / 8)  # wet bins only; 1500 is in the overflow
    one = hist.where((hist["bin_lower"] < 1.0) & (hist["bin_upper"] >= 1.0), drop=True)
    np.testing.assert_allclose(one.values, [1 / 8])


def test_wet_fraction_exceedance_and_maximum_are_exact():
    est, rad = random_rain_fields((96, 96), times=2, seed=1)
    dist = rain_distribution(est, rad)
    for suffix, field in (("", est.values), ("_radar", rad.values)):
        values = field.ravel()
        assert float(dist[f"wet_fraction{suffix}"]) == np.mean(values > 0.1)
        assert float(dist[f"maximum{suffix}"]) == values.max()
        edges = dist[f"exceedance{suffix}"]["intensity"].values
        expected = (values[:, None] > edges[None, :]).mean(axis=0)
        np.testing.assert_allclose(dist[f"exceedance{suffix}"].values, expected, rtol=0, atol=1e-15)


def test_histogram_counts_right_closed_bins():
    est, rad = random_rain_fields((64, 64), times=1, seed=2)
    dist = rain_distribution(est, rad)
    values = rad.values.ravel()
    lower, upper = dist["histogram_radar"]["bin_lower"].values, dist["histogram_radar"]["bin_upper"].values
    expected = ((values[:, None] > lower) & (values[:, None] <= upper)).mean(axis=0)
    np.testing.assert_allclose(dist["histogram_radar"].values, expected, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 3])
def test_wet_quantiles_within_one_bin_of_numpy(seed):
    est, rad = random_rain_fields((128, 128), times=3, seed=seed)
    dist = rain_distribution(est, rad)
    tol = quantile_tolerance()
    for suffix, field in (("", est.values), ("_radar", rad.values)):
        wet = np.sort(field[field > 0.1])
        for name, q in (("wet_p90", 0.9), ("wet_p99", 0.99)):
            np.testing.assert_allclose(
                float(dist[name + suffix]), np.quantile(wet, q), rtol=tol, err_msg=name
            )
        # p99.9: within one bin of the two order statistics bracketing the exact quantile
        h = (wet.size - 1) * 0.999
        low, high = wet[int(np.floor(h))], wet[int(np.ceil(h))]
        assert low / (1 + tol) <= float(dist["wet_p999" + suffix]) <= high * (1 + tol)


def test_quantile_of_accumulated_fields_is_that_of_the_pooled_pixels():
    est, rad = random_rain_fields((64, 64), times=4, seed=4)
    stats = distribution_init()
    for t in range(4):
        stats = distribution_accum(stats, pair_fields(est.isel(time=t), rad.isel(time=t)))
    dist = distribution_compute(stats)
    wet = rad.values[rad.values > 0.1]
    np.testing.assert_allclose(float(dist["wet_p90_radar"]), np.quantile(wet, 0.9), rtol=quantile_tolerance())
    assert float(dist["maximum_radar"]) == rad.values.max()


def test_no_wet_pixel_gives_nan_quantiles_and_zero_wet_fraction():
    dry = as_rain_field(np.zeros((8, 8)))
    dist = rain_distribution(dry, dry)
    assert float(dist["wet_fraction"]) == 0.0
    assert np.isnan(float(dist["wet_p90"]))
    assert float(dist["maximum"]) == 0.0


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((48, 48), times=3, seed=5)
    whole = distribution_accum(distribution_init(), pair_fields(est, rad))
    parts = [
        distribution_accum(distribution_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 3))
    ]
    merged = distribution_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_array_equal(merged[name].values, whole[name].values)
