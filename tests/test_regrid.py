"""Regridding: exact crops, NaN-aware block means, and pyproj reprojection (geostationary -> LAEA)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr

from qpe.data.grid import GRID_MAPPING_NAME, OPERA_CRS, Grid, get_region
from qpe.data.regrid import Regridder, regrid, regrid_dataset
from qpe.errors import DatasetError

GEOS_CRS = "+proj=geos +lon_0=0 +h=35785831 +a=6378169 +b=6356583.8 +units=m"


def field_on(grid: Grid, values: np.ndarray, name: str = "rain") -> xr.DataArray:
    """A labelled (time, y, x) field on ``grid`` with its grid mapping, as in a paired dataset."""
    coords = {"time": np.array(["2018-08-24T18:00"], dtype="datetime64[ns]"), **grid.coords()}
    coords[GRID_MAPPING_NAME] = grid.grid_mapping()
    return xr.DataArray(values[None], dims=("time", "y", "x"), coords=coords, name=name,
                        attrs={"units": "mm/h", "grid_mapping": GRID_MAPPING_NAME})


@pytest.fixture
def source() -> Grid:
    return Grid(OPERA_CRS, 1_001_000.0, -2_501_000.0, 2000.0, 2000.0, 50, 40)


@pytest.fixture
def values(source) -> np.ndarray:
    rng = np.random.default_rng(1)
    v = rng.gamma(0.7, 3.0, source.shape)
    v[rng.random(source.shape) < 0.2] = np.nan
    return v


@pytest.mark.parametrize("method", ["auto", "crop", "nearest", "bilinear"])
def test_sub_grid_is_an_exact_crop(source, values, method):
    target = Grid(OPERA_CRS, source.x0 + 7 * 2000, source.y0 - 5 * 2000, 2000.0, 2000.0, 30, 20)
    out = regrid(field_on(source, values), target, method)
    assert Regridder(source, target, method).kind == "crop"
    np.testing.assert_array_equal(out.values[0], values[5:25, 7:37])
    assert Grid.from_dataset(out).matches(target)


def test_crop_beyond_the_source_is_nan(source, values):
    target = Grid(OPERA_CRS, source.x0 + 40 * 2000, source.y0 + 3 * 2000, 2000.0, 2000.0, 20, 10)
    out = regrid(field_on(source, values), target).values[0]
    np.testing.assert_array_equal(out[3:, :10], values[:7, 40:])
    assert np.isnan(out[:3]).all() and np.isnan(out[:, 10:]).all()


@pytest.mark.parametrize("method", ["auto", "nearest"])
def test_target_wholly_outside_the_source_is_nan(source, values, method):
    far = Grid(OPERA_CRS, source.x0 + 400 * 2000, source.y0, 2000.0, 2000.0, 10, 10)
    out = regrid(field_on(source, values), far, method)
    assert out.shape == (1, 10, 10) and np.isnan(out.values).all()


def test_same_grid_is_returned_unchanged(source, values):
    out = regrid(field_on(source, values), source)
    assert Regridder(source, source).kind == "identity"
    np.testing.assert_array_equal(out.values[0], values)


def block_mean_by_hand(v: np.ndarray, k: int, min_fraction: float) -> np.ndarray:
    ny, nx = v.shape[0] // k, v.shape[1] // k
    out = np.full((ny, nx), np.nan)
    for i in range(ny):
        for j in range(nx):
            block = v[i * k:(i + 1) * k, j * k:(j + 1) * k]
            ok = block[np.isfinite(block)]
            if ok.size and ok.size >= min_fraction * k * k:
                out[i, j] = ok.sum() / ok.size
    return out


@pytest.mark.parametrize("min_fraction", [0.25, 0.5, 1.0])
def test_two_by_two_block_mean_with_nan(source, values, min_fraction):
    v = values.copy()
    v[0:2, 0:2] = [[np.nan, np.nan], [np.nan, 4.0]]  # 1 valid of 4
    v[0:2, 2:4] = [[np.nan, 1.0], [np.nan, 3.0]]  # 2 valid of 4
    target = Grid(OPERA_CRS, source.x0 + 1000, source.y0 - 1000, 4000.0, 4000.0, 25, 20)
    out = regrid(field_on(source, v), target, min_valid_fraction=min_fraction).values[0]
    assert Regridder(source, target).kind == "mean"
    np.testing.assert_allclose(out, block_mean_by_hand(v, 2, min_fraction), rtol=1e-12, equal_nan=True)
    assert np.isnan(out[0, 0]) == (min_fraction > 0.25)
    assert (out[0, 1] == 2.0) if min_fraction <= 0.5 else np.isnan(out[0, 1])


def test_block_mean_on_an_offset_sub_block(source, values):
    # 3x3 blocks starting at source row 2, col 4
    target = Grid(OPERA_CRS, source.x0 + 4 * 2000 + 2000, source.y0 - 2 * 2000 - 2000, 6000.0, 6000.0, 10, 8)
    out = regrid(field_on(source, values), target, min_valid_fraction=0.1).values[0]
    expected = block_mean_by_hand(values[2:26, 4:34], 3, 0.1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method, atol", [("nearest", 0.0), ("bilinear", 1e-5)])
def test_reprojection_onto_the_same_pixels_is_the_identity(source, values, method, atol):
    # the same pixel centres expressed in a CRS whose false easting is one pixel larger
    shifted_crs = OPERA_CRS.replace("+x_0=1950000.0", "+x_0=1952000.0")
    target = Grid(shifted_crs, source.x0 + 2000.0, source.y0, 2000.0, 2000.0, source.nx, source.ny)
    regridder = Regridder(source, target, method)
    assert regridder.kind == method
    out = regridder(field_on(source, values)).values[0]
    # pyproj's LAEA round trip is exact to ~1 mm, i.e. ~1e-6 pixel: bilinear weights of ~1e-6
    np.testing.assert_allclose(out, values, rtol=0, atol=atol, equal_nan=True)


def smooth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth field of geostationary coordinates (m): 250 K +- 20 K over ~1000 km."""
    return 250.0 + 20.0 * np.sin(x / 300_000.0) * np.cos((y - 4_300_000.0) / 250_000.0)


