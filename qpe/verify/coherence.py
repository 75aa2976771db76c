"""Spectral coherence between estimate and radar, and the effective resolution it gives.

Definition, on the rings of the RAPSD (:mod:`~qpe.verify.spectra`: ``r = round(|k|)``, wavelength
``1 / fftfreq(l, pixel_km)[r]`` km): with ``E(k)``, ``R(k)`` the 2-D Fourier transforms of estimate
and radar, the coherence of a ring is

    ``coherence = |sum E(k) R*(k)| / sqrt(sum |E(k)|^2  sum |R(k)|^2)``,

the sums running over the modes ``k`` of the ring and over every field. (Over a whole ring the
cross-spectrum of real fields is real: the imaginary parts of ``k`` and ``-k`` cancel.) It is the
magnitude of the correlation between the two fields band-passed to that ring: 1 where the estimate's
structures at that wavelength are the radar's (up to a positive factor per ring), about 0 where they
are unrelated. It says nothing about amplitude: a smoothed estimate keeps a coherence of 1 where its
power is tiny, and that loss shows in ``rapsd_ratio``.

The **effective resolution** (``effective_resolution``, km) is the wavelength below which the
estimate's structures stop following the radar's: going from the largest wavelength to the smallest,
the first one where the coherence falls below ``1 / sqrt(2)`` (signal power = noise power in a
"signal + independent noise" estimate), interpolated linearly in the coherence against
``log(wavelength)`` between that ring and the one before. When the coherence is below the level already
at the largest wavelength, the largest wavelength (the domain: nothing it can show is resolved; a lower
bound, kept finite so that bootstrap intervals stay defined); the smallest wavelength (2 pixels) when
it never falls below it.
This is the effective resolution of the IPWG SatRain benchmark (``ipwgml.metrics.SpectralCoherence``),
with two differences: the IPWG takes DCTs of windows, pools per coefficient, and reports the smallest
scale whose coherence still exceeds the level, without interpolation; here the full field's FFT is
pooled per ring (so a single field has a defined coherence) and the first crossing is interpolated.
The two agree where the coherence decreases with the wavelength.

Fields and invalid pixels follow the spectra: invalid pixels are 0 in *both* fields, fields with
less than ``min_coverage`` of their rectangle valid are left out, sums over fields are weighted by
each field's power (rainy fields count most). Ensembles: one coherence and resolution per member.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr

from qpe.verify.coords import score_attrs
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.spectra import _BATCH, DEFAULT_MIN_COVERAGE, _ring_matrix, wavelength_coordinates
from qpe.verify.statistics import accumulate, add_statistics

#: Coherence below which a wavelength is not resolved: signal and noise of equal power.
COHERENCE_LEVEL = 1.0 / np.sqrt(2.0)


def cross_spectra_values(
    estimate: np.ndarray, radar: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring means of the co-spectrum and of both power spectra of fields against one radar field.

    Parameters
    ----------
    estimate : numpy.ndarray
        (field, y, x) values, e.g. the members at one time, mm/h.
    radar : numpy.ndarray
        (y, x) values, mm/h.

    Returns
    -------
    cospectrum, power : numpy.ndarray
        (field, ring) ring means of ``Re(E R*) / (ny nx)`` and ``|E|^2 / (ny nx)``, (mm/h)^2.
    power_radar : numpy.ndarray
        (ring,) ring means of ``|R|^2 / (ny nx)`` (pysteps' RAPSD of the radar field), (mm/h)^2.
    """
    ny, nx = radar.shape
    matrix, rings = _ring_matrix(ny, nx)
    reference = scipy.fft.rfft2(radar.astype("float64"))
    power_radar = ((reference.real**2 + reference.imag**2).ravel() / (ny * nx)) @ matrix
    cospectrum = np.empty((estimate.shape[0], rings.size))
    power = np.empty_like(cospectrum)
    for start in range(0, estimate.shape[0], _BATCH):
        spectrum = scipy.fft.rfft2(estimate[start : start + _BATCH].astype("float64"))
        co = spectrum.real * reference.real + spectrum.imag * reference.imag
        own = spectrum.real**2 + spectrum.imag**2
        cospectrum[start : start + _BATCH] = co.reshape(co.shape[0], -1) @ matrix / (ny * nx)
        power[start : start + _BATCH] = own.reshape(own.shape[0], -1) @ matrix / (ny * nx)
    return cospectrum, power, power_radar


