"""Spectral coherence against a direct full-plane FFT, its radar power against pysteps' RAPSD, and the
effective resolution of estimates whose answer is known (a Butterworth-filtered radar completed by
independent noise; a radar of smooth rain plus small-scale noise against its smoothed copy)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.utils.spectral import rapsd as pysteps_rapsd

from qpe.verify.coherence import (
    COHERENCE_LEVEL,
    coherence_accum,
    coherence_init,
    coherence_merge,
    coherence_scores,
    coherence_statistics,
    resolution_from_coherence,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, power_law_noise, random_rain_fields


def _coherence_by_definition(estimate: np.ndarray, radar: np.ndarray) -> np.ndarray:
    """|sum E R*| / sqrt(sum |E|^2 sum |R|^2) over the full-plane modes of each ring (pysteps' rings)."""
    ny, nx = radar.shape[-2:]
    size = max(ny, nx)
    ky, kx = np.fft.fftfreq(ny) * ny, np.fft.fftfreq(nx) * nx
    radius = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).round().astype(int)
    rings = np.arange(size // 2 + 1) if size % 2 else np.arange(size // 2)
    cross, power_e, power_r = (np.zeros(rings.size, complex), np.zeros(rings.size), np.zeros(rings.size))
    for e, r in zip(estimate, radar, strict=True):
        fe, fr = np.fft.fft2(e), np.fft.fft2(r)
        for k in rings:
            ring = radius == k
            cross[k] += np.sum(fe[ring] * np.conj(fr[ring]))
            power_e[k] += np.sum(np.abs(fe[ring]) ** 2)
            power_r[k] += np.sum(np.abs(fr[ring]) ** 2)
    return np.abs(cross) / np.sqrt(power_e * power_r)


@pytest.mark.parametrize("shape", [(64, 48), (45, 50)])
def test_coherence_agrees_with_its_full_plane_definition(shape):
    est, rad = random_rain_fields(shape, times=3, members=2, seed=sum(shape))
    ours = coherence_scores(est, rad)["coherence"]
    assert ours.dims == ("member", "wavelength")
    for m in range(2):
        reference = _coherence_by_definition(est.values[m], rad.values)
        np.testing.assert_allclose(ours.isel(member=m).values, reference, rtol=1e-9)


def test_radar_power_is_the_pysteps_rapsd():
    est, rad = random_rain_fields((40, 56), times=2, seed=1)
    stats = coherence_statistics(pair_fields(est, rad))
    for t in range(2):
        reference = pysteps_rapsd(rad.values[t], np.fft, d=2.0)
        np.testing.assert_allclose(stats["sum_power_radar"].isel(time=t).values, reference, rtol=1e-9)
        np.testing.assert_allclose(
            stats["sum_power"].isel(time=t).values, pysteps_rapsd(est.values[t], np.fft), rtol=1e-9
        )


def _butterworth_pair(shape=(256, 256), times=4, cutoff_km=16.0, order=4, seed=0):
    """Radar R: power-law Gaussian fields; estimate E = H R + sqrt(1 - H^2) N in Fourier space, with N
    independent of R and of the same spectrum and H = 1 / sqrt(1 + (cutoff / wavelength)^(2 order)): the
    expected coherence is H, which is 1/sqrt(2) at the cutoff wavelength."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    radar = power_law_noise(rng, (times, ny, nx), 2.5)
    noise = power_law_noise(rng, (times, ny, nx), 2.5)
    k = np.sqrt(np.fft.fftfreq(ny, 2.0)[:, None] ** 2 + np.fft.rfftfreq(nx, 2.0)[None, :] ** 2)  # cycles/km
    gain = 1.0 / np.sqrt(1.0 + (cutoff_km * k) ** (2 * order))
    mixed = gain * np.fft.rfft2(radar) + np.sqrt(1.0 - gain**2) * np.fft.rfft2(noise)
    estimate = np.fft.irfft2(mixed, s=shape)
    return as_rain_field(estimate), as_rain_field(radar)


@pytest.mark.parametrize("cutoff_km", [16.0, 40.0])
def test_effective_resolution_of_a_filtered_radar_with_independent_small_scales_is_the_cutoff(cutoff_km):
    est, rad = _butterworth_pair(cutoff_km=cutoff_km)
    scores = coherence_scores(est, rad)
    wavelength = scores["wavelength"].values
    expected = 1.0 / np.sqrt(1.0 + (cutoff_km / wavelength) ** 8)
    keep = np.isfinite(wavelength)
    assert np.abs(scores["coherence"].values[keep] - expected[keep]).max() < 0.12
    assert float(scores["effective_resolution"]) == pytest.approx(cutoff_km, rel=0.08)


def _smooth_rain_and_noisy_radar(scale_km: float, noise: float = 0.05, seed: int = 2):
    """Signal: a power-law field low-passed at ``scale_km`` (gain exp(-(scale k)^4)); radar = signal +
    white noise (the radar's own small scales); estimate = the signal, without the radar's noise."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    field = power_law_noise(rng, (3, *shape), 2.0)
    k = np.sqrt(np.fft.fftfreq(256, 2.0)[:, None] ** 2 + np.fft.rfftfreq(256, 2.0)[None, :] ** 2)
    signal = np.fft.irfft2(np.fft.rfft2(field) * np.exp(-((scale_km * k) ** 4)), s=shape)
    return as_rain_field(signal), as_rain_field(signal + noise * rng.standard_normal((3, *shape)))


def test_effective_resolution_of_a_smooth_estimate_against_a_noisy_radar_is_its_smoothing_scale():
    """Coherence = sqrt(S / (S + N)) per ring: it falls below 1/sqrt(2) where the radar's noise outweighs
    the smooth signal, just under the smoothing scale L (0.73 L here), and in proportion to L."""
    resolution = {
        scale: float(coherence_scores(*_smooth_rain_and_noisy_radar(scale))["effective_resolution"])
        for scale in (24.0, 48.0)
    }
    for scale, value in resolution.items():
        assert 0.5 * scale < value < scale
    assert resolution[48.0] / resolution[24.0] == pytest.approx(2.0, rel=0.1)


def test_a_smoothed_copy_without_noise_stays_coherent_down_to_the_grid():
    """Coherence is blind to amplitude: a low-passed copy of the radar follows its structures at every
    wavelength (its loss of power is the RAPSD ratio's to show), so its resolution is the grid's 2 pixels."""
    _, rad = random_rain_fields((64, 64), times=2, seed=3)
    k = np.sqrt(np.fft.fftfreq(64, 2.0)[:, None] ** 2 + np.fft.rfftfreq(64, 2.0)[None, :] ** 2)
    smoothed = np.fft.irfft2(np.fft.rfft2(rad.values) * np.exp(-((8.0 * k) ** 2)), s=(64, 64))
    scores = coherence_scores(as_rain_field(smoothed), rad)
    assert float(scores["effective_resolution"]) == pytest.approx(scores["wavelength"].values.min())


@pytest.mark.parametrize(
    ("coherence", "expected"),
    [
        ([1.0, 0.9, 0.8, 0.6, 0.4], np.exp(np.log(16.0) + (0.8 - COHERENCE_LEVEL) / 0.2 * np.log(0.5))),
        ([0.6, 0.9, 0.8, 0.6, 0.4], 64.0),  # below already at the largest wavelength: the domain
        ([1.0, 0.9, 0.8, 0.75, 0.72], 4.0),  # never below: the smallest wavelength
        (
            [1.0, 0.9, 0.5, 0.9, 0.4],
            np.exp(np.log(32.0) + (0.9 - COHERENCE_LEVEL) / 0.4 * np.log(0.5)),
        ),  # first fall
    ],
)
def test_resolution_is_the_first_fall_below_the_level_interpolated_in_log_wavelength(coherence, expected):
    wavelength = np.array([np.inf, 64.0, 32.0, 16.0, 8.0, 4.0])
    values = np.array([1.0, *coherence])
    np.testing.assert_allclose(resolution_from_coherence(values, wavelength), expected, rtol=1e-12)
    stacked = resolution_from_coherence(np.stack([values, values]), wavelength)  # leading dims broadcast
    np.testing.assert_allclose(stacked, [expected, expected], rtol=1e-12)


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((32, 40), times=3, members=2, seed=5)
    whole = coherence_accum(coherence_init(), pair_fields(est, rad))
    parts = [
        coherence_accum(coherence_init(), pair_fields(est.isel(time=s), rad.isel(time=s)))
        for s in (slice(0, 1), slice(1, 3))
    ]
    merged = coherence_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)


def test_gaps_are_zero_in_both_fields_and_sparse_fields_left_out():
    est, rad = random_rain_fields((48, 48), times=2, seed=6)
    holed = rad.copy()
    holed.values[0, 5:15, 20:30] = np.nan
    holed.values[1, :40] = np.nan  # 17 % coverage: left out
    ours = coherence_scores(est, holed)["coherence"]
    gap = ~np.isfinite(holed.values[:1])
    reference = _coherence_by_definition(
        np.where(gap, 0.0, est.values[:1]), np.where(gap, 0.0, rad.values[:1])
    )
    np.testing.assert_allclose(ours.values, reference, rtol=1e-9)
    assert isinstance(ours, xr.DataArray)
