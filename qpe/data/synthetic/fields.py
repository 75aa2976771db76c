"""Advected, evolving Gaussian random fields with a power-law spectrum (the texture of rain and clouds).

A :class:`SpectralField` holds the Fourier state ``Z_t(k)`` of a complex field on a periodic domain and
steps it forward one time step at a time::

    Z_t(k) = phi(k) * exp(-2 pi i k . d) * Z_{t-1}(k) + sqrt(1 - phi(k)^2) * A(k) * W_t(k)

- ``A(k) = sqrt(P(k))`` with ``P(k) ∝ (|k_a|^2 + k_0^2)^(-beta/2)``: a power law of exponent ``beta``
  (the slope of the radially averaged power spectrum) flattening above the outer scale ``1/k_0``;
  ``k_a`` is the wavenumber in a frame stretched by ``anisotropy`` along ``orientation`` (elongated
  rain bands);
- ``exp(-2 pi i k . d)`` advects the field by ``d`` (km per step) exactly;
- ``phi(k) = exp(-dt / tau(k))`` with ``tau(lambda) = tau_100 (lambda / 100 km)^alpha``: small scales
  decorrelate faster than large ones (the scale-dependent lifetime of rain structures, as in STEPS);
- ``W_t`` is complex white noise of unit variance.

The inverse FFT of ``Z_t`` is complex; its real and imaginary parts are two independent stationary
fields of zero mean and unit variance sharing the spectrum and the motion, so one FFT gives two fields.
The innovations use uniform rather than Gaussian white noise (four times cheaper to draw); each pixel
is a sum over all Fourier modes, so the fields are Gaussian to high accuracy all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

_SQRT12 = np.float32(np.sqrt(12.0))


@dataclass(frozen=True)
class FieldSpec:
    """Statistics and motion of a :class:`SpectralField`.

    Parameters
    ----------
    exponent : float
        beta, slope of the power spectrum ``P(k) ∝ k^-beta`` (radially averaged, 2-D).
    outer_scale_km : float
        Wavelength above which the spectrum flattens, km.
    lifetime_100km_min : float
        Decorrelation time of 100 km structures following the motion, minutes.
    lifetime_exponent : float
        alpha in ``tau(lambda) = tau_100 (lambda / 100 km)^alpha``.
    anisotropy : float
        Ratio of the correlation length along ``orientation_deg`` to that across it (>= 1).
    orientation_deg : float
        Direction of elongation, degrees counter-clockwise from east.
    """

    exponent: float
    outer_scale_km: float
    lifetime_100km_min: float
    lifetime_exponent: float = 1.0
    anisotropy: float = 1.0
    orientation_deg: float = 0.0


class SpectralField:
    """A pair of evolving, advected Gaussian random fields on a periodic ``shape`` grid.

    Parameters
    ----------
    spec : FieldSpec
        Spectrum, lifetimes and anisotropy.
    shape : tuple of int
        (ny, nx) of the periodic simulation domain, pixels.
    pixel_km : float
        Pixel size, km.
    step_min : float
        Time step, minutes.
    velocity_px : tuple of float
        Motion per time step, (rows, columns) in pixels (rows run north to south).
    rng : numpy.random.Generator
        Source of the innovations (the caller's single generator).
    """

    def __init__(
        self,
        spec: FieldSpec,
        shape: tuple[int, int],
        pixel_km: float,
        step_min: float,
        velocity_px: tuple[float, float],
        rng: np.random.Generator,
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        self._rng = rng
        ky = np.fft.fftfreq(self.shape[0], d=pixel_km)[:, None]  # cycles/km, rows run south
        kx = np.fft.fftfreq(self.shape[1], d=pixel_km)[None, :]
        k = np.hypot(ky, kx)
        amplitude = _amplitude(spec, ky, kx, self.shape[0] * self.shape[1])
        with np.errstate(divide="ignore"):
            wavelength = np.where(k > 0, 1.0 / np.maximum(k, 1e-12), np.inf)
        tau = spec.lifetime_100km_min * (wavelength / 100.0) ** spec.lifetime_exponent
        phi = np.exp(-step_min / tau)
        drow, dcol = velocity_px
        shift = np.exp(-2j * np.pi * (ky * drow * pixel_km + kx * dcol * pixel_km))
        self._propagator = (phi * shift).astype("complex64")
        self._innovation = (np.sqrt(1.0 - phi**2) * amplitude).astype("float32")
        self._state = amplitude.astype("float32") * self._white()

    def _white(self) -> np.ndarray:
        """Complex white noise of unit variance (uniform real and imaginary parts)."""
        u = self._rng.random((*self.shape, 2), dtype=np.float32)
        u -= np.float32(0.5)
        u *= _SQRT12 / np.float32(np.sqrt(2.0))
        return u.view(np.complex64)[..., 0]

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """The two fields at the current time, each (ny, nx) float32 of zero mean and unit variance."""
        z = scipy.fft.ifft2(self._state, workers=1)  # one thread: the generator already uses both cores
        return z.real.astype("float32"), z.imag.astype("float32")

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """Advance one time step and return the two fields, as :meth:`current`."""
        self._state *= self._propagator
        self._state += self._innovation * self._white()
        return self.current()


def _amplitude(spec: FieldSpec, ky: np.ndarray, kx: np.ndarray, n: int) -> np.ndarray:
    """Fourier amplitude ``A(k)``, normalised so that each of the two fields has unit variance."""
    theta = np.deg2rad(spec.orientation_deg)
    # Along-band wavenumber (x east, y north; rows point south so ky flips sign).
    k_along = kx * np.cos(theta) - ky * np.sin(theta)
    k_across = kx * np.sin(theta) + ky * np.cos(theta)
    root = np.sqrt(max(spec.anisotropy, 1.0))
    k_a2 = (k_along * root) ** 2 + (k_across / root) ** 2
    k0 = 1.0 / spec.outer_scale_km
    power = (k_a2 + k0**2) ** (-spec.exponent / 2.0)
    power[0, 0] = 0.0
    # ifft2 divides by n, so E|z|^2 = sum(P) / n^2, and Re z, Im z each carry half of it.
    power *= 2.0 * n**2 / power.sum()
    return np.sqrt(power)


@dataclass(frozen=True)
class Domain:
    """The periodic simulation domain and the window of it that is drawn.

    Parameters
    ----------
    size : int
        Side of the output grid, pixels.
    pixel_km : float
        Pixel size, km.
    margin : int
        Extra pixels drawn around the output grid (room for the parallax shift), pixels.
    step_min : float
        Time step, minutes.
    """

    size: int
    pixel_km: float
    margin: int
    step_min: float = 15.0

    @property
    def period(self) -> int:
        """Side of the periodic domain: about twice the drawn window (so nothing wraps into view soon).

        A multiple of 4 with small prime factors (fast FFTs at full and half resolution).
        """
        return 4 * scipy.fft.next_fast_len(-(-2 * self.side // 4), real=False)

    @property
    def side(self) -> int:
        """Side of the drawn window (output grid plus margins), pixels."""
        return self.size + 2 * self.margin

    @property
    def window(self) -> tuple[int, int, int]:
        """Row and column of the window's upper-left pixel in the periodic domain (even), and its side."""
        offset = 2 * ((self.period - self.side) // 4)
        return offset, offset, self.side

    @property
    def texture_period(self) -> int:
        """Side of the smaller periodic domain of small-scale fields: 1.5 times the drawn window.

        Their structures re-enter the window only after travelling half its width (7 hours at 11 m/s
        for 256 pixels of 2 km), by when they have changed.
        """
        return 4 * scipy.fft.next_fast_len(-(-3 * self.side // 8), real=False)

    def crop(self, field: np.ndarray) -> np.ndarray:
        """The drawn window of a periodic-domain field (a view); the window is centred in any domain size."""
        side = self.side
        r0 = (field.shape[-2] - side) // 2
        c0 = (field.shape[-1] - side) // 2
        return field[..., r0 : r0 + side, c0 : c0 + side]

    def crop_coarse(self, field: np.ndarray) -> np.ndarray:
        """The drawn window of a field on the half-resolution periodic domain, interpolated to full
        resolution."""
        r0, _, side = self.window
        lo = r0 // 2 - 1
        n = -(-side // 2) + 2
        return upsample2(field[lo : lo + n, lo : lo + n])[2 : 2 + side, 2 : 2 + side]

    def inner(self, field: np.ndarray) -> np.ndarray:
        """The output grid of a window field (drops the margins; a view)."""
        m = self.margin
        return field[..., m : m + self.size, m : m + self.size]


def upsample2(coarse: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of pixel centres to a grid twice as fine (edges repeated).

    (..., n, m) -> (..., 2n, 2m): fine pixels ``2i`` and ``2i + 1`` are ``3/4`` of coarse pixel ``i``
    plus ``1/4`` of its neighbour on their side.
    """
    a = np.asarray(coarse, dtype="float32")
    three, quarter = np.float32(0.75), np.float32(0.25)

    def along_rows(x: np.ndarray) -> np.ndarray:
        out = np.empty((*x.shape[:-2], 2 * x.shape[-2], x.shape[-1]), dtype="float32")
        base = three * x
        out[..., 0::2, :] = base
        out[..., 1::2, :] = base
        out[..., 2::2, :] += quarter * x[..., :-1, :]
        out[..., 0, :] += quarter * x[..., 0, :]
        out[..., 1:-1:2, :] += quarter * x[..., 1:, :]
        out[..., -1, :] += quarter * x[..., -1, :]
        return out

    return np.swapaxes(along_rows(np.swapaxes(along_rows(a), -1, -2)), -1, -2)


def halve(field: np.ndarray) -> np.ndarray:
    """Means of 2 x 2 blocks (the last row/column repeated when the size is odd), the inverse of
    :func:`upsample2` for smooth fields."""
    ny, nx = field.shape
    f = np.pad(field, ((0, ny % 2), (0, nx % 2)), mode="edge")
    blocks = f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]
    return (np.float32(0.25) * blocks).astype("float32")
