"""Parallax correction of geostationary brightness temperatures, with satpy's parallax module.

Why
    SEVIRI geolocates every pixel where its line of sight meets the Earth's surface. A cloud top at
    height ``h`` is seen along a slanted line, so it appears displaced *away* from the sub-satellite
    point by about ``h tan(zenith)``: over France (satellite zenith angle ~54 deg from 0 E) a 10 km
    top appears ~14 km too far north, while the radar sees the rain below the cloud where it is.
    Correcting moves cold tops back toward the sub-satellite point (0 N, 0 E for the 15-minute
    service; 0 N, 9.5 E for the rapid-scan service), onto the rain.
How
    :class:`satpy.modifiers.parallax.ParallaxCorrection` on the *target* grid: given cloud-top
    heights, it finds for every target pixel the place (lon, lat) where the satellite saw what lies
    above it (the inverse of :func:`satpy.modifiers.parallax.get_parallax_corrected_lonlats`, with the
    highest cloud winning where several land on one pixel). The brightness temperatures are then
    sampled there (:func:`sample_at`: nearest or bilinear in the source pixel grid, positions from
    pyresample's :meth:`~pyresample.geometry.AreaDefinition.get_array_coordinates_from_lonlat`;
    pyresample's own bilinear resampler only takes an area as target, not these scattered points).
Cloud-top height (:class:`CloudTopRule`)
    From a cloud-top-height product when one is given (e.g. NWC SAF CTTH ``ctth_alti``, m). Otherwise
    from the 10.8 um brightness temperature with the standard-atmosphere lapse rate:
    ``h = (T_s - BT_108) / 6.5 K/km``, clipped to ``[0, 16 km]``, where the surface temperature
    ``T_s`` is by default the 98th percentile of the slot's ``IR_108`` over the area read (its
    warmest pixels: clear land or sea at that hour) or a fixed value. Pixels warmer than ``T_s`` get
    0 (no shift). This is crude for thin cirrus (semi-transparent, too warm: too low) and inversions
    (low cloud warmer than the surface: no shift), and right to within ~1-2 km for the thick cold
    tops that carry the heavy rain, where the correction matters.
Hidden ground
    Target pixels that no source pixel reaches after correction are ground hidden behind a tall cloud,
    on its far side from the satellite (satpy leaves them NaN). No cloud is above them (it would be
    seen), so each takes the values of the first visible pixel beyond it, stepping away from the
    sub-satellite point: where the line of sight clears the cloud (:func:`fill_hidden`). Keeping their
    uncorrected values instead would leave the cloud's old, apparent position cold.
Satellite position
    From the files' orbital parameters (``satellite_actual_*``, from the orbit polynomials); where a
    file has no valid polynomial, the nominal longitude and latitude at the projection altitude (never
    a TLE look-up: nothing is downloaded).

satpy and pyresample are imported inside the functions (the optional extra ``satpy``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from qpe.errors import InputError

#: Lapse rate of the ICAO standard atmosphere in the troposphere, K/km.
STANDARD_LAPSE_RATE_K_PER_KM = 6.5
#: Cap of the heights from brightness temperature, km (a mid-latitude tropopause; colder tops overshoot).
MAX_CLOUD_TOP_KM = 16.0
#: Percentile of the slot's IR_108 taken as the surface temperature by default.
SURFACE_PERCENTILE = 98.0
#: Radius within which the satpy parallax step looks for a height, m (3 SEVIRI pixels over Europe).
CTH_RADIUS_M = 15_000.0

SampleMethod = Literal["nearest", "bilinear"]


@dataclass(frozen=True)
class CloudTopRule:
    """Cloud-top height from the 10.8 um brightness temperature with a constant lapse rate.

    Parameters
    ----------
    lapse_rate_k_per_km : float
        Temperature decrease with height, K/km (6.5: ICAO standard atmosphere).
    surface_k : float, optional
        Surface temperature, K. By default the ``surface_percentile`` percentile of the slot's
        ``IR_108`` over the area read.
    surface_percentile : float
        Percentile (0..100) used when ``surface_k`` is not given.
    max_height_km : float
        Heights are clipped to ``[0, max_height_km]``, km.
    """

    lapse_rate_k_per_km: float = STANDARD_LAPSE_RATE_K_PER_KM
    surface_k: float | None = None
    surface_percentile: float = SURFACE_PERCENTILE
    max_height_km: float = MAX_CLOUD_TOP_KM

    def __post_init__(self) -> None:
        checks = (
            (np.isfinite(self.lapse_rate_k_per_km) and self.lapse_rate_k_per_km > 0,
             "lapse rate must be > 0 K/km"),
            (self.surface_k is None or 150.0 <= self.surface_k <= 350.0,
             "surface temperature must be 150..350 K"),
            (0.0 < self.surface_percentile <= 100.0, "surface percentile must be in (0, 100]"),
            (np.isfinite(self.max_height_km) and self.max_height_km > 0,
             "maximum cloud-top height must be > 0 km"),
        )
        for ok, message in checks:
            if not ok:
                raise InputError(f"cloud-top rule: {message}")

    def describe(self) -> str:
        """One line for the dataset's attributes."""
        surface = (f"{self.surface_k:g} K" if self.surface_k is not None else
                   f"the {self.surface_percentile:g}th percentile of the slot's IR_108 over the area read")
        return (f"cloud-top height from IR_108: h = (T_s - BT_108) / {self.lapse_rate_k_per_km:g} K/km, "
                f"clipped to [0, {self.max_height_km:g}] km; T_s = {surface}")

    def surface_temperature(self, bt108: np.ndarray) -> float:
        """``T_s``, K, for one slot's 10.8 um brightness temperatures (NaN ignored)."""
        if self.surface_k is not None:
            return float(self.surface_k)
        valid = np.asarray(bt108)[np.isfinite(bt108)]
        if valid.size == 0:
            raise InputError("no valid IR_108 brightness temperature to estimate the surface temperature")
        return float(np.percentile(valid, self.surface_percentile))

    def height_m(self, bt108: np.ndarray, surface_k: float) -> np.ndarray:
        """Cloud-top height, m, of brightness temperatures ``bt108`` (K); NaN stays NaN."""
        km = (surface_k - np.asarray(bt108, dtype="float64")) / self.lapse_rate_k_per_km
        return np.clip(km, 0.0, self.max_height_km) * 1000.0


