"""FSS over thresholds x scales against pysteps' fss, the km -> window mapping and the invalid-pixel rule."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.verification.spatialscores import fss as pysteps_fss
from pysteps.verification.spatialscores import fss_accum as pysteps_fss_accum
from pysteps.verification.spatialscores import fss_compute as pysteps_fss_compute
from pysteps.verification.spatialscores import fss_init as pysteps_fss_init
from scipy.ndimage import uniform_filter

from qpe.errors import InputError
from qpe.verify.fss import fss, fss_accum, fss_compute, fss_init, fss_merge
from qpe.verify.pairs import pair_fields, window_sizes
from qpe.verify.testing import random_rain_fields

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")

THRESHOLDS = (0.1, 1.0, 5.0)
# 2 km pixels: windows of 1, 2, 3, 4, 7, 16 and 64 px (odd and even; at 64 px the exact int32 sums are
# taken in blocks of 127 rows, so fields of more rows exercise the blocking)
SCALES_KM = (2.0, 4.0, 6.0, 8.0, 14.0, 32.0, 128.0)


@pytest.mark.parametrize(
    "scales_km, pixel_km, windows",
    [
        ((2, 4, 8, 16, 32, 64), 2.0, [1, 2, 4, 8, 16, 32]),
        ((3.0, 5.0, 7.0), 2.0, [2, 3, 4]),  # halves round up
        ((2.9, 3.1), 1.0, [3, 3]),
        ((1.0,), 2.0, [1]),
    ],
)
def test_scale_in_km_maps_to_nearest_window(scales_km, pixel_km, windows):
    np.testing.assert_array_equal(window_sizes(scales_km, pixel_km), windows)


def test_scale_below_half_a_pixel_is_refused():
    with pytest.raises(InputError, match="shorter than half a pixel"):
        window_sizes((0.9,), 2.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_single_field_agrees_with_pysteps(seed):
    est, rad = random_rain_fields((136, 96), times=1, seed=seed)
    ours = fss(est, rad, THRESHOLDS, SCALES_KM)
    windows = window_sizes(SCALES_KM, 2.0)
    assert ours.dims == ("threshold", "scale")
    np.testing.assert_array_equal(ours["window"].values, windows)
    for thr in THRESHOLDS:
        for scale, w in zip(SCALES_KM, windows, strict=True):
            ref = pysteps_fss(est.values[0], rad.values[0], thr, int(w))
            np.testing.assert_allclose(
                float(ours.sel(threshold=thr, scale=scale)),
                ref,
                rtol=1e-6,
                err_msg=f"threshold {thr}, window {w}",
            )


def test_window_wider_than_int32_products_agrees_with_pysteps():
    est, rad = random_rain_fields((40, 48), times=1, seed=7, wet_fraction=0.4)
    ours = fss(est, rad, (0.1,), (440.0,))  # 220 px: the int64 path
    ref = pysteps_fss(est.values[0], rad.values[0], 0.1, 220)
    np.testing.assert_allclose(float(ours.squeeze()), ref, rtol=1e-6)


def test_accumulation_over_fields_agrees_with_pysteps_accum():
    est, rad = random_rain_fields((64, 64), times=4, seed=2)
    ours = fss(est, rad, THRESHOLDS, (2.0, 10.0, 30.0))
    for thr in THRESHOLDS:
        for scale, w in ((2.0, 1), (10.0, 5), (30.0, 15)):
            obj = pysteps_fss_init(thr, w)
            for t in range(4):
                pysteps_fss_accum(obj, est.values[t], rad.values[t])
            np.testing.assert_allclose(
                float(ours.sel(threshold=thr, scale=scale)), pysteps_fss_compute(obj), rtol=1e-6
            )


def test_ensemble_members_are_scored_one_by_one():
    est, rad = random_rain_fields((48, 56), times=2, members=2, seed=3)
    ours = fss(est, rad, (1.0,), (8.0,))
    assert ours.dims == ("member", "threshold", "scale")
    for m in range(2):
        obj = pysteps_fss_init(1.0, 4)
        for t in range(2):
            pysteps_fss_accum(obj, est.values[m, t], rad.values[t])
        np.testing.assert_allclose(float(ours.isel(member=m).squeeze()), pysteps_fss_compute(obj), rtol=1e-6)


def test_no_event_in_either_field_is_nan():
    est, rad = random_rain_fields((32, 32), times=1, seed=4)
    scores = fss(est, rad, (1000.0,), (4.0,))
    assert np.isnan(scores.values).all()


@pytest.mark.parametrize("side", ["top", "right"])
def test_invalid_border_strip_scores_like_the_cropped_field_in_pysteps(side):
    est, rad = random_rain_fields((64, 72), times=1, seed=5)
    cut = {"top": (slice(0, 12), slice(None)), "right": (slice(None), slice(60, None))}[side]
    keep = {"top": (slice(12, None), slice(None)), "right": (slice(None), slice(0, 60))}[side]
    holed = rad.copy()
    holed.values[0][cut] = np.nan
    ours = fss(est, holed, (0.1, 1.0), (2.0, 6.0, 16.0))
    for thr in (0.1, 1.0):
        for scale, w in ((2.0, 1), (6.0, 3), (16.0, 8)):
            ref = pysteps_fss(est.values[0][keep], rad.values[0][keep], thr, w)
            np.testing.assert_allclose(float(ours.sel(threshold=thr, scale=scale)), ref, rtol=1e-6)


def test_invalid_holes_follow_the_documented_rule():
    """Holes are non-events in both fields and are left out of the sums (like outside the domain)."""
    est, rad = random_rain_fields((64, 64), times=1, seed=6)
    holed = est.copy()
    holed.values[0, 20:30, 10:40] = np.nan
    holed.values[0, 50, 50] = np.nan
    ours = fss(holed, rad, (1.0,), (10.0,))
    valid = np.isfinite(holed.values[0])
    f = uniform_filter(((est.values[0] >= 1.0) & valid).astype(float), 5, mode="constant")
    o = uniform_filter(((rad.values[0] >= 1.0) & valid).astype(float), 5, mode="constant")
    ff, fo, oo = (f[valid] ** 2).sum(), (f[valid] * o[valid]).sum(), (o[valid] ** 2).sum()
    np.testing.assert_allclose(float(ours.squeeze()), 1 - (ff - 2 * fo + oo) / (ff + oo), rtol=1e-6)


def test_region_box_scores_like_the_cropped_field():
    est, rad = random_rain_fields((64, 64), times=1, seed=8)
    x, y = est["x"].values, est["y"].values
    box = (x[10] - 1, y[40] - 1, x[50] + 1, y[5] + 1)  # rows 5..40, columns 10..50
    ours = fss(est, rad, (1.0,), (6.0,), region=box)
    ref = pysteps_fss(est.values[0, 5:41, 10:51], rad.values[0, 5:41, 10:51], 1.0, 3)
    np.testing.assert_allclose(float(ours.squeeze()), ref, rtol=1e-6)


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((48, 48), times=3, seed=9)
    whole = fss_accum(fss_init(THRESHOLDS, (4.0, 12.0)), pair_fields(est, rad))
    parts = [
        fss_accum(fss_init(THRESHOLDS, (4.0, 12.0)), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 2), slice(2, 3))
    ]
    merged = fss_merge(*parts)
    np.testing.assert_allclose(
        fss_compute(merged)["FSS"].values, fss_compute(whole)["FSS"].values, rtol=1e-12
    )
