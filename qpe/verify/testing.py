"""Seeded, realistic random rain fields for testing and benchmarking the scores.

A Gaussian random field with a power-law spectrum (``P(k) ~ k^-slope``, the scaling of radar rain
fields) is thresholded at its ``1 - wet_fraction`` quantile; above it the rain rate grows
log-normally from ``min_rate`` (intermittent, skewed, with a few intense cells), below it is exactly 0.
The estimate shares a correlated part of the radar's latent field, so scores are neither perfect nor
random; ensemble members each add their own independent part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.paired import rain_attrs


def power_law_noise(rng: np.random.Generator, shape: tuple[int, ...], slope: float = 3.0) -> np.ndarray:
    """Standardised Gaussian noise (..., y, x) with power spectrum ~ k^-slope."""
    ny, nx = shape[-2:]
    k2 = np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.rfftfreq(nx)[None, :] ** 2
    k2[0, 0] = np.inf
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) * k2 ** (-slope / 4.0)
    field = np.fft.irfft2(spectrum, s=(ny, nx))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    return field / field.std(axis=(-2, -1), keepdims=True)


def _rain(latent: np.ndarray, wet_fraction: float, min_rate: float, log_slope: float) -> np.ndarray:
    cut = np.quantile(latent, 1.0 - wet_fraction, axis=(-2, -1), keepdims=True)
    return np.where(latent > cut, min_rate * np.exp(log_slope * (latent - cut)), 0.0)


def random_rain_fields(
    shape: tuple[int, int] = (128, 128),
    times: int = 4,
    members: int | None = None,
    *,
    seed: int = 0,
    wet_fraction: float = 0.15,
    slope: float = 3.0,
    correlation: float = 0.8,
    min_rate: float = 0.15,
    log_slope: float = 2.0,
    pixel_m: float = 2000.0,
    start: str = "2021-06-01T12:00",
    freq: str = "15min",
    dtype: str = "float64",
) -> tuple[xr.DataArray, xr.DataArray]:
    """A seeded (estimate, radar) pair of realistic rain fields, mm/h.

    Parameters
    ----------
    shape : (int, int)
        (ny, nx) pixels.
    times : int
        Number of time steps.
    members : int, optional
        Ensemble size; None for a deterministic estimate.
    seed : int
        Seed of the generator; the same arguments give the same fields.
    wet_fraction : float
        Fraction of pixels with rain > 0 in each field.
    slope : float
        Power-spectrum slope of the latent Gaussian field.
    correlation : float
        Correlation of the estimate's latent field with the radar's.
    min_rate, log_slope : float
        Wet rain rate = ``min_rate * exp(log_slope * (latent - cut))``, mm/h.
    pixel_m : float
        Pixel size, m.

    Returns
    -------
    estimate : xarray.DataArray
        ([member,] time, y, x) rain rate, mm/h.
    radar : xarray.DataArray
        (time, y, x) rain rate, mm/h.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    truth = power_law_noise(rng, (times, ny, nx), slope)
    noise_shape = (members or 1, times, ny, nx)
    latent = correlation * truth + np.sqrt(1.0 - correlation**2) * power_law_noise(rng, noise_shape, slope)
    radar = _rain(truth, wet_fraction, min_rate, log_slope)
    estimate = _rain(latent, wet_fraction, min_rate, log_slope)
    coords = {
        "time": pd.date_range(start, periods=times, freq=freq).values,
        "y": ("y", -3_000_000.0 - pixel_m * np.arange(ny), {"units": "m"}),
        "x": ("x", 1_000_000.0 + pixel_m * np.arange(nx), {"units": "m"}),
    }
    radar_da = xr.DataArray(radar.astype(dtype), dims=("time", "y", "x"), coords=coords, attrs=rain_attrs())
    if members is None:
        est_da = xr.DataArray(
            estimate[0].astype(dtype), dims=("time", "y", "x"), coords=coords, attrs=rain_attrs()
        )
    else:
        est_da = xr.DataArray(
            estimate.astype(dtype),
            dims=("member", "time", "y", "x"),
            coords={"member": np.arange(members), **coords},
            attrs=rain_attrs(),
        )
    return est_da.rename("estimate"), radar_da.rename("radar")


def as_rain_field(
    values: np.ndarray, pixel_m: float = 2000.0, members: bool = False, times: pd.DatetimeIndex | None = None
) -> xr.DataArray:
    """Label a small array as a rain field (mm/h) on a regular grid: ([member,] [time,] y, x).

    Parameters
    ----------
    values : numpy.ndarray
        (y, x), (time, y, x), (member, y, x) or (member, time, y, x).
    members : bool
        The first axis is the member axis.
    times : pandas.DatetimeIndex, optional
        Times of the time axis (default: 15-minute steps from 2021-06-01T12:00).
    """
    values = np.asarray(values, dtype="float64")
    dims = ("y", "x")
    if values.ndim == 3 and not members or values.ndim == 4:
        dims = ("time", *dims)
    if members:
        dims = ("member", *dims)
    ny, nx = values.shape[-2:]
    coords: dict = {
        "y": ("y", -3_000_000.0 - pixel_m * np.arange(ny), {"units": "m"}),
        "x": ("x", 1_000_000.0 + pixel_m * np.arange(nx), {"units": "m"}),
    }
    if "time" in dims:
        n = values.shape[dims.index("time")]
        coords["time"] = (
            times if times is not None else pd.date_range("2021-06-01T12:00", periods=n, freq="15min")
        ).values
    return xr.DataArray(values, dims=dims, coords=coords, attrs=rain_attrs())
