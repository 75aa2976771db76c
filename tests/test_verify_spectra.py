"""RAPSD against pysteps.utils.spectral.rapsd, its average over fields, ratio and gap rule."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.utils.spectral import rapsd as pysteps_rapsd

from qpe.errors import DatasetError
from qpe.verify.pairs import pair_fields
from qpe.verify.spectra import (
    power_spectra,
    rapsd,
    spectra_accum,
    spectra_compute,
    spectra_init,
    spectra_merge,
)
from qpe.verify.testing import as_rain_field, random_rain_fields


@pytest.mark.parametrize("shape", [(64, 64), (63, 64), (64, 63), (40, 70), (71, 33)])
@pytest.mark.parametrize("normalize", [False, True])
def test_rapsd_equals_pysteps_including_bins_and_normalisation(shape, normalize):
    est, _ = random_rain_fields(shape, times=1, seed=sum(shape))
    field = est.isel(time=0)
    ours = rapsd(field, normalize=normalize)
    ref, freq = pysteps_rapsd(field.values, np.fft, return_freq=True, d=2.0, normalize=normalize)
    np.testing.assert_allclose(ours.values, ref, rtol=1e-6)
    np.testing.assert_allclose(ours["frequency"].values, freq, rtol=1e-12)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(ours["wavelength"].values, 1.0 / freq, rtol=1e-12)
    assert ours["wavelength"].attrs["units"] == "km"
    assert ours["wavelength"].values[1] == pytest.approx(max(shape) * 2.0)


def test_rapsd_refuses_gaps():
    field = as_rain_field(np.ones((8, 8)))
    field.values[0, 0] = np.nan
    with pytest.raises(DatasetError, match="without NaN"):
        rapsd(field)


def test_mean_spectra_and_ratio_over_fields_agree_with_pysteps():
    est, rad = random_rain_fields((64, 48), times=3, seed=1)
    ours = power_spectra(est, rad)
    ref_est = np.mean([pysteps_rapsd(est.values[t], np.fft) for t in range(3)], axis=0)
    ref_rad = np.mean([pysteps_rapsd(rad.values[t], np.fft) for t in range(3)], axis=0)
    np.testing.assert_allclose(ours["rapsd"].values, ref_est, rtol=1e-6)
    np.testing.assert_allclose(ours["rapsd_radar"].values, ref_rad, rtol=1e-6)
    np.testing.assert_allclose(ours["rapsd_ratio"].values, ref_est / ref_rad, rtol=1e-6)


def test_ensemble_spectra_per_member():
    est, rad = random_rain_fields((32, 32), times=2, members=2, seed=2)
    ours = power_spectra(est, rad)
    assert ours["rapsd"].dims == ("member", "wavelength")
    ref = np.mean([pysteps_rapsd(est.values[1, t], np.fft) for t in range(2)], axis=0)
    np.testing.assert_allclose(ours["rapsd"].sel(member=1).values, ref, rtol=1e-6)


def test_gaps_are_zero_in_both_fields():
    est, rad = random_rain_fields((48, 48), times=1, seed=3)
    holed = rad.copy()
    holed.values[0, 5:15, 20:30] = np.nan
    ours = power_spectra(est, holed)
    gap = ~np.isfinite(holed.values[0])
    ref_est = pysteps_rapsd(np.where(gap, 0.0, est.values[0]), np.fft)
    ref_rad = pysteps_rapsd(np.where(gap, 0.0, rad.values[0]), np.fft)
    np.testing.assert_allclose(ours["rapsd"].values, ref_est, rtol=1e-6)
    np.testing.assert_allclose(ours["rapsd_radar"].values, ref_rad, rtol=1e-6)


def test_fields_with_little_coverage_are_left_out():
    est, rad = random_rain_fields((32, 32), times=2, seed=4)
    sparse = rad.copy()
    sparse.values[1, :24] = np.nan  # 25 % coverage: below the default 50 %
    ours = power_spectra(est, sparse)
    np.testing.assert_allclose(ours["rapsd_radar"].values, pysteps_rapsd(rad.values[0], np.fft), rtol=1e-6)
    kept = power_spectra(est, sparse, min_coverage=0.2)
    assert not np.allclose(kept["rapsd_radar"].values, ours["rapsd_radar"].values)


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((32, 40), times=3, seed=5)
    whole = spectra_accum(spectra_init(), pair_fields(est, rad))
    parts = [
        spectra_accum(spectra_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 3))
    ]
    np.testing.assert_allclose(
        spectra_compute(spectra_merge(*parts))["rapsd_ratio"].values,
        spectra_compute(whole)["rapsd_ratio"].values,
        rtol=1e-12,
    )


def test_spectra_of_different_rectangles_do_not_mix():
    est, rad = random_rain_fields((32, 32), times=1, seed=6)
    crop = {"x": slice(0, 24), "y": slice(0, 24)}
    small = spectra_accum(spectra_init(), pair_fields(est.isel(crop), rad.isel(crop)))
    with pytest.raises(DatasetError, match="wavelength"):
        spectra_merge(spectra_accum(spectra_init(), pair_fields(est, rad)), small)
