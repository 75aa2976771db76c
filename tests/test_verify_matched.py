"""CSI at matched wet fraction against a brute-force reference on the pixels (sorted values)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from qpe.verify import ScoreAccumulator, ScoreConfig, verify
from qpe.verify.distribution import bin_edges, quantile_tolerance
from qpe.verify.matched import matched_accum, matched_frequency_scores, matched_init, matched_merge
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import random_rain_fields


def brute_force(estimate: np.ndarray, radar: np.ndarray, threshold: float) -> tuple[float, tuple, float]:
    """(CSI, (t_low, t_high), bias): every t in [t_low, t_high) is exceeded by exactly N = #(radar >
    threshold) estimate pixels (all fields pooled): from the (N + 1)-th to the N-th largest estimate value,
    but not below the wet threshold (0.1 mm/h)."""
    x, y = estimate.ravel(), radar.ravel()
    n = int((y > threshold).sum())
    ordered = np.sort(x)[::-1]
    low = max(ordered[n], bin_edges()[0])
    high = max(ordered[n - 1], low)
    fct = x > low
    hits = int((fct & (y > threshold)).sum())
    return hits / (n + fct.sum() - hits), (low, high), fct.sum() / n


@pytest.mark.parametrize(("seed", "threshold"), [(0, 1.0), (1, 0.1), (2, 5.0), (3, 1.0)])
def test_matched_csi_agrees_with_the_sorted_pixels(seed, threshold):
    est, rad = random_rain_fields((96, 96), times=3, seed=seed, correlation=0.6)
    ours = matched_frequency_scores(est, rad, thresholds=(0.1, 1.0, 5.0)).sel(threshold=threshold)
    csi, (low, high), bias = brute_force(est.values, rad.values, threshold)
    assert float(ours["CSI_matched"]) == pytest.approx(csi, abs=0.01)
    tolerance = 1 + quantile_tolerance()  # one bin
    assert low / tolerance <= float(ours["matched_threshold"]) <= high * tolerance
    assert float(ours["matched_bias"]) == pytest.approx(bias, abs=1e-9)


def test_an_estimate_equal_to_radar_scores_one_exactly():
    _, rad = random_rain_fields((64, 64), times=2, seed=4)
    ours = matched_frequency_scores(rad, rad, thresholds=(1.0,))  # 1 mm/h is a bin edge: no interpolation
    np.testing.assert_allclose(ours["CSI_matched"].values, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["matched_threshold"].values, 1.0, rtol=1e-12)


def test_a_wet_biased_field_with_the_right_placement_is_not_penalised():
    """3 x radar + drizzle everywhere: the fixed-threshold CSI pays for the wide wet area, the matched
    CSI sees the same ranking of pixels as radar's and is 1 but for the pixels of the bin holding the
    matched threshold (3.9 mm/h), which the interpolation splits evenly between events and non-events."""
    _, rad = random_rain_fields((64, 64), times=2, seed=5)
    wide = 3.0 * rad + 0.9  # every pixel > 0.9 mm/h; > 1 mm/h wherever radar > 0.034 mm/h
    wide.attrs["units"] = "mm/h"
    scores = verify(wide, rad, thresholds=(1.0,), families=("categorical", "matched"))
    assert float(scores["CSI"].squeeze()) < 0.5
    assert float(scores["CSI_matched"].squeeze()) == pytest.approx(1.0, abs=0.05)
    assert float(scores["matched_threshold"].squeeze()) == pytest.approx(3.9, rel=quantile_tolerance())


def test_a_too_dry_estimate_keeps_its_bias_below_one():
    est, rad = random_rain_fields((64, 64), times=1, seed=6)
    dry = (est * 0.0).assign_attrs(units="mm/h")
    dry[0, :4, :4] = 5.0  # 16 wet pixels, fewer than the radar's events
    ours = matched_frequency_scores(dry, rad, thresholds=(1.0,)).squeeze("threshold")
    n = int((rad.values > 1.0).sum())
    assert float(ours["matched_bias"]) == pytest.approx(16 / n)
    assert float(ours["matched_threshold"]) == pytest.approx(bin_edges()[0])
    hits = int((rad.values[0, :4, :4] > 1.0).sum())
    assert float(ours["CSI_matched"]) == pytest.approx(hits / (n + 16 - hits))


def test_each_member_gets_its_own_threshold_and_no_event_is_nan():
    est, rad = random_rain_fields((48, 48), times=2, seed=7)
    est = (est * xr.DataArray([0.5, 1.0, 2.0], dims="member")).assign_attrs(units="mm/h")  # one field, scaled
    ours = matched_frequency_scores(est, rad, thresholds=(5.0, 1e4))
    t = ours["matched_threshold"].sel(threshold=5.0).values
    np.testing.assert_allclose(t / t[1], [0.5, 1.0, 2.0], rtol=2 * quantile_tolerance())
    # scaling never changes the ranking of a member's pixels: same CSI for every member
    np.testing.assert_allclose(
        ours["CSI_matched"].sel(threshold=5.0).values, ours["CSI_matched"].values[1, 0], atol=0.02
    )
    assert np.isnan(ours["CSI_matched"].sel(threshold=1e4).values).all()


def test_merged_statistics_equal_a_single_pass_and_days_resample():
    est, rad = random_rain_fields((48, 48), times=4, seed=8, freq="12h")
    whole = matched_accum(matched_init((1.0,)), pair_fields(est, rad))
    parts = [
        matched_accum(matched_init((1.0,)), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 4))
    ]
    xr.testing.assert_allclose(matched_merge(*parts), whole)
    acc = ScoreAccumulator(ScoreConfig(thresholds=(1.0,), families=("matched",))).accum(est, rad)
    assert acc.days.size == 3 and "CSI_matched" in acc.compute()
