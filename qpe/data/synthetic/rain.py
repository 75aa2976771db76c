"""The rain model: rain systems with patchy rain inside, and convective cells, moving with the wind.

Rain rate, mm/h, is the sum of two parts:

- **rain systems** (stratiform areas): a smooth, large-scale, anisotropic *envelope* field ``E``
  (:mod:`qpe.data.synthetic.fields`) marks the systems — the top ``system_fraction`` of the output
  grid — and inside them a rougher *texture* field ``G`` decides where it rains, so that rain covers
  ``wet_area_fraction`` of the grid (as STEPS sets the wet area from an observed field). Both fields
  move with the steering wind and evolve with scale-dependent lifetimes. Intensities follow the ranks
  of ``G + w E`` (heavier in the textures' peaks and the systems' cores) mapped onto a log-normal that
  saturates softly at the stratiform ceiling (:func:`mesoscale_rain`). A single thresholded Gaussian
  field cannot do this: at a 9 % wet fraction its rain areas are fragmented and decorrelate far faster
  than radar rain, which lies in large coherent systems with patchy rain inside;
- **convective cells** (:mod:`qpe.data.synthetic.cells`) born at random, preferentially inside or near
  the systems, each with a growth-mature-decay life cycle and a textured rain core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from qpe.data.synthetic.cells import CellPopulation
from qpe.data.synthetic.config import CloudConfig, RainConfig
from qpe.data.synthetic.fields import Domain, FieldSpec, SpectralField

#: Rain rate at the edge of a rain area, mm/h (the wet threshold of the calibration statistics).
WET_THRESHOLD_MM_H = 0.1
#: How far back cells are simulated before the first frame so that it already holds all life stages, min.
SPIN_UP_MIN = 360.0


@dataclass(frozen=True)
class Winds:
    """A scenario's winds, pixels per minute as (rows, columns): rows run north to south."""

    steering: tuple[float, float]
    upper: tuple[float, float]
    low: tuple[float, float]
    band_orientation_deg: float

    @classmethod
    def draw(cls, rng: np.random.Generator, rain: RainConfig, clouds: CloudConfig, pixel_km: float) -> Winds:
        """Draw the steering wind from the config's ranges, and the upper and low-level winds around it."""
        speed = rng.uniform(*rain.wind_speed_ms)
        from_deg = rng.uniform(*rain.wind_from_deg)
        upper_speed = speed + rng.uniform(*clouds.upper_wind_extra_ms)
        upper_from = from_deg + rng.uniform(-20.0, 20.0)
        low_from = from_deg - rng.uniform(10.0, 40.0)  # veering with height
        towards = np.deg2rad(from_deg + 180.0)  # direction of motion, clockwise from north
        orientation = 90.0 - np.rad2deg(towards) + rng.uniform(-30.0, 30.0)  # bands along the flow
        return cls(
            steering=_velocity(speed, from_deg, pixel_km),
            upper=_velocity(upper_speed, upper_from, pixel_km),
            low=_velocity(0.7 * speed, low_from, pixel_km),
            band_orientation_deg=float(orientation),
        )

    def steering_ms(self, pixel_km: float) -> tuple[float, float]:
        """The steering wind as (speed, m/s; direction it blows from, degrees clockwise from north)."""
        rows, cols = self.steering
        ms_per_px_min = pixel_km * 1000.0 / 60.0
        from_deg = (np.rad2deg(np.arctan2(cols, -rows)) + 180.0) % 360.0
        return float(np.hypot(rows, cols) * ms_per_px_min), float(from_deg)


def _velocity(speed_ms: float, from_deg: float, pixel_km: float) -> tuple[float, float]:
    """(rows, columns) per minute of a wind of ``speed_ms`` blowing from ``from_deg``."""
    towards = np.deg2rad(from_deg + 180.0)
    px_per_min = speed_ms * 60.0 / 1000.0 / pixel_km
    east, north = px_per_min * np.sin(towards), px_per_min * np.cos(towards)
    return (float(-north), float(east))