def cloud_top_height(bt108: xr.DataArray, rule: CloudTopRule) -> tuple[xr.DataArray, float]:
    """Cloud-top height (m) of a satpy 10.8 um dataset, with its area and orbital parameters.

    Parameters
    ----------
    bt108 : xarray.DataArray
        ``(y, x)`` brightness temperature, K, as satpy loads it (``area`` and ``orbital_parameters``
        in its attributes).
    rule : CloudTopRule
        How heights follow from temperatures.

    Returns
    -------
    cth : xarray.DataArray
        ``(y, x)`` height above the surface, m, on the same area.
    surface_k : float
        The surface temperature used, K.
    """
    values = np.asarray(bt108.values, dtype="float64")
    surface = rule.surface_temperature(values)
    attrs = {**bt108.attrs, "name": "cloud_top_height", "units": "m", "standard_name": "cloud_top_altitude",
             "orbital_parameters": complete_orbital_parameters(bt108.attrs)}
    cth = xr.DataArray(rule.height_m(values, surface).astype("float32"), dims=("y", "x"), attrs=attrs)
    return cth, surface


def complete_orbital_parameters(attrs: dict) -> dict:
    """The satellite position satpy's parallax code needs, never left to a TLE look-up.

    The actual position (from the orbit polynomials) when the file had one; else the nominal
    longitude and latitude at the nominal (or projection) altitude, m above the surface (an altitude
    in km, as old NWC SAF files give it, is taken as km).
    """
    orbital = dict(attrs.get("orbital_parameters") or {})
    actual = [orbital.get(f"satellite_actual_{k}") for k in ("longitude", "latitude", "altitude")]
    if all(v is not None and np.isfinite(v) for v in actual):
        return orbital
    lon = orbital.get("satellite_nominal_longitude", orbital.get("projection_longitude"))
    lat = orbital.get("satellite_nominal_latitude", orbital.get("projection_latitude", 0.0))
    alt = orbital.get("satellite_nominal_altitude", orbital.get("projection_altitude"))
    alt = alt * 1000.0 if alt is not None and alt < 1e6 else alt
    if lon is None or alt is None:
        raise InputError("the files give no satellite position (orbital parameters): cannot correct parallax")
    orbital.update(satellite_nominal_longitude=float(lon), satellite_nominal_latitude=float(lat),
                   satellite_nominal_altitude=float(alt))
    return orbital


