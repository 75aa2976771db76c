"""Where things appear: the geostationary viewing geometry (parallax) and the radar coverage.

Parallax: a geostationary satellite sees a cloud top at height ``h`` where its line of sight meets the
ground, displaced from the point below the cloud by about ``h tan(zenith)`` away from the sub-satellite
point. Seen from Meteosat at 0°E over the equator, tops over France (zenith 50-56°) appear about
1.3-1.5 km further north (and slightly east of 0°E, west of it) for every km of height.
"""

from __future__ import annotations

import numpy as np
import pyproj
import xarray as xr

from qpe.data.grid import Grid

#: Mean Earth radius and geostationary orbit radius, km.
EARTH_RADIUS_KM = 6371.0
GEOSTATIONARY_RADIUS_KM = 42164.0


def viewing_geometry(grid: Grid, satellite_lon_deg: float = 0.0) -> xr.Dataset:
    """How a geostationary satellite sees each pixel of a grid.

    Parameters
    ----------
    grid : Grid
        The grid.
    satellite_lon_deg : float
        Longitude of the satellite over the equator, degrees east.

    Returns
    -------
    xarray.Dataset
        ``zenith`` (y, x): viewing zenith angle, degrees; ``parallax_shift`` (component, y, x):
        apparent displacement of a cloud top per km of height, pixels, ``component = ("row", "col")``
        (rows run north to south, so a northward shift is negative in ``row``): a top of height ``h``
        km above pixel ``p`` appears at ``p + h * shift(p)``; ``lon``, ``lat`` (y, x), degrees.
    """
    lon, lat = grid.lonlat()
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    ground = EARTH_RADIUS_KM * np.stack(
        [np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)]
    )
    sat = _satellite_vector(satellite_lon_deg)[:, None, None]
    view = sat - ground
    cos_z = (view * ground).sum(axis=0) / (np.linalg.norm(view, axis=0) * EARTH_RADIUS_KM)
    zenith = np.degrees(np.arccos(np.clip(cos_z, -1.0, 1.0)))

    # A top 10 km up: the line of sight sat + s (top - sat) meets the sphere |X| = R just beyond it.
    h_km = 10.0
    d = ground * (1 + h_km / EARTH_RADIUS_KM) - sat
    a = (d * d).sum(axis=0)
    b = 2 * (d * sat).sum(axis=0)
    c = (sat * sat).sum() - EARTH_RADIUS_KM**2
    hit = sat + (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a) * d  # the first intersection
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    x_hit, y_hit = to_grid.transform(
        np.degrees(np.arctan2(hit[1], hit[0])), np.degrees(np.arcsin(hit[2] / EARTH_RADIUS_KM))
    )
    x0, y0 = np.meshgrid(grid.x, grid.y)
    shift = np.stack([-(y_hit - y0) / grid.dy, (x_hit - x0) / grid.dx]) / h_km
    coords = {"component": ["row", "col"], **grid.coords()}
    return xr.Dataset(
        {
            "zenith": (("y", "x"), zenith.astype("float32"), {"units": "degree"}),
            "parallax_shift": (("component", "y", "x"), shift.astype("float32"), {"units": "pixel/km"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east"}),
            "lat": (("y", "x"), lat, {"units": "degrees_north"}),
        },
        coords=coords,
    )


def _satellite_vector(lon_deg: float) -> np.ndarray:
    lon = np.radians(lon_deg)
    return GEOSTATIONARY_RADIUS_KM * np.array([np.cos(lon), np.sin(lon), 0.0])


def radar_coverage(grid: Grid, no_radar_fraction: float) -> xr.DataArray:
    """Radar coverage, True where a radar sees, (y, x).

    The uncovered part is the area beyond a range ring drawn around a point in the north-west quarter
    of the grid, sized so that ``no_radar_fraction`` of the pixels fall outside it (a south-eastern
    corner, like the sea beyond the last coastal radar).
    """
    rows, cols = np.mgrid[0 : grid.ny, 0 : grid.nx].astype("float64")
    distance = np.hypot(rows - 0.3 * grid.ny, cols - 0.3 * grid.nx)
    covered = np.ones(grid.shape, dtype=bool)
    if no_radar_fraction > 0:
        covered = distance <= np.quantile(distance, 1.0 - no_radar_fraction)
    return xr.DataArray(covered, dims=("y", "x"), coords=grid.coords())


def displace(
    height_km: np.ndarray, shift: np.ndarray, margin: int, fields: list[np.ndarray], max_km: float = 15.0
) -> list[np.ndarray]:
    """Move fields of a cloud layer to where the satellite sees them (parallax), by nearest pixel.

    Parameters
    ----------
    height_km : numpy.ndarray
        (ny + 2 margin, nx + 2 margin) top height of the layer on the drawn window, km (0 where none).
    shift : numpy.ndarray
        (2, ny, nx) apparent displacement per km of height on the output grid, pixels
        (:func:`parallax_shift`).
    margin : int
        Width of the window's border around the output grid, pixels.
    fields : list of numpy.ndarray
        Fields of the layer on the drawn window to move (its height, optical depth, ...).
    max_km : float
        Highest top considered, km.

    Returns
    -------
    list of numpy.ndarray
        The fields as seen at each output pixel, (ny, nx) each.

    Notes
    -----
    The output pixel ``q`` shows the point ``p`` with ``p + h(p) s(q) = q``. It is found by fixed-point
    iteration ``p <- q - h(p) s(q)`` (two steps) started from the highest top of the layer, so that where
    several
    points map to ``q`` the iteration settles on a high one (the top that hides the others).
    """
    width = height_km.shape[1]
    ny, nx = shift.shape[1:]
    q = (np.arange(ny)[:, None] + margin) * width + (np.arange(nx)[None, :] + margin)  # flat window index
    flat = height_km.ravel()
    h = np.full((ny, nx), min(float(flat.max()), max_km), dtype="float32")
    for _ in range(2):
        offset = np.rint(h * shift[0]).astype(np.intp) * width + np.rint(h * shift[1]).astype(np.intp)
        p = np.clip(q - offset, 0, flat.size - 1)
        h = np.minimum(flat.take(p), np.float32(max_km))
    return [f.ravel().take(p) for f in fields]