@pytest.fixture(scope="module")
def geos_source() -> Grid:
    """3 km geostationary pixels covering France (as SEVIRI and CRR)."""
    return Grid.from_bounds(GEOS_CRS, (-650_000.0, 3_850_000.0, 850_000.0, 4_720_000.0), 3000.0)


@pytest.mark.parametrize("method, atol", [("bilinear", 0.02), ("nearest", 0.45)])
def test_geostationary_to_laea_matches_the_field(geos_source, method, atol):
    xs, ys = np.meshgrid(geos_source.x, geos_source.y)
    target = get_region("france").grid(4000.0)
    out = regrid(field_on(geos_source, smooth(xs, ys)), target, method).values[0]
    tx, ty = np.meshgrid(target.x, target.y)
    gx, gy = pyproj.Transformer.from_crs(OPERA_CRS, GEOS_CRS, always_xy=True).transform(tx, ty)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, smooth(gx, gy), atol=atol)


def test_geostationary_laea_round_trip(geos_source):
    xs, ys = np.meshgrid(geos_source.x, geos_source.y)
    original = smooth(xs, ys)
    laea = regrid(field_on(geos_source, original), get_region("france").grid(2000.0), "bilinear")
    back = regrid(laea, geos_source, "bilinear").values[0]
    inside = np.isfinite(back)
    assert inside.mean() > 0.5  # France covers most of the geostationary window
    np.testing.assert_allclose(back[inside], original[inside], atol=0.05)


def test_outside_the_source_is_nan(geos_source):
    far = Grid(OPERA_CRS, 3_001_000.0, -301_000.0, 2000.0, 2000.0, 20, 10)  # Scandinavia
    xs, ys = np.meshgrid(geos_source.x, geos_source.y)
    out = regrid(field_on(geos_source, smooth(xs, ys)), far, "bilinear")
    assert np.isnan(out.values).all()


def test_off_disk_target_pixels_are_nan():
    disk_edge = Grid.from_bounds(GEOS_CRS, (-600_000.0, 5_400_000.0, 600_000.0, 5_700_000.0), 3000.0)
    values = np.ones(disk_edge.shape)
    polar = Grid.from_bounds("+proj=stere +lat_0=90 +lon_0=0 +ellps=WGS84", (-3e5, -3e5, 3e5, 3e5), 20_000.0)
    out = regrid(field_on(disk_edge, values), polar, "nearest")
    assert np.isnan(out.values).all()  # the pole is not seen from the geostationary orbit


@pytest.mark.parametrize(
    "method, target, message",
    [
        ("crop", Grid(OPERA_CRS, 1_002_000.0, -2_501_000.0, 2000.0, 2000.0, 10, 10), "is not a sub-grid of"),
        ("mean", Grid(OPERA_CRS, 1_002_000.0, -2_502_000.0, 5000.0, 5000.0, 10, 10), "integer coarsening"),
        ("cubic", Grid(OPERA_CRS, 1_001_000.0, -2_501_000.0, 2000.0, 2000.0, 10, 10),
         "unknown regridding method"),
    ],
)
def test_impossible_methods_fail_with_one_line(source, method, target, message):
    with pytest.raises(DatasetError, match=message) as err:
        Regridder(source, target, method)
    assert "\n" not in str(err.value)


def test_field_must_be_on_the_source_grid(source, values):
    other = Grid(OPERA_CRS, 0.0, 0.0, 2000.0, 2000.0, 50, 40)
    with pytest.raises(DatasetError, match="not on the regridder's source grid"):
        Regridder(other, source)(field_on(source, values))


def test_regrid_dataset_keeps_non_spatial_variables(small_paired):
    ds = small_paired.assign(qc_outliers=("time", np.arange(4)))
    target = Grid.from_dataset(ds)
    target = Grid(target.crs, target.x0 + 1000, target.y0 - 1000, 4000.0, 4000.0, 24, 16)
    out = regrid_dataset(ds, target)
    assert out["ir"].dims == ("time", "channel", "y", "x") and out["ir"].shape[-2:] == (16, 24)
    np.testing.assert_array_equal(out["qc_outliers"].values, np.arange(4))
    np.testing.assert_allclose(out["ir"].values[1, 0, 2, 3], small_paired["ir"].values[1, 0, 4:6, 6:8].mean(),
                               rtol=1e-6)
    assert Grid.from_dataset(out).matches(target)