@dataclass
class RainFrame:
    """One time step of the rain model, on the drawn window (side, side).

    Attributes
    ----------
    rain : numpy.ndarray
        Total rain rate, mm/h.
    envelope : numpy.ndarray
        The rain systems' field ``E`` (unit variance, smooth).
    latent : numpy.ndarray
        The rain texture field ``G`` (unit variance).
    texture : numpy.ndarray
        A third field with ``G``'s spectrum and motion (unit variance), for cloud-top and cell texture.
    system_threshold, shield_threshold : float
        Values of ``E`` above which lie the rain systems, and their (larger) cloud shields.
    cells : dict of numpy.ndarray
        The convective cells drawn by :meth:`CellPopulation.render` (rain, towers, anvils).
    """

    rain: np.ndarray
    envelope: np.ndarray
    latent: np.ndarray
    texture: np.ndarray
    system_threshold: float
    shield_threshold: float
    cells: dict[str, np.ndarray]


class RainModel:
    """Steps the rain of a synthetic dataset forward 15 minutes at a time.

    Parameters
    ----------
    rain, clouds : RainConfig, CloudConfig
        Model parameters.
    domain : Domain
        Simulation domain and drawn window.
    winds : Winds
        The dataset's winds.
    rng : numpy.random.Generator
        The rain's random stream.
    """

    def __init__(
        self, rain: RainConfig, clouds: CloudConfig, domain: Domain, winds: Winds, rng: np.random.Generator
    ) -> None:
        self.cfg, self.clouds, self.domain, self.winds, self._rng = rain, clouds, domain, winds, rng
        step = domain.step_min
        velocity = (winds.steering[0] * step, winds.steering[1] * step)
        lifetime = {
            "lifetime_100km_min": rain.lifetime_100km_min, "lifetime_exponent": rain.lifetime_exponent,
        }
        envelope = FieldSpec(
            exponent=rain.system_exponent, outer_scale_km=rain.system_scale_km, anisotropy=rain.anisotropy,
            orientation_deg=winds.band_orientation_deg, **lifetime,
        )
        texture = FieldSpec(exponent=rain.spectral_exponent, outer_scale_km=rain.outer_scale_km, **lifetime)
        # The envelope is smooth: simulated at half resolution and interpolated.
        half_velocity = (velocity[0] / 2, velocity[1] / 2)
        self._envelope = SpectralField(
            envelope, (domain.period // 2,) * 2, 2 * domain.pixel_km, step, half_velocity, rng
        )
        self._field = SpectralField(
            texture, (domain.texture_period,) * 2, domain.pixel_km, step, velocity, rng
        )
        self._cells = CellPopulation.empty()
        self._t = None  # minutes since the first frame

    def step(self) -> RainFrame:
        """The next frame (the first call gives the frame at t = 0)."""
        cfg, d = self.cfg, self.domain
        if self._t is None:
            self._t = 0.0
            (envelope, _), (latent, texture) = self._envelope.current(), self._field.current()
            self._spawn(envelope, -SPIN_UP_MIN, 0.0)
        else:
            self._t += d.step_min
            (envelope, _), (latent, texture) = self._envelope.step(), self._field.step()
            self._spawn(envelope, self._t - d.step_min, self._t)
        env_w, latent_w, texture_w = d.crop_coarse(envelope), d.crop(latent), d.crop(texture)
        # Rain systems cover system_fraction of the output grid; inside them rain covers wet_area_fraction
        # of it overall (thresholds from the output grid, without the parallax margins).
        env_in = d.inner(env_w)
        shield_fraction = cfg.system_fraction * self.clouds.shield_factor
        e_system, e_shield = np.quantile(env_in[::2, ::2], [1.0 - cfg.system_fraction, 1.0 - shield_fraction])
        in_system = env_w > e_system
        inside = d.inner(latent_w)[env_in > e_system]
        within = min(cfg.wet_area_fraction / cfg.system_fraction, 1.0)
        g_rain = float(np.quantile(inside[::3], 1.0 - within)) if inside.size else np.inf
        # Intensity ranks follow the texture and the depth inside the system.
        score = latent_w + np.float32(cfg.system_core_weight) * env_w
        rain = mesoscale_rain(score, in_system & (latent_w > g_rain), cfg.intensity_db_per_sigma,
                              cfg.stratiform_ceiling_mm_h, cfg.wet_area_fraction)

        self._cells = self._cells.alive(self._t)
        cells = self._cells.render(
            self._t, d.window, d.period, self.clouds.anvil_spread_ms * 0.06 / d.pixel_km,
        )
        sigma = cfg.cell_texture
        rain += cells["rain"] * np.exp(sigma * texture_w - 0.5 * sigma**2)
        np.minimum(rain, cfg.max_rain_mm_h, out=rain)
        return RainFrame(rain, env_w, latent_w, texture_w, float(e_system), float(e_shield), cells)

    def _spawn(self, envelope: np.ndarray, t0: float, t1: float) -> None:
        """Add the cells born in (t0, t1], preferentially inside the rain systems.

        ``envelope`` is the systems' field on the half-resolution periodic domain.
        """
        rng, d = self._rng, self.domain
        area_km2 = (d.period * d.pixel_km) ** 2
        n = rng.poisson(self.cfg.cell_rate * area_km2 / 1e4 * (t1 - t0) / 60.0)
        if n == 0:
            return
        stride = 2  # on the half-resolution grid: 4 pixels
        coarse = envelope[::stride, ::stride]
        e_system = np.quantile(coarse, 1.0 - self.cfg.system_fraction)
        weight = 0.1 + 1.0 / (1.0 + np.exp(-3.0 * (coarse - e_system + 0.3)))
        pick = rng.choice(coarse.size, size=n, p=(weight / weight.sum()).ravel())
        scale = 2 * stride
        row = (pick // coarse.shape[1]) * scale + rng.uniform(0, scale, n)
        col = (pick % coarse.shape[1]) * scale + rng.uniform(0, scale, n)
        birth = np.sort(rng.uniform(t0, t1, n))
        # Positions are where the cell is at birth; a cell born before t=0 has moved since.
        new = CellPopulation.spawn(
            rng, row, col, birth, self.cfg, self.clouds, d.pixel_km, self.winds.steering, self.winds.upper
        )
        new.row -= new.drift_row * np.maximum(-new.birth, 0.0)
        new.col -= new.drift_col * np.maximum(-new.birth, 0.0)
        self._cells = self._cells.extend(new)


def mesoscale_rain(
    score: np.ndarray, wet: np.ndarray, db_per_sigma: float, ceiling_mm_h: float, tail_fraction: float
) -> np.ndarray:
    """Rain rate of the mesoscale systems, mm/h: 0 outside ``wet``, inside it ranked by ``score``.

    The wet pixels' scores are ranked and mapped onto the upper ``tail_fraction`` tail of a standard
    normal distribution (probability matching, as in STEPS: the pattern comes from the fields, the
    distribution is the model's): excess ``e = z(1 - tail (1 - u)) - z(1 - tail)`` for rank ``u`` in
    (0, 1). Then ``d = s e`` dB above the wet threshold, softly saturating at
    ``D_max = 10 log10(ceiling / 0.1)``::

        D = d / (1 + (d / D_max)^4)^(1/4)        R = 0.1 mm/h * 10^(D / 10)

    log-normal at low and moderate rates; stratiform rain rarely exceeds ~5-10 mm/h, convection makes
    the heavy tail. The rain rises continuously from 0.1 mm/h at the edge of a wet area only where the
    score is low there; the ranks make the distribution the same whatever the fields' realisation.
    """
    rain = np.zeros(score.shape, dtype="float32")
    values = score[wet]
    if not values.size:
        return rain
    rank = np.empty(values.size, dtype="float64")
    rank[np.argsort(values, kind="stable")] = (np.arange(values.size) + 0.5) / values.size
    z0 = ndtri(1.0 - tail_fraction)
    d = db_per_sigma * (ndtri(1.0 - tail_fraction * (1.0 - rank)) - z0)
    d_max = 10.0 * np.log10(ceiling_mm_h / WET_THRESHOLD_MM_H)
    d = d / (1.0 + (d / d_max) ** 4) ** 0.25
    rain[wet] = WET_THRESHOLD_MM_H * 10.0 ** (0.1 * d)
    return rain