def coherence_statistics(pair: FieldPair, min_coverage: float = DEFAULT_MIN_COVERAGE) -> xr.Dataset:
    """Per-field co-spectrum and power spectra (invalid pixels set to 0 in both fields).

    Returns
    -------
    xarray.Dataset
        ``sum_cospectrum`` and ``sum_power`` ([member,] time, wavelength), ``sum_power_radar`` (time,
        wavelength), (mm/h)^2, and ``n_fields`` (time): 1 for a field with enough valid pixels, else 0
        (and zero spectra).
    """
    coverage = pair.valid.mean(axis=(1, 2))
    used = coverage >= max(min_coverage, np.finfo(float).tiny)
    coords = wavelength_coordinates(pair.shape, pair.pixel_km)
    n_members, n_times = pair.estimate.shape[:2]
    n_rings = coords["wavelength"][1].size
    cospectrum = np.zeros((n_members, n_times, n_rings))
    power = np.zeros_like(cospectrum)
    power_radar = np.zeros((n_times, n_rings))
    for t in np.flatnonzero(used):
        cospectrum[:, t], power[:, t], power_radar[t] = cross_spectra_values(
            pair.estimate[:, t], pair.radar[t]
        )
    return xr.Dataset(
        {
            "sum_cospectrum": pair.labelled(cospectrum, ("wavelength",), coords),
            "sum_power": pair.labelled(power, ("wavelength",), coords),
            "sum_power_radar": pair.radar_labelled(power_radar, ("wavelength",), coords),
            "n_fields": pair.radar_labelled(used.astype("float64"), ()),
        },
        attrs={"family": "coherence"},
    )


def coherence_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "coherence"})


def coherence_accum(
    stats: xr.Dataset, pair: FieldPair, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, coherence_statistics(pair, min_coverage))


def coherence_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def spectral_coherence(stats: xr.Dataset) -> xr.DataArray:
    """Coherence of estimate and radar per wavelength ring, ([member,] wavelength), in [0, 1]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.abs(stats["sum_cospectrum"]) / np.sqrt(stats["sum_power"] * stats["sum_power_radar"])
    return value.assign_attrs(
        score_attrs("spectral coherence of estimate and radar |<E R*>| / sqrt(<|E|^2><|R|^2>)")
    )


def resolution_from_coherence(
    coherence: np.ndarray, wavelength: np.ndarray, level: float = COHERENCE_LEVEL
) -> np.ndarray:
    """Wavelength (km) of the first fall of the coherence below ``level``, from the largest wavelength.

    Parameters
    ----------
    coherence : numpy.ndarray
        (..., ring) coherence.
    wavelength : numpy.ndarray
        (ring,) wavelengths, km; infinite ones (the mean) are ignored.
    level : float
        Coherence level, 1 / sqrt(2) by default.

    Returns
    -------
    numpy.ndarray
        (...) km: interpolated linearly in coherence against log(wavelength); the largest wavelength when
        already below there, the smallest when never below, NaN without any coherence.
    """
    finite = np.isfinite(wavelength)
    order = np.flatnonzero(finite)[np.argsort(-wavelength[finite])]  # largest wavelength first
    values, log_wl = np.asarray(coherence)[..., order], np.log(wavelength[order])
    below = values < level  # NaN: not below
    first = np.argmax(below, axis=-1)
    before = np.maximum(first - 1, 0)
    c_before = np.take_along_axis(values, before[..., None], -1)[..., 0]
    c_first = np.take_along_axis(values, first[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):  # first == 0: no ring before, replaced below
        weight = (c_before - level) / (c_before - c_first)
        crossing = np.exp(log_wl[before] + weight * (log_wl[first] - log_wl[before]))
    result = np.where(first == 0, np.exp(log_wl[0]), crossing)
    result = np.where(below.any(axis=-1), result, np.exp(log_wl[-1]))
    return np.where(np.isfinite(values).any(axis=-1), result, np.nan)


def effective_resolution(stats: xr.Dataset, level: float = COHERENCE_LEVEL) -> xr.DataArray:
    """Effective resolution, km: the wavelength where the coherence first falls below ``level``."""
    coherence = spectral_coherence(stats).transpose(..., "wavelength")
    values = resolution_from_coherence(coherence.values, coherence["wavelength"].values, level)
    dims = coherence.dims[:-1]
    coords = {name: c for name, c in coherence.coords.items() if set(c.dims) <= set(dims)}
    return xr.DataArray(
        values,
        dims=dims,
        coords=coords,
        attrs=score_attrs(
            f"effective resolution: wavelength where the coherence falls below {level:.4g}",
            "km",
            reference="IPWG SatRain effective resolution (ipwgml.metrics.SpectralCoherence)",
        ),
    )


def coherence_compute(stats: xr.Dataset) -> xr.Dataset:
    """``coherence`` ([member,] wavelength) and ``effective_resolution`` ([member]), km."""
    return xr.Dataset(
        {"coherence": spectral_coherence(stats), "effective_resolution": effective_resolution(stats)}
    )


def coherence_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> xr.Dataset:
    """Spectral coherence and effective resolution of an estimate against radar, over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    region : optional
        Box or mask; the spectra use its bounding rectangle.
    min_coverage : float
        Fields with a smaller valid fraction of their rectangle are left out.
    """
    pair = pair_fields(estimate, radar, region)
    return coherence_compute(coherence_accum(coherence_init(), pair, min_coverage))
