"""The infrared forward model: SEVIRI brightness temperatures of a cloudy atmosphere.

Radiances ``L`` are computed per channel with the Planck function at the channel's central wavenumber
and converted back to brightness temperature at the end, so that mixing (semi-transparent clouds,
partly absorbing atmosphere) happens in radiance, where it is linear.

Atmosphere: temperature ``T(z) = T_0 - Gamma z`` up to the tropopause, warming by 2 K/km above; each
channel has an absorber of optical depth ``tau_a(h) = tau_wv q e^(-h / 2 km) + tau_co2 e^(-h / 7 km)``
above height ``h`` (``q`` the water-vapour column relative to its mean), transmittance
``t(h) = e^(-tau_a(h))``, and emits like a layer at the level where it becomes opaque (or just above
``h`` where it stays thin). IR_097 additionally sees through stratospheric ozone (transmittance 0.78,
emitting at 235 K). An opaque emitter at height ``h`` with temperature ``T`` then appears as::

    L(h, T) = t(h) B(T) + (1 - t(h)) B(T_atm(h))

and a cloud layer of visible optical depth ``tau`` and emissivity ``eps = 1 - exp(-k tau / mu)``
(``k`` the channel's absorption per unit visible optical depth, larger at 12.0 than at 10.8 µm for
ice, ``mu`` the cosine of the viewing zenith angle) over a scene of radiance ``L_below`` gives::

    L = eps L(h, T_top(h)) + (1 - eps) L_below

Cloud tops above the tropopause (overshooting convection) are colder than their surroundings (7 K/km
adiabatic cooling), while WV_062 sees the warm stratosphere above them: WV_062 - IR_108 > 0 there.
Layers are drawn surface -> water -> ice/upper (the higher of the two last), each displaced by its own
parallax, then the sensor's Gaussian noise is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qpe.data.synthetic.clouds import CloudLayers
from qpe.data.synthetic.fields import halve, upsample2

#: Planck constants for radiance in mW m-2 sr-1 (cm-1)-1 with wavenumber in cm-1.
C1 = 1.191042e-5
C2 = 1.4387752


@dataclass(frozen=True)
class ChannelPhysics:
    """Radiative properties of one SEVIRI channel.

    Parameters
    ----------
    wavenumber : float
        Central wavenumber, cm-1.
    water_vapour, co2 : float
        Column absorption optical depths of water vapour (at the mean humidity) and of CO2.
    ozone_transmittance : float
        Transmittance of the stratospheric ozone layer (1 for no ozone band).
    surface_emissivity : float
        Emissivity of the ground.
    ice_absorption, water_absorption : float
        Absorption optical depth per unit visible optical depth of ice and liquid clouds.
    """

    wavenumber: float
    water_vapour: float
    co2: float
    ozone_transmittance: float
    surface_emissivity: float
    ice_absorption: float
    water_absorption: float


#: The seven SEVIRI infrared channels (MSG central wavenumbers).
CHANNELS: dict[str, ChannelPhysics] = {
    "WV_062": ChannelPhysics(1596.0, 60.0, 0.0, 1.0, 0.99, 0.50, 0.50),
    "WV_073": ChannelPhysics(1361.0, 12.0, 0.0, 1.0, 0.99, 0.50, 0.50),
    "IR_087": ChannelPhysics(1148.0, 0.25, 0.0, 1.0, 0.965, 0.40, 0.55),
    "IR_097": ChannelPhysics(1034.0, 0.15, 0.0, 0.78, 0.98, 0.47, 0.48),
    "IR_108": ChannelPhysics(931.0, 0.16, 0.0, 1.0, 0.985, 0.48, 0.45),
    "IR_120": ChannelPhysics(839.0, 0.30, 0.0, 1.0, 0.985, 0.58, 0.52),
    "IR_134": ChannelPhysics(752.0, 0.30, 1.8, 1.0, 0.985, 0.52, 0.52),
}

WV_SCALE_KM = 2.0
CO2_SCALE_KM = 7.0
OZONE_K = 235.0
STRATOSPHERE_WARMING_K_KM = 2.0
OVERSHOOT_COOLING_K_KM = 7.0


@dataclass
class Atmosphere:
    """State of the clear atmosphere over each pixel, arrays (y, x).

    Parameters
    ----------
    surface_k : numpy.ndarray
        Skin temperature of the ground, K.
    air_k : numpy.ndarray
        Air temperature at the ground (``T_0`` of the profile), K.
    humidity : numpy.ndarray
        Water-vapour column relative to its mean (1 = mean).
    tropopause_km : float
        Height of the tropopause, km.
    lapse_rate_k_km : float
        Tropospheric lapse rate, K/km.
    """

    surface_k: np.ndarray
    air_k: np.ndarray
    humidity: np.ndarray
    tropopause_km: float
    lapse_rate_k_km: float


def planck(wavenumber: float, temperature: np.ndarray) -> np.ndarray:
    """Planck radiance at ``wavenumber`` (cm-1) of a black body at ``temperature`` (K).

    In mW m-2 sr-1 (cm-1)-1.
    """
    # exp - 1 rather than expm1: the argument is > 2 for every channel at any atmospheric temperature.
    exponential = np.exp(np.float32(C2 * wavenumber) / temperature)
    return np.float32(C1 * wavenumber**3) / (exponential - np.float32(1.0))


def brightness_temperature(wavenumber: float, radiance: np.ndarray) -> np.ndarray:
    """Inverse of :func:`planck`: the temperature (K) of a black body of the given radiance."""
    return np.float32(C2 * wavenumber) / np.log(np.float32(1.0) + np.float32(C1 * wavenumber**3) / radiance)


class ForwardModel:
    """Brightness temperatures of cloud layers over an atmosphere, for a set of channels.

    Parameters
    ----------
    channels : sequence of str
        SEVIRI channel labels (keys of :data:`CHANNELS`).
    cos_zenith : numpy.ndarray
        Cosine of the satellite viewing zenith angle, (y, x) of the output grid.
    """

    def __init__(self, channels: tuple[str, ...], cos_zenith: np.ndarray) -> None:
        self.channels = tuple(channels)
        self._physics = [CHANNELS[c] for c in self.channels]
        self._inv_mu = (1.0 / np.asarray(cos_zenith, dtype="float32")).astype("float32")

    def __call__(self, layers: CloudLayers, atmosphere: Atmosphere) -> np.ndarray:
        """Noise-free brightness temperatures, (channel, y, x) float32, K.

        ``layers`` and ``atmosphere`` hold arrays of the output grid's shape (parallax already applied).
        """
        atm = atmosphere
        shape = atm.surface_k.shape
        # The two high layers, the higher one drawn last.
        upper_first = layers.upper_km < layers.ice_km
        clouds = [
            (layers.water_km, layers.water_tau, "water"),
            (np.where(upper_first, layers.upper_km, layers.ice_km),
             np.where(upper_first, layers.upper_tau, layers.ice_tau), "ice"),
            (np.where(upper_first, layers.ice_km, layers.upper_km),
             np.where(upper_first, layers.ice_tau, layers.upper_tau), "ice"),
        ]
        # A level hidden under opaque cloud (transmittance < 1e-4 even in the most transparent channel)
        # does not change the result: it is computed only where it shows through.
        slant = [tau * self._inv_mu for _, tau, _ in clouds]
        hidden_by = [slant[2] + slant[1], slant[2], np.zeros_like(slant[2])]  # what lies above each level
        k_min = min(min(ch.ice_absorption, ch.water_absorption) for ch in self._physics)
        limit = np.float32(-np.log(1e-4) / k_min)
        levels = []
        for (km, tau, phase), above in zip(clouds, hidden_by):
            where = np.flatnonzero((tau > 0.01) & (above < limit))
            levels.append(_Level(where, km.ravel().take(where), tau.ravel().take(where), phase, atm,
                                 self._inv_mu.ravel().take(where)))
        out = np.empty((len(self.channels), *shape), dtype="float32")
        for i, (ch, radiance) in enumerate(zip(self._physics, self._clear_sky(atm))):
            for level in levels:
                if not level.where.size:
                    continue
                absorption = np.float32(ch.water_absorption if level.phase == "water" else ch.ice_absorption)
                cloud_eps = np.float32(1.0) - np.exp(-absorption * level.slant_tau)
                t, sky = level.path(ch)
                cloud = t * planck(ch.wavenumber, level.top_k) + (1 - t) * sky
                below = radiance.take(level.where)
                radiance[level.where] = below + cloud_eps * (cloud - below)
            if ch.ozone_transmittance < 1.0:
                t_o3 = np.float32(ch.ozone_transmittance)
                radiance = t_o3 * radiance + (1 - t_o3) * planck(ch.wavenumber, np.float32(OZONE_K))
            out[i] = brightness_temperature(ch.wavenumber, radiance).reshape(shape)
        return out


    def _clear_sky(self, atm: Atmosphere) -> list[np.ndarray]:
        """TOA radiance of the clear sky per channel, flat arrays of the grid's pixels.

        The ground (emissivity < 1, reflecting about the sky's emission) under the atmosphere. Its
        inputs (skin and air temperature, humidity) are smooth fields, so it is computed on 2 x 2 block
        means and interpolated back (bilinear): a quarter of the work for the one level every pixel has.
        """
        shape = atm.surface_k.shape
        half = Atmosphere(halve(atm.surface_k), halve(atm.air_k), halve(atm.humidity),
                          atm.tropopause_km, atm.lapse_rate_k_km)
        ground = _Level(np.arange(half.surface_k.size), np.zeros(half.surface_k.size, "float32"), None,
                        "ground", half, None)
        surface_k = half.surface_k.ravel()
        coarse = np.empty((len(self._physics), surface_k.size), dtype="float32")
        for i, ch in enumerate(self._physics):
            t, sky = ground.path(ch)
            eps = np.float32(ch.surface_emissivity)
            coarse[i] = t * (eps * planck(ch.wavenumber, surface_k) + (1 - eps) * sky) + (1 - t) * sky
        fine = upsample2(coarse.reshape(-1, *half.surface_k.shape))[:, : shape[0], : shape[1]]
        return list(np.ascontiguousarray(fine).reshape(len(self._physics), -1))


class _Level:
    """An emitting level (ground or cloud top) at some pixels and the absorbers above it.

    Everything that does not depend on the channel is computed once here. Arrays are 1-D over the
    pixels ``where`` (flat indices of the output grid).
    """

    def __init__(
        self, where: np.ndarray, km: np.ndarray, tau: np.ndarray | None, phase: str, atm: Atmosphere,
        inv_mu: np.ndarray | None,
    ) -> None:
        self.where, self.phase = where, phase
        air_k = atm.air_k.ravel().take(where)
        self._profile = (air_k, atm.lapse_rate_k_km, atm.tropopause_km)
        self.top_k = _cloud_top_temperature(km, *self._profile) if tau is not None else None
        self.slant_tau = tau * inv_mu if tau is not None else None
        self.km = km
        log_q = np.log(atm.humidity.ravel().take(where))
        self._log_wv = log_q - km / np.float32(WV_SCALE_KM)  # log of the relative WV column above
        self._wv = np.exp(self._log_wv)
        self._co2_log = -km / np.float32(CO2_SCALE_KM)
        self._co2 = np.exp(self._co2_log)

    def path(self, ch: ChannelPhysics) -> tuple[np.ndarray, np.ndarray]:
        """Transmittance to space and radiance emitted by the absorbers above this level, for a channel."""
        depth = np.float32(ch.water_vapour) * self._wv
        if ch.co2 > ch.water_vapour:
            depth += np.float32(ch.co2) * self._co2
            scale, log_depth = CO2_SCALE_KM, np.float32(np.log(ch.co2)) + self._co2_log
        else:
            scale, log_depth = WV_SCALE_KM, np.float32(np.log(ch.water_vapour)) + self._log_wv
        # The absorber emits from its tau = 1 level, or from just above the level where it stays thin.
        height = self.km + np.float32(scale) * np.maximum(log_depth, np.float32(0.7))
        return np.exp(-depth), planck(ch.wavenumber, _air_temperature(height, *self._profile))


def _air_temperature(z_km: np.ndarray, air_k: np.ndarray, lapse: float, z_tp: float) -> np.ndarray:
    """Air temperature at height ``z_km``: lapse rate up to the tropopause, warming above it, K."""
    above = np.maximum(z_km - np.float32(z_tp), np.float32(0.0))
    return air_k - np.float32(lapse) * (z_km - above) + np.float32(STRATOSPHERE_WARMING_K_KM) * above


def _cloud_top_temperature(z_km: np.ndarray, air_k: np.ndarray, lapse: float, z_tp: float) -> np.ndarray:
    """Temperature of a cloud top at ``z_km``, K: the air's below the tropopause, colder above it
    (an overshooting top cools adiabatically)."""
    t_tp = air_k - np.float32(lapse * z_tp)
    return np.where(z_km <= z_tp, air_k - np.float32(lapse) * z_km,
                    t_tp - np.float32(OVERSHOOT_COOLING_K_KM) * (z_km - np.float32(z_tp)))
