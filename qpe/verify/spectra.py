"""Radially averaged power spectral density (RAPSD) of rain fields and its ratio to radar.

Definition: :func:`pysteps.utils.spectral.rapsd` with ``fft_method=numpy.fft`` — power
``|FFT(field)|^2 / (ny nx)``, averaged over rings of integer radius ``round(sqrt(kx^2 + ky^2))`` for
``r = 0 .. l/2 - 1`` (``l = max(ny, nx)``; ``0 .. l//2`` when ``l`` is odd), optionally normalised to
sum to one. Frequencies are ``fftfreq(l, d=pixel_km)[r]`` (cycles/km) and the ``wavelength``
coordinate is their inverse, km (``inf`` for the mean, r = 0). Values equal pysteps' to rounding; they
are computed from a real FFT of a whole batch of fields, the half plane weighted so that each ring
mean is the full-plane mean.

Over many fields the spectra are averaged (mean of per-field spectra), and the ratio
``RAPSD(estimate) / RAPSD(radar)`` shows at which wavelengths an estimate lacks (< 1) or adds (> 1)
variance.

Invalid pixels: the FFT needs the full rectangle (the region's bounding box), so invalid pixels
(no radar, NaN estimate, outside a region mask) are set to 0 in *both* fields — the two spectra then
see the same gaps. A field whose valid fraction of the rectangle is below ``min_coverage`` is left out
(counted in neither spectrum); fields of a different shape cannot be averaged together.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse
import xarray as xr

from qpe.errors import DatasetError
from qpe.verify.coords import score_attrs
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: Fields with a smaller valid fraction of their rectangle are left out of the spectra by default.
DEFAULT_MIN_COVERAGE = 0.5
#: Fields transformed at once (bounds the memory of the complex spectra).
_BATCH = 16


@lru_cache(maxsize=8)
def _ring_matrix(ny: int, nx: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """Sparse (ny * (nx//2 + 1), rings) matrix turning a half-plane power spectrum into ring means.

    Returns the matrix and the ring radii ``r`` (pysteps' ``r_range``).
    """
    ky = np.fft.fftfreq(ny) * ny
    kx = np.arange(nx // 2 + 1, dtype="float64")
    radius = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).round().astype(int)
    # each column stands for itself and its conjugate, except kx = 0 and (even nx) the Nyquist column
    weight = np.full(kx.size, 2.0)
    weight[0] = 1.0
    if nx % 2 == 0:
        weight[-1] = 1.0
    weight = np.broadcast_to(weight, radius.shape)
    size = max(ny, nx)
    rings = np.arange(size // 2 + 1) if size % 2 == 1 else np.arange(size // 2)
    inside = radius <= rings[-1]
    rows = np.flatnonzero(inside.ravel())
    cols = radius.ravel()[rows]
    w = weight.ravel()[rows]
    per_ring = np.bincount(cols, weights=w, minlength=rings.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = w / per_ring[cols]
    matrix = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(radius.size, rings.size))
    return matrix, rings


def rapsd_values(fields: np.ndarray, normalize: bool = False) -> np.ndarray:
    """RAPSD of a stack of fields, as pysteps computes it for each.

    Parameters
    ----------
    fields : numpy.ndarray
        (..., y, x) finite values.
    normalize : bool
        Scale each spectrum to sum to one.

    Returns
    -------
    numpy.ndarray
        (..., ring) power per ring.
    """
    *lead, ny, nx = fields.shape
    flat = fields.reshape(-1, ny, nx)
    matrix, rings = _ring_matrix(ny, nx)
    out = np.empty((flat.shape[0], rings.size))
    for start in range(0, flat.shape[0], _BATCH):
        spectrum = scipy.fft.rfft2(flat[start : start + _BATCH].astype("float64"))
        power = (spectrum.real**2 + spectrum.imag**2) / (ny * nx)
        out[start : start + _BATCH] = power.reshape(power.shape[0], -1) @ matrix
    if normalize:
        out = out / out.sum(axis=-1, keepdims=True)
    return out.reshape(*lead, rings.size)


def wavelength_coordinates(shape: tuple[int, int], pixel_km: float) -> dict:
    """``wavelength`` (km, inf for the mean) and ``frequency`` (cycles/km) of the RAPSD rings."""
    size = max(shape)
    _, rings = _ring_matrix(*shape)
    frequency = np.fft.fftfreq(size, d=pixel_km)[rings]
    with np.errstate(divide="ignore"):
        wavelength = 1.0 / frequency
    return {
        "wavelength": ("wavelength", wavelength, {"units": "km", "long_name": "wavelength (1 / frequency)"}),
        "frequency": ("wavelength", frequency, {"units": "km-1", "long_name": "spatial frequency"}),
    }


def rapsd(field: xr.DataArray, normalize: bool = False) -> xr.DataArray:
    """RAPSD of one field, identical to ``pysteps.utils.spectral.rapsd(field, numpy.fft, d=pixel_km)``.

    Parameters
    ----------
    field : xarray.DataArray
        (y, x) rain rate, mm/h, without NaN, with x/y coordinates in m.
    normalize : bool
        Scale the spectrum to sum to one.

    Returns
    -------
    xarray.DataArray
        (wavelength) power, (mm/h)^2 (1 when normalised).
    """
    if set(field.dims) != {"y", "x"}:
        raise DatasetError(f"rapsd needs a (y, x) field, got dims {tuple(field.dims)}")
    values = field.transpose("y", "x").values
    if not np.isfinite(values).all():
        raise DatasetError("rapsd needs a field without NaN: fill or crop the gaps first")
    pixel_km = abs(float(field["x"][1] - field["x"][0])) / 1000.0
    return xr.DataArray(
        rapsd_values(values, normalize),
        dims="wavelength",
        coords=wavelength_coordinates(values.shape, pixel_km),
        attrs=score_attrs(
            "radially averaged power spectral density",
            "1" if normalize else "(mm/h)^2",
            "utils.spectral.rapsd",
        ),
    )


def spectra_statistics(
    pair: FieldPair, normalize: bool = False, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> xr.Dataset:
    """Per-field RAPSD of estimate and radar (invalid pixels set to 0 in both).

    Returns
    -------
    xarray.Dataset
        ``sum_rapsd`` ([member,] time, wavelength), ``sum_rapsd_radar`` (time, wavelength) and
        ``n_fields`` (time): 1 for a field with enough valid pixels, else 0 (and zero spectra).
    """
    coverage = pair.valid.mean(axis=(1, 2))
    used = coverage >= max(min_coverage, np.finfo(float).tiny)
    est = rapsd_values(pair.estimate, normalize) * used[None, :, None]
    rad = rapsd_values(pair.radar, normalize) * used[:, None]
    coords = wavelength_coordinates(pair.shape, pair.pixel_km)
    return xr.Dataset(
        {
            "sum_rapsd": pair.labelled(est, ("wavelength",), coords),
            "sum_rapsd_radar": pair.radar_labelled(rad, ("wavelength",), coords),
            "n_fields": pair.radar_labelled(used.astype("float64"), ()),
        },
        attrs={"family": "spectra", "normalize": int(normalize)},
    )


def spectra_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "spectra"})


def spectra_accum(
    stats: xr.Dataset, pair: FieldPair, normalize: bool = False, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, spectra_statistics(pair, normalize, min_coverage))


def spectra_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def spectra_compute(stats: xr.Dataset) -> xr.Dataset:
    """Mean RAPSD of estimate (``rapsd``) and radar (``rapsd_radar``) and their ratio (``rapsd_ratio``)."""
    units = "1" if stats.attrs.get("normalize") else "(mm/h)^2"
    with np.errstate(divide="ignore", invalid="ignore"):
        est = stats["sum_rapsd"] / stats["n_fields"]
        rad = stats["sum_rapsd_radar"] / stats["n_fields"]
        ratio = est / rad
    return xr.Dataset(
        {
            "rapsd": est.assign_attrs(
                score_attrs("mean RAPSD of the estimate", units, "utils.spectral.rapsd")
            ),
            "rapsd_radar": rad.assign_attrs(
                score_attrs("mean RAPSD of the radar", units, "utils.spectral.rapsd")
            ),
            "rapsd_ratio": ratio.assign_attrs(score_attrs("RAPSD ratio estimate / radar")),
        }
    )


def power_spectra(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    normalize: bool = False,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> xr.Dataset:
    """Mean RAPSD of an estimate and of radar over all fields, and their ratio, by wavelength (km).

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    region : optional
        Box or mask; spectra use its bounding rectangle.
    """
    pair = pair_fields(estimate, radar, region)
    return spectra_compute(spectra_accum(spectra_init(), pair, normalize, min_coverage))
