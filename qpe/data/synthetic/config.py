"""Settings of the synthetic benchmark: one :class:`SynthConfig`, loadable from and savable to YAML.

The defaults are the calibrated ones: with them the rain statistics of a generated dataset match those
measured on the OPERA composite over France (see ``docs/calibration.md``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from qpe.data.grid import REGIONS
from qpe.data.paired import SEVIRI_CHANNELS
from qpe.data.times import SEVIRI_STEP, parse_utc_time
from qpe.errors import InputError
from qpe.settings import from_mapping, plain, read_yaml_mapping

#: Calibration target: the rain statistics (:func:`qpe.data.rain_statistics.rain_statistics`) of the
#: OPERA composite over the France region, 2018-08-24 18:00-23:45 UTC (24 times, 4 outliers above
#: 300 mm/h masked). Measured with ``python -m qpe.data.rain_statistics ../shared/data/opera/20180824/*.hdf``;
#: see docs/calibration.md. The defaults below reproduce each within 25 %.
OPERA_FRANCE_20180824: dict[str, float] = {
    "wet_fraction": 0.0910,
    "wet_p50": 0.260,
    "wet_p90": 1.750,
    "wet_p99": 6.070,
    "spectral_slope": -2.149,
    "lag15_autocorrelation": 0.707,
}

#: Largest settings accepted: longer or larger datasets are built as several (memory holds one whole).
MAX_HOURS = 24.0 * 366
MAX_SIZE = 4096
MIN_PIXEL_KM = 0.1
MAX_PIXEL_KM = 100.0

#: SEVIRI radiometric noise (NEdT) assumed per channel, K.
DEFAULT_NOISE_K: dict[str, float] = {
    "WV_062": 0.25, "WV_073": 0.2, "IR_087": 0.15, "IR_097": 0.25,
    "IR_108": 0.1, "IR_120": 0.15, "IR_134": 0.3,
}


def _france_centre() -> tuple[float, float]:
    xmin, ymin, xmax, ymax = REGIONS["france"].bounds
    return ((xmin + xmax) / 2, (ymin + ymax) / 2)


@dataclass(frozen=True)
class RainConfig:
    """The rain model: rain systems (a smooth envelope) with patchy log-normal rain inside, plus cells.

    Parameters
    ----------
    wet_area_fraction : float
        Fraction of the area that the systems' rain (> 0.1 mm/h) covers, before cells are added.
    system_fraction : float
        Fraction of the area inside rain systems (where the envelope field is high); rain covers
        ``wet_area_fraction / system_fraction`` of them.
    system_scale_km, system_exponent : float
        Outer scale (km) and spectral exponent of the systems' envelope field (large, smooth).
    anisotropy : float
        Elongation of the systems (correlation length along / across their axis): rain bands.
    spectral_exponent, outer_scale_km : float
        Spectral exponent ``beta`` (``P(k) ∝ k^-beta``) and outer scale (km) of the rain texture field
        that decides where inside a system it rains and how hard.
    system_core_weight : float
        How much the intensity also rises towards the system's core (weight of the envelope in the
        intensity ranking, relative to the texture).
    intensity_db_per_sigma : float
        Spread of the log-normal intensities: dB (10 log10 of mm/h) per standard deviation.
    stratiform_ceiling_mm_h : float
        Rate at which the systems' (stratiform) rain saturates softly, mm/h.
    lifetime_100km_min, lifetime_exponent : float
        Decorrelation time of 100 km structures following the motion, min, and its scaling with
        wavelength (``tau ∝ lambda^alpha``), for both fields.
    wind_speed_ms, wind_from_deg : (float, float)
        Ranges of the steering-level wind that carries the rain, drawn once per dataset: speed, m/s,
        and the direction it blows from, degrees clockwise from north.
    cell_rate : float
        New convective cells per 10 000 km² per hour.
    cell_peak_mm_h, cell_peak_spread : float
        Median peak rain rate of a cell, mm/h, and the standard deviation of its logarithm.
    cell_radius_km : (float, float)
        Range of the e-folding radius of the cell's rain core, km.
    cell_lifetime_min : (float, float)
        Range of the life of a cell (growth, mature, decay), min.
    cooling_lead_min : (float, float)
        Range of the time by which the cloud top reaches its highest (coldest) point before the rain
        peaks, min.
    cell_texture : float
        Standard deviation of the log-normal small-scale texture inside cells.
    max_rain_mm_h : float
        Cap on rain rate, mm/h.
    """

    wet_area_fraction: float = 0.08
    system_fraction: float = 0.09
    system_scale_km: float = 1000.0
    system_exponent: float = 4.0
    anisotropy: float = 2.0
    spectral_exponent: float = 2.4
    outer_scale_km: float = 150.0
    system_core_weight: float = 1.0
    intensity_db_per_sigma: float = 12.2
    stratiform_ceiling_mm_h: float = 10.0
    lifetime_100km_min: float = 1000.0
    lifetime_exponent: float = 0.5
    wind_speed_ms: tuple[float, float] = (4.0, 11.0)
    wind_from_deg: tuple[float, float] = (200.0, 320.0)
    cell_rate: float = 0.15
    cell_peak_mm_h: float = 10.0
    cell_peak_spread: float = 0.6
    cell_radius_km: tuple[float, float] = (3.0, 7.0)
    cell_lifetime_min: tuple[float, float] = (60.0, 150.0)
    cooling_lead_min: tuple[float, float] = (15.0, 30.0)
    cell_texture: float = 0.4
    max_rain_mm_h: float = 200.0


@dataclass(frozen=True)
class CloudConfig:
    """Clouds that the IR sees, raining or not.

    Parameters
    ----------
    shield_factor : float
        Area of the cloud shield of the rain systems relative to the systems' area (>= 1): cloud
        without rain around and between the raining patches.
    warm_rain_fraction : float
        Fraction of the area where rain falls from shallow, warm (liquid) clouds with tops of 2-4.5 km.
    cirrus_fraction : float
        Fraction of the area under independent (non-raining) cirrus.
    cirrus_optical_depth : float
        Median visible optical depth of that cirrus (thin cirrus: < 3).
    low_cloud_fraction : float
        Fraction of the area under non-raining low cloud (stratocumulus, tops 1-2.5 km).
    anvil_lifetime_min : (float, float)
        Range of how long a cell's anvil survives the cell, min.
    anvil_spread_ms : float
        Speed at which an anvil spreads outward, m/s.
    upper_wind_extra_ms : (float, float)
        Range of the extra speed of the upper-level wind (anvils, cirrus) over the steering wind, m/s.
    """

    shield_factor: float = 1.6
    warm_rain_fraction: float = 0.15
    cirrus_fraction: float = 0.2
    cirrus_optical_depth: float = 1.0
    low_cloud_fraction: float = 0.15
    anvil_lifetime_min: tuple[float, float] = (60.0, 150.0)
    anvil_spread_ms: float = 4.0
    upper_wind_extra_ms: tuple[float, float] = (5.0, 15.0)


@dataclass(frozen=True)
class IRConfig:
    """The infrared forward model.

    Parameters
    ----------
    noise_k : dict of str to float
        Radiometric noise (standard deviation) per channel, K.
    surface_temperature_k : float
        Daily mean skin temperature, K.
    diurnal_amplitude_k : float
        Amplitude of its diurnal cycle (peak at 14 h local solar time), K.
    surface_anomaly_k : float
        Standard deviation of its spatial variation, K.
    tropopause_km : float
        Height of the tropopause, km.
    lapse_rate_k_km : float
        Tropospheric temperature lapse rate, K/km.
    humidity_spread : float
        Standard deviation of the logarithm of the water-vapour column around its mean.
    parallax : bool
        Displace clouds as the satellite sees them (by height x tan(viewing zenith)).
    satellite_lon_deg : float
        Longitude of the geostationary satellite, degrees east (0 for Meteosat prime).
    """

    noise_k: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_NOISE_K))
    surface_temperature_k: float = 291.0
    diurnal_amplitude_k: float = 5.0
    surface_anomaly_k: float = 2.0
    tropopause_km: float = 12.0
    lapse_rate_k_km: float = 6.5
    humidity_spread: float = 0.3
    parallax: bool = True
    satellite_lon_deg: float = 0.0


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines a synthetic dataset; the same config and seed give identical data.

    Parameters
    ----------
    hours : float
        Length, hours (``4 * hours`` frames every 15 minutes).
    size : int
        Side of the square grid, pixels.
    seed : int
        Seed of the single random generator.
    pixel_km : float
        Pixel size, km (2 km is OPERA's).
    start : str
        First valid time, ISO 8601, UTC.
    channels : tuple of str
        SEVIRI IR channels to simulate (must include IR_108).
    centre_xy : (float, float)
        Grid centre in the OPERA projection, m (default: the centre of the France region).
    no_radar_fraction : float
        Fraction of the grid beyond radar range (NaN rain), a fixed area in the south-east corner.
    rain, clouds, ir : RainConfig, CloudConfig, IRConfig
        The models' parameters.
    scenario_hours : float or None
        None: the dataset is one scenario (one draw of the winds, one weather evolving for ``hours``).
        A length in hours: the dataset is ``hours / scenario_hours`` independent scenarios one after
        the other, each with its own winds and weather drawn from a seed spawned from ``seed``
        (:meth:`numpy.random.SeedSequence.spawn`). The last 15-minute step of each is left out, so that
        no run of consecutive frames (:func:`qpe.data.times.has_frames`) spans two scenarios: scenario
        ``k`` has the ``4 * scenario_hours - 1`` frames from ``start + k * scenario_hours`` to 30 minutes
        before the next one starts.
    """

    hours: float = 6.0
    size: int = 128
    seed: int = 0
    pixel_km: float = 2.0
    start: str = "2021-06-01T00:00"
    channels: tuple[str, ...] = tuple(SEVIRI_CHANNELS)
    centre_xy: tuple[float, float] = field(default_factory=_france_centre)
    no_radar_fraction: float = 0.06
    rain: RainConfig = field(default_factory=RainConfig)
    clouds: CloudConfig = field(default_factory=CloudConfig)
    ir: IRConfig = field(default_factory=IRConfig)
    scenario_hours: float | None = None

    def __post_init__(self) -> None:
        _check(self)

    @property
    def scenarios(self) -> int:
        """Number of independent scenarios (1 when ``scenario_hours`` is None)."""
        return 1 if self.scenario_hours is None else int(round(self.hours / self.scenario_hours))

    @property
    def scenario_times(self) -> list[pd.DatetimeIndex]:
        """Valid times of the frames of each scenario, UTC, in order (15 minutes apart within one)."""
        start = parse_utc_time(self.start, "start")
        if self.scenario_hours is None:
            return [pd.date_range(start, periods=_steps(self.hours), freq="15min")]
        steps = _steps(self.scenario_hours)
        return [
            pd.date_range(start + k * steps * SEVIRI_STEP, periods=steps - 1, freq="15min")
            for k in range(self.scenarios)
        ]

    @property
    def times(self) -> pd.DatetimeIndex:
        """Valid times of all frames, UTC (with a missing step between scenarios)."""
        first, *rest = self.scenario_times
        return first.append(rest) if rest else first

    @property
    def frames(self) -> int:
        """Number of 15-minute frames (over all scenarios)."""
        return sum(times.size for times in self.scenario_times)

    def replace(self, **changes: Any) -> SynthConfig:
        """A copy with some top-level fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    # -- YAML ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain nested dict (lists for tuples), as written to YAML."""
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        """Build from a nested dict; unknown keys are an error. Missing keys keep their defaults."""
        return from_mapping(cls, data, "synthetic config")

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """YAML text of the config; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> SynthConfig:
        """Load a config written by :meth:`to_yaml` (or a hand-written subset of it)."""
        data = read_yaml_mapping(path, "synthetic config", empty_ok=True)
        return cls.from_dict(data)


def _steps(hours: float) -> int:
    """15-minute steps in ``hours``."""
    return int(round(hours * 4))


def _check(cfg: SynthConfig) -> None:
    """Raise :class:`InputError` with one line for the first unusable setting."""
    if not (isinstance(cfg.size, int) and 8 <= cfg.size <= MAX_SIZE):
        raise InputError(
            f"size must be an integer of at least 8 and at most {MAX_SIZE} pixels, got {cfg.size!r}"
        )
    if not (isinstance(cfg.hours, (int, float)) and 0.25 <= cfg.hours <= MAX_HOURS):
        raise InputError(
            f"hours must be at least 0.25 (one 15-minute frame) and at most {MAX_HOURS:g} (a year), "
            f"got {cfg.hours!r}"
        )
    if not (isinstance(cfg.pixel_km, (int, float)) and MIN_PIXEL_KM <= cfg.pixel_km <= MAX_PIXEL_KM):
        raise InputError(
            f"pixel size must be positive, {MIN_PIXEL_KM:g} to {MAX_PIXEL_KM:g} km, got {cfg.pixel_km!r} km"
        )
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {cfg.seed!r}")
    centre = cfg.centre_xy
    if not (len(centre) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in centre)):
        raise InputError(f"centre_xy must be two finite numbers (x, y in m), got {list(cfg.centre_xy)!r}")
    start = parse_utc_time(cfg.start, "start")
    try:
        start + _steps(cfg.hours) * SEVIRI_STEP
    except (OverflowError, ValueError):
        raise InputError(f"start {cfg.start!r} plus {cfg.hours:g} hours is past the last time pandas "
                         "can represent (2262)") from None
    _check_scenarios(cfg)
    unknown = [c for c in cfg.channels if c not in SEVIRI_CHANNELS]
    if unknown:
        raise InputError(f"unknown channel(s) {', '.join(unknown)}; choose from {', '.join(SEVIRI_CHANNELS)}")
    if "IR_108" not in cfg.channels or len(set(cfg.channels)) != len(cfg.channels):
        raise InputError(f"channels must include IR_108 once, got {', '.join(cfg.channels)}")
    missing_noise = [c for c in cfg.channels if c not in cfg.ir.noise_k]
    if missing_noise:
        raise InputError(f"ir.noise_k lacks channel(s) {', '.join(missing_noise)}")
    if not 0 <= cfg.no_radar_fraction < 1:
        raise InputError(f"no_radar_fraction must be in [0, 1), got {cfg.no_radar_fraction!r}")
    for name, value in (
        ("rain.wet_area_fraction", cfg.rain.wet_area_fraction),
        ("rain.system_fraction", cfg.rain.system_fraction),
        ("clouds.warm_rain_fraction", cfg.clouds.warm_rain_fraction),
        ("clouds.cirrus_fraction", cfg.clouds.cirrus_fraction),
        ("clouds.low_cloud_fraction", cfg.clouds.low_cloud_fraction),
    ):
        if not 0 < value < 1:
            raise InputError(f"{name} must be in (0, 1), got {value!r}")
    if cfg.rain.wet_area_fraction > cfg.rain.system_fraction:
        raise InputError("rain.wet_area_fraction cannot exceed rain.system_fraction (rain is inside systems)")
    if cfg.rain.system_fraction * cfg.clouds.shield_factor >= 1 or cfg.clouds.shield_factor < 1:
        raise InputError("clouds.shield_factor must be >= 1 and keep the cloud shield smaller than the grid")
    for name in ("wind_speed_ms", "wind_from_deg", "cell_radius_km", "cell_lifetime_min", "cooling_lead_min"):
        lo, hi = getattr(cfg.rain, name)
        if lo > hi:
            raise InputError(f"rain.{name} must be a range (low, high), got ({lo}, {hi})")


def _check_scenarios(cfg: SynthConfig) -> None:
    """Raise :class:`InputError` unless ``scenario_hours`` is None or cuts ``hours`` into whole scenarios
    of whole 15-minute steps, at least two frames each."""
    value = cfg.scenario_hours
    if value is None:
        return
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.75 <= value <= cfg.hours and abs(value * 4 - _steps(value)) < 1e-9):
        raise InputError(
            f"scenario_hours must be null or a multiple of 0.25 from 0.75 (two frames and the step left out) "
            f"to hours ({cfg.hours:g}), got {value!r}"
        )
    if abs(cfg.hours / value - round(cfg.hours / value)) > 1e-9:
        raise InputError(f"hours ({cfg.hours:g}) must be a whole number of scenarios of {value:g} h")
