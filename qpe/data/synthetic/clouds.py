"""Clouds the satellite sees: three layers per pixel, built from the rain model and independent fields.

Each layer has a top height (km, 0 where there is none) and a visible optical depth ``tau``:

- ``water``: liquid clouds with low tops — non-raining stratocumulus (1-2.5 km) and the shallow clouds
  of **warm rain** (2-4.5 km): raining pixels that look warm in the IR;
- ``ice``: the deep cloud shield of the rain systems (tops 4-11 km rising towards the systems' cores
  and over their raining patches, with random texture; it reaches beyond and between the raining
  patches: cloud without rain) and the towers of convective cells (up to 13.5 km, overshooting the
  tropopause);
- ``upper``: high ice clouds above everything — cell **anvils** (cold, spreading, surviving the rain
  that made them) and independent **cirrus**, mostly thin (optical depth ~1: semi-transparent, the case
  where the split-window difference IR_108 - IR_120 is large).

The fields that do not come from the rain (cirrus, humidity, low cloud, the warm-rain regime, the
surface temperature pattern) are :class:`~qpe.data.synthetic.fields.SpectralField` s moving with the
upper-level or low-level wind (:class:`CloudFields`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.special import ndtri

from qpe.data.synthetic.config import CloudConfig
from qpe.data.synthetic.fields import Domain, FieldSpec, SpectralField, halve, upsample2
from qpe.data.synthetic.rain import RainFrame, Winds

#: Cloud-top heights, km.
SHIELD_BASE_KM, SHIELD_TOP_KM = 4.0, 11.0
WARM_TOP_KM = (2.0, 4.5)
LOW_CLOUD_KM = (0.8, 2.5)
CIRRUS_KM = (9.0, 12.5)
#: Tops below this are liquid (water layer), km.
LIQUID_TOP_KM = 5.0
#: Smoothing of the rain texture that the systems' cloud top follows, km (Gaussian sigma).
SHIELD_SMOOTHING_KM = 8.0


@dataclass
class CloudLayers:
    """Cloud layers over each pixel, at their true position (before the parallax shift).

    All arrays have the same (y, x) shape, float32: ``*_km`` top height (0 where no cloud), ``*_tau``
    visible optical depth.
    """

    water_km: np.ndarray
    water_tau: np.ndarray
    ice_km: np.ndarray
    ice_tau: np.ndarray
    upper_km: np.ndarray
    upper_tau: np.ndarray

    def names(self) -> tuple[str, ...]:
        return ("water", "ice", "upper")


@dataclass
class CloudWeather:
    """One time step of the fields independent of the rain, on the drawn window (side, side).

    ``cirrus``, ``low_cloud``, ``warm``: unit-variance latent fields with their thresholds (quantiles
    leaving the configured area fraction above); ``humidity``: water-vapour column relative to its mean
    (log-normal, mean 1); ``surface_anomaly``: static pattern of unit variance.
    """

    cirrus: np.ndarray
    cirrus_threshold: float
    humidity: np.ndarray
    low_cloud: np.ndarray
    low_cloud_threshold: float
    warm: np.ndarray
    warm_threshold: float
    surface_anomaly: np.ndarray


class CloudFields:
    """Steps the rain-independent fields of a synthetic dataset (cirrus, humidity, low cloud, warm regime).

    Parameters
    ----------
    clouds : CloudConfig
        Area fractions of cirrus, low cloud and warm rain.
    humidity_spread : float
        Standard deviation of the logarithm of the water-vapour column.
    domain : Domain
        Simulation domain and drawn window.
    winds : Winds
        The dataset's winds (upper for cirrus and humidity, low for low cloud and the warm regime).
    rng : numpy.random.Generator
        The dataset's single random generator.
    """

    def __init__(
        self, clouds: CloudConfig, humidity_spread: float, domain: Domain, winds: Winds,
        rng: np.random.Generator,
    ) -> None:
        self.cfg, self.domain, self._spread = clouds, domain, humidity_spread
        # Smooth fields: simulated at half resolution and interpolated.
        shape, km, step = (domain.period // 2,) * 2, 2 * domain.pixel_km, domain.step_min
        upper = FieldSpec(exponent=3.0, outer_scale_km=300.0, lifetime_100km_min=150.0, anisotropy=2.5,
                          orientation_deg=winds.band_orientation_deg)
        low = FieldSpec(exponent=3.2, outer_scale_km=300.0, lifetime_100km_min=240.0)
        self._upper = SpectralField(upper, shape, km, step, _per_step(winds.upper, step, 0.5), rng)
        self._low = SpectralField(low, shape, km, step, _per_step(winds.low, step, 0.5), rng)
        static = FieldSpec(exponent=3.5, outer_scale_km=200.0, lifetime_100km_min=1e9)
        surface, _ = SpectralField(static, shape, km, step, (0.0, 0.0), rng).current()
        self._surface = domain.crop_coarse(surface)
        self._started = False

    def step(self) -> CloudWeather:
        """The next frame (the first call gives the frame at t = 0)."""
        if self._started:
            (cirrus, humidity), (low, warm) = self._upper.step(), self._low.step()
        else:
            (cirrus, humidity), (low, warm) = self._upper.current(), self._low.current()
            self._started = True
        c, crop = self.cfg, self.domain.crop_coarse
        return CloudWeather(
            cirrus=crop(cirrus),
            cirrus_threshold=_quantile(cirrus, 1.0 - c.cirrus_fraction),
            humidity=np.exp(self._spread * crop(humidity) - 0.5 * self._spread**2),
            low_cloud=crop(low),
            low_cloud_threshold=_quantile(low, 1.0 - c.low_cloud_fraction),
            warm=crop(warm),
            warm_threshold=_quantile(warm, 1.0 - c.warm_rain_fraction),
            surface_anomaly=self._surface,
        )


def _per_step(velocity_px_min: tuple[float, float], step_min: float, scale: float) -> tuple[float, float]:
    """Displacement per step, pixels of a grid ``1 / scale`` times coarser."""
    return (velocity_px_min[0] * step_min * scale, velocity_px_min[1] * step_min * scale)


def _quantile(field: np.ndarray, q: float) -> float:
    return float(np.quantile(field[::2, ::2], q))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def smoothed(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing (``sigma_px`` pixels) done on 2 x 2 block means and interpolated back: for
    scales of several pixels the same, at a third of the cost."""
    half = ndimage.gaussian_filter(halve(field), sigma_px / 2, truncate=2.0)
    return upsample2(half)[: field.shape[0], : field.shape[1]]