def corrected_lonlats(cth: xr.DataArray, target_area) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where to read each target pixel after parallax correction.

    Parameters
    ----------
    cth : xarray.DataArray
        ``(y, x)`` cloud-top height, m, with ``area`` and ``orbital_parameters`` attributes (on the
        source grid, or any grid satpy can resample).
    target_area : pyresample.geometry.AreaDefinition
        The output grid.

    Returns
    -------
    lon, lat : numpy.ndarray
        ``(ny, nx)`` degrees: the apparent position of what lies above each target pixel (its own
        position where it is hidden).
    hidden : numpy.ndarray
        ``(ny, nx)`` bool: pixels no source pixel reaches (ground hidden behind a cloud).
    """
    import dask
    from satpy.modifiers.parallax import ParallaxCorrection

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Overlap checking not implemented", category=UserWarning)
        swath = ParallaxCorrection(target_area)(cth, cth_radius_of_influence=CTH_RADIUS_M)
        lon, lat = dask.compute(*swath.get_lonlats())
    base_lon, base_lat = target_area.get_lonlats()
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    hidden = ~(np.isfinite(lon) & np.isfinite(lat)) & np.isfinite(base_lon)
    return np.where(hidden, base_lon, lon), np.where(hidden, base_lat, lat), hidden


def away_from_satellite(target_area, sub_satellite_lon: float, sub_satellite_lat: float = 0.0) -> np.ndarray:
    """``(2, ny, nx)`` unit steps (rows, columns) of the target grid pointing away from the sub-satellite
    point, along the great circle through it."""
    import pyproj

    lon, lat = target_area.get_lonlats()
    geod = pyproj.Geod(ellps="WGS84")
    toward, _, _ = geod.inv(lon, lat, np.full(lon.shape, float(sub_satellite_lon)),
                            np.full(lon.shape, float(sub_satellite_lat)))
    far_lon, far_lat, _ = geod.fwd(lon, lat, np.asarray(toward) + 180.0, np.full(lon.shape, 1000.0))
    x0, y0 = target_area.get_proj_coords()
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", target_area.crs, always_xy=True)
    x1, y1 = to_grid.transform(far_lon, far_lat)
    dcol = (np.asarray(x1) - x0) / target_area.pixel_size_x
    drow = -(np.asarray(y1) - y0) / target_area.pixel_size_y
    norm = np.hypot(drow, dcol)
    return np.stack([drow / norm, dcol / norm])


def fill_hidden(values: np.ndarray, hidden: np.ndarray, away: np.ndarray, max_steps: int = 64) -> np.ndarray:
    """Hidden pixels take the values of the first visible pixel beyond them, away from the satellite.

    Parameters
    ----------
    values : numpy.ndarray
        ``(channel, ny, nx)`` corrected brightness temperatures, K.
    hidden : numpy.ndarray
        ``(ny, nx)`` bool, from :func:`corrected_lonlats`.
    away : numpy.ndarray
        ``(2, ny, nx)`` unit steps in pixels, from :func:`away_from_satellite`.
    max_steps : int
        Farthest look, pixels; hidden pixels with nothing visible so far keep their values.
    """
    out = values.copy()
    ny, nx = hidden.shape
    rows, cols = np.nonzero(hidden)
    todo = np.ones(rows.size, dtype=bool)
    for step in range(1, max_steps + 1):
        active = np.flatnonzero(todo)
        if active.size == 0:
            break
        r = np.rint(rows[active] + step * away[0, rows[active], cols[active]]).astype("int64")
        c = np.rint(cols[active] + step * away[1, rows[active], cols[active]]).astype("int64")
        on_grid = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
        visible = np.zeros(active.size, dtype=bool)
        visible[on_grid] = ~hidden[r[on_grid], c[on_grid]]
        done = active[visible]
        out[:, rows[done], cols[done]] = values[:, r[visible], c[visible]]
        todo[done] = False
        todo[active[~on_grid]] = False  # the look left the grid: the pixel keeps its value
    return out


def sample_at(values: np.ndarray, source_area, lon: np.ndarray, lat: np.ndarray,
              method: SampleMethod, min_valid_fraction: float = 0.5) -> np.ndarray:
    """Sample fields on a source area at given positions.

    Parameters
    ----------
    values : numpy.ndarray
        ``(..., H, W)`` fields on ``source_area`` (row 0 at the top of the area).
    source_area : pyresample.geometry.AreaDefinition
        Their grid.
    lon, lat : numpy.ndarray
        ``(ny, nx)`` positions, degrees.
    method : {"nearest", "bilinear"}
        Nearest pixel, or bilinear between the four around (weights renormalised over the valid
        ones; NaN where they hold less than ``min_valid_fraction`` of the weight).

    Returns
    -------
    numpy.ndarray
        ``(..., ny, nx)``; NaN outside the source area.
    """
    height, width = values.shape[-2:]
    with np.errstate(invalid="ignore"):
        col, row = source_area.get_array_coordinates_from_lonlat(lon, lat)
    col, row = np.asarray(col, dtype="float64"), np.asarray(row, dtype="float64")
    inside = (np.isfinite(col) & np.isfinite(row) & (col >= -0.5) & (col <= width - 0.5)
              & (row >= -0.5) & (row <= height - 0.5))
    col, row = np.where(inside, col, 0.0), np.where(inside, row, 0.0)
    flat = values.reshape(*values.shape[:-2], -1)
    if method == "nearest":
        r = np.clip(np.rint(row), 0, height - 1).astype("int64")
        c = np.clip(np.rint(col), 0, width - 1).astype("int64")
        out = flat[..., r * width + c]
    else:
        row, col = np.clip(row, 0, height - 1), np.clip(col, 0, width - 1)
        r0 = np.minimum(np.floor(row).astype("int64"), max(height - 2, 0))
        c0 = np.minimum(np.floor(col).astype("int64"), max(width - 2, 0))
        ty, tx = row - r0, col - c0
        r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
        corners = flat[..., np.stack([r0 * width + c0, r0 * width + c1, r1 * width + c0, r1 * width + c1])]
        weights = np.stack([(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx])
        ok = np.isfinite(corners)
        w = np.where(ok, weights, 0.0)
        total = w.sum(axis=-3)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (np.where(ok, corners, 0.0) * w).sum(axis=-3) / total
        out = np.where(total >= min_valid_fraction, out, np.nan)
    return np.where(inside, out, np.nan).astype(values.dtype if values.dtype.kind == "f" else "float64")
