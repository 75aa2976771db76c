"""Displacement from estimate to radar: a known shift comes back in km (and warping removes the error),
identical fields give none, dry fields give NaN with zero counts, per-day statistics merge, and the
sums equal pysteps' Proesmans flow and semi-Lagrangian warp applied by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pysteps.extrapolation.semilagrangian import extrapolate
from pysteps.motion.proesmans import proesmans
from pysteps.utils.transformation import dB_transform

from qpe.verify import DEFAULT_FAMILIES, FAMILIES, ScoreAccumulator, ScoreConfig
from qpe.verify.displacement import (
    displacement_accum,
    displacement_compute,
    displacement_init,
    displacement_merge,
    displacement_scores,
    pyramid_levels,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields

#: Largest error of a recovered shift, pixels (Proesmans on these fields: measured <= 0.008 px).
SHIFT_TOLERANCE_PX = 0.05


def _rain_with_margin(shape=(96, 96), times=1, seed=3, margin=8) -> np.ndarray:
    """(time, y, x) realistic rain, dry within ``margin`` pixels of the edges (so a roll wraps no rain)."""
    _, radar = random_rain_fields(shape, times=times, seed=seed, wet_fraction=0.2)
    values = radar.values.copy()
    values[:, :margin], values[:, -margin:], values[:, :, :margin], values[:, :, -margin:] = 0, 0, 0, 0
    return values


@pytest.mark.parametrize(
    "east_px, north_px, pixel_km", [(3, 2, 2.0), (-2, 4, 2.0), (1, -3, 4.0)], ids=["3E2N", "2W4N", "1E3S-4km"]
)
@pytest.mark.parametrize("rows_north_first", [True, False], ids=["north-up", "south-up"])
def test_a_shifted_radar_gives_the_shift_back_in_km(east_px, north_px, pixel_km, rows_north_first):
    """The radar is the estimate moved east_px east and north_px north: the displacement estimate -> radar."""
    base = _rain_with_margin()
    # as_rain_field's rows run from north to south: north is a smaller row index
    shifted = np.roll(base, (-north_px, east_px), axis=(-2, -1))
    estimate, radar = (
        as_rain_field(base, pixel_m=pixel_km * 1000),
        as_rain_field(shifted, pixel_m=pixel_km * 1000),
    )
    if not rows_north_first:  # the same fields stored from south to north
        estimate, radar = estimate.isel(y=slice(None, None, -1)), radar.isel(y=slice(None, None, -1))
    scores = displacement_scores(estimate, radar)
    tolerance = SHIFT_TOLERANCE_PX * pixel_km
    np.testing.assert_allclose(float(scores["displacement_east"]), east_px * pixel_km, atol=tolerance)
    np.testing.assert_allclose(float(scores["displacement_north"]), north_px * pixel_km, atol=tolerance)
    np.testing.assert_allclose(
        float(scores["displacement"]), np.hypot(east_px, north_px) * pixel_km, atol=tolerance
    )
    assert float(scores["RMSE_warped"]) < 0.05 * float(scores["RMSE_unwarped"])
    assert float(scores["MAE_warped"]) < 0.05 * float(scores["MAE_unwarped"])
    assert float(scores["position_error_fraction"]) > 0.99
    assert int(scores["n_displacement"]) == int(((base >= 0.1) | (shifted >= 0.1)).sum())
    assert scores["displacement"].attrs["units"] == "km" and scores["RMSE_warped"].attrs["units"] == "mm/h"


def test_identical_fields_have_no_displacement():
    rain = as_rain_field(_rain_with_margin(times=2, seed=5))
    scores = displacement_scores(rain, rain)
    for name in ("displacement", "displacement_east", "displacement_north", "RMSE_warped", "RMSE_unwarped"):
        np.testing.assert_allclose(float(scores[name]), 0.0, atol=1e-6, err_msg=name)
    assert int(scores["n_displacement_fields"]) == 2


def test_dry_fields_give_nan_with_zero_counts():
    dry = as_rain_field(np.zeros((2, 40, 40)))
    no_radar = dry.copy(data=np.full(dry.shape, np.nan))
    for radar in (dry, no_radar):
        scores = displacement_scores(dry, radar)
        for name in ("displacement", "displacement_east", "displacement_north", "position_error_fraction"):
            assert np.isnan(float(scores[name])), name
        assert int(scores["n_displacement"]) == 0 and int(scores["n_displacement_fields"]) == 0
    assert float(displacement_scores(dry, dry)["RMSE_warped"]) == 0.0, "dry pixels are scored, error 0"


def test_sums_equal_pysteps_flow_and_warp_member_by_member():
    """Members scored one by one against the radar, pooled over times, invalid pixels dry in the flow."""
    est, rad = random_rain_fields((56, 64), times=2, members=2, seed=7, wet_fraction=0.25)
    rad = rad.copy()
    rad.values[1, 5:15, 40:60] = np.nan
    scores = displacement_scores(est, rad)
    assert scores["displacement"].dims == ("member",)
    for m in range(2):
        east, north, length, squared_before, squared_after, n_rain, n_warped = [], [], [], 0.0, 0.0, 0, 0
        for t in range(2):
            valid = np.isfinite(rad.values[t])
            e = np.where(valid, est.values[m, t], np.nan)
            r = rad.values[t]
            pair = np.nan_to_num(np.stack([e, r]), nan=0.0)
            # 3 pyramid levels on a 56-pixel side (qpe.verify.displacement.pyramid_levels)
            flow = proesmans(dB_transform(pair, threshold=0.1)[0], num_levels=3, verbose=False)
            rainy = valid & ((e >= 0.1) | (r >= 0.1))
            east.append(flow[0][rainy] * 2.0)
            north.append(-flow[1][rainy] * 2.0)  # rows run from north to south
            length.append(np.hypot(east[-1], north[-1]))
            warped = extrapolate(e, flow, 1, outval=np.nan, allow_nonfinite_values=True)[0]
            scored = valid & np.isfinite(warped)
            squared_before += np.sum((e - r)[scored] ** 2)
            squared_after += np.sum((warped - r)[scored] ** 2)
            n_rain, n_warped = n_rain + rainy.sum(), n_warped + scored.sum()
        member = scores.isel(member=m)
        for name, values in (
            ("displacement_east", east),
            ("displacement_north", north),
            ("displacement", length),
        ):
            np.testing.assert_allclose(
                float(member[name]), np.concatenate(values).mean(), rtol=1e-9, err_msg=name
            )
        np.testing.assert_allclose(
            float(member["RMSE_unwarped"]), np.sqrt(squared_before / n_warped), rtol=1e-9
        )
        np.testing.assert_allclose(float(member["RMSE_warped"]), np.sqrt(squared_after / n_warped), rtol=1e-9)
        assert int(member["n_displacement"]) == n_rain


def test_per_day_statistics_merge_to_those_of_all_times():
    kwargs = {"times": 4, "start": "2021-06-01T00:00", "freq": "12h", "wet_fraction": 0.25}
    est, rad = random_rain_fields((48, 48), members=2, seed=11, **kwargs)
    days = pd.DatetimeIndex(rad["time"].values).floor("D")
    parts = [
        displacement_accum(displacement_init(), pair_fields(est.sel(time=days == d), rad.sel(time=days == d)))
        for d in days.unique()
    ]
    assert len(parts) == 2
    merged = displacement_compute(displacement_merge(*parts))
    whole = displacement_compute(displacement_accum(displacement_init(), pair_fields(est, rad)))
    xr.testing.assert_allclose(merged, whole, rtol=1e-12)

    config = ScoreConfig(families=("displacement",))
    accumulators = [
        ScoreAccumulator(config).accum(est.sel(time=days == d), rad.sel(time=days == d))
        for d in days.unique()
    ]
    combined = accumulators[0].merge(accumulators[1]).compute()
    xr.testing.assert_allclose(combined.drop_attrs(), whole.drop_attrs(), rtol=1e-12)


def test_displacement_is_a_family_computed_only_when_asked_for():
    assert "displacement" in FAMILIES and "displacement" not in DEFAULT_FAMILIES
    est, rad = random_rain_fields((32, 32), times=1, seed=1)
    assert "displacement" not in ScoreAccumulator().accum(est, rad).compute()


@pytest.mark.parametrize(
    "shape, levels", [((512, 512), 6), ((256, 300), 6), ((96, 96), 4), ((40, 40), 3), ((8, 9), 1)]
)
def test_pyramid_keeps_eight_pixels_across_its_coarsest_level(shape, levels):
    assert pyramid_levels(shape) == levels
