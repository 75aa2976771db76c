"""Rain statistics and the calibration of the synthetic rain against the OPERA composite over France."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pysteps.utils.spectral import rapsd

import qpe.data.rain_statistics as rain_statistics_module
from qpe.data.grid import OPERA_CRS, Grid
from qpe.data.rain_statistics import (
    SPECTRUM_BINS,
    SPECTRUM_WAVELENGTHS_KM,
    lag_autocorrelation,
    rain_statistics,
    spectral_slope,
    to_db,
    wet_fraction,
    wet_quantiles,
)
from qpe.data.synthetic import SynthConfig, simulate_rain
from qpe.data.synthetic.config import OPERA_FRANCE_20180824

DOCS = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"
STATISTICS = list(OPERA_FRANCE_20180824)
#: The calibration run: 6 h on 512 x 512 pixels of 2 km (1024 km, about the France region's 1248 x 1200 km).
CALIBRATION_CONFIG = SynthConfig(hours=6, size=512, seed=0)


def _rain(values: np.ndarray, pixel_m: float = 2000.0, step_min: int = 15) -> xr.DataArray:
    nt, ny, nx = values.shape
    grid = Grid(OPERA_CRS, 1_000_000.0, -3_000_000.0, pixel_m, pixel_m, nx, ny)
    times = pd.date_range("2021-06-01", periods=nt, freq=f"{step_min}min")
    return xr.DataArray(values, dims=("time", "y", "x"), coords={"time": times, **grid.coords()})


def _power_law_field(n: int, beta: float, seed: int) -> np.ndarray:
    """Periodic Gaussian random field with P(k) ∝ k^-beta, unit variance."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    k[0, 0] = 1.0
    amplitude = k ** (-beta / 2)
    amplitude[0, 0] = 0.0
    field = np.fft.ifft2(amplitude * np.fft.fft2(rng.standard_normal((n, n)))).real
    return field / field.std()


# -- the statistics ----------------------------------------------------------------------------------
def test_wet_fraction_counts_valid_pixels_only():
    values = np.array([[[0.0, 0.05, 0.2, np.nan], [1.0, np.nan, 3.0, 0.1]]])
    np.testing.assert_allclose(wet_fraction(_rain(values)), 3 / 6)


def test_wet_quantiles_are_numpy_quantiles_of_wet_pixels():
    rng = np.random.default_rng(1)
    values = rng.lognormal(-1.0, 1.5, (3, 20, 20))
    values[:, :4] = np.nan
    wet = values[np.isfinite(values) & (values > 0.1)]
    expected = np.quantile(wet, [0.5, 0.9, 0.99])
    got = wet_quantiles(_rain(values))
    np.testing.assert_allclose([got["p50"], got["p90"], got["p99"]], expected, rtol=1e-12)


def test_to_db_is_zero_for_dry_and_missing():
    np.testing.assert_allclose(to_db(np.array([np.nan, 0.0, 0.1, 1.0, 10.0])), [0, 0, 0, 10, 20])


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_spectral_slope_recovers_a_power_law(beta):
    # All pixels wet, so the dB transform is linear in the field: the slope is -beta.
    field = _power_law_field(256, beta, seed=2)
    rain = _rain((0.1 * 10 ** ((20.0 + 3.0 * field) / 10.0))[None])
    np.testing.assert_allclose(spectral_slope(rain), -beta, atol=0.15)


def test_spectral_slope_agrees_with_pysteps_rapsd(monkeypatch):
    # pysteps tapers nothing; neither do we here (the periodic test field has no edges to taper).
    monkeypatch.setattr(rain_statistics_module, "SPECTRUM_TAPER", 0.0)
    field = _power_law_field(256, 2.5, seed=3)
    rain = _rain((0.1 * 10 ** ((20.0 + 3.0 * field) / 10.0))[None])
    power, freq = rapsd(to_db(rain.values[0]), fft_method=np.fft, return_freq=True, d=2.0)
    # pysteps averages rings one frequency step wide; average them over the same log-spaced bins
    # (weighted by the number of Fourier modes of each ring, ~ its radius).
    edges = np.geomspace(1 / SPECTRUM_WAVELENGTHS_KM[1], 1 / SPECTRUM_WAVELENGTHS_KM[0], SPECTRUM_BINS + 1)
    which = np.digitize(freq, edges) - 1
    ring = np.arange(freq.size)
    centres, binned = [], []
    for b in range(SPECTRUM_BINS):
        sel = which == b
        if sel.any():
            centres.append(np.sqrt(edges[b] * edges[b + 1]))
            binned.append(np.sum(power[sel] * ring[sel]) / np.sum(ring[sel]))
    pysteps_slope = np.polyfit(np.log10(centres), np.log10(binned), 1)[0]
    np.testing.assert_allclose(spectral_slope(rain), pysteps_slope, atol=0.07)