def warm_weight(weather: CloudWeather) -> np.ndarray:
    """Weight (0..1) of the warm-rain regime: 1 where rain falls from shallow liquid clouds."""
    return _smoothstep((weather.warm - weather.warm_threshold) / 0.3 + 0.5)


def low_cloud(weather: CloudWeather) -> tuple[np.ndarray, np.ndarray]:
    """Non-raining low cloud (stratocumulus): top height, km, and optical depth, each (y, x)."""
    excess = np.maximum(weather.low_cloud - weather.low_cloud_threshold, 0.0)
    cloudy = excess > 0
    tau = np.where(cloudy, 4.0 + 20.0 * excess, 0.0)
    km = np.where(cloudy, np.clip(LOW_CLOUD_KM[0] + excess, *LOW_CLOUD_KM), 0.0)
    return km.astype("float32"), tau.astype("float32")


def cirrus(weather: CloudWeather, median_tau: float, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Independent cirrus: top height, km, and optical depth (median ``median_tau``), each (y, x).

    The optical depth rises from 0 at the edge of a cirrus patch (``tau ∝ exp(2 e) - 1`` of the latent
    field's excess ``e`` over its threshold): mostly thin, a few thick cores. The median excess of a
    unit normal field above its ``1 - fraction`` quantile, ``z(1 - fraction / 2) - z(1 - fraction)``,
    scales it to the median.
    """
    excess = np.maximum(weather.cirrus - weather.cirrus_threshold, 0.0)
    cloudy = excess > 0
    typical = float(ndtri(1.0 - fraction / 2) - ndtri(1.0 - fraction))
    scale = np.float32(median_tau / np.expm1(2.0 * typical))
    tau = np.where(cloudy, scale * (np.exp(np.float32(2.0) * excess) - np.float32(1.0)), 0.0)
    km = np.where(cloudy, np.clip(CIRRUS_KM[0] + 1.5 * excess + 0.3 * weather.low_cloud, *CIRRUS_KM), 0.0)
    return km.astype("float32"), tau.astype("float32")


def synthetic_layers(
    rain: RainFrame, weather: CloudWeather, clouds: CloudConfig, pixel_km: float,
    latent_ahead: np.ndarray | None = None,
) -> CloudLayers:
    """The cloud layers of a frame of the full synthetic model.

    The rain systems' cloud shield rises towards the systems' cores (the envelope field) and over their
    raining patches — a smoothed copy of the rain texture field as it will be up to 30 minutes later
    (``latent_ahead``): the cloud deepens before the rain reaches the ground, so the tops cool ahead of
    the rain (the IR sees the system and its growth, not each rain streak). In the warm-rain regime
    the same systems have shallow liquid tops. Towers and anvils come from the convective cells.

    Parameters
    ----------
    rain : RainFrame
        The rain model's frame (window fields).
    weather : CloudWeather
        The rain-independent fields of the same frame.
    clouds : CloudConfig
        Cloud parameters.
    pixel_km : float
        Pixel size, km.
    latent_ahead : numpy.ndarray, optional
        The texture field's largest value over this and the next frames, brought back along the motion
        (window); the current frame's when omitted.

    Returns
    -------
    CloudLayers
        On the drawn window.
    """
    water_km, water_tau = low_cloud(weather)
    upper_km, upper_tau = cirrus(weather, clouds.cirrus_optical_depth, clouds.cirrus_fraction)

    # The systems' cloud shield: tops rise from its edge towards the systems' cores and, more weakly,
    # over the raining patches (the rain texture smoothed: the IR sees the system, not each streak).
    inside = rain.envelope > rain.shield_threshold
    span = rain.system_threshold + 1.0 - rain.shield_threshold
    core = np.clip((rain.envelope - rain.shield_threshold) / span, 0.0, 1.0)
    ahead = rain.latent if latent_ahead is None else latent_ahead
    smooth = smoothed(ahead, SHIELD_SMOOTHING_KM / pixel_km)
    patches = np.clip(0.5 + 0.5 * smooth / max(float(smooth.std()), 1e-6), 0.0, 1.0)
    depth = 0.6 * core + 0.4 * patches * (core > 0)
    deep_km = SHIELD_BASE_KM + (SHIELD_TOP_KM - SHIELD_BASE_KM) * depth + 0.8 * rain.texture
    warm_km = WARM_TOP_KM[0] + (WARM_TOP_KM[1] - WARM_TOP_KM[0]) * depth + 0.3 * rain.texture
    warm = warm_weight(weather)
    shield_km = np.clip((1 - warm) * deep_km + warm * warm_km, WARM_TOP_KM[0], SHIELD_TOP_KM + 0.5)
    shield_tau = 3.0 + 40.0 * depth
    liquid = inside & (shield_km < LIQUID_TOP_KM)
    water_km = np.where(liquid, np.maximum(water_km, shield_km), water_km)
    water_tau = np.where(liquid, water_tau + shield_tau, water_tau)
    ice = inside & ~liquid
    ice_km = np.where(ice, shield_km, 0.0)
    ice_tau = np.where(ice, shield_tau, 0.0)

    cells = rain.cells
    tower = cells["tower_tau"] > 0
    ice_km = np.where(tower, np.maximum(ice_km, cells["tower_km"]), ice_km)
    ice_tau = ice_tau + cells["tower_tau"]
    anvil_tau = cells["anvil_tau"] * np.exp(0.5 * weather.cirrus - 0.125)
    anvil = anvil_tau > 0.05
    upper_km = np.where(anvil, np.maximum(upper_km, cells["anvil_km"]), upper_km)
    upper_tau = upper_tau + np.where(anvil, anvil_tau, 0.0)
    fields = (water_km, water_tau, ice_km, ice_tau, upper_km, upper_tau)
    return CloudLayers(*(a.astype("float32") for a in fields))
