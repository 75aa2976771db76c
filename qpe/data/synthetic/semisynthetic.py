"""Semi-synthetic mode: infrared images simulated for a given rain sequence (e.g. real radar rain).

With no cell life cycles to read from, the cloud scene is inferred from the rain sequence itself:

- **motion**: one displacement per time step, from the cross-correlation of consecutive dB fields;
- **look-ahead**: the cloud top over a pixel follows the heaviest rain of the next two frames brought
  back along the motion, so tops are cold *before* the rain peaks (the cooling leads the rain);
- **cloud shield**: rain areas (with the look-ahead) smoothed and widened: cloud around and between
  the raining patches, tops 4-11 km rising with the smoothed rain rate;
- **towers**: convective cores (rain well above its surroundings, > 5 mm/h over a few km, so that
  single-pixel clutter does not count) reach 9-13 km;
- **anvils**: a memory of the towers, carried by the upper-level wind, spreading and thinning out
  over the next hours — cold cloud over pixels where the rain has stopped;
- **warm rain**, cirrus, low cloud, humidity and surface temperature come from the same random
  fields as in the fully synthetic mode (:class:`~qpe.data.synthetic.clouds.CloudFields`).

Sequence edges: the look-ahead repeats the last frame; anvils start from the first frame's towers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.signal.windows import tukey
from tqdm.auto import tqdm

from qpe.data.grid import Grid
from qpe.data.paired import ir_attrs
from qpe.data.rain_statistics import to_db
from qpe.data.synthetic.clouds import (
    LIQUID_TOP_KM,
    SHIELD_BASE_KM,
    SHIELD_TOP_KM,
    WARM_TOP_KM,
    CloudFields,
    CloudLayers,
    CloudWeather,
    cirrus,
    low_cloud,
    warm_weight,
)
from qpe.data.synthetic.config import CloudConfig, SynthConfig
from qpe.data.synthetic.fields import Domain
from qpe.data.synthetic.geometry import viewing_geometry
from qpe.data.synthetic.rain import Winds
from qpe.data.synthetic.satellite import SatelliteView, parallax_margin
from qpe.data.times import SEVIRI_STEP
from qpe.errors import DatasetError, InputError

#: Rain rate above which a core that stands out from its surroundings counts as convective, mm/h.
CONVECTIVE_MM_H = 5.0
#: Fraction of an anvil's optical depth left after one hour.
ANVIL_HOURLY_DECAY = 0.35


def estimate_motion(rain: np.ndarray) -> tuple[float, float]:
    """Typical displacement between consecutive frames, (rows, columns) pixels per step.

    The median over all pairs of the peak of the cross-correlation of the dB fields (:func:`to_db`),
    tapered at the edges (a Tukey window). Plain rather than phase correlation: the latter locks onto
    stationary clutter and coverage edges (zero shift).

    Parameters
    ----------
    rain : numpy.ndarray
        (time, y, x) rain rate, mm/h, NaN allowed.
    """
    if rain.shape[0] < 2:
        return (0.0, 0.0)
    ny, nx = rain.shape[1:]
    window = np.outer(tukey(ny, 0.25), tukey(nx, 0.25))
    spectra = [np.fft.fft2((to_db(frame) - to_db(frame).mean()) * window) for frame in rain]
    shifts = []
    for a, b in zip(spectra[:-1], spectra[1:]):
        corr = np.fft.ifft2(b * np.conj(a)).real
        iy, ix = np.unravel_index(np.argmax(corr), corr.shape)
        shifts.append((iy - ny if iy > ny // 2 else iy, ix - nx if ix > nx // 2 else ix))
    drow, dcol = np.median(np.array(shifts, dtype="float64"), axis=0)
    return (float(drow), float(dcol))


def _shifted(field: np.ndarray, drow: float, dcol: float) -> np.ndarray:
    """``field`` moved by (drow, dcol) pixels (nearest pixel; edges repeated)."""
    return ndimage.shift(field, (drow, dcol), order=0, mode="nearest")


def _pad(field: np.ndarray, margin: int) -> np.ndarray:
    return np.pad(field, margin, mode="edge") if margin else field


class RainToClouds:
    """Infers the cloud layers of each frame of a rain sequence (see the module docstring).

    Parameters
    ----------
    rain : numpy.ndarray
        (time, y, x) rain rate, mm/h, NaN = unknown (treated as dry).
    pixel_km : float
        Pixel size, km.
    motion : (float, float)
        Displacement per frame of the rain, pixels (rows, columns).
    upper_motion : (float, float)
        Displacement per frame of the upper-level clouds (anvils), pixels.
    clouds : CloudConfig
        Cloud parameters (cirrus).
    """

    def __init__(self, rain: np.ndarray, pixel_km: float, motion: tuple[float, float],
                 upper_motion: tuple[float, float], clouds: CloudConfig) -> None:
        self.rain = np.nan_to_num(np.asarray(rain, dtype="float32"), nan=0.0)
        self.pixel_km, self.motion, self.upper, self.clouds = pixel_km, motion, upper_motion, clouds
        self._anvil_tau: np.ndarray | None = None
        self._anvil_km: np.ndarray | None = None

    def ahead(self, t: int, frames: int = 2) -> np.ndarray:
        """The heaviest rain of frames ``t .. t + frames`` brought back to time ``t`` along the motion."""
        last = self.rain.shape[0] - 1
        out = self.rain[t].copy()
        for k in range(1, frames + 1):
            future = self.rain[min(t + k, last)]
            np.maximum(out, _shifted(future, -k * self.motion[0], -k * self.motion[1]), out=out)
        return out

    def layers(self, t: int, weather: CloudWeather, margin: int) -> CloudLayers:
        """The cloud layers of frame ``t`` on the drawn window (grid plus ``margin`` on each side)."""
        sigma_px = 8.0 / self.pixel_km
        ahead = self.ahead(t)
        smooth = ndimage.gaussian_filter(ahead, sigma_px, truncate=2.0)
        extent = ndimage.gaussian_filter((ahead > 0.1).astype("float32"), 2 * sigma_px, truncate=2.0)
        # Shield: tops rise with the smoothed rain (log scale), 4 km at the edge to 11 km at 5 mm/h.
        depth = np.clip(np.log10(1.0 + smooth) / np.log10(6.0), 0.0, 1.0)
        shield = (extent > 0.08) | (ahead > 0.1)
        # Towers: cores well above their surroundings, a few pixels wide (single-pixel spikes are clutter).
        local = ndimage.gaussian_filter(ahead, 2.0 / self.pixel_km, truncate=2.0)
        core = (local > CONVECTIVE_MM_H) & (ahead > 2.0 * smooth)
        with np.errstate(divide="ignore"):
            tower_km = np.clip(9.0 + 4.5 * np.log10(ahead / CONVECTIVE_MM_H), 9.0, 13.0)  # 13 km at ~40 mm/h
        tower_km = ndimage.maximum_filter(np.where(core, tower_km, 0.0), size=3)
        self._update_anvils(tower_km)

        w = weather
        inner = tuple(slice(margin, margin + n) for n in self.rain.shape[1:])
        texture = w.cirrus[inner] * 0.5 + w.low_cloud[inner] * 0.5
        deep_km = SHIELD_BASE_KM + (SHIELD_TOP_KM - SHIELD_BASE_KM) * depth + 0.6 * texture
        warm_km = WARM_TOP_KM[0] + (WARM_TOP_KM[1] - WARM_TOP_KM[0]) * depth + 0.3 * texture
        warm = warm_weight(w)[inner]
        shield_km = np.clip((1 - warm) * deep_km + warm * warm_km, WARM_TOP_KM[0], SHIELD_TOP_KM + 0.5)
        shield_tau = 3.0 + 40.0 * depth
        liquid = shield & (shield_km < LIQUID_TOP_KM)
        ice = shield & ~liquid
        ice_km = np.maximum(np.where(ice, shield_km, 0.0), tower_km)
        ice_tau = np.where(ice, shield_tau, 0.0) + np.where(tower_km > 0, 80.0, 0.0)

        low_km, low_tau = (a[inner] for a in low_cloud(w))
        water_km = np.where(liquid, np.maximum(low_km, shield_km), low_km)
        water_tau = np.where(liquid, low_tau + shield_tau, low_tau)
        ci = cirrus(w, self.clouds.cirrus_optical_depth, self.clouds.cirrus_fraction)
        ci_km, ci_tau = (a[inner] for a in ci)
        anvil = self._anvil_tau > 0.05
        upper_km = np.where(anvil, np.maximum(ci_km, self._anvil_km), ci_km)
        upper_tau = ci_tau + np.where(anvil, self._anvil_tau, 0.0)
        fields = (water_km, water_tau, ice_km, ice_tau, upper_km, upper_tau)
        return CloudLayers(*(_pad(a.astype("float32"), margin) for a in fields))

    def _update_anvils(self, tower_km: np.ndarray) -> None:
        """Advance the anvil memory one frame and feed it the current towers."""
        fresh_tau = np.where(tower_km > 0, 30.0, 0.0).astype("float32")
        # Carried by the upper wind and spread by ~4 m/s (3.6 km per 15 minutes).
        spread = 3.6 / self.pixel_km
        if self._anvil_tau is None:
            self._anvil_tau = ndimage.gaussian_filter(fresh_tau, 3 * spread, truncate=2.0)
            self._anvil_km = np.where(self._anvil_tau > 0.05, max(float(tower_km.max()) - 0.5, 9.0), 0.0)
            self._anvil_km = self._anvil_km.astype("float32")
            return
        decay = np.float32(ANVIL_HOURLY_DECAY ** (SEVIRI_STEP / pd.Timedelta(hours=1)))
        tau = ndimage.gaussian_filter(_shifted(self._anvil_tau, *self.upper), spread, truncate=2.0) * decay
        km = ndimage.maximum_filter(_shifted(self._anvil_km, *self.upper), size=3)
        self._anvil_tau = np.maximum(tau, ndimage.gaussian_filter(fresh_tau, spread, truncate=2.0))
        self._anvil_km = np.where(tower_km > 0, np.maximum(km, tower_km - 0.5), km).astype("float32")
        self._anvil_km[self._anvil_tau <= 0.05] = 0.0


def ir_from_rain(
    rain: xr.DataArray, config: SynthConfig | None = None, *, progress: bool = False
) -> xr.DataArray:
    """Simulate SEVIRI brightness temperatures for a given rain sequence (semi-synthetic mode).

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN where unknown, on a projected grid with a CF ``crs``
        coordinate (e.g. ``read_radar(...)["rain"]``), time steps of 15 minutes.
    config : SynthConfig, optional
        Channels, seed and the cloud and IR parameters (its grid and time settings are not used).
    progress : bool
        Show a progress bar over the frames.

    Returns
    -------
    xarray.DataArray
        ``ir`` (time, channel, y, x), float32, K, on the rain's grid and times.

    Raises
    ------
    DatasetError
        The rain is not (time, y, x) on a projected grid, or its pixels are not square.
    """
    cfg = _without_scenarios(config or SynthConfig())
    if rain.dims != ("time", "y", "x"):
        raise DatasetError(f"rain must have dims ('time', 'y', 'x'), got {rain.dims}")
    grid = Grid.from_dataset(rain)
    if abs(grid.dx - grid.dy) > 1e-6 * grid.dx:
        raise DatasetError(f"rain pixels must be square, got {grid.dx:g} x {grid.dy:g} m")
    pixel_km = grid.dx / 1000.0
    values = np.asarray(rain.values, dtype="float32")
    times = pd.DatetimeIndex(rain["time"].values)

    cloud_rng, noise_rng = np.random.default_rng(cfg.seed).spawn(2)
    motion = estimate_motion(values)
    # Upper-level wind: the rain's motion plus the configured mean extra speed, in the same direction.
    step_min = SEVIRI_STEP / pd.Timedelta(minutes=1)
    extra_px = float(np.mean(cfg.clouds.upper_wind_extra_ms)) * step_min * 0.06 / pixel_km
    direction = np.array(motion) / np.hypot(*motion) if np.hypot(*motion) > 0 else np.array([0.0, 1.0])
    upper = (motion[0] + extra_px * direction[0], motion[1] + extra_px * direction[1])
    winds = Winds(
        steering=(motion[0] / step_min, motion[1] / step_min),
        upper=(upper[0] / step_min, upper[1] / step_min),
        low=(0.7 * motion[0] / step_min, 0.7 * motion[1] / step_min),
        band_orientation_deg=float(np.degrees(np.arctan2(-motion[0], motion[1]))),
    )
    geometry = viewing_geometry(grid, cfg.ir.satellite_lon_deg)
    margin = parallax_margin(geometry)
    domain = Domain(max(grid.ny, grid.nx), pixel_km, margin)
    weather_model = CloudFields(cfg.clouds, cfg.ir.humidity_spread, domain, winds, cloud_rng)
    view = SatelliteView(geometry, cfg.channels, cfg.ir, margin)
    scene = RainToClouds(values, pixel_km, motion, upper, cfg.clouds)
    window = (grid.ny + 2 * margin, grid.nx + 2 * margin)

    ir = np.empty((times.size, len(cfg.channels), grid.ny, grid.nx), dtype="float32")
    for t in tqdm(range(times.size), desc="IR from rain", unit="frame", disable=not progress):
        weather = _cropped(weather_model.step(), window)
        layers = scene.layers(t, weather, margin)
        ir[t] = view.observe(layers, weather, times[t], view.sensor_noise(noise_rng))
    np.clip(ir, 160.0, 340.0, out=ir)
    coords = {"time": rain["time"], "channel": list(cfg.channels), **grid.coords()}
    if "crs" in rain.coords:
        coords["crs"] = rain.coords["crs"]
    return xr.DataArray(ir, dims=("time", "channel", "y", "x"), coords=coords, name="ir", attrs=ir_attrs())


def semisynthetic_paired(
    radar_files, config: SynthConfig | None = None, *, region: str | None = None, progress: bool = False
) -> xr.Dataset:
    """A semi-synthetic paired dataset: real radar rain as truth, simulated SEVIRI IR.

    Parameters
    ----------
    radar_files : str, path-like or sequence
        Glob pattern(s) or paths of radar files of one source: OPERA ODIM HDF5 composites, or KNMI,
        MeteoSwiss or FMI 5-minute files (see :func:`qpe.data.readers.read_radar_source`).
    config : SynthConfig, optional
        Seed, channels, pixel size and the cloud and IR settings; grid and times come from the files.
    region : str, optional
        Named region the radar is cropped to; by default the source's (``france`` for OPERA).
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.Dataset
        The radar dataset (``rain`` mm/h, quality, outlier flags) with ``ir`` (time, channel, y, x) in K.
    """
    from qpe.data.readers import read_radar_source

    cfg = _without_scenarios(config or SynthConfig())
    radar = read_radar_source(radar_files, region=region, pixel_km=cfg.pixel_km, progress=progress)
    ds = radar.assign(ir=ir_from_rain(radar["rain"], cfg, progress=progress))
    ds.attrs["source"] = f"qpe semi-synthetic: IR simulated (seed {cfg.seed}) for {radar.attrs['source']}"
    ds.attrs["synthetic_config"] = cfg.to_yaml()
    return ds


def _without_scenarios(cfg: SynthConfig) -> SynthConfig:
    """``cfg``, refused with one line when it asks for scenarios (the rain sequence sets the times)."""
    if cfg.scenario_hours is not None:
        raise InputError(
            "scenario_hours applies to fully synthetic data; in the semi-synthetic mode the radar "
            "files set the times (leave it out)"
        )
    return cfg


def _cropped(weather: CloudWeather, shape: tuple[int, int]) -> CloudWeather:
    """The rain-independent fields cut to a (rows, columns) window."""
    ny, nx = shape
    cut = {name: (value[:ny, :nx] if isinstance(value, np.ndarray) else value)
           for name, value in vars(weather).items()}
    return CloudWeather(**cut)
