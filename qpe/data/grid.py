"""Regular projected grids and the named regions qpe works on.

Every field in qpe lives on a :class:`Grid`: pixel centres on a regular projected raster, north-up
(``x`` increasing west to east, ``y`` decreasing north to south, as radar composites and images are
stored), coordinates in metres, and a coordinate reference system that travels with the data as a
CF ``grid_mapping`` variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyproj
import xarray as xr

from qpe.errors import DatasetError

#: Projection of the OPERA European composite (ODIM ``where/projdef``).
OPERA_CRS = (
    "+proj=laea +lat_0=55.0 +lon_0=10.0 +x_0=1950000.0 +y_0=-2100000.0 +units=m +ellps=WGS84"
)

#: Name of the CF grid-mapping variable in every qpe dataset.
GRID_MAPPING_NAME = "crs"

_REL_TOL = 1e-6


@dataclass(frozen=True)
class Grid:
    """A regular, north-up projected grid of pixel centres.

    Parameters
    ----------
    crs : str
        Coordinate reference system as a PROJ string or WKT.
    x0, y0 : float
        Centre of the upper-left (north-west) pixel, m.
    dx, dy : float
        Pixel size along x and y, m (both positive; rows run north to south).
    nx, ny : int
        Number of columns and rows.
    """

    crs: str
    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    def __post_init__(self) -> None:
        if self.dx <= 0 or self.dy <= 0:
            raise DatasetError(f"grid pixel size must be positive, got dx={self.dx}, dy={self.dy} m")
        if self.nx < 1 or self.ny < 1:
            raise DatasetError(f"grid must have at least one pixel, got {self.ny}x{self.nx}")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_bounds(
        cls, crs: str, bounds: tuple[float, float, float, float], pixel_m: float
    ) -> Grid:
        """Grid covering ``bounds = (xmin, ymin, xmax, ymax)`` (outer pixel edges, m)."""
        xmin, ymin, xmax, ymax = bounds
        nx = int(round((xmax - xmin) / pixel_m))
        ny = int(round((ymax - ymin) / pixel_m))
        return cls(crs, xmin + pixel_m / 2, ymax - pixel_m / 2, pixel_m, pixel_m, nx, ny)

    @classmethod
    def centred(cls, crs: str, centre_xy: tuple[float, float], size: int, pixel_m: float) -> Grid:
        """Square grid of ``size`` x ``size`` pixels of ``pixel_m`` metres centred on ``centre_xy``."""
        half = size * pixel_m / 2
        cx, cy = centre_xy
        return cls.from_bounds(crs, (cx - half, cy - half, cx + half, cy + half), pixel_m)

    @classmethod
    def from_coords(cls, crs: str, x: np.ndarray, y: np.ndarray) -> Grid:
        """Grid from 1-D centre coordinates (m); raises if they are not regular and north-up."""
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        for name, c, sign in (("x", x, 1.0), ("y", y, -1.0)):
            if c.ndim != 1 or c.size < 2:
                raise DatasetError(f"coordinate {name!r} must be 1-D with at least 2 values")
            step = np.diff(c)
            if not np.all(sign * step > 0):
                order = "increasing (west to east)" if sign > 0 else "decreasing (north to south)"
                raise DatasetError(f"coordinate {name!r} must be strictly {order}")
            if np.ptp(step) > 1e-3 * abs(step.mean()):
                raise DatasetError(f"coordinate {name!r} is not regularly spaced")
        return cls(
            crs, float(x[0]), float(y[0]), float(np.diff(x).mean()), float(-np.diff(y).mean()),
            x.size, y.size,
        )

    @classmethod
    def from_dataset(cls, obj: xr.Dataset | xr.DataArray) -> Grid:
        """Grid of a dataset or array holding ``x``/``y`` coordinates and a CF grid mapping."""
        if "x" not in obj.coords or "y" not in obj.coords:
            raise DatasetError("dataset has no 'x'/'y' projected coordinates")
        for name in ("x", "y"):
            units = obj[name].attrs.get("units", "m")
            if units not in ("m", "metre", "meter", "metres", "meters"):
                raise DatasetError(f"coordinate {name!r} must be in metres, got units {units!r}")
        return cls.from_coords(crs_of(obj), obj["x"].values, obj["y"].values)

    # -- properties ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return (self.ny, self.nx)

    @property
    def x(self) -> np.ndarray:
        """Column centres, m, increasing."""
        return self.x0 + self.dx * np.arange(self.nx)

    @property
    def y(self) -> np.ndarray:
        """Row centres, m, decreasing."""
        return self.y0 - self.dy * np.arange(self.ny)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Outer pixel edges ``(xmin, ymin, xmax, ymax)``, m."""
        return (
            self.x0 - self.dx / 2,
            self.y0 - self.dy * (self.ny - 0.5),
            self.x0 + self.dx * (self.nx - 0.5),
            self.y0 + self.dy / 2,
        )

    @cached_property
    def pyproj_crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_user_input(self.crs)

    # -- comparison and derived grids --------------------------------------------------------------
    def matches(self, other: Grid) -> bool:
        """True when both grids have the same CRS and pixel centres (to 1e-6 of a pixel)."""
        if self.shape != other.shape:
            return False
        tol = _REL_TOL * max(self.dx, self.dy) + 1e-3
        same_geom = all(
            abs(a - b) <= tol
            for a, b in ((self.x0, other.x0), (self.y0, other.y0), (self.dx, other.dx), (self.dy, other.dy))
        )
        return same_geom and (self.crs == other.crs or self.pyproj_crs == other.pyproj_crs)

    def describe(self) -> str:
        """One line: size, pixel size and extent."""
        xmin, ymin, xmax, ymax = self.bounds
        return (
            f"{self.ny} x {self.nx} pixels of {self.dx / 1000:g} x {self.dy / 1000:g} km, "
            f"x [{xmin / 1000:.0f}, {xmax / 1000:.0f}] km, y [{ymin / 1000:.0f}, {ymax / 1000:.0f}] km"
        )

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude of the pixel centres, degrees, each of shape (ny, nx)."""
        xx, yy = np.meshgrid(self.x, self.y)
        to_geo = pyproj.Transformer.from_crs(self.pyproj_crs, "EPSG:4326", always_xy=True)
        return to_geo.transform(xx, yy)

    # -- xarray ------------------------------------------------------------------------------------
    def coords(self) -> dict[str, xr.DataArray]:
        """``x``/``y`` coordinate arrays with CF attributes."""
        return {
            "y": xr.DataArray(self.y, dims="y", attrs={
                "units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
            "x": xr.DataArray(self.x, dims="x", attrs={
                "units": "m", "standard_name": "projection_x_coordinate", "axis": "X"}),
        }

    def grid_mapping(self) -> xr.DataArray:
        """The CF grid-mapping variable (a scalar whose attributes describe the projection)."""
        attrs = self.pyproj_crs.to_cf()
        attrs["spatial_ref"] = attrs["crs_wkt"]
        if self.crs.lstrip().startswith("+"):
            attrs["proj4"] = self.crs.strip()
        return xr.DataArray(np.int32(0), attrs=attrs)


def crs_of(obj: xr.Dataset | xr.DataArray) -> str:
    """The CRS string (PROJ or WKT) of a dataset from its CF grid-mapping variable."""
    name = None
    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for var in variables:
        name = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
        if name:
            break
    name = name or GRID_MAPPING_NAME
    if name not in obj.coords and not (isinstance(obj, xr.Dataset) and name in obj.variables):
        raise DatasetError(
            f"dataset has no CF grid-mapping variable {name!r}: the projection of x/y is unknown"
        )
    attrs = obj[name].attrs
    for key in ("proj4", "crs_wkt", "spatial_ref"):
        if attrs.get(key):
            return str(attrs[key])
    try:
        return pyproj.CRS.from_cf(attrs).to_wkt()
    except pyproj.exceptions.CRSError as err:
        raise DatasetError(f"grid-mapping variable {name!r} does not describe a projection: {err}") from err


@dataclass(frozen=True)
class Region:
    """A named rectangle in a projection: ``bounds = (xmin, ymin, xmax, ymax)`` in m."""

    name: str
    crs: str
    bounds: tuple[float, float, float, float]
    description: str

    def grid(self, pixel_m: float = 2000.0) -> Grid:
        """The region as a grid of ``pixel_m`` metre pixels."""
        return Grid.from_bounds(self.crs, self.bounds, pixel_m)


#: Regions on the OPERA projection, snapped to its 2 km pixels so that cropping needs no resampling.
REGIONS: dict[str, Region] = {
    "france": Region(
        "france", OPERA_CRS, (676_000.0, -3_620_000.0, 1_924_000.0, -2_420_000.0),
        "metropolitan France and its surroundings (lon -5.2..9.6, lat 41.3..51.1)",
    ),
    "europe": Region(
        "europe", OPERA_CRS, (0.0, -4_400_000.0, 3_800_000.0, 0.0),
        "the full OPERA composite domain (1900 x 2200 pixels of 2 km)",
    ),
    # The radar coverage of three national networks (union over the files of ../shared/data), each
    # bounding box snapped outwards to the OPERA 2 km pixels.
    "netherlands": Region(
        "netherlands", OPERA_CRS, (1_418_000.0, -2_612_000.0, 1_822_000.0, -2_210_000.0),
        "KNMI radar coverage, the Netherlands and surroundings (lon 2.3..8.1, lat 50.3..53.9)",
    ),
    "switzerland": Region(
        "switzerland", OPERA_CRS, (1_404_000.0, -3_342_000.0, 2_114_000.0, -2_712_000.0),
        "MeteoSwiss radar coverage, Switzerland and the Alps (lon 2.9..12.2, lat 43.8..49.5)",
    ),
    "finland": Region(
        "finland", OPERA_CRS, (2_366_000.0, -1_722_000.0, 3_150_000.0, -410_000.0),
        "FMI radar coverage, Finland and the Baltic (lon 17.8..32.8, lat 58.0..69.3)",
    ),
}


def get_region(name: str) -> Region:
    """Look up a named region; raises a clear error listing the known names."""
    try:
        return REGIONS[name.lower()]
    except KeyError:
        raise DatasetError(f"unknown region {name!r}; known regions: {', '.join(sorted(REGIONS))}") from None