def test_spectral_slope_does_not_depend_on_pixel_size():
    field = _power_law_field(512, 2.5, seed=4)
    fine = 0.1 * 10 ** ((20.0 + 3.0 * field) / 10.0)
    coarse = fine.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    coarse_slope = spectral_slope(_rain(coarse[None], pixel_m=4000.0))
    np.testing.assert_allclose(coarse_slope, spectral_slope(_rain(fine[None], pixel_m=2000.0)), atol=0.15)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda a, rng: np.stack([a, a]), 1.0),
        (lambda a, rng: np.stack([a, rng.permutation(a.ravel()).reshape(a.shape)]), 0.0),
    ],
    ids=["identical", "shuffled"],
)
def test_lag_autocorrelation(make, expected):
    rng = np.random.default_rng(5)
    a = rng.lognormal(0.0, 1.0, (64, 64)) * (rng.random((64, 64)) < 0.3)
    np.testing.assert_allclose(lag_autocorrelation(_rain(make(a, rng))), expected, atol=0.03)


def test_lag_autocorrelation_uses_pixels_valid_at_both_times_and_15_minute_pairs():
    rng = np.random.default_rng(6)
    a = rng.lognormal(0.0, 1.0, (32, 32))
    b = a * rng.lognormal(0.0, 0.5, (32, 32))
    a[:4] = np.nan  # missing at the first time only
    b[:, :8] = np.nan  # missing at the second time only
    values = np.stack([a, b])
    valid = np.isfinite(a) & np.isfinite(b)
    expected = np.corrcoef(to_db(a[valid]), to_db(b[valid]))[0, 1]
    np.testing.assert_allclose(lag_autocorrelation(_rain(values)), expected, rtol=1e-9)
    assert np.isnan(lag_autocorrelation(_rain(values, step_min=30)))


def test_rain_statistics_reports_the_six_numbers():
    rng = np.random.default_rng(7)
    stats = rain_statistics(_rain(rng.lognormal(-1, 1, (2, 64, 64))))
    assert list(stats) == STATISTICS
    assert all(np.isfinite(v) for v in stats.values())


# -- calibration -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated_statistics() -> dict[str, float]:
    return rain_statistics(simulate_rain(CALIBRATION_CONFIG))


@pytest.mark.parametrize("name", STATISTICS)
def test_generator_matches_documented_opera_statistics(generated_statistics, name):
    np.testing.assert_allclose(generated_statistics[name], OPERA_FRANCE_20180824[name], rtol=0.25)


@pytest.fixture(scope="module")
def scenario_statistics() -> dict[str, float]:
    return rain_statistics(simulate_rain(CALIBRATION_CONFIG.replace(scenario_hours=3)))


@pytest.mark.parametrize("name", STATISTICS)
def test_independent_scenarios_match_documented_opera_statistics(scenario_statistics, name):
    """A dataset of independent scenarios (here two of 3 h, the 15 min between them left out) keeps the
    calibration: each scenario is the same generator from a fresh seed."""
    np.testing.assert_allclose(scenario_statistics[name], OPERA_FRANCE_20180824[name], rtol=0.25)


@pytest.mark.parametrize("name", STATISTICS)
def test_documented_values_are_in_the_docs(name):
    text = DOCS.read_text()
    row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
    assert row is not None, f"docs/calibration.md has no table row for {name}"
    numbers = [float(x) for x in re.findall(r"-?\d+\.\d+", row)]
    np.testing.assert_allclose(numbers[0], OPERA_FRANCE_20180824[name], rtol=1e-3)


@pytest.fixture(scope="module")
def measured_opera(opera_files) -> dict[str, float]:
    from qpe.data.readers import read_radar

    radar = read_radar(opera_files, region="france", max_rate=300.0, outliers="mask")
    assert radar.attrs["qc_outliers_flagged"] == 4
    return rain_statistics(radar["rain"])


@pytest.mark.shared_data
@pytest.mark.parametrize("name", STATISTICS)
def test_documented_values_match_a_live_opera_measurement(measured_opera, name):
    np.testing.assert_allclose(measured_opera[name], OPERA_FRANCE_20180824[name], rtol=2e-3)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", STATISTICS)
def test_generator_matches_live_opera_statistics(measured_opera, generated_statistics, name):
    np.testing.assert_allclose(generated_statistics[name], measured_opera[name], rtol=0.25)
